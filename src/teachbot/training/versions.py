"""The version registry: every stored model version, where it lives, and which one answers in a scope.

A local version is an immutable folder under ``models/`` (written to a temporary folder, then
renamed) plus its row; a fine-tuned one is a row naming the server's model. Earlier versions stay,
so activation and rollback are instant. A scope sees its own versions and the global ones.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from teachbot.answering.knowledge import Knowledge, LoadedVersion, build_reference
from teachbot.answering.local_model import EncoderMismatch, LocalModel
from teachbot.answering.protocols import GLOBAL_SCOPE
from teachbot.errors import TeachbotError, UserError
from teachbot.store.db import Database
from teachbot.store.tables import ModelVersion

log = logging.getLogger(__name__)

EXAMPLE_IDS_FILE = "example_ids.json"


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

    # -- lookups
    async def find(self, scope: str, name: str) -> ModelVersion:
        """Version ``name`` as seen from ``scope`` (its own or a global one), else a ``UserError``."""
        row = await self.db.run(lambda s: _visible(s, scope, name))
        if row is None:
            raise UserError(f"There is no model version `{name}` here.", see="models list")
        return row

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
        """Save a new version's folder atomically; returns its path under ``models_dir`` (blocking)."""
        self.models_dir.mkdir(parents=True, exist_ok=True)
        final = self.models_dir / name
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=self.models_dir))
        try:
            model.save(staging)
            (staging / EXAMPLE_IDS_FILE).write_text(json.dumps(list(example_ids)), encoding="utf-8")
            staging.rename(final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return name

    async def add_local(
        self, name: str, scope: str, path: str, *, examples: int, answers: int, author: str
    ) -> VersionInfo:
        def add(s: Session) -> VersionInfo:
            row = ModelVersion(name=name, scope=scope, path=path, examples=examples, answers=answers, created_by=author)
            s.add(row)
            s.flush()
            return _info(row)

        return await self.db.run(add)

    async def add_remote(self, scope: str, model: str, *, examples: int, author: str) -> str:
        """Record a finished fine-tuning job's model as the scope's next version; returns its name."""

        def add(s: Session) -> str:
            name = _next_name(s, scope)
            s.add(
                ModelVersion(
                    name=name, scope=scope, backend="openai", remote_model=model, examples=examples, created_by=author
                )
            )
            return name

        return await self.db.run(add)

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
            return await asyncio.to_thread(self._load, row.name, row.path)
        except EncoderMismatch as exc:
            raise UserError(
                f"Model version `{name}` cannot answer here: {exc}. Train a new version.", see="train"
            ) from None

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
        if not self.models_dir.is_dir():
            return 0
        partial = [p for p in self.models_dir.iterdir() if p.is_dir() and p.name.startswith(".")]
        for folder in partial:
            shutil.rmtree(folder, ignore_errors=True)
        return len(partial)

    async def load_active(self) -> tuple[int, list[str]]:
        """Put every scope's active version to work (at start). Returns how many local ones loaded, and the
        scopes whose active version was trained with another sentence encoder (to train again)."""
        await asyncio.to_thread(self.remove_partial)
        rows = await self.db.run(lambda s: list(s.scalars(select(ModelVersion).where(ModelVersion.active.is_(True)))))
        loaded, stale = 0, []
        for row in rows:
            if row.backend != "local":
                if row.remote_model:
                    self.remote_models[row.scope] = row.remote_model
                continue
            try:
                active = await asyncio.to_thread(self._load, row.name, row.path)
            except EncoderMismatch as exc:
                log.warning("model %s of scope %s cannot answer: %s", row.name, row.scope, exc)
                stale.append(row.scope)
                continue
            except TeachbotError as exc:
                log.error("cannot load model %s for scope %s: %s", row.name, row.scope, exc)
                continue
            self.knowledge.set_model(row.scope, active)
            loaded += 1
        return loaded, stale

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


def _mark_active(s: Session, scope: str, name: str) -> None:
    """Activate ``name`` among the scope's versions of the same backend."""
    row = s.scalars(select(ModelVersion).where(ModelVersion.name == name)).one()
    s.execute(
        update(ModelVersion)
        .where(ModelVersion.scope == scope, ModelVersion.backend == row.backend)
        .values(active=False)
    )
    row.active = True


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
