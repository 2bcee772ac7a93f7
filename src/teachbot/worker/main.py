"""``teachbot worker``: take training jobs from the queue, one at a time, until stopped.

The worker is a teachbot process like the bot shards (the same ``App``: database, change feed,
heartbeat), so it scores a new version against the active one it already holds, and activation
reaches every process through the change feed. SIGINT or SIGTERM stop it after the job in hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

import procrastinate

from teachbot.app import App
from teachbot.config import ActivationPolicy, Settings, TrainingRunner
from teachbot.errors import UserError
from teachbot.store.processes import this_host
from teachbot.worker.queue import QUEUE, TRAIN_TASK, TrainingQueue, stalled_after

log = logging.getLogger(__name__)

__all__ = ["run_worker", "train"]


async def train(context: procrastinate.JobContext, run_id: int, activation: str | None = None) -> None:
    """Train queued run ``run_id`` (its scope and author are in its row)."""
    app: App = context.additional_context["app"]
    assert app.trainer is not None
    taken = await app.runs.begin(run_id)
    if taken is None:
        log.info("run #%s was cancelled or finished before a worker took it", run_id)
        return
    scope, author = taken
    policy = ActivationPolicy(activation) if activation else None
    try:
        await app.trainer.train(scope, author=author, activation=policy, run_id=run_id)
    except UserError as exc:  # recorded on the run; the job itself did its work
        log.info("run #%s ended: %s", run_id, exc)


async def run_worker(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Work until stopped (a signal, or ``stop`` being set); jobs of stopped workers are queued again."""
    if settings.training_runner is not TrainingRunner.QUEUE:
        settings = settings.model_copy(update={"training_runner": TrainingRunner.QUEUE})
    app = await App.start(settings, role="worker")
    try:
        queue = app.queue
        assert queue is not None
        queue.app.task(name=TRAIN_TASK, queue=QUEUE, pass_context=True)(train)
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
        log.info("worker started: taking training jobs from the queue")
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
