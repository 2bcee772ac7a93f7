"""The change feed between two processes sharing one database, on SQLite (polling) and PostgreSQL (NOTIFY)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from teachbot.store.changes import APPLICATION_NAME, Change, ChangeFeed, ChangeKind, publish
from teachbot.store.db import Database
from teachbot.store.processes import Heartbeat, prune_changes, this_host
from teachbot.store.tables import Change as ChangeRow
from teachbot.store.tables import Process, utcnow

DELIVERY_SECONDS = 2.0


class Collector:
    """A feed callback that records what it receives and lets a test wait for it."""

    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.arrived_at: dict[int, float] = {}
        self._grew = asyncio.Event()

    async def __call__(self, change: Change) -> None:
        self.arrived_at[change.id] = time.perf_counter()
        self.changes.append(change)
        self._grew.set()

    @property
    def ids(self) -> list[int]:
        return [c.id for c in self.changes]

    async def wait_for(self, count: int, timeout: float = DELIVERY_SECONDS) -> list[Change]:
        """Wait until ``count`` changes arrived in all; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while len(self.changes) < count:
            self._grew.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"{len(self.changes)} of {count} changes arrived within {timeout} s")
            try:
                await asyncio.wait_for(self._grew.wait(), remaining)
            except TimeoutError:
                continue
        return self.changes


@pytest.fixture
def databases(database_url: str) -> Iterator[tuple[Database, Database]]:
    """Two engines on one database, as two processes would have: (publisher, listener)."""
    first = Database(database_url)
    first.migrate()
    second = Database(database_url)
    try:
        yield first, second
    finally:
        second.close()
        first.close()


def publishing(scope: str, kind: str, payload: dict[str, object]) -> Callable[[Session], int]:
    return lambda s: publish(s, scope, kind, payload)


def feed_for(db: Database, collector: Collector, *, after: int | None = None) -> ChangeFeed:
    # a long safety interval on PostgreSQL: delivery within two seconds must come from the notification
    return ChangeFeed(db, collector, after=after, poll_seconds=0.5, safety_seconds=30.0)


async def test_a_committed_change_reaches_the_other_process_within_two_seconds(
    databases: tuple[Database, Database],
) -> None:
    publisher, listener = databases
    collector = Collector()
    feed = feed_for(listener, collector)
    await feed.start()
    try:
        assert feed.listens is (listener.engine.dialect.name == "postgresql")
        change_id = publisher.call(publishing("g1", ChangeKind.TAUGHT, {"example_id": 7, "prompt": "hi ✓"}))
        committed = time.perf_counter()
        [change] = await collector.wait_for(1)
        assert (change.id, change.scope, change.kind) == (change_id, "g1", "taught")
        assert change.payload == {"example_id": 7, "prompt": "hi ✓"}
        assert collector.arrived_at[change_id] - committed < DELIVERY_SECONDS
    finally:
        await feed.close()


async def test_concurrent_publishers_are_delivered_in_id_order_exactly_once(
    databases: tuple[Database, Database], database_url: str
) -> None:
    """Transactions that take an id and commit a little later must not let a later id overtake them."""
    publisher, listener = databases
    extra = [Database(database_url) for _ in range(2)]
    collector = Collector()
    feed = feed_for(listener, collector)
    await feed.start()

    def writer(db: Database, worker: int) -> list[int]:
        rng = random.Random(worker)
        ids: list[int] = []
        for n in range(15):

            def transaction(s: Session, n: int = n) -> list[int]:
                taken = [publish(s, "g1", "taught", {"worker": worker, "n": n, "part": part}) for part in range(2)]
                time.sleep(rng.uniform(0, 0.01))  # commit a little after taking the ids
                return taken

            ids += db.call(transaction)
        return ids

    try:
        results = await asyncio.gather(*(asyncio.to_thread(writer, db, i) for i, db in enumerate([publisher, *extra])))
        committed = sorted(i for ids in results for i in ids)
        await collector.wait_for(len(committed), timeout=10)
        await asyncio.sleep(0.6)  # nothing more arrives
        assert collector.ids == committed
    finally:
        await feed.close()
        for db in extra:
            db.close()


async def test_a_rolled_back_change_is_never_delivered(databases: tuple[Database, Database]) -> None:
    publisher, listener = databases
    collector = Collector()
    feed = feed_for(listener, collector)
    await feed.start()

    def rolled_back(s: Session) -> None:
        publish(s, "g1", "taught", {"example_id": 1})
        raise RuntimeError("the rest of the transaction failed")

    try:
        with pytest.raises(RuntimeError):
            publisher.call(rolled_back)
        kept = publisher.call(publishing("g1", "forgotten", {"example_id": 2}))
        await collector.wait_for(1)
        await asyncio.sleep(0.6)
        assert [(c.id, c.payload) for c in collector.changes] == [(kept, {"example_id": 2})]
    finally:
        await feed.close()


async def test_a_restarted_feed_delivers_what_it_missed_from_its_position(
    databases: tuple[Database, Database],
) -> None:
    publisher, listener = databases
    before = Collector()
    feed = feed_for(listener, before)
    await feed.start()
    first = [publisher.call(publishing("g1", "taught", {"n": n})) for n in range(3)]
    await before.wait_for(3)
    await feed.close()
    assert before.ids == first and feed.position == first[-1]

    missed = [publisher.call(publishing("g2", "refused", {"n": n})) for n in range(3, 6)]
    after = Collector()
    resumed = feed_for(listener, after, after=feed.position)
    newest = Collector()
    fresh = feed_for(listener, newest)  # no position: starts at the newest change
    await resumed.start()
    await fresh.start()
    try:
        await after.wait_for(3)
        later = publisher.call(publishing("g1", "version_activated", {"version": "v2"}))
        await after.wait_for(4)
        await newest.wait_for(1)
        assert after.ids == [*missed, later]
        assert newest.ids == [later]
    finally:
        await resumed.close()
        await fresh.close()


async def test_a_failing_callback_is_logged_and_the_feed_goes_on(
    databases: tuple[Database, Database], caplog: pytest.LogCaptureFixture
) -> None:
    publisher, listener = databases
    collector = Collector()

    async def fragile(change: Change) -> None:
        if change.payload.get("bad"):
            raise ValueError("cannot apply")
        await collector(change)

    feed = feed_for(listener, collector)
    feed.callback = fragile
    await feed.start()
    try:
        with caplog.at_level(logging.ERROR, logger="teachbot.store.changes"):
            publisher.call(publishing("g1", "taught", {"bad": True}))
            good = publisher.call(publishing("g1", "taught", {"bad": False}))
            await collector.wait_for(1)
        assert collector.ids == [good]
        assert "could not be applied" in caplog.text
    finally:
        await feed.close()


async def test_close_ends_the_feed_even_when_the_cancellation_is_swallowed(
    databases: tuple[Database, Database],
) -> None:
    """On Python 3.11 an await can finish at the moment it is cancelled and lose the cancellation; a
    callback can also catch it. Closing must still end the feed, or a process never exits."""
    publisher, listener = databases
    collector = Collector()
    in_callback = asyncio.Event()

    async def stubborn(change: Change) -> None:
        in_callback.set()
        with contextlib.suppress(asyncio.CancelledError):  # swallowed: the task goes on as if never cancelled
            await asyncio.sleep(30)
        await collector(change)

    feed = feed_for(listener, collector)
    feed.callback = stubborn
    await feed.start()
    publisher.call(publishing("g1", "taught", {}))
    await asyncio.wait_for(in_callback.wait(), DELIVERY_SECONDS)
    closing = asyncio.create_task(feed.close())
    done, _ = await asyncio.wait({closing}, timeout=5)  # wait() never cancels what it waits for
    assert closing in done, "the feed task outlived close()"
    assert len(collector.changes) == 1


async def test_ids_never_repeat_after_old_changes_are_deleted(databases: tuple[Database, Database]) -> None:
    publisher, _ = databases
    last = [publisher.call(publishing("g1", "taught", {"n": n})) for n in range(3)][-1]
    publisher.call(lambda s: s.execute(delete(ChangeRow)))
    assert publisher.call(publishing("g1", "taught", {"n": 3})) > last


PUBLISHER_SCRIPT = """
import sys
from teachbot.store.changes import publish
from teachbot.store.db import Database
db = Database(sys.argv[1])
for n in range(int(sys.argv[2])):
    db.call(lambda s: publish(s, "g1", "taught", {"from": "subprocess", "n": n}))
db.close()
"""


async def test_changes_from_a_separate_process_arrive(databases: tuple[Database, Database]) -> None:
    _, listener = databases
    collector = Collector()
    feed = feed_for(listener, collector)
    await feed.start()
    try:
        src = Path(__file__).resolve().parents[2] / "src"
        await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", PUBLISHER_SCRIPT, listener.url, "5"],
            check=True,
            timeout=60,
            env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
        )
        changes = await collector.wait_for(5)
        assert [c.payload for c in changes] == [{"from": "subprocess", "n": n} for n in range(5)]
    finally:
        await feed.close()


async def test_the_feed_reconnects_and_catches_up_after_losing_its_connection(postgres_url: str) -> None:
    publisher = Database(postgres_url)
    publisher.migrate()
    listener = Database(postgres_url)
    collector = Collector()
    feed = ChangeFeed(listener, collector, safety_seconds=30.0, max_backoff_seconds=0.5)
    await feed.start()
    try:
        first = publisher.call(publishing("g1", "taught", {"n": 0}))
        await collector.wait_for(1)

        def cut(s: Session) -> int:
            killed = s.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :name AND datname = current_database()"
                ),
                {"name": APPLICATION_NAME},
            )
            return len(killed.all())

        assert publisher.call(cut) == 1
        # published while the feed is (probably) still disconnected: it must catch up from the rows
        during = [publisher.call(publishing("g1", "taught", {"n": n})) for n in range(1, 4)]
        await collector.wait_for(4, timeout=5)
        assert feed.reconnects >= 1
        later = publisher.call(publishing("g1", "taught", {"n": 4}))
        await collector.wait_for(5)
        assert collector.ids == [first, *during, later]
    finally:
        await feed.close()
        listener.close()
        publisher.close()


def test_publish_joins_the_callers_transaction(databases: tuple[Database, Database]) -> None:
    """Another connection sees nothing before the caller commits."""
    publisher, other = databases

    def count(s: Session) -> int:
        return len(s.execute(text("SELECT id FROM changes")).all())

    def publish_and_look(s: Session) -> int:
        publish(s, "g1", "taught", {})
        return other.call(count)

    assert publisher.call(publish_and_look) == 0
    assert other.call(count) == 1


def _remaining(db: Database) -> list[int]:
    return db.call(lambda s: list(s.scalars(select(ChangeRow.id).order_by(ChangeRow.id))))


def _backdate(db: Database, ids: list[int], age: timedelta) -> None:
    then = utcnow() - age
    db.call(lambda s: s.execute(update(ChangeRow).where(ChangeRow.id.in_(ids)).values(created_at=then)))


def _process(db: Database, position: int | None, *, seen: timedelta = timedelta()) -> int:
    """A process row of this pid (so alive while its heartbeat is recent) that has read up to ``position``."""

    def add(s: Session) -> int:
        row = Process(role="bot", host=this_host(), pid=os.getpid(), change_position=position)
        row.last_seen = utcnow() - seen
        s.add(row)
        s.flush()
        return row.id

    return db.call(add)


def test_pruning_keeps_recent_changes_and_those_a_live_process_has_not_read(
    databases: tuple[Database, Database],
) -> None:
    db, _ = databases
    ids = [db.call(publishing("g1", "taught", {"n": n})) for n in range(5)]
    _backdate(db, ids[:4], timedelta(days=2))
    lagging = _process(db, ids[2])
    _process(db, ids[4])
    _process(db, 0, seen=timedelta(hours=1))  # dead: it holds nothing back
    assert db.call(lambda s: prune_changes(s, 10.0, timedelta(days=1))) == 3
    assert _remaining(db) == ids[3:], "the lagging process has not read the 4th; the 5th is recent"

    unknown = _process(db, None)  # registered, no position recorded yet: nothing goes
    db.call(lambda s: s.execute(update(Process).where(Process.id == lagging).values(change_position=ids[4])))
    assert db.call(lambda s: prune_changes(s, 10.0, timedelta(days=1))) == 0
    db.call(lambda s: s.execute(update(Process).where(Process.id == unknown).values(change_position=ids[4])))
    assert db.call(lambda s: prune_changes(s, 10.0, timedelta(days=1))) == 1
    assert _remaining(db) == ids[4:]
    assert db.call(publishing("g1", "taught", {"n": 5})) > ids[4], "ids go on growing after pruning"


async def test_a_heartbeat_records_its_feed_position_and_prunes_what_every_feed_read(
    databases: tuple[Database, Database],
) -> None:
    publisher, listener = databases
    ids = [publisher.call(publishing("g1", "taught", {"n": n})) for n in range(3)]
    _backdate(publisher, ids, timedelta(hours=2))
    collector = Collector()
    feed = feed_for(listener, collector, after=0)
    beat = Heartbeat(listener, role="bot", interval=0.05, change_retention=timedelta(hours=1), prune_every=0.0)
    beat.feed_position = lambda: feed.position
    await beat.start()
    try:
        await feed.start()
        await collector.wait_for(3)

        async def pruned() -> bool:
            return _remaining(publisher) == []

        deadline = time.monotonic() + DELIVERY_SECONDS
        while not await pruned():
            assert time.monotonic() < deadline, _remaining(publisher)
            await asyncio.sleep(0.02)
        row = publisher.call(lambda s: s.get(Process, beat.process_id))
        assert row is not None and row.change_position == ids[-1]
        later = publisher.call(publishing("g1", "taught", {"n": 3}))
        assert [c.id for c in await collector.wait_for(4)][-1] == later, "the feed goes on after pruning"
    finally:
        await feed.close()
        await beat.close()
