"""Fine-tuning and ``!test`` through the job queue (``training_runner = queue``): a bot process queues them,
a worker does them; a worker killed while following a fine-tuning job leaves the run interrupted and
retryable, the active version untouched, and the retry follows the server's job instead of starting another."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fakes.openai_server import TEST_API_KEY, FakeOpenAIServer
from scale.conftest import eventually, settings_for
from scale.test_worker import BEAT, CAPITALS, _has_worker, start_worker, worker_process

from teachbot.app import App
from teachbot.config import Settings
from teachbot.errors import UserError
from teachbot.store.tables import TrainingRun
from teachbot.training.runs import RunState
from teachbot.worker.queued_testing import QueuedTesting
from teachbot.worker.queued_tuning import QueuedFineTuning


def llm(server: FakeOpenAIServer) -> dict[str, Any]:
    return {
        "backend": "openai",
        "llm_base_url": server.base_url,
        "llm_api_key": TEST_API_KEY,
        "llm_model": "gpt-4o-mini",
        "llm_timeout_seconds": 5.0,
        "llm_finetune_poll_seconds": 0.05,
    }


def queue_settings(folder: Path, postgres_url: str, server: FakeOpenAIServer) -> Settings:
    return settings_for(folder, postgres_url, training_runner="queue", heartbeat_seconds=BEAT, **llm(server))


@pytest.fixture
async def bot(postgres_url: str, tmp_path: Path, openai_server: FakeOpenAIServer) -> AsyncIterator[App]:
    """A bot process on the openai backend that fine-tunes and tests through the queue."""
    app = await App.start(queue_settings(tmp_path / "bot", postgres_url, openai_server), role="bot")
    try:
        await app.datasets.import_examples("global", "capitals", CAPITALS, source_name="capitals.csv", author="t")
        yield app
    finally:
        await app.close()


async def test_a_worker_fine_tunes_and_tests_what_a_bot_queues(
    bot: App, postgres_url: str, tmp_path: Path, openai_server: FakeOpenAIServer
) -> None:
    assert isinstance(bot.remote, QueuedFineTuning) and isinstance(bot.testing, QueuedTesting)
    with pytest.raises(UserError, match="no worker is running"):
        await bot.testing.test("global", CAPITALS[:4])
    waiting = (await bot.runs.recent("global"))[0]
    assert (waiting.kind, waiting.state) == ("test", RunState.QUEUED)
    await bot.training.cancel("global", waiting.run_id)

    worker, stop = await start_worker(queue_settings(tmp_path / "worker", postgres_url, openai_server))
    try:
        stages: list[str] = []
        outcome = await bot.remote.fine_tune("global", author="trainer", progress=lambda s, _: stages.append(s))
        assert (outcome.status, outcome.version) == ("succeeded", "v2"), outcome
        assert "supervised fine-tuning of gpt-4o-mini" in outcome.plan_summary
        assert stages and stages[0] == "waiting for a worker", stages  # then sampled from the run's row
        assert len(openai_server.jobs) == 1
        run = await bot.db.run(lambda s: s.get(TrainingRun, outcome.run_id))
        assert run is not None and (run.kind, run.state, run.version_name) == ("remote", RunState.SUCCEEDED, "v2")
        assert run.process_id not in (None, bot.runs.process_id), "the worker followed the job"
        assert bot.knowledge.model_version("global") == "v1", "a fine-tuned version waits for activation"

        report = await bot.testing.test("global", CAPITALS)  # what answers now: the local v1 and taught answers
        assert report.examples == len(CAPITALS) and len(report.outcomes) == len(CAPITALS)
        assert report.model_version == "v1"
        openai_server.reply = lambda body: "Paris"
        remote = await bot.testing.test("global", CAPITALS, version="v2", author="trainer")  # asks the fine-tuned model
        assert remote.model_version == "v2" and remote.accuracy == pytest.approx(0.25)
        assert {o.expected for o in remote.errors} == {"Rome", "Madrid", "Tokyo"}
        tests = [r for r in await bot.runs.recent("global") if r.kind == "test"]
        assert [r.state for r in tests[:2]] == [RunState.SUCCEEDED, RunState.SUCCEEDED]
        assert [r.author for r in tests[:2]] == ["trainer", "test"]  # who asked, when known
        with pytest.raises(UserError, match=r"failed: .*v9"):
            await bot.testing.test("global", CAPITALS[:2], version="v9")
    finally:
        stop.set()
        await asyncio.wait_for(worker, 30)


@pytest.mark.slow
async def test_a_worker_killed_while_fine_tuning_leaves_the_run_retryable(
    bot: App, postgres_url: str, tmp_path: Path, openai_server: FakeOpenAIServer
) -> None:
    assert isinstance(bot.remote, QueuedFineTuning)
    with worker_process(
        tmp_path,
        postgres_url,
        TEACHBOT_BACKEND="openai",
        TEACHBOT_LLM_BASE_URL=openai_server.base_url,
        TEACHBOT_LLM_API_KEY=TEST_API_KEY,
        TEACHBOT_LLM_MODEL="gpt-4o-mini",
        TEACHBOT_LLM_FINETUNE_POLL_SECONDS="120",  # it polls once, then waits: killed while following
    ) as process:
        await eventually(lambda: _has_worker(bot.settings), timeout=60, step=0.1)
        follower = asyncio.create_task(bot.remote.fine_tune("global", author="trainer"))

        async def following() -> bool:
            assert not follower.done(), follower
            runs = await bot.runs.recent("global")
            return bool(runs) and await bot.runs.remote_job(runs[0].run_id) is not None

        await eventually(following, timeout=60, step=0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    with pytest.raises(UserError, match="worker stopped during run"):
        await asyncio.wait_for(follower, 10)
    run = (await bot.runs.recent("global"))[0]
    assert (run.kind, run.state) == ("remote", RunState.INTERRUPTED)
    assert [v.name for v in await bot.versions.in_scope("global")] == ["v1"], "no version was added"
    assert bot.knowledge.model_version("global") == "v1"

    worker, stop = await start_worker(queue_settings(tmp_path / "worker", postgres_url, openai_server))
    try:

        async def retried() -> bool:
            return (await bot.runs.recent("global"))[0].state == RunState.SUCCEEDED

        await eventually(retried, timeout=60, step=0.1)
        assert len(openai_server.jobs) == 1, "the retry followed the job the killed worker started"
        assert (await bot.runs.recent("global"))[0].version == "v2"
    finally:
        stop.set()
        await asyncio.wait_for(worker, 30)
