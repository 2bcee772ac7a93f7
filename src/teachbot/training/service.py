"""Local training runs: build a new immutable model version, score it, and activate it when allowed.

Training never touches the active model: the new version is written to its own folder, scored on
the held-out split every version of the scope is scored on, and activated only when the policy
allows. The run is recorded in the ledger (the ``jobs`` command lists it), and a trainer may cancel it between steps.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

from teachbot.answering.knowledge import Knowledge, LoadedVersion
from teachbot.answering.local_model import LocalModel
from teachbot.config import ActivationPolicy
from teachbot.datasets.examples import Example
from teachbot.datasets.service import DatasetService
from teachbot.errors import UserError
from teachbot.store.db import Database
from teachbot.training.data import split_training_set, starter_examples
from teachbot.training.evaluation import EvaluationReport
from teachbot.training.runs import Progress, RunCancelled, RunLedger, RunState
from teachbot.training.testing import TestingService
from teachbot.training.versions import VersionInfo, VersionRegistry

log = logging.getLogger(__name__)

#: Reports a run's step (text, fraction done) and stops the run if a trainer cancelled it.
StageCallback = Callable[[str, float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class TrainOutcome:
    version: VersionInfo
    activated: bool
    report: EvaluationReport | None
    previous: str | None


class TrainingService:
    """Trains local model versions, one run per scope at a time."""

    def __init__(
        self,
        db: Database,
        datasets: DatasetService,
        knowledge: Knowledge,
        *,
        ledger: RunLedger,
        registry: VersionRegistry,
        testing: TestingService,
        holdout_fraction: float,
        activation: ActivationPolicy,
    ) -> None:
        self.db = db
        self.datasets = datasets
        self.knowledge = knowledge
        self.ledger = ledger
        self.registry = registry
        self.testing = testing
        self.holdout_fraction = holdout_fraction
        self.activation = activation
        self._locks: dict[str, asyncio.Lock] = {}

    async def train(
        self, scope: str, *, author: str, progress: Progress | None = None, activation: ActivationPolicy | None = None
    ) -> TrainOutcome:
        """Train a new version for ``scope`` from everything selected, then evaluate and maybe activate.

        The run is recorded in the ledger; chat keeps answering meanwhile (fitting runs in a thread).
        """
        lock = self._locks.setdefault(scope, asyncio.Lock())
        if lock.locked():
            raise UserError("A training run for this scope is already going; wait for it or cancel it.", see="jobs")
        async with lock:
            run_id = await self.ledger.start_local(scope, author)
            try:
                outcome = await self._train(scope, run_id, author, progress, activation)
            except asyncio.CancelledError:
                await self.ledger.finish(run_id, RunState.CANCELLED, "cancelled")
                raise
            except UserError as exc:
                state = RunState.CANCELLED if isinstance(exc, RunCancelled) else RunState.FAILED
                await self.ledger.finish(run_id, state, str(exc))
                raise
            except Exception as exc:
                await self.ledger.finish(run_id, RunState.FAILED, type(exc).__name__)
                raise
            finally:
                self.ledger.clear_cancel(run_id)
            trained = outcome.version
            note = f"Trained {trained.name} on {trained.examples} examples ({trained.answers} answers)."
            await self.ledger.finish(run_id, RunState.SUCCEEDED, note, trained.name)
            return outcome

    async def cancel(self, scope: str, run_id: int) -> None:
        """Ask a running run to stop at its next stage; the active model is never touched."""
        run = await self.ledger.find(scope, run_id)
        if run is None:
            raise UserError(f"There is no run #{run_id} here.")
        if run.state != RunState.RUNNING:
            raise UserError(f"Run #{run_id} is {run.state}; only a running run can be cancelled.")
        self.ledger.request_cancel(run_id)

    async def _train(
        self, scope: str, run_id: int, author: str, progress: Progress | None, activation: ActivationPolicy | None
    ) -> TrainOutcome:
        async def stage(text: str, fraction: float) -> None:
            if self.ledger.cancel_requested(run_id):
                raise RunCancelled(f"Run #{run_id} was cancelled; nothing changed.")
            if progress is not None:
                progress(text, fraction)
            await self.ledger.record_progress(run_id, text, fraction)

        await stage("collecting examples", 0.05)
        training = await self.db.run(lambda s: self.datasets.training_set(s, scope))
        split = split_training_set(training, starter_examples(), self.holdout_fraction)  # every scope starts there
        train, held = split.train, split.held
        await stage(f"training on {len(train)} examples", 0.2)
        model = await asyncio.to_thread(
            lambda: LocalModel.fit(
                [e.prompt for e in train],
                [e.answer for e in train],
                negatives=training.negatives,
                encoder=self.knowledge.encoder,  # cached: a retrain encodes only new prompts
            )
        )
        await stage("saving the new version", 0.7)
        name = await self.registry.next_name(scope)
        path = await asyncio.to_thread(self.registry.write, model, name, split.train_ids)
        answers = len({e.answer for e in train})
        version = await self.registry.add_local(name, scope, path, examples=len(train), answers=answers, author=author)
        candidate = LoadedVersion(name, model, tuple(split.train_ids))
        evaluation, previous_report = await self._score(scope, candidate, held, stage)
        policy = activation or self.activation
        previous = self.knowledge.model_version(scope) if self.knowledge.has_model(scope) else None
        activate = policy is ActivationPolicy.ALWAYS or (
            policy is ActivationPolicy.IF_NOT_WORSE
            and (previous_report is None or evaluation is None or evaluation.accuracy >= previous_report.accuracy)
        )
        if activate:
            await self.registry.activate_trained(scope, candidate)
        if progress is not None:
            progress("done", 1.0)
        log.info("trained %s scope=%s examples=%s activated=%s author=%s", name, scope, len(train), activate, author)
        info = replace(version, active=activate, metrics=evaluation.to_json() if evaluation else {})
        return TrainOutcome(info, activate, evaluation, previous)

    async def _score(
        self, scope: str, candidate: LoadedVersion, held: Sequence[Example], stage: StageCallback
    ) -> tuple[EvaluationReport | None, EvaluationReport | None]:
        """The candidate's and the active version's reports on the held-out split (None without one)."""
        if not held:
            return None, None
        await stage(f"evaluating on {len(held)} held-out examples", 0.8)
        evaluation = await self.testing.score(candidate, held)
        previous_report = None
        current = self.knowledge.active(scope)  # already in memory: no reload from disk
        if current is not None:
            previous_report = await self.testing.score(current, held)
            evaluation.previous = {"model_version": current.version, "accuracy": previous_report.accuracy}
        await self.registry.store_metrics(candidate.version, evaluation.to_json())
        return evaluation, previous_report
