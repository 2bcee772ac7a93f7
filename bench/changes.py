"""How long after its commit does a change reach another process's feed?

A publisher process commits N changes (one per transaction, ``--interval`` ms apart, then a burst of N
at once) while this process runs a ``ChangeFeed`` on a second engine. The delay is from the publisher's
commit returning to the feed's callback (both read CLOCK_MONOTONIC, which is system-wide on Linux).
SQLite (WAL file) is polled; PostgreSQL (a scratch server: fsync off, loopback TCP) is LISTEN/NOTIFY.
Run: ``.venv/bin/python bench/changes.py [--count 200] [--interval 20]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import percentile, table

from teachbot.store.changes import Change, ChangeFeed
from teachbot.store.db import Database
from teachbot.store.scratch_postgres import ScratchPostgres

PUBLISHER = """
import json, sys, time
from teachbot.store.changes import publish
from teachbot.store.db import Database
url, count, interval, burst = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "burst"
db = Database(url)
for n in range(count):
    change_id = db.call(lambda s: publish(s, "global", "taught", {"n": n, "prompt": "what is up", "answer": "sky"}))
    print(json.dumps([change_id, time.monotonic_ns()]), flush=True)
    if not burst:
        time.sleep(interval / 1000)
db.close()
"""
SRC = Path(__file__).resolve().parents[1] / "src"


async def measure(url: str, count: int, interval_ms: float, *, burst: bool, poll_seconds: float) -> list[float]:
    """Delays in ms of ``count`` changes committed by another process, as this process's feed saw them."""
    arrived: dict[int, int] = {}
    done = asyncio.Event()

    async def record(change: Change) -> None:
        arrived[change.id] = time.monotonic_ns()
        if len(arrived) >= count:
            done.set()

    listener = Database(url)
    feed = ChangeFeed(listener, record, poll_seconds=poll_seconds)
    await feed.start()
    try:
        publisher = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            PUBLISHER,
            url,
            str(count),
            str(interval_ms),
            "burst" if burst else "spaced",
            stdout=subprocess.PIPE,
            env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        )
        output, _ = await publisher.communicate()
        if publisher.returncode != 0:
            raise RuntimeError(f"the publisher failed with exit code {publisher.returncode}")
        await asyncio.wait_for(done.wait(), timeout=60)
    finally:
        await feed.close()
        listener.close()
    committed = dict(json.loads(line) for line in output.decode().splitlines())
    return [(arrived[i] - committed[i]) / 1e6 for i in committed]


def row(name: str, delays: list[float]) -> list[object]:
    return [name, len(delays), *(f"{percentile(delays, q):.1f}" for q in (50, 90, 99)), f"{max(delays):.1f}"]


async def run_backend(name: str, url: str, args: argparse.Namespace, poll_seconds: float) -> list[list[object]]:
    db = Database(url)
    db.migrate()
    db.close()
    spaced = await measure(url, args.count, args.interval, burst=False, poll_seconds=poll_seconds)
    burst = await measure(url, args.count, args.interval, burst=True, poll_seconds=poll_seconds)
    return [row(f"{name}, one every {args.interval:g} ms", spaced), row(f"{name}, burst of {args.count}", burst)]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--interval", type=float, default=20.0, help="ms between spaced commits")
    args = parser.parse_args()
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory() as folder:
        for poll in (0.5, 0.1):
            url = f"sqlite:///{Path(folder) / f'poll{poll}.sqlite3'}"
            rows += await run_backend(f"SQLite, polled every {poll:g} s", url, args, poll)
    reason = ScratchPostgres.unavailable_reason()
    if reason is None:
        with ScratchPostgres() as server:
            url = server.create_database("bench")
            rows += await run_backend("PostgreSQL, LISTEN/NOTIFY", url, args, 0.5)
    table(
        "Change feed: commit in one process → callback in another (ms)",
        ["backend", "changes", "p50", "p90", "p99", "max"],
        rows,
    )
    if reason is not None:
        print(f"\nPostgreSQL not measured: {reason}")


if __name__ == "__main__":
    asyncio.run(main())
