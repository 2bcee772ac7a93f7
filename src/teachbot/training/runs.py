"""The run ledger: every training run and fine-tuning job as a row for ``!jobs``, and cancel requests.

Local training and fine-tuning both record their runs here, and a trainer's cancel request is a
flag here (in the database, so it reaches a run in another process) that the running service checks
between its steps. Each run names the process running it (``store/processes.py``): a run whose process
died is marked interrupted, never one that another live process is still working on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from teachbot.errors import UserError
from teachbot.store.db import Database
from teachbot.store.processes import interrupt_orphaned_runs
from teachbot.store.tables import TrainingRun, utcnow

#: A run's progress callback: the stage's text and the fraction done.
Progress = Callable[[str, float], None]


class RunState(StrEnum):
    QUEUED = "queued"  # waiting in the job queue for a worker
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

    def __init__(self, db: Database, *, heartbeat_seconds: float = 10.0) -> None:
        self.db = db
        self.heartbeat_seconds = heartbeat_seconds
        self.process_id: int | None = None  # this process's row in ``processes``, stamped on the runs it starts
        self._cancel_requests: set[int] = set()

    # -- recording
    async def start_local(self, scope: str, author: str) -> int:
        """A new local training run; returns its id."""
        return await self.db.run(
            lambda s: _add(s, TrainingRun(scope=scope, author=author, stage="starting", process_id=self.process_id))
        )

    async def queue_local(self, scope: str, author: str) -> int:
        """A new local training run waiting for a worker (``teachbot worker``); returns its id."""
        return await self.queue_run(scope, author)

    async def queue_run(self, scope: str, author: str, kind: str = "local") -> int:
        """A new run of ``kind`` (local, remote, test) waiting for a worker; returns its id."""
        run = TrainingRun(scope=scope, author=author, kind=kind, state=RunState.QUEUED, stage="waiting for a worker")
        return await self.db.run(lambda s: _add(s, run))

    async def begin(self, run_id: int) -> tuple[str, str] | None:
        """Take a queued (or interrupted, on a retry) run into this process: (scope, author), or None when
        it was cancelled or finished meanwhile."""

        def take(s: Session) -> tuple[str, str] | None:
            run = s.get(TrainingRun, run_id, with_for_update=True)
            if run is None or run.state not in (RunState.QUEUED, RunState.INTERRUPTED, RunState.RUNNING):
                return None
            if run.cancel_requested:
                run.state, run.finished_at, run.message = RunState.CANCELLED, utcnow(), "cancelled before it started"
                return None
            run.state, run.process_id, run.stage, run.finished_at = RunState.RUNNING, self.process_id, "starting", None
            return run.scope, run.author

        return await self.db.run(take)

    async def active_in(self, scope: str) -> RunInfo | None:
        """The run of ``scope`` that is queued or running, if any."""
        row = await self.db.run(
            lambda s: s.scalars(
                select(TrainingRun)
                .where(
                    TrainingRun.scope == scope,
                    TrainingRun.kind == "local",
                    TrainingRun.state.in_([RunState.QUEUED, RunState.RUNNING]),
                )
                .limit(1)
            ).first()
        )
        return _info(row) if row is not None else None

    async def start_remote(self, scope: str, author: str, job_id: str) -> int:
        """A new fine-tuning run following the server's job ``job_id``; returns its id."""
        run = TrainingRun(scope=scope, author=author, kind="remote", remote_job_id=job_id, process_id=self.process_id)
        return await self.db.run(lambda s: _add(s, run))

    async def attach_job(self, run_id: int, job_id: str) -> None:
        """Record the server's fine-tuning job of a queued run: a retried run follows it instead of starting one."""
        await self.db.run(
            lambda s: s.execute(update(TrainingRun).where(TrainingRun.id == run_id).values(remote_job_id=job_id))
        )

    async def remote_job(self, run_id: int) -> str | None:
        """The server's fine-tuning job run ``run_id`` follows, None before one was started."""
        return await self.db.run(lambda s: s.scalar(select(TrainingRun.remote_job_id).where(TrainingRun.id == run_id)))

    async def record_progress(self, run_id: int, stage: str, fraction: float) -> None:
        """Record the run's stage, and pick up a cancel request made through another process."""

        def record(s: Session) -> bool:
            s.execute(update(TrainingRun).where(TrainingRun.id == run_id).values(stage=stage[:200], progress=fraction))
            return bool(s.scalar(select(TrainingRun.cancel_requested).where(TrainingRun.id == run_id)))

        if await self.db.run(record):
            self._cancel_requests.add(run_id)

    async def finish(
        self,
        run_id: int,
        state: RunState,
        message: str,
        version: str | None = None,
        *,
        result: dict[str, Any] | None = None,
    ) -> None:
        """Close a run; a succeeded one is complete and names the version it made. ``result`` is what the
        process that queued the run reads back (``result``)."""
        values: dict[str, object] = {"state": state, "message": message[:2000], "finished_at": utcnow()}
        if result is not None:
            values["result"] = result
        if state == RunState.SUCCEEDED:
            values["progress"] = 1.0
            values["version_name"] = version
        await self.db.run(lambda s: s.execute(update(TrainingRun).where(TrainingRun.id == run_id).values(**values)))

    async def mark_interrupted(self) -> int:
        """Runs left 'running' by a process that died are marked interrupted (at start, and by every
        heartbeat); runs of processes still alive are left alone."""
        return await self.db.run(lambda s: interrupt_orphaned_runs(s, self.heartbeat_seconds))

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

    async def state(self, run_id: int) -> tuple[str, str, float, str, str | None]:
        """(state, stage, progress, message, version) of run ``run_id``, for following it from another process."""
        row = await self.db.run(lambda s: s.get(TrainingRun, run_id))
        if row is None:
            raise UserError(f"There is no run #{run_id}.")
        return row.state, row.stage, row.progress, row.message, row.version_name

    async def result(self, run_id: int) -> dict[str, Any] | None:
        """What the process that ran run ``run_id`` handed back when it finished, if anything."""
        return await self.db.run(lambda s: s.scalar(select(TrainingRun.result).where(TrainingRun.id == run_id)))

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

    # -- cancel requests: noted here at once, and in the database for a run in another process
    async def request_cancel(self, run_id: int) -> None:
        self._cancel_requests.add(run_id)

        def flag(s: Session) -> None:
            s.execute(update(TrainingRun).where(TrainingRun.id == run_id).values(cancel_requested=True))
            s.execute(  # a run still waiting in the queue ends here: no worker will start it
                update(TrainingRun)
                .where(TrainingRun.id == run_id, TrainingRun.state == RunState.QUEUED)
                .values(state=RunState.CANCELLED, finished_at=utcnow(), message="cancelled before it started")
            )

        await self.db.run(flag)

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
