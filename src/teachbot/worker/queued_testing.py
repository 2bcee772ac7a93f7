"""``!test`` through the job queue, for bot processes (``training_runner = queue``).

Scoring a test set is CPU work (every question through the model) or many LLM calls, so a worker does
it: ``test`` records a queued ``test`` run carrying the questions, and reads the report back from the
run's ``result`` once a worker has scored them. The worker answers with what it holds, which the change
feed keeps equal to every other process (the active version and the taught answers of each scope).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from teachbot.datasets.examples import Example
from teachbot.errors import UserError
from teachbot.store.db import Database
from teachbot.training.evaluation import EvaluationReport, Outcome
from teachbot.training.runs import RunCancelled, RunLedger, RunState
from teachbot.training.testing import TestingService
from teachbot.worker.queue import TrainingQueue
from teachbot.worker.queued import report_from_metrics, require_worker, wait_for_run

__all__ = ["TEST_AUTHOR", "QueuedTesting", "report_from_result", "result_of"]

TEST_AUTHOR = "test"


class QueuedTesting:
    """The ``test`` of ``TestingService``, carried out by a worker; ``holdout_examples`` stays here."""

    __test__ = False  # not a pytest test class, despite its name

    def __init__(
        self,
        local: TestingService,
        queue: TrainingQueue,
        *,
        db: Database,
        ledger: RunLedger,
        heartbeat_seconds: float,
    ) -> None:
        self.local = local
        self.queue = queue
        self.db = db
        self.ledger = ledger
        self.heartbeat_seconds = heartbeat_seconds

    async def holdout_examples(self, scope: str) -> list[Example]:
        """The held-out split of ``scope`` (a database read: no need for a worker)."""
        return await self.local.holdout_examples(scope)

    async def test(
        self, scope: str, examples: Sequence[Example], *, version: str | None = None, author: str = ""
    ) -> EvaluationReport:
        """Queue the questions, wait for a worker to score them, and return its report; the run is ``author``'s."""
        if not examples:
            raise UserError("The test set has no examples.")
        run_id = await self.ledger.queue_run(scope, author or TEST_AUTHOR, kind="test")
        await self.queue.defer_test(run_id, [(e.prompt, e.answer) for e in examples], version)
        await require_worker(self.db, self.heartbeat_seconds, f"Test run #{run_id}")
        state, message, _ = await wait_for_run(self.ledger, run_id, None)
        if state == RunState.CANCELLED:
            raise RunCancelled(f"Test run #{run_id} was cancelled.")
        result = await self.ledger.result(run_id)
        report = report_from_result(result) if state == RunState.SUCCEEDED and result else None
        if report is None:
            raise UserError(f"Test run #{run_id} failed: {message}")
        return report


def result_of(report: EvaluationReport) -> dict[str, Any]:
    """A report as a run's ``result``: its JSON plus every outcome (the results folder charts them)."""
    outcomes = [[o.prompt, o.expected, o.answer, o.confidence] for o in report.outcomes]
    return report.to_json() | {"outcomes": outcomes}


def report_from_result(result: dict[str, Any]) -> EvaluationReport | None:
    """The report a worker stored with ``result_of``; None when it cannot be read."""
    report = report_from_metrics(result)
    if report is not None:
        rows = result.get("outcomes") or []
        report.outcomes = [Outcome(str(p), str(e), None if a is None else str(a), float(c)) for p, e, a, c in rows]
    return report
