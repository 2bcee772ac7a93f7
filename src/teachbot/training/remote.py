"""Fine-tuning jobs on an OpenAI-compatible server, recorded like local runs and versions.

``!train`` on the ``openai`` backend lands here: the selected data is validated, the plan (examples,
tokens, estimated cost) is shown, the job is created and followed, and a finished job becomes a
model version whose activation makes the bot answer with the fine-tuned model in that scope.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from teachbot.datasets.service import DatasetService
from teachbot.datasets.validation import validate_examples
from teachbot.errors import UserError
from teachbot.llm.finetune import FineTuner, JobStatus
from teachbot.store.db import Database
from teachbot.training.data import is_held_out
from teachbot.training.runs import Progress, RunLedger, RunState
from teachbot.training.versions import VersionRegistry

log = logging.getLogger(__name__)

STATUS_FRACTION = {"validating_files": 0.1, "queued": 0.2, "running": 0.5, "succeeded": 1.0}


@dataclass(frozen=True, slots=True)
class RemoteOutcome:
    run_id: int
    plan_summary: str
    status: str
    version: str | None
    error: str | None


class RemoteTrainingService:
    """Runs one fine-tuning job per scope at a time and records it as a run and a version."""

    def __init__(
        self,
        db: Database,
        datasets: DatasetService,
        tuner: FineTuner,
        *,
        ledger: RunLedger,
        registry: VersionRegistry,
        holdout_fraction: float,
        poll_seconds: float,
    ) -> None:
        self.db = db
        self.datasets = datasets
        self.tuner = tuner
        self.ledger = ledger
        self.registry = registry
        self.holdout_fraction = holdout_fraction
        self.poll_seconds = poll_seconds
        self._locks: dict[str, asyncio.Lock] = {}

    async def fine_tune(
        self,
        scope: str,
        *,
        author: str,
        dpo: bool = False,
        progress: Progress | None = None,
        run_id: int | None = None,
    ) -> RemoteOutcome:
        """Validate, plan, start and follow a job; ``dpo`` trains on corrections as preference pairs.

        ``run_id`` is a queued run a worker took (``worker/``): when an earlier attempt already started
        the server's job (the worker was stopped while following it), this follows that job, never a second.
        """
        lock = self._locks.setdefault(scope, asyncio.Lock())
        if lock.locked():
            raise UserError("A fine-tuning job for this scope is already running.", see="jobs")
        async with lock:
            if dpo:
                examples = [e for e in await self.datasets.preference_pairs(scope) if e.rejected]
            else:
                training = await self.db.run(lambda s: self.datasets.training_set(s, scope))
                examples = training.positives
            if not examples:
                raise UserError("There is nothing to fine-tune on: import a dataset or teach me first.")
            report = await asyncio.to_thread(validate_examples, examples, source="selected data")
            if not report.ok:
                raise UserError("The selected data has errors, so no job was started:\n" + report.to_text())
            train = [e for e in examples if not is_held_out(e.prompt, self.holdout_fraction)]
            held = [e for e in examples if is_held_out(e.prompt, self.holdout_fraction)]
            plan = self.tuner.prepare(train or examples, held if train else [], "dpo" if dpo else "supervised")
            if progress:
                progress(plan.summary(), 0.02)
            job_id = await self.ledger.remote_job(run_id) if run_id is not None else None
            if run_id is None:
                job_id = await self.tuner.start(plan)
                run_id = await self.ledger.start_remote(scope, author, job_id)
            elif job_id is None:
                job_id = await self.tuner.start(plan)
                await self.ledger.attach_job(run_id, job_id)
            else:
                log.info("run #%s follows its fine-tuning job %s again", run_id, job_id)
            log.info("fine-tuning job %s run=%s scope=%s author=%s", job_id, run_id, scope, author)
            last = await self._follow(run_id, job_id, progress)
            version = None
            result = {"plan": plan.summary(), "status": last.status, "error": last.error}
            if last.status == "succeeded" and last.fine_tuned_model:
                model = last.fine_tuned_model
                version = await self.registry.add_remote(scope, model, examples=len(train), author=author)
                await self.ledger.finish(run_id, RunState.SUCCEEDED, f"fine-tuned {model}", version, result=result)
            else:
                state = RunState.CANCELLED if last.status == "cancelled" else RunState.FAILED
                await self.ledger.finish(run_id, state, last.error or last.status, result=result)
            return RemoteOutcome(run_id, plan.summary(), last.status, version, last.error)

    async def _follow(self, run_id: int, job_id: str, progress: Progress | None) -> JobStatus:
        last: JobStatus | None = None
        async for status in self.tuner.follow(job_id, poll_interval=self.poll_seconds):
            last = status
            stage = status.events[-1].message if status.events else status.status
            fraction = STATUS_FRACTION.get(status.status, 0.5)
            await self.ledger.record_progress(run_id, stage, fraction)
            if progress:
                progress(f"{status.status}: {stage}", fraction)
            if self.ledger.cancel_requested(run_id) and not status.finished:
                self.ledger.clear_cancel(run_id)
                await self.tuner.cancel(job_id)
        if last is None:  # pragma: no cover - follow always yields at least once
            last = await self.tuner.status(job_id)
        return last

    async def cancel(self, scope: str, run_id: int) -> None:
        """Ask the server to cancel the job of run ``run_id`` at its next status poll."""
        run = await self.ledger.find(scope, run_id)
        if run is None or run.kind != "remote" or run.state != RunState.RUNNING:
            raise UserError(f"There is no running fine-tuning job #{run_id} here.")
        await self.ledger.request_cancel(run_id)
