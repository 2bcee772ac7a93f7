"""``teachbot worker``: take training, fine-tuning and test jobs from the queue, one at a time, until stopped.

The worker is a teachbot process like the bot shards (the same ``App``: database, change feed,
heartbeat), so it scores a new version against the active one it already holds, and activation
reaches every process through the change feed. SIGINT or SIGTERM stop it after the job in hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable
from typing import Any

import procrastinate

from teachbot.app import App
from teachbot.config import ActivationPolicy, Settings, TrainingRunner
from teachbot.datasets.examples import Example
from teachbot.errors import UserError
from teachbot.store.processes import this_host
from teachbot.training.remote import RemoteTrainingService
from teachbot.training.runs import RunState
from teachbot.training.testing import TestingService
from teachbot.worker.queue import FINE_TUNE_TASK, QUEUE, TEST_TASK, TRAIN_TASK, TrainingQueue, stalled_after
from teachbot.worker.queued_testing import result_of

log = logging.getLogger(__name__)

__all__ = ["evaluate", "fine_tune", "run_worker", "train"]


async def train(context: procrastinate.JobContext, run_id: int, activation: str | None = None) -> None:
    """Train queued run ``run_id`` (its scope and author are in its row)."""
    taken = await _take(context, run_id)
    if taken is None:
        return
    app, scope, author = taken
    assert app.trainer is not None
    policy = ActivationPolicy(activation) if activation else None
    try:
        await app.trainer.train(scope, author=author, activation=policy, run_id=run_id)
    except UserError as exc:  # recorded on the run; the job itself did its work
        log.info("run #%s ended: %s", run_id, exc)


async def fine_tune(context: procrastinate.JobContext, run_id: int, dpo: bool = False) -> None:
    """Fine-tune for queued run ``run_id`` on the openai backend (or follow the job an earlier attempt started)."""
    taken = await _take(context, run_id)
    if taken is None:
        return
    app, scope, author = taken
    if not isinstance(app.remote, RemoteTrainingService):
        await app.runs.finish(run_id, RunState.FAILED, "the worker has no fine-tuning backend: set backend=openai")
        return
    await _recorded(app, run_id, app.remote.fine_tune(scope, author=author, dpo=dpo, run_id=run_id))


async def evaluate(
    context: procrastinate.JobContext, run_id: int, questions: list[list[str]], version: str | None = None
) -> None:
    """Score queued test run ``run_id``: each (prompt, expected answer) through ``version`` or what answers now."""
    taken = await _take(context, run_id)
    if taken is None:
        return
    app, scope, _ = taken
    assert isinstance(app.testing, TestingService)
    examples = [Example(prompt, answer) for prompt, answer in questions]

    async def score() -> None:
        report = await app.testing.test(scope, examples, version=version)
        summary = report.summary(max_lines=1).splitlines()[0]
        await app.runs.finish(run_id, RunState.SUCCEEDED, summary, result=result_of(report))

    await _recorded(app, run_id, score())


async def _take(context: procrastinate.JobContext, run_id: int) -> tuple[App, str, str] | None:
    """This worker's app and queued run ``run_id``'s scope and author, the run now taken; None when it was
    cancelled or finished before a worker took it."""
    app: App = context.additional_context["app"]
    taken = await app.runs.begin(run_id)
    if taken is None:
        log.info("run #%s was cancelled or finished before a worker took it", run_id)
        return None
    return app, *taken


async def _recorded(app: App, run_id: int, work: Awaitable[object]) -> None:
    """Run ``work`` for run ``run_id``; an error that ends it is recorded on the run for the one who asked."""
    try:
        await work
    except UserError as exc:
        log.info("run #%s ended: %s", run_id, exc)
        await app.runs.finish(run_id, RunState.FAILED, str(exc))
    except Exception:
        log.exception("run #%s failed", run_id)
        await app.runs.finish(run_id, RunState.FAILED, "an unexpected error (the worker's log has the details)")


async def run_worker(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Work until stopped (a signal, or ``stop`` being set); jobs of stopped workers are queued again."""
    if settings.training_runner is not TrainingRunner.QUEUE:
        settings = settings.model_copy(update={"training_runner": TrainingRunner.QUEUE})
    app = await App.start(settings, role="worker")
    try:
        queue = app.queue
        assert queue is not None
        for name, job in ((TRAIN_TASK, train), (FINE_TUNE_TASK, fine_tune), (TEST_TASK, evaluate)):
            queue.app.task(name=name, queue=QUEUE, pass_context=True)(job)
        sweeper = asyncio.create_task(_retry_stalled(queue, settings.heartbeat_seconds), name="teachbot-retry")
        worker = asyncio.create_task(
            queue.app.run_worker_async(
                queues=[QUEUE],
                concurrency=1,
                name=f"teachbot-{this_host()}-{os.getpid()}",
                additional_context={"app": app},
                install_signal_handlers=stop is None,
                update_heartbeat_interval=settings.heartbeat_seconds,
                stalled_worker_timeout=stalled_after(settings.heartbeat_seconds),
            ),
            name="teachbot-worker",
        )
        log.info("worker started: taking training, fine-tuning and test jobs from the queue")
        waits: set[asyncio.Future[Any]] = {worker}
        if stop is not None:
            waits.add(asyncio.ensure_future(stop.wait()))
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in (worker, sweeper, *waits):
            task.cancel()
        for task in (worker, sweeper, *waits):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        log.info("worker stopped")
    finally:
        await app.close()


async def _retry_stalled(queue: TrainingQueue, interval: float) -> None:
    while True:
        try:
            await queue.retry_stalled(stalled_after(interval))
        except Exception:
            log.exception("could not check for stalled jobs")
        await asyncio.sleep(interval)
