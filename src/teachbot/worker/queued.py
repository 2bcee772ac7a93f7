"""Training through the job queue, for bot processes (``training_runner = queue``).

``train`` records a queued run, defers its job and follows the run's row until a worker has finished it,
reporting each stage as local training does; the outcome is read back from the database, and this
process switches to the new version before answering (the other processes follow the change feed).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from teachbot.answering.knowledge import Knowledge
from teachbot.config import ActivationPolicy
from teachbot.errors import UserError
from teachbot.store.db import Database
from teachbot.store.processes import alive_processes
from teachbot.training.evaluation import AnswerScore, EvaluationReport, Outcome
from teachbot.training.runs import Progress, RunCancelled, RunLedger, RunState
from teachbot.training.service import TrainingService, TrainOutcome
from teachbot.training.updates import UPDATE, UpdateCheck
from teachbot.training.versions import VersionRegistry
from teachbot.worker.queue import TrainingQueue

log = logging.getLogger(__name__)

__all__ = ["QueuedTraining", "report_from_metrics", "require_worker", "wait_for_run"]

FOLLOW_SECONDS = 0.25
_DONE = {RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED, RunState.INTERRUPTED}


class QueuedTraining:
    """The ``train`` and ``cancel`` of ``TrainingService``, carried out by a worker."""

    def __init__(
        self,
        db: Database,
        queue: TrainingQueue,
        *,
        trainer: TrainingService,
        ledger: RunLedger,
        versions: VersionRegistry,
        knowledge: Knowledge,
        heartbeat_seconds: float,
    ) -> None:
        self.db = db
        self.queue = queue
        self.trainer = trainer
        self.ledger = ledger
        self.versions = versions
        self.knowledge = knowledge
        self.heartbeat_seconds = heartbeat_seconds

    async def train(
        self,
        scope: str,
        *,
        author: str,
        progress: Progress | None = None,
        activation: ActivationPolicy | None = None,
        run_id: int | None = None,
    ) -> TrainOutcome:
        """Queue a run of ``scope`` and wait for a worker to finish it."""
        if run_id is None:
            if await self.ledger.active_in(scope) is not None:
                raise UserError(
                    "A training run for this scope is already queued or going; wait for it or cancel it.", see="jobs"
                )
            run_id = await self.ledger.queue_local(scope, author)
        await self.queue.defer_training(scope, run_id, activation.value if activation else None)
        await require_worker(self.db, self.heartbeat_seconds, f"Training run #{run_id}")
        return await self.follow(scope, run_id, progress)

    async def follow(self, scope: str, run_id: int, progress: Progress | None = None) -> TrainOutcome:
        """Report run ``run_id``'s stages until it ends; its outcome, or the error it ended with."""
        state, message, version = await wait_for_run(self.ledger, run_id, progress)
        if state == RunState.CANCELLED:
            raise RunCancelled(f"Run #{run_id} was cancelled; nothing changed.")
        if state != RunState.SUCCEEDED or version is None:
            raise UserError(f"Training run #{run_id} failed: {message}")
        await self.versions.sync_active(scope)  # answer with it here at once, without waiting for the feed
        info = await self.versions.info(scope, version)
        report = report_from_metrics(info.metrics) if info.metrics else None
        previous = None if info.active else self.knowledge.model_version(scope)
        if progress is not None:
            progress("done", 1.0)
        update = UpdateCheck.from_json(info.metrics.get(UPDATE))  # its report is the last gate's, carried
        return TrainOutcome(info, info.active, None if update else report, previous, update=update)

    async def cancel(self, scope: str, run_id: int) -> None:
        """Ask a queued or running run to stop (the worker sees the request at its next step)."""
        await self.trainer.cancel(scope, run_id)


async def require_worker(db: Database, heartbeat_seconds: float, what: str) -> None:
    """Say so when no worker is alive to take what was just queued (it stays queued for the next one)."""
    alive = await db.run(lambda s: alive_processes(s, heartbeat_seconds))
    if not any(p.role == "worker" for p in alive):
        raise UserError(f"{what} is queued, but no worker is running: start one with `teachbot worker`.", see="jobs")


async def wait_for_run(ledger: RunLedger, run_id: int, progress: Progress | None) -> tuple[str, str, str | None]:
    """Report run ``run_id``'s stages as a worker records them until it ends: (state, message, version).

    A run whose worker stopped raises: the job goes back into the queue, but this reply is over.
    """
    shown: tuple[str, float] | None = None
    while True:
        state, stage, fraction, message, version = await ledger.state(run_id)
        if progress is not None and (stage, fraction) != shown and state in (RunState.QUEUED, RunState.RUNNING):
            shown = (stage, fraction)
            progress(stage, fraction)
        if state in _DONE:
            break
        await asyncio.sleep(FOLLOW_SECONDS)
    if state == RunState.INTERRUPTED:
        raise UserError(
            f"The worker stopped during run #{run_id}; nothing changed. The run goes back into the queue when "
            "a worker starts again.",
            see="jobs",
        )
    return state, message, version


def report_from_metrics(metrics: dict[str, Any]) -> EvaluationReport | None:
    """The parts of a stored evaluation (``EvaluationReport.to_json``) that a reply shows."""
    try:
        per_answer = [
            AnswerScore(answer, float(s["precision"]), float(s["recall"]), float(s["f1"]), int(s["support"]))
            for answer, s in dict(metrics.get("per_answer") or {}).items()
        ]
        confusions = [
            (str(c["expected"]), str(c["answered"]), int(c["count"])) for c in metrics.get("confusions") or []
        ]
        return EvaluationReport(
            model_version=str(metrics["model_version"]),
            examples=int(metrics["examples"]),
            accuracy=float(metrics["accuracy"]),
            fallback_rate=float(metrics["fallback_rate"]),
            macro_f1=float(metrics["macro_f1"]),
            per_answer=per_answer,
            confusions=confusions,
            errors=[
                Outcome(str(e["prompt"]), str(e["expected"]), e.get("answered"), float(e.get("confidence") or 0.0))
                for e in metrics.get("errors") or []
            ],
            histogram=list((metrics.get("confidence_histogram") or {}).get("counts") or []),
            previous=metrics.get("previous"),
            note=str(metrics.get("note") or ""),
        )
    except (KeyError, TypeError, ValueError):
        log.warning("stored metrics could not be read back: %s", sorted(metrics))
        return None
