"""Fine-tuning jobs on an OpenAI-compatible server, recorded like local runs and versions.

``!train`` on the ``openai`` backend lands here: the selected data is validated, the plan (examples,
tokens, estimated cost) is shown, the job is created and followed, and a finished job becomes a
model version whose activation makes the bot answer with the fine-tuned model in that scope.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session

from teachbot.datasets.service import DatasetService
from teachbot.datasets.validation import validate_examples
from teachbot.errors import UserError
from teachbot.llm.finetune import FineTuner, JobStatus
from teachbot.store.db import Database
from teachbot.store.tables import ModelVersion, TrainingRun
from teachbot.training.service import (
    Progress,
    RunState,
    finish_run,
    is_held_out,
    next_version_name,
    record_progress,
)

log = logging.getLogger(__name__)

STATUS_FRACTION = {"validating_files": 0.1, "queued": 0.2, "running": 0.5, "succeeded": 1.0}


@dataclass(frozen=True, slots=True)
class RemoteOutcome:
    run_id: int
    plan_summary: str
    status: str
    version: str | None
    error: str | None

    def describe(self) -> str:
        lines = [self.plan_summary]
        if self.version:
            lines.append(f"Fine-tuning succeeded: version {self.version}. `!models activate {self.version}` uses it.")
        else:
            lines.append(f"Fine-tuning job ended {self.status}" + (f": {self.error}" if self.error else "."))
        return "\n".join(lines)


class RemoteTrainingService:
    """Runs one fine-tuning job per scope at a time and records it as a run and a version."""

    def __init__(
        self, db: Database, datasets: DatasetService, tuner: FineTuner, *, holdout_fraction: float, poll_seconds: float
    ) -> None:
        self.db = db
        self.datasets = datasets
        self.tuner = tuner
        self.holdout_fraction = holdout_fraction
        self.poll_seconds = poll_seconds
        self._locks: dict[str, asyncio.Lock] = {}
        self._cancel: set[int] = set()

    async def fine_tune(
        self, scope: str, *, author: str, dpo: bool = False, progress: Progress | None = None
    ) -> RemoteOutcome:
        """Validate, plan, start and follow a job; ``dpo`` trains on corrections as preference pairs."""
        lock = self._locks.setdefault(scope, asyncio.Lock())
        if lock.locked():
            raise UserError("A fine-tuning job for this scope is already running (`!jobs`).")
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
            job_id = await self.tuner.start(plan)
            run_id = await self.db.run(lambda s: _start_remote_run(s, scope, author, job_id))
            log.info("fine-tuning job %s run=%s scope=%s author=%s", job_id, run_id, scope, author)
            last = await self._follow(run_id, job_id, progress)
            version = None
            if last.status == "succeeded" and last.fine_tuned_model:
                model = last.fine_tuned_model
                version = await self.db.run(lambda s: _insert_remote_version(s, scope, model, len(train), author))
                await self.db.run(lambda s: finish_run(s, run_id, RunState.SUCCEEDED, f"fine-tuned {model}", version))
            else:
                state = RunState.CANCELLED if last.status == "cancelled" else RunState.FAILED
                reason = last.error or last.status
                await self.db.run(lambda s: finish_run(s, run_id, state, reason))
            return RemoteOutcome(run_id, plan.summary(), last.status, version, last.error)

    async def _follow(self, run_id: int, job_id: str, progress: Progress | None) -> JobStatus:
        last: JobStatus | None = None
        async for status in self.tuner.follow(job_id, poll_interval=self.poll_seconds):
            last = status
            stage = status.events[-1].message if status.events else status.status
            fraction = STATUS_FRACTION.get(status.status, 0.5)
            await self.db.run(partial(record_progress, run_id=run_id, stage=stage, fraction=fraction))
            if progress:
                progress(f"{status.status}: {stage}", fraction)
            if run_id in self._cancel and not status.finished:
                self._cancel.discard(run_id)
                await self.tuner.cancel(job_id)
        if last is None:  # pragma: no cover - follow always yields at least once
            last = await self.tuner.status(job_id)
        return last

    async def cancel(self, scope: str, run_id: int) -> str:
        def running(s: Session) -> bool:
            run = s.get(TrainingRun, run_id)
            return run is not None and run.scope == scope and run.kind == "remote" and run.state == RunState.RUNNING

        if not await self.db.run(running):
            raise UserError(f"There is no running fine-tuning job #{run_id} here.")
        self._cancel.add(run_id)
        return f"Cancelling fine-tuning job #{run_id}."

    async def active_models(self) -> dict[str, str]:
        """Scope → fine-tuned model of its active remote version (read at start)."""

        def load(s: Session) -> dict[str, str]:
            rows = s.execute(
                select(ModelVersion.scope, ModelVersion.remote_model).where(
                    ModelVersion.active.is_(True), ModelVersion.backend == "openai"
                )
            )
            return {scope: model for scope, model in rows if model}

        return await self.db.run(load)


def _start_remote_run(s: Session, scope: str, author: str, job_id: str) -> int:
    run = TrainingRun(scope=scope, author=author, kind="remote", state=RunState.RUNNING, remote_job_id=job_id)
    s.add(run)
    s.flush()
    return run.id


def _insert_remote_version(s: Session, scope: str, model: str, examples: int, author: str) -> str:
    name = next_version_name(s, scope)
    s.add(
        ModelVersion(name=name, scope=scope, backend="openai", remote_model=model, examples=examples, created_by=author)
    )
    return name
