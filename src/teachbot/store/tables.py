"""The database tables. The schema changes only through migrations in ``store/migrations``.

No ``from __future__ import annotations`` here: SQLAlchemy would then resolve every ``Mapped[...]`` string
at each start, about 10 ms more of a chat's first answer (measured).
"""

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, MetaData, String, Text, UniqueConstraint, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON}


class ExampleSource(StrEnum):
    STARTER = "starter"
    DATASET = "dataset"
    CORRECTION = "correction"
    FEEDBACK = "feedback"
    CONVERSATION = "conversation"


class ExampleStatus(StrEnum):
    ACTIVE = "active"
    PENDING = "pending"
    REJECTED = "rejected"
    REMOVED = "removed"


class Polarity(StrEnum):
    POSITIVE = "positive"
    NEGATIVE = "negative"


class Message(Base):
    """Every message the bot handled or sent, so answers can be traced and corrected later."""

    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(64))
    author_name: Mapped[str] = mapped_column(String(100), default="")
    is_bot: Mapped[bool] = mapped_column(default=False)
    text: Mapped[str] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(String(64), index=True)
    reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    confidence: Mapped[float | None]
    model_version: Mapped[str | None] = mapped_column(String(64))
    example_id: Mapped[int | None] = mapped_column(ForeignKey("examples.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Example(Base):
    """A prompt and the answer to give (positive) or never to give (negative)."""

    __tablename__ = "examples"
    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(64))
    prompt: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    author: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16), default=ExampleStatus.ACTIVE)
    polarity: Mapped[str] = mapped_column(String(16), default=Polarity.POSITIVE)
    dataset_version_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_examples_scope_status_source", "scope", "status", "source"),)


class Correction(Base):
    """A better answer given for one of the bot's answers; kept as example and as preference pair."""

    __tablename__ = "corrections"
    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(64), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    question: Mapped[str] = mapped_column(Text)
    wrong_answer: Mapped[str] = mapped_column(Text, default="")
    better_answer: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    example_id: Mapped[int | None] = mapped_column(ForeignKey("examples.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Feedback(Base):
    """A 👍/👎 on an answer, or free-text feedback."""

    __tablename__ = "feedback"
    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(64), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    author: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # up | down | text
    text: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=ExampleStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Dataset(Base):
    """A named collection of examples; its content lives in immutable versions."""

    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    selected: Mapped[str | None] = mapped_column(String(16))  # positive | negative | None
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("scope", "name"),)


class DatasetVersion(Base):
    __tablename__ = "dataset_versions"
    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    version: Mapped[int]
    content_hash: Mapped[str] = mapped_column(String(64))
    source_name: Mapped[str] = mapped_column(String(255), default="")
    rows: Mapped[int]
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("dataset_id", "version"),)


class ModelVersion(Base):
    """An immutable trained model; exactly one per scope is active."""

    __tablename__ = "model_versions"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(64), index=True)
    backend: Mapped[str] = mapped_column(String(16), default="local")
    path: Mapped[str] = mapped_column(String(255), default="")
    remote_model: Mapped[str | None] = mapped_column(String(255))
    artefact: Mapped[str | None] = mapped_column(String(64))  # sha256 of its files in ``artefacts``
    examples: Mapped[int] = mapped_column(default=0)
    answers: Mapped[int] = mapped_column(default=0)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    active: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrainingRun(Base):
    """One training run (local) or fine-tuning job (remote), with its state for ``!jobs``."""

    __tablename__ = "training_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="local")
    state: Mapped[str] = mapped_column(String(16), default="running")
    stage: Mapped[str] = mapped_column(String(200), default="")
    progress: Mapped[float] = mapped_column(default=0.0)
    author: Mapped[str] = mapped_column(String(64), default="")
    version_name: Mapped[str | None] = mapped_column(String(64))
    remote_job_id: Mapped[str | None] = mapped_column(String(128))
    message: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    process_id: Mapped[int | None]  # the ``processes`` row running it: a run of a dead process was interrupted
    cancel_requested: Mapped[bool] = mapped_column(default=False, server_default=false())
    result: Mapped[dict[str, Any] | None]  # what a queued run hands back (a ``test`` run: its report)


class TokenUsage(Base):
    """Tokens an LLM answer used, for per-user and per-server quotas."""

    __tablename__ = "token_usage"
    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(64))
    user: Mapped[str] = mapped_column(String(64))
    tokens: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (Index("ix_token_usage_scope_created", "scope", "created_at"),)


class Change(Base):
    """A committed change other processes must apply (see ``store/changes.py``); ids only grow."""

    __tablename__ = "changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 - never reuse the id of a deleted row


class Artefact(Base):
    """The files of a model version as one deterministic archive, named by its sha256 (``store/artefacts.py``)."""

    __tablename__ = "artefacts"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int]
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Process(Base):
    """A running teachbot process (bot shard, worker, terminal), alive while its heartbeat is recent."""

    __tablename__ = "processes"
    id: Mapped[int] = mapped_column(primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # bot | worker | chat | cli
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    shards: Mapped[str] = mapped_column(String(200), default="")  # e.g. "0,1 of 4"; empty: not a bot
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    change_position: Mapped[int | None]  # the last change its feed applied: older ones may be pruned
