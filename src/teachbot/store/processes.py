"""Which teachbot processes are alive: one row per process, refreshed by its heartbeat.

A process registers at start (role, host, pid, the Discord shards it serves) and refreshes ``last_seen``
every ``interval`` seconds; a clean stop deletes its row. A process is dead when its row is older than
``DEAD_AFTER`` intervals, or, on the same host, when its pid no longer runs (a killed process is known at
once). Training runs name the process running them, so a run of a dead process is marked interrupted
by whichever process notices first, and never the run of a process that is still working.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from teachbot.store.db import Database
from teachbot.store.tables import Process, TrainingRun, utcnow

log = logging.getLogger(__name__)

__all__ = ["DEAD_AFTER", "Heartbeat", "ProcessInfo", "alive_processes", "interrupt_orphaned_runs", "this_host"]

DEAD_AFTER = 3  # heartbeats missed before a process counts as dead
FORGET_AFTER = timedelta(days=1)  # rows of dead processes are deleted after this long
INTERRUPTED = "the process running it stopped during the run"


def this_host() -> str:
    return socket.gethostname()[:255]


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    id: int
    role: str
    host: str
    pid: int
    shards: str
    started_at: datetime
    last_seen: datetime


def _pid_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user
        return True
    return True


def _is_dead(row: Process, now: datetime, interval: float) -> bool:
    if now - row.last_seen > timedelta(seconds=interval * DEAD_AFTER):
        return True
    return row.host == this_host() and row.pid != os.getpid() and not _pid_runs(row.pid)


def alive_processes(s: Session, interval: float) -> list[ProcessInfo]:
    """The processes whose heartbeat is recent, oldest first."""
    now = utcnow()
    rows = s.scalars(select(Process).order_by(Process.id))
    return [
        ProcessInfo(r.id, r.role, r.host, r.pid, r.shards, r.started_at, r.last_seen)
        for r in rows
        if not _is_dead(r, now, interval)
    ]


def interrupt_orphaned_runs(s: Session, interval: float) -> int:
    """Mark interrupted the runs left 'running' or 'queued' in-process by a process that is gone (or that
    predates process rows); returns how many. Queued runs of the job queue (no process yet) are left."""
    now = utcnow()
    dead = [r.id for r in s.scalars(select(Process)) if _is_dead(r, now, interval)]
    owner_gone = or_(TrainingRun.process_id.is_(None), TrainingRun.process_id.in_(dead))
    living = select(Process.id)
    vanished = TrainingRun.process_id.not_in(living)
    result = s.execute(
        update(TrainingRun)
        .where(TrainingRun.state == "running", or_(owner_gone, vanished))
        .values(state="interrupted", finished_at=now, message=INTERRUPTED)
        .execution_options(synchronize_session=False)
    )
    s.execute(delete(Process).where(Process.id.in_(dead), Process.last_seen < now - FORGET_AFTER))
    return int(getattr(result, "rowcount", 0) or 0)


class Heartbeat:
    """This process's row in ``processes``: registered by ``start``, refreshed, deleted by ``close``."""

    def __init__(self, db: Database, *, role: str, shards: str = "", interval: float = 10.0) -> None:
        self.db = db
        self.role = role
        self.shards = shards
        self.interval = interval
        self.process_id: int | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        def register(s: Session) -> int:
            row = Process(role=self.role, host=this_host(), pid=os.getpid(), shards=self.shards)
            s.add(row)
            s.flush()
            return row.id

        self.process_id = await self.db.run(register)
        self._task = asyncio.create_task(self._beat(), name="teachbot-heartbeat")
        return self.process_id

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.db.run(self._refresh)
            except SQLAlchemyError as exc:
                log.warning("heartbeat: could not reach the database (%s)", exc)
            except Exception:
                log.exception("heartbeat failed")

    def _refresh(self, s: Session) -> None:
        found = s.execute(update(Process).where(Process.id == self.process_id).values(last_seen=utcnow()))
        if not getattr(found, "rowcount", 1):  # deleted as dead (a long pause): register again, same id
            s.add(Process(id=self.process_id, role=self.role, host=this_host(), pid=os.getpid(), shards=self.shards))
        interrupted = interrupt_orphaned_runs(s, self.interval)
        if interrupted:
            log.warning("%s training run(s) of a stopped process marked interrupted", interrupted)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                if not task.cancelled():
                    raise
        if self.process_id is not None:
            process_id, self.process_id = self.process_id, None
            try:
                await self.db.run(lambda s: s.execute(delete(Process).where(Process.id == process_id)))
            except SQLAlchemyError as exc:
                log.warning("could not remove this process from the processes table (%s)", exc)
