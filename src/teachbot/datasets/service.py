"""Named datasets with immutable versions, and the choice of what feeds training."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, aliased

from teachbot.answering.protocols import GLOBAL_SCOPE
from teachbot.datasets.examples import LONE_SURROGATE, Example, first_unstorable
from teachbot.datasets.formats import read_examples
from teachbot.datasets.names import check_dataset_name, dataset_name_for
from teachbot.errors import UserError, show_name
from teachbot.ids import MAX_ID
from teachbot.store.db import Database
from teachbot.store.tables import (
    Correction,
    Dataset,
    DatasetVersion,
    ExampleSource,
    ExampleStatus,
    Feedback,
    Message,
    Polarity,
)
from teachbot.store.tables import Example as ExampleRow

__all__ = [
    "SELECTIONS",
    "DatasetDiff",
    "DatasetInfo",
    "DatasetService",
    "TrainingSet",
    "check_dataset_name",
    "content_hash",
    "dataset_name_for",
]

log = logging.getLogger(__name__)

SELECTIONS = ("positive", "negative", "off")


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    name: str
    scope: str
    version: int
    rows: int
    content_hash: str
    selected: str | None
    created_by: str
    created_at: datetime
    new_version: bool = True
    same_as: tuple[str, ...] = ()  # other datasets whose latest version has the same content (after an import)


@dataclass(frozen=True, slots=True)
class DatasetDiff:
    name: str
    old: int
    new: int
    added: list[tuple[str, str]]
    removed: list[tuple[str, str]]
    unchanged: int


@dataclass(frozen=True, slots=True)
class TrainingSet:
    """What one training run learns from. ``example_ids`` align with ``positives`` (None: not stored)."""

    positives: list[Example]
    example_ids: list[int | None]
    negatives: list[tuple[str, str]]
    holdout_candidates: list[bool]  # True where the example may be held out for evaluation


def content_hash(examples: Sequence[Example]) -> str:
    """A stable hash of a dataset's content, independent of the file it came from."""
    digest = hashlib.sha256()
    for e in examples:
        digest.update(json.dumps([e.prompt, e.answer, e.system, e.rejected, e.weight], ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


class DatasetService:
    """Stores datasets as versions of rows; everything else reads them from here."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def import_examples(
        self, scope: str, name: str, examples: Sequence[Example], *, source_name: str, author: str
    ) -> DatasetInfo:
        """Store ``examples`` as the next version of dataset ``name`` (no new version if unchanged)."""
        name = check_dataset_name(name)
        if not examples:
            raise UserError(f"{source_name}: no examples to import.")
        unstorable = first_unstorable(examples)
        if unstorable is not None:
            position, example = unstorable
            raise UserError(f"{show_name(source_name)}: example {example.line or position} {LONE_SURROGATE}.")
        digest = content_hash(examples)

        def store(s: Session) -> DatasetInfo:
            dataset = s.scalars(select(Dataset).where(Dataset.scope == scope, Dataset.name == name)).first()
            if dataset is None:
                dataset = Dataset(scope=scope, name=name, selected="positive")
                s.add(dataset)
                s.flush()
            latest = _latest_version(s, dataset.id)
            same_as = _same_content(s, scope, digest, dataset.id)
            if latest is not None and latest.content_hash == digest:
                return replace(_info(dataset, latest, new_version=False), same_as=same_as)
            version = DatasetVersion(
                dataset_id=dataset.id,
                version=(latest.version + 1) if latest else 1,
                content_hash=digest,
                source_name=show_name(source_name, 255),
                rows=len(examples),
                created_by=author,
            )
            s.add(version)
            s.flush()
            s.add_all(
                ExampleRow(
                    scope=scope,
                    prompt=e.prompt,
                    answer=e.answer,
                    source=ExampleSource.DATASET,
                    author=author,
                    dataset_version_id=version.id,
                )
                for e in examples
            )
            s.add_all(
                ExampleRow(
                    scope=scope,
                    prompt=e.prompt,
                    answer=e.rejected,
                    source=ExampleSource.DATASET,
                    author=author,
                    polarity=Polarity.NEGATIVE,
                    dataset_version_id=version.id,
                )
                for e in examples
                if e.rejected
            )
            return replace(_info(dataset, version, new_version=True), same_as=same_as)

        info = await self.db.run(store)
        if info.same_as:
            log.warning("dataset %s scope=%s has the same content as %s", name, scope, ", ".join(info.same_as))
        log.info(
            "dataset %s v%s scope=%s rows=%s author=%s new=%s",
            name,
            info.version,
            scope,
            info.rows,
            author,
            info.new_version,
        )
        return info

    async def import_file(
        self,
        scope: str,
        path: Path,
        *,
        author: str,
        name: str | None = None,
        fmt: str | None = None,
        prompt_column: str | None = None,
        answer_column: str | None = None,
        max_bytes: int | None = None,
    ) -> DatasetInfo:
        """Read a dataset file (all or nothing) and store it as the next version of ``name``."""
        examples = await asyncio.to_thread(
            read_examples, path, fmt=fmt, prompt_column=prompt_column, answer_column=answer_column, max_bytes=max_bytes
        )
        return await self.import_examples(
            scope, name or dataset_name_for(path.name), examples, source_name=path.name, author=author
        )

    async def list_datasets(self, scope: str) -> list[DatasetInfo]:
        def load(s: Session) -> list[DatasetInfo]:
            infos = []
            for dataset in s.scalars(select(Dataset).where(Dataset.scope.in_(_visible(scope))).order_by(Dataset.name)):
                latest = _latest_version(s, dataset.id)
                if latest is not None:
                    infos.append(_info(dataset, latest, new_version=False))
            return infos

        return await self.db.run(load)

    async def select(self, scope: str, name: str, use: str) -> DatasetInfo:
        """Choose how dataset ``name`` feeds training: positive, negative or off."""
        if use not in SELECTIONS:
            raise UserError(f"Use one of: {', '.join(SELECTIONS)}.")
        name = _lookup(name)

        def change(s: Session) -> DatasetInfo:
            dataset = s.scalars(select(Dataset).where(Dataset.scope == scope, Dataset.name == name)).first()
            latest = _latest_version(s, dataset.id) if dataset else None
            if dataset is None or latest is None:
                raise UserError(f"There is no dataset `{show_name(name)}` here.", see="datasets list")
            dataset.selected = None if use == "off" else use
            return _info(dataset, latest, new_version=False)

        return await self.db.run(change)

    async def examples(self, scope: str, name: str, version: int | None = None) -> list[Example]:
        """The rows of one dataset version (the latest by default)."""
        name = _lookup(name)
        if version is not None and not 0 <= version <= MAX_ID:  # beyond what the database can hold
            raise UserError(f"Dataset `{show_name(name)}` has no such version.")

        def load(s: Session) -> list[Example]:
            dataset = s.scalars(select(Dataset).where(Dataset.scope == scope, Dataset.name == name)).first()
            if dataset is None:
                raise UserError(f"There is no dataset `{show_name(name)}` here.")
            query = select(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id)
            row = (
                s.scalars(query.where(DatasetVersion.version == version)).first()
                if version
                else _latest_version(s, dataset.id)
            )
            if row is None:
                raise UserError(f"Dataset `{show_name(name)}` has no version {version}.")
            in_version = ExampleRow.dataset_version_id == row.id
            rows = list(s.scalars(select(ExampleRow).where(in_version).order_by(ExampleRow.id)))
            rejected = {r.prompt: r.answer for r in rows if r.polarity == Polarity.NEGATIVE}
            return [
                Example(r.prompt, r.answer, rejected=rejected.get(r.prompt))
                for r in rows
                if r.polarity == Polarity.POSITIVE
            ]

        return await self.db.run(load)

    async def diff(self, scope: str, name: str, old: int, new: int) -> DatasetDiff:
        """What changed between two versions of a dataset (by prompt/answer pair)."""
        before = {(e.prompt, e.answer) for e in await self.examples(scope, name, old)}
        after = {(e.prompt, e.answer) for e in await self.examples(scope, name, new)}
        return DatasetDiff(name, old, new, sorted(after - before), sorted(before - after), len(before & after))

    async def delete(self, scope: str, name: str, *, author: str) -> None:
        """Delete a dataset and all its versions (its examples leave the next training)."""
        name = _lookup(name)

        def remove(s: Session) -> None:
            dataset = s.scalars(select(Dataset).where(Dataset.scope == scope, Dataset.name == name)).first()
            if dataset is None:
                raise UserError(f"There is no dataset `{show_name(name)}` here.")
            version_ids = list(s.scalars(select(DatasetVersion.id).where(DatasetVersion.dataset_id == dataset.id)))
            s.execute(delete(ExampleRow).where(ExampleRow.dataset_version_id.in_(version_ids)))
            s.execute(delete(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id))
            s.delete(dataset)

        await self.db.run(remove)
        log.info("dataset %s deleted scope=%s author=%s", name, scope, author)

    async def preference_pairs(self, scope: str) -> list[Example]:
        """Every applied correction as a preference pair: the better answer over the one corrected."""

        def load(s: Session) -> list[Example]:
            rows = s.scalars(
                select(Correction)
                .where(Correction.scope.in_(_visible(scope)), Correction.status == "applied")
                .order_by(Correction.id)
            )
            return [Example(c.question, c.better_answer, rejected=c.wrong_answer or None) for c in rows]

        return await self.db.run(load)

    async def from_conversations(
        self,
        scope: str,
        name: str,
        *,
        author: str,
        channel: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        only_liked: bool = False,
        corrected: bool = True,
    ) -> DatasetInfo:
        """Turn stored conversations into a dataset version: question → the bot's answer, or the
        correction given for it. ``only_liked`` keeps answers with a 👍 (and corrected ones)."""

        def collect(s: Session) -> list[Example]:
            answer_row = aliased(Message)
            query = (
                select(Message.text, answer_row.text, answer_row.id)
                .join(answer_row, answer_row.reply_to_id == Message.id)
                .where(Message.scope == scope, answer_row.is_bot.is_(True), Message.is_bot.is_(False))
            )
            if channel:
                query = query.where(Message.channel == channel)
            if since:
                query = query.where(Message.created_at >= since)
            if until:
                query = query.where(Message.created_at < until)
            liked = set(s.scalars(select(Feedback.message_id).where(Feedback.scope == scope, Feedback.kind == "up")))
            better = {
                c.message_id: c.better_answer
                for c in s.scalars(select(Correction).where(Correction.scope == scope, Correction.status == "applied"))
            }
            examples = []
            for question, answer, answer_id in s.execute(query.order_by(Message.id)):
                if corrected and answer_id in better:
                    examples.append(Example(question, better[answer_id]))
                elif not only_liked or answer_id in liked:
                    examples.append(Example(question, answer))
            return examples

        examples = await self.db.run(collect)
        if not examples:
            raise UserError("No stored conversations match; nothing to turn into a dataset.")
        return await self.import_examples(scope, name, examples, source_name="conversations", author=author)

    def training_set(self, s: Session, scope: str) -> TrainingSet:
        """Selected datasets' latest versions plus accepted teaching, for ``scope`` and global."""
        visible = _visible(scope)
        latest = (
            select(DatasetVersion.dataset_id, func.max(DatasetVersion.version).label("version"))
            .group_by(DatasetVersion.dataset_id)
            .subquery()
        )
        chosen = (
            select(DatasetVersion.id, Dataset.selected)
            .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
            .join(
                latest,
                (latest.c.dataset_id == DatasetVersion.dataset_id) & (latest.c.version == DatasetVersion.version),
            )
            .where(Dataset.scope.in_(visible), Dataset.selected.is_not(None))
        )
        selection = {version_id: selected for version_id, selected in s.execute(chosen)}
        positives: list[Example] = []
        ids: list[int | None] = []
        negatives: list[tuple[str, str]] = []
        holdout: list[bool] = []
        rows = s.execute(
            select(
                ExampleRow.id,
                ExampleRow.prompt,
                ExampleRow.answer,
                ExampleRow.polarity,
                ExampleRow.dataset_version_id,
                ExampleRow.source,
            )
            .where(ExampleRow.scope.in_(visible), ExampleRow.status == ExampleStatus.ACTIVE)
            .order_by(ExampleRow.id)
        )
        for example_id, prompt, answer, polarity, version_id, source in rows:
            if source == ExampleSource.DATASET:
                use = selection.get(version_id) if version_id is not None else None
                if use is None:
                    continue
                negative = use == "negative" or polarity == Polarity.NEGATIVE
            else:
                negative = polarity == Polarity.NEGATIVE
            if negative:
                negatives.append((prompt, answer))
            else:
                positives.append(Example(prompt, answer))
                ids.append(example_id)
                holdout.append(source == ExampleSource.DATASET)
        return TrainingSet(positives, ids, negatives, holdout)


def _lookup(name: str) -> str:
    """A dataset name as typed, in the form names are stored in (NFC, trimmed)."""
    return unicodedata.normalize("NFC", name.strip())


def _visible(scope: str) -> list[str]:
    return [GLOBAL_SCOPE] if scope == GLOBAL_SCOPE else [GLOBAL_SCOPE, scope]


def _latest_version(s: Session, dataset_id: int) -> DatasetVersion | None:
    return s.scalars(
        select(DatasetVersion)
        .where(DatasetVersion.dataset_id == dataset_id)
        .order_by(DatasetVersion.version.desc())
        .limit(1)
    ).first()


def _same_content(s: Session, scope: str, digest: str, dataset_id: int) -> tuple[str, ...]:
    """Names of the other datasets ``scope`` sees whose latest version has content ``digest``: importing
    the same file under another name would make each example count twice in training."""
    latest = (
        select(DatasetVersion.dataset_id, func.max(DatasetVersion.version).label("version"))
        .group_by(DatasetVersion.dataset_id)
        .subquery()
    )
    names = s.scalars(
        select(Dataset.name)
        .join(DatasetVersion, DatasetVersion.dataset_id == Dataset.id)
        .join(latest, (latest.c.dataset_id == DatasetVersion.dataset_id) & (latest.c.version == DatasetVersion.version))
        .where(Dataset.scope.in_(_visible(scope)), Dataset.id != dataset_id, DatasetVersion.content_hash == digest)
        .order_by(Dataset.name)
    )
    return tuple(names)


def _info(dataset: Dataset, version: DatasetVersion, *, new_version: bool) -> DatasetInfo:
    return DatasetInfo(
        name=dataset.name,
        scope=dataset.scope,
        version=version.version,
        rows=version.rows,
        content_hash=version.content_hash,
        selected=dataset.selected,
        created_by=version.created_by,
        created_at=version.created_at,
        new_version=new_version,
    )
