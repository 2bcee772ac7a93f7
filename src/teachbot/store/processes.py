"""Which teachbot processes are alive: one row per process, refreshed by its heartbeat.

A process registers at start (role, host, pid, the Discord shards it serves) and refreshes ``last_seen``
every ``interval`` seconds; a clean stop deletes its row. A process is dead when its row is older than
``DEAD_AFTER`` intervals, or, on the same host, when its pid no longer runs (a killed process is known at
once). Training runs name the process running them, so a run of a dead process is marked interrupted
by whichever process notices first, and never the run of a process that is still working.

Each beat also records how far the process's change feed has read (``change_position``), and every few
minutes prunes the change log: changes older than the retention that every live process has read.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from teachbot.store.changes import prune
from teachbot.store.db import Database
from teachbot.store.tables import Process, TrainingRun, utcnow

log = logging.getLogger(__name__)

__all__ = [
    "DEAD_AFTER",
    "Heartbeat",
    "ProcessInfo",
    "alive_processes",
    "interrupt_orphaned_runs",
    "prune_changes",
    "this_host",
]

DEAD_AFTER = 3  # heartbeats missed before a process counts as dead
FORGET_AFTER = timedelta(days=1)  # rows of dead processes are deleted after this long
INTERRUPTED = "the process running it stopped during the run"
CHANGE_RETENTION = timedelta(days=1)  # the default of the setting change_retention_hours
PRUNE_EVERY = 300.0  # seconds between two prunings of the change log by one process


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


def prune_changes(s: Session, interval: float, retention: timedelta) -> int:
    """Delete the changes older than ``retention`` that every live process's feed has read; returns how
    many. Nothing goes while a live process has not yet said how far it read."""
    now = utcnow()
    positions = [r.change_position for r in s.scalars(select(Process)) if not _is_dead(r, now, interval)]
    if not positions or any(p is None for p in positions):
        return 0
    return prune(s, before=now - retention, read_by_all=min(p for p in positions if p is not None))


class Heartbeat:
    """This process's row in ``processes``: registered by ``start``, refreshed, deleted by ``close``."""

    def __init__(
        self,
        db: Database,
        *,
        role: str,
        shards: str = "",
        interval: float = 10.0,
        change_retention: timedelta = CHANGE_RETENTION,
        prune_every: float = PRUNE_EVERY,
    ) -> None:
        self.db = db
        self.role = role
        self.shards = shards
        self.interval = interval
        self.change_retention = change_retention
        self.prune_every = prune_every
        self.feed_position: Callable[[], int] | None = None  # how far this process's change feed has read
        self.process_id: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._pruned_at = -math.inf

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
        position = self.feed_position() if self.feed_position is not None else None
        found = s.execute(
            update(Process).where(Process.id == self.process_id).values(last_seen=utcnow(), change_position=position)
        )
        if not getattr(found, "rowcount", 1):  # deleted as dead (a long pause): register again, same id
            log.warning("this process was counted as stopped (no heartbeat for a while): registering again")
            s.add(
                Process(
                    id=self.process_id,
                    role=self.role,
                    host=this_host(),
                    pid=os.getpid(),
                    shards=self.shards,
                    change_position=position,
                )
            )
            s.flush()
        interrupted = interrupt_orphaned_runs(s, self.interval)
        if interrupted:
            log.warning("%s training run(s) of a stopped process marked interrupted", interrupted)
        if time.monotonic() - self._pruned_at >= self.prune_every:
            self._pruned_at = time.monotonic()
            pruned = prune_changes(s, self.interval, self.change_retention)
            if pruned:
                log.info("change log: %s change(s) older than %s deleted", pruned, self.change_retention)

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
