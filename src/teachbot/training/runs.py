"""The run ledger: every training run and fine-tuning job as a row for ``!jobs``, and cancel requests.

Local training and fine-tuning both record their runs here, and a trainer's cancel request is a
flag here that the running service checks between its steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from teachbot.errors import UserError
from teachbot.store.db import Database
from teachbot.store.tables import TrainingRun, utcnow

#: A run's progress callback: the stage's text and the fraction done.
Progress = Callable[[str, float], None]


class RunState(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


class RunCancelled(UserError):
    """A trainer cancelled the run; nothing was activated."""


@dataclass(frozen=True, slots=True)
class RunInfo:
    run_id: int
    kind: str
    state: str
    stage: str
    progress: float
    author: str
    version: str | None
    message: str


class RunLedger:
    """Records runs (local and remote) and holds the cancel requests their services check."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cancel_requests: set[int] = set()

    # -- recording
    async def start_local(self, scope: str, author: str) -> int:
        """A new local training run; returns its id."""
        return await self.db.run(lambda s: _add(s, TrainingRun(scope=scope, author=author, stage="starting")))

    async def start_remote(self, scope: str, author: str, job_id: str) -> int:
        """A new fine-tuning run following the server's job ``job_id``; returns its id."""
        return await self.db.run(
            lambda s: _add(s, TrainingRun(scope=scope, author=author, kind="remote", remote_job_id=job_id))
        )

    async def record_progress(self, run_id: int, stage: str, fraction: float) -> None:
        await self.db.run(
            lambda s: s.execute(
                update(TrainingRun).where(TrainingRun.id == run_id).values(stage=stage[:200], progress=fraction)
            )
        )

    async def finish(self, run_id: int, state: RunState, message: str, version: str | None = None) -> None:
        """Close a run; a succeeded one is complete and names the version it made."""
        values: dict[str, object] = {"state": state, "message": message[:2000], "finished_at": utcnow()}
        if state == RunState.SUCCEEDED:
            values["progress"] = 1.0
            values["version_name"] = version
        await self.db.run(lambda s: s.execute(update(TrainingRun).where(TrainingRun.id == run_id).values(**values)))

    async def mark_interrupted(self) -> int:
        """Runs left 'running' by a process that died are marked interrupted (at start)."""

        def mark(s: Session) -> int:
            result = s.execute(
                update(TrainingRun)
                .where(TrainingRun.state == RunState.RUNNING)
                .values(state=RunState.INTERRUPTED, finished_at=utcnow(), message="the process stopped during the run")
            )
            return int(getattr(result, "rowcount", 0) or 0)

        return await self.db.run(mark)

    # -- reading
    async def find(self, scope: str, run_id: int) -> RunInfo | None:
        """Run ``run_id`` of ``scope``, None when there is no such run here."""
        row = await self.db.run(
            lambda s: s.scalars(select(TrainingRun).where(TrainingRun.id == run_id, TrainingRun.scope == scope)).first()
        )
        return _info(row) if row is not None else None

    async def kind(self, scope: str, run_id: int) -> str | None:
        """``local`` or ``remote`` for a run of ``scope``, None when there is no such run."""
        run = await self.find(scope, run_id)
        return run.kind if run is not None else None

    async def recent(self, scope: str, limit: int = 10) -> list[RunInfo]:
        """The newest runs of ``scope``, newest first."""
        rows = await self.db.run(
            lambda s: list(
                s.scalars(
                    select(TrainingRun).where(TrainingRun.scope == scope).order_by(TrainingRun.id.desc()).limit(limit)
                )
            )
        )
        return [_info(r) for r in rows]

    # -- cancel requests (in memory: a run outlives no process)
    def request_cancel(self, run_id: int) -> None:
        self._cancel_requests.add(run_id)

    def cancel_requested(self, run_id: int) -> bool:
        return run_id in self._cancel_requests

    def clear_cancel(self, run_id: int) -> None:
        self._cancel_requests.discard(run_id)


def _add(s: Session, run: TrainingRun) -> int:
    s.add(run)
    s.flush()
    return run.id


def _info(row: TrainingRun) -> RunInfo:
    return RunInfo(row.id, row.kind, row.state, row.stage, row.progress, row.author, row.version_name, row.message)
