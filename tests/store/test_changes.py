"""The change feed between two processes sharing one database, on SQLite (polling) and PostgreSQL (NOTIFY)."""

from __future__ import annotations

import asyncio
import logging
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, text
from sqlalchemy.orm import Session

from teachbot.store.changes import APPLICATION_NAME, Change, ChangeFeed, ChangeKind, publish
from teachbot.store.db import Database
from teachbot.store.tables import Change as ChangeRow

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
