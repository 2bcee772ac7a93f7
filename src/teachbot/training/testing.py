"""Testing: how well what users get now, or a stored version, answers a set of questions.

Nothing is trained or activated here. ``!test`` without a file scores the held-out split, the
same questions every version of the scope was scored on when it was trained. A version learns its
held-out questions once it has been scored on them (training/service.py), so a report on questions
the version learned says so, and gives the score its gate model recorded before learning them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from teachbot.answering.knowledge import Knowledge, LoadedVersion
from teachbot.answering.protocols import GLOBAL_SCOPE, Answer, Question
from teachbot.datasets.examples import Example
from teachbot.datasets.service import DatasetService
from teachbot.errors import TeachbotError, UserError
from teachbot.store.db import Database
from teachbot.training.data import split_training_set
from teachbot.training.evaluation import EvaluationReport, Outcome, build_report
from teachbot.training.versions import VersionRegistry

#: Asks a fine-tuned model (by name) a question: the LLM backend's ``answer_as``.
RemoteAnswer = Callable[[str, Question], Awaitable[Answer]]


def score_version(version: LoadedVersion, examples: Sequence[Example]) -> EvaluationReport:
    """The report of one local version on ``examples`` (blocking: CPU work)."""
    predictions = version.model.predict_many([e.prompt for e in examples])
    outcomes = [Outcome(e.prompt, e.answer, p.answer, p.confidence) for e, p in zip(examples, predictions, strict=True)]
    return build_report(version.version, outcomes)


class TestingService:
    """Scores the knowledge of a scope, or one of its versions, on examples; changes nothing."""

    __test__ = False  # not a pytest test class, despite its name

    def __init__(
        self,
        db: Database,
        datasets: DatasetService,
        knowledge: Knowledge,
        versions: VersionRegistry,
        *,
        holdout_fraction: float,
        remote_answer: RemoteAnswer | None = None,
    ) -> None:
        self.db = db
        self.datasets = datasets
        self.knowledge = knowledge
        self.versions = versions
        self.holdout_fraction = holdout_fraction
        self.remote_answer = remote_answer  # None on the local backend: fine-tuned versions cannot be tested

    async def test(
        self, scope: str, examples: Sequence[Example], *, version: str | None = None, author: str = ""
    ) -> EvaluationReport:
        """Ask every prompt and score the answers; trains nothing.

        Without ``version`` this tests what users get now: the active model plus taught answers. ``author``
        is who asked (a queued test records it on its run; here nothing is recorded).
        """
        if not examples:
            raise UserError("The test set has no examples.")
        if version is not None:
            row = await self.versions.find(scope, version)
            if row.remote_model:
                return await self._score_remote(scope, version, row.remote_model, examples)
            chosen = await self.versions.load(scope, version)
            report = await self.score(chosen, examples)
            report.note = await self._learned_note(scope, chosen, examples)
            return report
        report = await asyncio.to_thread(self._score_knowledge, scope, examples)
        active = self.knowledge.active(scope) or self.knowledge.active(GLOBAL_SCOPE)
        if active is not None:
            report.note = await self._learned_note(scope, active, examples)
        earlier = await self._previous_version(scope)
        if earlier is not None:
            previous = await self.score(earlier, examples)
            report.previous = {"model_version": previous.model_version, "accuracy": previous.accuracy}
        return report

    async def score(self, version: LoadedVersion, examples: Sequence[Example]) -> EvaluationReport:
        """``score_version`` off the event loop."""
        return await asyncio.to_thread(score_version, version, examples)

    async def holdout_examples(self, scope: str) -> list[Example]:
        """The held-out split of ``scope``'s selected data: the questions every version is scored on."""
        training = await self.db.run(lambda s: self.datasets.training_set(s, scope))
        if not training.positives:
            return []
        return split_training_set(training, [], self.holdout_fraction).held

    async def _score_remote(
        self, scope: str, version: str, model: str, examples: Sequence[Example]
    ) -> EvaluationReport:
        """A fine-tuned version answers every prompt; an answer counts when it matches the expected text."""
        if self.remote_answer is None:
            raise UserError(f"`{version}` is a fine-tuned model; testing it needs the openai backend.")
        outcomes = []
        for e in examples:
            answer = await self.remote_answer(model, Question(text=e.prompt, scope=scope, user_id="test"))
            outcomes.append(Outcome(e.prompt, e.answer.strip(), answer.text.strip() or None, 1.0))
        return build_report(version, outcomes)

    def _score_knowledge(self, scope: str, examples: Sequence[Example]) -> EvaluationReport:
        outcomes = []
        answers = self.knowledge.answer_many([e.prompt for e in examples], scope)  # questions encoded in batches
        for e, answer in zip(examples, answers, strict=True):
            outcomes.append(Outcome(e.prompt, e.answer, None if answer.is_fallback else answer.text, answer.confidence))
        return build_report(self.knowledge.model_version(scope) or "untrained", outcomes)

    async def _learned_note(self, scope: str, version: LoadedVersion, examples: Sequence[Example]) -> str:
        """What the figures mean when ``version`` learned test questions: "" when it learned none.

        When it learned most of them (the held-out split, which a version learns once scored on it),
        the fair figure is the one its gate model recorded at training, before learning them.
        """
        learned = set(version.model.prompts)
        seen = sum(e.prompt in learned for e in examples)
        if not seen:
            return ""
        note = f"{version.version} learned {seen} of these {len(examples)} questions in training"
        if 2 * seen <= len(examples):
            return note + "."
        note += ", so this shows what it recalls, not how it answers new questions."
        try:
            accuracy = (await self.versions.find(scope, version.version)).metrics.get("accuracy")
        except UserError:
            accuracy = None
        if isinstance(accuracy, int | float):
            note += f" Scored on its held-out split before learning it: accuracy {accuracy:.1%}."
        return note

    async def _previous_version(self, scope: str) -> LoadedVersion | None:
        """The version before the active one, to compare with; None when there is none or it cannot load."""
        name = await self.versions.previous_name(scope)
        if name is None:
            return None
        try:
            return await self.versions.load(scope, name)
        except TeachbotError:
            return None
