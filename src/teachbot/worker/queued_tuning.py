"""Fine-tuning through the job queue, for bot processes (``training_runner = queue``, openai backend).

``fine_tune`` records a queued ``remote`` run, defers its job and follows the run's row while a worker
creates the server's job and follows it (``training/remote.py``); the worker records the plan and the
outcome on the run, which this reads back into the reply a local fine-tune gives. A worker stopped
mid-job leaves the server's job running: the retried run follows that same job, never a second one.
"""

from __future__ import annotations

from teachbot.errors import UserError
from teachbot.store.db import Database
from teachbot.training.remote import RemoteOutcome
from teachbot.training.runs import Progress, RunCancelled, RunLedger, RunState
from teachbot.worker.queue import TrainingQueue
from teachbot.worker.queued import require_worker, wait_for_run

__all__ = ["QueuedFineTuning"]


class QueuedFineTuning:
    """The ``fine_tune`` and ``cancel`` of ``RemoteTrainingService``, carried out by a worker."""

    def __init__(self, db: Database, queue: TrainingQueue, *, ledger: RunLedger, heartbeat_seconds: float) -> None:
        self.db = db
        self.queue = queue
        self.ledger = ledger
        self.heartbeat_seconds = heartbeat_seconds

    async def fine_tune(
        self, scope: str, *, author: str, dpo: bool = False, progress: Progress | None = None
    ) -> RemoteOutcome:
        """Queue a fine-tuning run of ``scope`` and wait for a worker to finish it."""
        run_id = await self.ledger.queue_run(scope, author, kind="remote")
        await self.queue.defer_fine_tuning(scope, run_id, dpo=dpo)
        await require_worker(self.db, self.heartbeat_seconds, f"Fine-tuning run #{run_id}")
        state, message, version = await wait_for_run(self.ledger, run_id, progress)
        result = await self.ledger.result(run_id) or {}
        if "status" not in result:  # it ended before a job was planned: cancelled while queued, or refused
            if state == RunState.CANCELLED:
                raise RunCancelled(f"Run #{run_id} was cancelled; nothing changed.")
            raise UserError(f"Fine-tuning run #{run_id} failed: {message}")
        error = result.get("error")
        return RemoteOutcome(run_id, str(result.get("plan") or ""), str(result["status"]), version, error)

    async def cancel(self, scope: str, run_id: int) -> None:
        """Cancel a queued run at once, or ask the worker to cancel the server's job at its next poll."""
        run = await self.ledger.find(scope, run_id)
        if run is None or run.kind != "remote" or run.state not in (RunState.QUEUED, RunState.RUNNING):
            raise UserError(f"There is no queued or running fine-tuning job #{run_id} here.")
        await self.ledger.request_cancel(run_id)
