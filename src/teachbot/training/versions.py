"""The version registry: every stored model version, where it lives, and which one answers in a scope.

A local version is a row plus its files, stored in the database as a content-addressed artefact
(``store/artefacts.py``) so every process can load it; each process keeps an unpacked copy in its own
cache, ``models/artefacts/<sha256>``, rebuilt from the database when missing or damaged. A fine-tuned
version is a row naming the server's model. Earlier versions stay, so activation and rollback are
instant. A scope sees its own versions and the global ones. Activation is announced on the change
feed (``store/changes.py``), and ``sync_active`` lets every other process follow it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from teachbot.answering.knowledge import Knowledge, LoadedVersion, build_reference
from teachbot.answering.local_model import EncoderMismatch, LocalModel
from teachbot.answering.protocols import GLOBAL_SCOPE
from teachbot.errors import TeachbotError, UserError
from teachbot.store.artefacts import (
    ArtefactError,
    archive_folder,
    materialise,
    put_archive,
    put_archive_file,
    stamp,
    verified,
    write_archive,
)
from teachbot.store.changes import ChangeKind, publish
from teachbot.store.db import Database
from teachbot.store.tables import ModelVersion

log = logging.getLogger(__name__)

EXAMPLE_IDS_FILE = "example_ids.json"
ARTEFACTS_DIR = "artefacts"  # under models/: the cache of unpacked artefacts, one folder per sha256
T = TypeVar("T")
NAME_ATTEMPTS = 8  # another process may take the same version name at the same moment: take the next one


@dataclass(frozen=True, slots=True)
class VersionInfo:
    name: str
    scope: str
    examples: int
    answers: int
    active: bool
    created_by: str
    created_at: str
    metrics: dict[str, object]


class VersionRegistry:
    """Records, loads and activates model versions; the only reader and writer of ``ModelVersion`` rows.

    Activation changes what answers at once: a local version goes into ``knowledge``, a fine-tuned
    one into ``remote_models`` (scope → model, the dict the LLM backend answers with).
    """

    def __init__(
        self,
        db: Database,
        knowledge: Knowledge,
        models_dir: Path,
        *,
        remote_models: dict[str, str],
        with_reference: bool = False,
    ) -> None:
        self.db = db
        self.knowledge = knowledge
        self.models_dir = models_dir
        self.remote_models = remote_models
        self.with_reference = with_reference  # LLM backends show training examples in their prompts
        #: archives ``write`` made (file, sha256), until ``add_local`` stores them
        self._archives: dict[str, tuple[Path, str]] = {}

    # -- lookups
    async def find(self, scope: str, name: str) -> ModelVersion:
        """Version ``name`` as seen from ``scope`` (its own or a global one), else a ``UserError``."""
        row = await self.db.run(lambda s: _visible(s, scope, name))
        if row is None:
            raise UserError(f"There is no model version `{name}` here.", see="models list")
        return row

    async def info(self, scope: str, name: str) -> VersionInfo:
        """What ``models list`` shows of version ``name`` (visible from ``scope``)."""
        return _info(await self.find(scope, name))

    async def in_scope(self, scope: str) -> list[VersionInfo]:
        """The versions ``scope`` trained, oldest first."""
        rows = await self.db.run(
            lambda s: list(s.scalars(select(ModelVersion).where(ModelVersion.scope == scope).order_by(ModelVersion.id)))
        )
        return [_info(r) for r in rows]

    async def previous_name(self, scope: str) -> str | None:
        """The local version created before the active one (what a rollback activates)."""

        def previous(s: Session) -> str | None:
            rows = list(
                s.scalars(
                    select(ModelVersion)
                    .where(ModelVersion.scope == scope, ModelVersion.backend == "local")
                    .order_by(ModelVersion.id)
                )
            )
            current = next((i for i, r in enumerate(rows) if r.active), None)
            return rows[current - 1].name if current else None

        return await self.db.run(previous)

    # -- recording
    async def next_name(self, scope: str) -> str:
        return await self.db.run(lambda s: _next_name(s, scope))

    def write(self, model: LocalModel, name: str, example_ids: Sequence[int | None]) -> str:
        """Save a new version's files into the artefact cache; returns their path under ``models_dir``
        (blocking). The folder is named by the sha256 of its archive, which ``add_local`` stores with the row,
        so a stale folder of another database or an earlier run never stands in the way."""
        cache = self.models_dir / ARTEFACTS_DIR
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=cache))
        archive = staging.with_name(staging.name + ".tar")  # stored by ``add_local``, then deleted
        try:
            model.save(staging)
            (staging / EXAMPLE_IDS_FILE).write_text(json.dumps(list(example_ids)), encoding="utf-8")
            with archive.open("wb") as file:
                sha = write_archive(staging, file)
            final = cache / sha
            if final.is_dir() and verified(final, sha):  # the same files again: keep the verified copy
                shutil.rmtree(staging, ignore_errors=True)
            else:
                if final.exists():
                    shutil.rmtree(final, ignore_errors=True)
                staging.rename(final)
                stamp(final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            archive.unlink(missing_ok=True)
            raise
        path = f"{ARTEFACTS_DIR}/{sha}"
        self._archives[path] = (archive, sha)
        return path

    async def add_local(
        self, name: str, scope: str, path: str, *, examples: int, answers: int, author: str
    ) -> VersionInfo:
        """Record a version ``write`` saved, with its archive, under ``name`` or (when another process took
        that name meanwhile) the scope's next free one; the returned info names the version."""
        written = self._archives.pop(path, None)
        archive = None
        if written is None and path.startswith(f"{ARTEFACTS_DIR}/"):
            archive = await asyncio.to_thread(archive_folder, self.models_dir / path)

        def add(wanted: str | None, s: Session) -> VersionInfo:
            if written is not None:
                sha: str | None = put_archive_file(s, *written)
            else:
                sha = put_archive(s, archive) if archive is not None else None
            row = ModelVersion(
                name=wanted or _free_name(s, scope),
                scope=scope,
                path=path,
                artefact=sha,
                examples=examples,
                answers=answers,
                created_by=author,
            )
            s.add(row)
            s.flush()
            return _info(row)

        try:
            return await self._with_free_name(add, name)
        finally:
            if written is not None:
                written[0].unlink(missing_ok=True)

    async def _with_free_name(self, add: Callable[[str | None, Session], T], first: str | None) -> T:
        """Run ``add`` (which inserts a version row) with ``first`` as its name, then with free names
        computed inside the transaction, until no other process took the name first."""
        wanted = first
        for attempt in range(NAME_ATTEMPTS):
            try:
                return await self.db.run(partial(add, wanted))
            except (IntegrityError, OperationalError) as exc:  # a unique name taken, or SQLite's stale snapshot
                if attempt + 1 == NAME_ATTEMPTS or (
                    isinstance(exc, OperationalError) and "locked" not in str(exc.orig).lower()
                ):
                    raise
                log.info("version name %s was taken by another process; taking the next one", wanted or "(next)")
                wanted = None
        raise AssertionError("unreachable")

    async def add_remote(self, scope: str, model: str, *, examples: int, author: str) -> str:
        """Record a finished fine-tuning job's model as the scope's next version; returns its name."""

        def add(wanted: str | None, s: Session) -> str:
            name = wanted or _free_name(s, scope)
            s.add(
                ModelVersion(
                    name=name, scope=scope, backend="openai", remote_model=model, examples=examples, created_by=author
                )
            )
            s.flush()
            return name

        return await self._with_free_name(add, None)

    async def store_metrics(self, name: str, metrics: dict[str, object]) -> None:
        await self.db.run(
            lambda s: s.execute(update(ModelVersion).where(ModelVersion.name == name).values(metrics=metrics))
        )

    # -- loading
    async def load(self, scope: str, name: str) -> LoadedVersion:
        """Load stored version ``name`` (visible from ``scope``) from disk; one trained with another sentence
        encoder than the bot's is refused with a ``UserError`` saying so."""
        row = await self.find(scope, name)
        try:
            return await self._load_row(row)
        except EncoderMismatch as exc:
            raise UserError(
                f"Model version `{name}` cannot answer here: {exc}. Train a new version.", see="train"
            ) from None

    async def _load_row(self, row: ModelVersion) -> LoadedVersion:
        """Load a local version from this process's cache, unpacking its artefact from the database first
        when the cache does not hold it (or holds damaged files)."""
        path = await asyncio.to_thread(self._locate, row)
        try:
            return await asyncio.to_thread(self._load, row.name, path)
        except EncoderMismatch:
            raise
        except Exception:
            if not row.artefact:
                raise
            # the cache's stamp trusted files that changed in place: hash them, rebuild if damaged, try again
            log.warning("model %s did not load from its cached files; checking them against the database", row.name)
            await asyncio.to_thread(self._locate, row, rehash=True)
            return await asyncio.to_thread(self._load, row.name, path)

    def _locate(self, row: ModelVersion, *, rehash: bool = False) -> str:
        """The folder (under ``models_dir``) holding ``row``'s files, verified (by their stamp, or by hashing
        them with ``rehash``); blocking."""
        if row.artefact:
            sha = row.artefact
            try:
                self.db.call(lambda s: materialise(s, sha, self.models_dir / ARTEFACTS_DIR, rehash=rehash))
            except ArtefactError as exc:
                raise ArtefactError(f"model {row.name} (scope {row.scope}) cannot be loaded: {exc}") from None
            return f"{ARTEFACTS_DIR}/{sha}"
        if not (self.models_dir / row.path).is_dir():
            raise ArtefactError(
                f"model {row.name} (scope {row.scope}) was trained before versions were stored in the database, "
                f"and this data folder has no models/{row.path}: copy that folder here from the data folder that "
                f"trained it, or train and activate a new version"
            )
        return row.path

    def _load(self, name: str, path: str) -> LoadedVersion:
        folder = self.models_dir / path
        model = LocalModel.load(folder, self.knowledge.encoder)
        try:
            ids = json.loads((folder / EXAMPLE_IDS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise TeachbotError(f"model {name}: unreadable {EXAMPLE_IDS_FILE}: {exc}") from None
        prompt_ids = tuple(i if isinstance(i, int) else None for i in ids)
        reference = build_reference(model, prompt_ids) if self.with_reference else None
        return LoadedVersion(name, model, prompt_ids, reference)

    def remove_partial(self) -> int:
        """Delete half-written version folders a killed run left behind (they were never recorded)."""
        partial = [
            p
            for folder in (self.models_dir, self.models_dir / ARTEFACTS_DIR)
            if folder.is_dir()
            for p in folder.iterdir()
            if p.is_dir() and p.name.startswith(".")
        ]
        for folder in partial:
            shutil.rmtree(folder, ignore_errors=True)
        return len(partial)

    async def active_rows(self) -> list[ModelVersion]:
        """Every scope's active version rows (a scope may have an active local and fine-tuned one)."""
        return await self.db.run(lambda s: list(s.scalars(select(ModelVersion).where(ModelVersion.active.is_(True)))))

    async def load_active(self) -> tuple[int, list[str]]:
        """Put every scope's active version to work (at start). Returns how many local ones serve, and the
        scopes whose active version was trained with another sentence encoder, or without the one the bot runs
        with (to train again; such a version answers by wording until then).

        A version that cannot be loaded is reported (what is missing, and where it was looked for) and
        skipped: nothing is trained to replace it.
        """
        await asyncio.to_thread(self.remove_partial)
        loaded, stale = 0, []
        for row in await self.active_rows():
            if row.backend != "local":
                if row.remote_model:
                    self.remote_models[row.scope] = row.remote_model
                continue
            try:
                active = await self._load_row(row)
            except EncoderMismatch as exc:
                log.warning("model %s of scope %s cannot answer: %s", row.name, row.scope, exc)
                stale.append(row.scope)
                continue
            except TeachbotError as exc:
                log.error("cannot load the active model %s of scope %s: %s", row.name, row.scope, exc)
                continue
            self.knowledge.set_model(row.scope, active)
            running = self._encoder_missing_from(active)
            if running is not None:  # it answers meanwhile, and its data is trained again with meaning
                log.warning(
                    "model %s of scope %s was trained without a sentence encoder, and the bot now runs with "
                    "the encoder %s",
                    row.name,
                    row.scope,
                    running,
                )
                stale.append(row.scope)
            loaded += 1
            if row.artefact is None:
                await self._store_legacy(row)
        return loaded, stale

    def _encoder_missing_from(self, version: LoadedVersion) -> str | None:
        """The id of the bot's sentence encoder when ``version`` was trained without one (after a run with
        encoder=none, say): it answers, but by wording alone, which is not what the setting asks for."""
        encoder = self.knowledge.encoder
        return encoder.model_id if encoder is not None and version.model.encoder_id is None else None

    async def _store_legacy(self, row: ModelVersion) -> None:
        """Store the files of a version trained before artefacts existed, so other processes can load it."""
        try:
            archive = await asyncio.to_thread(archive_folder, self.models_dir / row.path)
        except (OSError, ArtefactError) as exc:
            log.warning("model %s: its folder could not be stored in the database: %s", row.name, exc)
            return

        def store(s: Session) -> None:
            sha = put_archive(s, archive)
            s.execute(update(ModelVersion).where(ModelVersion.id == row.id).values(artefact=sha))

        await self.db.run(store)
        log.info("model %s: its files are now stored in the database for other processes", row.name)

    async def sync_active(self, scope: str) -> bool:
        """Make this process answer with what the database says is active in ``scope`` (after another process
        activated a version); returns whether anything changed. Idempotent."""
        rows = await self.db.run(
            lambda s: list(
                s.scalars(select(ModelVersion).where(ModelVersion.scope == scope, ModelVersion.active.is_(True)))
            )
        )
        changed = False
        for row in rows:
            if row.backend != "local":
                if row.remote_model and self.remote_models.get(scope) != row.remote_model:
                    self.remote_models[scope] = row.remote_model
                    changed = True
                continue
            current = self.knowledge.active(scope)
            if current is not None and current.version == row.name:
                continue
            self.knowledge.set_model(scope, await self._load_row(row))
            log.info("now answering with %s in scope %s (activated by another process)", row.name, scope)
            changed = True
        return changed

    # -- activation
    async def activate(self, scope: str, name: str, *, author: str) -> str | None:
        """Make stored version ``name`` the active one for ``scope``; returns the fine-tuned model that now
        answers through the LLM, or None for a local version."""
        row = await self.find(scope, name)
        if row.scope != scope:
            raise UserError(f"`{name}` belongs to the global scope; train this server's own version first.")
        if row.backend != "local":
            await self.db.run(lambda s: _mark_active(s, scope, name))
            self.remote_models[scope] = row.remote_model or ""
            log.info("activated fine-tuned %s (%s) scope=%s author=%s", name, row.remote_model, scope, author)
            return row.remote_model or ""
        active = await self.load(scope, name)
        running = self._encoder_missing_from(active)
        if running is not None:
            raise UserError(
                f"Model version `{name}` was trained without a sentence encoder, and this bot runs with the "
                f"encoder {running}: it would answer by wording only. Train a new version, or set `encoder` "
                "to none.",
                see="train",
            )
        await self.db.run(lambda s: _mark_active(s, scope, name))
        self.knowledge.set_model(scope, active)
        log.info("activated %s scope=%s author=%s", name, scope, author)
        return None

    async def activate_trained(self, scope: str, version: LoadedVersion) -> None:
        """Make a version just trained (already in memory) the active one for ``scope``."""
        await self.db.run(lambda s: _mark_active(s, scope, version.version))
        if self.with_reference:
            reference = await asyncio.to_thread(build_reference, version.model, version.prompt_ids)
            version = LoadedVersion(version.version, version.model, version.prompt_ids, reference)
        self.knowledge.set_model(scope, version)

    async def rollback(self, scope: str, *, author: str) -> tuple[str, str | None]:
        """Activate the version before the active one; returns its name and fine-tuned model (if any)."""
        earlier = await self.previous_name(scope)
        if earlier is None:
            raise UserError("There is no earlier version to roll back to.")
        return earlier, await self.activate(scope, earlier, author=author)


def _visible(s: Session, scope: str, name: str) -> ModelVersion | None:
    """Version ``name`` if ``scope`` may see it: its own versions and the global ones, never another server's."""
    row = s.scalars(select(ModelVersion).where(ModelVersion.name == name)).first()
    return row if row is not None and row.scope in (scope, GLOBAL_SCOPE) else None


def _next_name(s: Session, scope: str) -> str:
    count = s.scalar(select(func.count()).select_from(ModelVersion).where(ModelVersion.scope == scope)) or 0
    prefix = "v" if scope == GLOBAL_SCOPE else f"{scope}-v"
    return f"{prefix}{count + 1}"


def _free_name(s: Session, scope: str) -> str:
    """The scope's next version name that no row holds yet (as this transaction sees the table)."""
    name = _next_name(s, scope)
    prefix, number = name.rsplit("v", 1)
    n = int(number)
    while s.scalar(select(ModelVersion.id).where(ModelVersion.name == name)) is not None:
        n += 1
        name = f"{prefix}v{n}"
    return name


def _mark_active(s: Session, scope: str, name: str) -> None:
    """Activate ``name`` among the scope's versions of the same backend."""
    row = s.scalars(select(ModelVersion).where(ModelVersion.name == name)).one()
    s.execute(
        update(ModelVersion)
        .where(ModelVersion.scope == scope, ModelVersion.backend == row.backend)
        .values(active=False)
    )
    row.active = True
    payload = {"version": name, "backend": row.backend, "artefact": row.artefact, "remote_model": row.remote_model}
    publish(s, scope, ChangeKind.VERSION_ACTIVATED, payload)  # last: other processes load it from here on


def _info(row: ModelVersion) -> VersionInfo:
    return VersionInfo(
        name=row.name,
        scope=row.scope,
        examples=row.examples,
        answers=row.answers,
        active=row.active,
        created_by=row.created_by,
        created_at=row.created_at.strftime("%Y-%m-%d %H:%M"),
        metrics=dict(row.metrics or {}),
    )
