"""The change feed: what one process commits, every process applies, once each and in order.

A change is a row in ``changes`` written in the same transaction as what it announces (``publish``).
On PostgreSQL ``publish`` also sends ``NOTIFY teachbot_changes`` with the row's id; PostgreSQL delivers
it at commit and never for a rolled-back transaction. A ``ChangeFeed`` reads the rows after the last id
it delivered, when notified and every few seconds besides, so a missed notification (a restart, a lost
connection) is caught up from the rows: the notification is a hint, the row is the record. On SQLite
(one machine) the feed polls the table.

No id is skipped: on SQLite one writer at a time means ids commit in id order; on PostgreSQL publishers
take a transaction-level advisory lock before taking an id, so the transaction holding id n has ended
before any other takes id n+1. That lock is held until commit: call ``publish`` last in a transaction.

The log is pruned (``prune``, run by each process's heartbeat in ``store/processes.py``): a change older
than the retention goes once every live process's feed has read it; each heartbeat records its feed's
position for that. A process starting later loads the state itself and reads only newer changes.

Every process receives every change, its own included. Callbacks must be idempotent: teaching an example
id the knowledge already holds, or activating the version already active, must change nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from teachbot.store.db import Database
from teachbot.store.tables import Change as ChangeRow

if TYPE_CHECKING:
    import psycopg

__all__ = ["CHANNEL", "Change", "ChangeFeed", "ChangeKind", "changes_after", "latest_id", "prune", "publish"]

log = logging.getLogger(__name__)

CHANNEL = "teachbot_changes"
LOCK_KEY = 0x7EAC_4B07_C4A6_6E5  # pg_advisory_xact_lock key that orders publishers
APPLICATION_NAME = "teachbot-change-feed"
_READ = f"SELECT id, scope, kind, payload, created_at FROM {ChangeRow.__tablename__} WHERE id > %s ORDER BY id LIMIT %s"


class ChangeKind(StrEnum):
    TAUGHT = "taught"  # an example now answers (payload: example_id, prompt, answer)
    REFUSED = "refused"  # an answer must not be given (payload: example_id, prompt, answer)
    FORGOTTEN = "forgotten"  # an example stopped applying: forget or undo (payload: example_id)
    VERSION_ACTIVATED = "version_activated"  # payload: version, artefact
    REVIEW_DECIDED = "review_decided"  # payload: item_id, status


@dataclass(frozen=True, slots=True)
class Change:
    """One committed change, as a feed delivers it."""

    id: int
    scope: str
    kind: str
    payload: dict[str, Any]
    created_at: datetime


def publish(session: Session, scope: str, kind: str, payload: Mapping[str, Any] | None = None) -> int:
    """Add a change to the caller's transaction and return its id; announced only if that commits.

    Call it last before the commit: on PostgreSQL it holds the publishers' lock until then.
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        session.execute(select(func.pg_advisory_xact_lock(LOCK_KEY)))
    row = ChangeRow(scope=scope, kind=str(kind), payload=dict(payload or {}))
    session.add(row)
    session.flush()
    if postgres:
        session.execute(select(func.pg_notify(CHANNEL, str(row.id))))
    return row.id


def latest_id(session: Session) -> int:
    """The newest change id (0 when there is none): where a process that just loaded every row starts."""
    return int(session.scalar(select(func.coalesce(func.max(ChangeRow.id), 0))) or 0)


def changes_after(session: Session, after: int, limit: int = 500) -> list[Change]:
    """Committed changes with an id above ``after``, oldest first."""
    rows = session.scalars(select(ChangeRow).where(ChangeRow.id > after).order_by(ChangeRow.id).limit(limit))
    return [Change(r.id, r.scope, r.kind, dict(r.payload), r.created_at) for r in rows]


def prune(session: Session, *, before: datetime, read_by_all: int) -> int:
    """Delete the changes created before ``before`` whose id is at most ``read_by_all`` (the lowest position
    of the live processes' feeds); returns how many. Ids are never reused (AUTOINCREMENT on SQLite)."""
    result = session.execute(
        delete(ChangeRow)
        .where(ChangeRow.id <= read_by_all, ChangeRow.created_at < before)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


Callback = Callable[[Change], Awaitable[None]]


class _Backoff:
    """Waits that double after each failure, from ``first`` up to ``cap`` seconds."""

    def __init__(self, first: float, cap: float) -> None:
        self.first, self.cap, self.delay = first, cap, first

    def next(self) -> float:
        delay, self.delay = self.delay, min(self.cap, self.delay * 2)
        return delay

    def reset(self) -> None:
        self.delay = self.first


class ChangeFeed:
    """Delivers every change committed after ``after`` to ``callback``, in id order, once each.

    To miss nothing, read ``latest_id`` before loading the rows the process keeps in memory and pass it
    as ``after`` (a change committed in between is then delivered too, harmlessly); ``after=None`` starts
    at the newest change when ``start`` runs. Callbacks run one at a time on the event loop. A callback
    that raises is logged and not retried (the feed moves on). ``close`` cancels a callback that is running.
    """

    def __init__(
        self,
        db: Database,
        callback: Callback,
        *,
        after: int | None = None,
        poll_seconds: float = 0.5,
        safety_seconds: float = 5.0,
        batch: int = 500,
        max_backoff_seconds: float = 10.0,
    ) -> None:
        self.db = db
        self.callback = callback
        self.poll_seconds = poll_seconds
        self.safety_seconds = safety_seconds
        self.batch = batch
        self._position = after
        self._backoff = _Backoff(min(0.1, max_backoff_seconds), max_backoff_seconds)
        self._task: asyncio.Task[None] | None = None
        self._first_attempt = asyncio.Event()
        self._closing = False
        self.reconnects = 0  # connections lost and reopened, for logs and tests

    @property
    def position(self) -> int:
        """The id of the last change delivered (or the starting point): pass it as ``after`` to resume."""
        return self._position or 0

    @property
    def listens(self) -> bool:
        """Whether this feed is woken by PostgreSQL notifications (else it polls)."""
        if self.db.engine.dialect.name != "postgresql":
            return False
        try:
            import psycopg  # noqa: F401
        except ImportError:
            return False
        return True

    async def start(self) -> None:
        """Fix the starting point and start listening; returns after the first connection attempt."""
        if self._task is not None:
            raise RuntimeError("the change feed is already started")
        if self._position is None:
            self._position = await self.db.run(latest_id)
        if self.db.engine.dialect.name == "postgresql" and not self.listens:
            log.warning("psycopg 3 is not installed: the change feed polls PostgreSQL instead of listening")
        run = self._listen if self.listens else self._poll
        self._task = asyncio.create_task(run(), name="teachbot-change-feed")
        await self._first_attempt.wait()

    async def close(self) -> None:
        """Stop the feed. The loops also watch a flag, so a cancellation swallowed on the way (a callback
        that catches it, or an await that finishes at the same moment) still ends the task."""
        task, self._task = self._task, None
        if task is None:
            return
        self._closing = True
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            if not task.cancelled():  # close itself was cancelled: pass that on
                raise

    async def _catch_up(self, read: Callable[[int], Awaitable[list[Change]]]) -> None:
        """Deliver every committed change after the position, in batches read by ``read(after)``."""
        while True:
            changes = await read(self.position)
            for change in changes:
                try:
                    await self.callback(change)
                except Exception:
                    log.exception("change %s (%s, scope %s) could not be applied", change.id, change.kind, change.scope)
                self._position = change.id
                self._stop_if_closing()
            if len(changes) < self.batch:
                return

    def _stop_if_closing(self) -> None:
        if self._closing:
            raise asyncio.CancelledError

    async def _read_through_session(self, after: int) -> list[Change]:
        return await self.db.run(partial(changes_after, after=after, limit=self.batch))

    async def _poll(self) -> None:
        while True:
            self._stop_if_closing()
            try:
                await self._catch_up(self._read_through_session)
                self._backoff.reset()
                delay = self.poll_seconds
            except SQLAlchemyError as exc:
                delay = self._backoff.next()
                log.warning("change feed: reading changes failed (%s); retrying in %.1f s", exc, delay)
            except Exception:
                delay = self._backoff.next()
                log.exception("change feed: unexpected error; retrying in %.1f s", delay)
            self._first_attempt.set()
            await asyncio.sleep(delay)

    async def _listen(self) -> None:
        import psycopg

        conninfo = self.db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while True:
            self._stop_if_closing()
            try:
                async with await psycopg.AsyncConnection.connect(
                    conninfo, autocommit=True, application_name=APPLICATION_NAME
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    read = partial(self._read_on, conn)
                    await self._catch_up(read)  # after LISTEN: whatever commits from now on is announced
                    self._backoff.reset()
                    self._first_attempt.set()
                    await self._follow(conn, read)
            except (psycopg.Error, SQLAlchemyError, OSError, TimeoutError) as exc:
                delay = self._backoff.next()
                log.warning("change feed: connection lost (%s); reconnecting in %.1f s", exc, delay)
            except Exception:
                delay = self._backoff.next()
                log.exception("change feed: unexpected error; reconnecting in %.1f s", delay)
            self.reconnects += 1
            self._first_attempt.set()
            await asyncio.sleep(delay)

    async def _follow(self, conn: psycopg.AsyncConnection[Any], read: Callable[[int], Awaitable[list[Change]]]) -> None:
        """Catch up on each notification newer than the position, and every ``safety_seconds`` regardless
        (which also finds out whether the connection is still there)."""
        while True:
            self._stop_if_closing()
            newest = 0
            async for note in conn.notifies(timeout=self.safety_seconds, stop_after=1):
                newest = max(newest, int(note.payload) if note.payload.isdigit() else 0)
            if newest == 0 or newest > self.position:
                await self._catch_up(read)

    async def _read_on(self, conn: psycopg.AsyncConnection[Any], after: int) -> list[Change]:
        """Read on the listening connection itself: one round trip, and no wait behind the database thread."""
        async with asyncio.timeout(self.safety_seconds):  # unlike wait_for on 3.11, never loses a cancellation
            cursor = await conn.execute(_READ, (after, self.batch))
            rows = await cursor.fetchall()
        return [Change(int(i), scope, kind, dict(payload or {}), created) for i, scope, kind, payload, created in rows]
