"""`teachbot worker`: bot processes queue training runs in PostgreSQL and a worker trains them, one run per
scope at a time; a worker killed mid-run leaves the run interrupted, the job retryable and the active
version untouched."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from scale.conftest import eventually, process_env, settings_for

from teachbot.answering.chat import Origin
from teachbot.app import App
from teachbot.config import ActivationPolicy, Settings
from teachbot.datasets.examples import Example
from teachbot.errors import UserError
from teachbot.store.processes import alive_processes
from teachbot.store.tables import TrainingRun
from teachbot.training.runs import RunState
from teachbot.worker.main import run_worker

WHERE = Origin(scope="global", channel="c1", author="u1")
BEAT = 0.5  # heartbeat seconds in these tests: a killed worker's job is stalled after 1.5 s
CAPITALS = [
    Example(f"{ask} the capital of {country}", capital)
    for country, capital in [("France", "Paris"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Japan", "Tokyo")]
    for ask in ("what is", "tell me", "which city is", "name", "do you know", "what's", "say", "remind me of")
]


def queue_settings(folder: Path, postgres_url: str) -> Settings:
    return settings_for(folder, postgres_url, training_runner="queue", heartbeat_seconds=BEAT)


@pytest.fixture
async def bot(postgres_url: str, tmp_path: Path) -> AsyncIterator[App]:
    """A bot process that trains through the queue (it trains the starter version itself)."""
    app = await App.start(queue_settings(tmp_path / "bot", postgres_url), role="bot")
    try:
        yield app
    finally:
        await app.close()


@contextmanager
def worker_process(tmp_path: Path, postgres_url: str, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """A ``teachbot worker`` process on ``postgres_url`` (settings ``env`` added), killed on the way out if it
    still runs."""
    settings = {
        "TEACHBOT_DATA_DIR": str(tmp_path / "killed"),
        "TEACHBOT_DATABASE_URL": postgres_url,
        "TEACHBOT_ENCODER": "none",
        "TEACHBOT_HEARTBEAT_SECONDS": str(BEAT),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "teachbot", "worker"],
        env=process_env() | settings | env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


async def start_worker(settings: Settings) -> tuple[asyncio.Task[None], asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(settings, stop=stop))
    await eventually(lambda: _has_worker(settings), timeout=30)
    return task, stop


async def _has_worker(settings: Settings) -> bool:
    from teachbot.store.db import Database

    db = Database(settings.effective_database_url)
    try:
        return any(p.role == "worker" for p in db.call(lambda s: alive_processes(s, BEAT)))
    finally:
        db.close()


async def test_a_worker_trains_what_a_bot_queues(bot: App, postgres_url: str, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no worker is running"):
        await bot.training.train("global", author="trainer")
    cancelled = (await bot.runs.recent("global"))[0]
    assert cancelled.state == RunState.QUEUED
    await bot.training.cancel("global", cancelled.run_id)
    assert (await bot.runs.recent("global"))[0].state == RunState.CANCELLED

    worker, stop = await start_worker(queue_settings(tmp_path / "worker", postgres_url))
    try:
        await bot.datasets.import_examples("global", "capitals", CAPITALS, source_name="capitals.csv", author="t")
        stages: list[str] = []
        outcome = await bot.training.train(
            "global", author="trainer", activation=ActivationPolicy.ALWAYS, progress=lambda s, _: stages.append(s)
        )
        assert outcome.activated and outcome.version.name == "v2"
        assert outcome.report is not None and outcome.report.examples > 0
        assert stages[-1] == "done", stages  # stages are sampled from the run's row as the worker records them
        assert bot.knowledge.model_version("global") == "v2", "the bot answers with the new version at once"
        assert (await bot.chat.ask("what is the capital of Japan", WHERE)).answer.text == "Tokyo"
        run = (await bot.runs.recent("global"))[0]
        assert (run.state, run.version) == (RunState.SUCCEEDED, "v2")
        owner = await bot.db.run(lambda s: s.get(TrainingRun, run.run_id))
        assert owner is not None and owner.process_id not in (None, bot.runs.process_id), "the bot trained it"
    finally:
        stop.set()
        await asyncio.wait_for(worker, 30)


def big_dataset(path: Path, answers: int = 150, per_answer: int = 20) -> Path:
    lines = ["question,answer"]
    for a in range(answers):
        lines += [
            f'"how do I reach topic {a} with variant {v} of w{a * 7 + v}","answer {a}"' for v in range(per_answer)
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
async def test_a_worker_killed_mid_run_leaves_the_run_retryable_and_the_model_untouched(
    bot: App, postgres_url: str, tmp_path: Path
) -> None:
    from teachbot.datasets.formats import parse_examples

    examples = parse_examples(big_dataset(tmp_path / "big.csv").read_bytes(), source="big.csv")
    await bot.datasets.import_examples("global", "big", examples, source_name="big.csv", author="t")
    with worker_process(tmp_path, postgres_url) as process:
        await eventually(lambda: _has_worker(bot.settings), timeout=60, step=0.1)
        follower = asyncio.create_task(
            bot.training.train("global", author="trainer", activation=ActivationPolicy.ALWAYS)
        )
        deadline = time.monotonic() + 120
        run = None
        while time.monotonic() < deadline:
            run = (await bot.runs.recent("global"))[0]
            if run.stage.startswith("training on"):
                break
            assert not follower.done(), follower
            await asyncio.sleep(0.05)
        assert run is not None and run.stage.startswith("training on"), f"the worker never trained ({run})"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    with pytest.raises(UserError, match="worker stopped during run"):
        await asyncio.wait_for(follower, 10)
    assert (await bot.runs.recent("global"))[0].state == RunState.INTERRUPTED
    assert bot.knowledge.model_version("global") == "v1", "the active version changed"

    worker, stop = await start_worker(queue_settings(tmp_path / "worker", postgres_url))
    try:

        async def retried() -> bool:
            return (await bot.runs.recent("global"))[0].state == RunState.SUCCEEDED

        await eventually(retried, timeout=120, step=0.2)
        await eventually(lambda: _uses(bot, "v2"), timeout=5)
    finally:
        stop.set()
        await asyncio.wait_for(worker, 60)


async def _uses(app: App, version: str) -> bool:
    return app.knowledge.model_version("global") == version
