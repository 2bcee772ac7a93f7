"""Local training runs: build a new immutable model version, score it, and activate it when allowed.

Training never touches the active model. A run first fits a gate model without the held-out split
and scores it there, on the questions every version of the scope is scored on; that score is the
version's recorded metrics and decides activation. Then it fits the version that serves on every
selected example, held-out ones included, writes it to its own folder and activates it when the
policy allows. The run is recorded in the ledger (the ``jobs`` command lists it), and a trainer
may cancel it between steps.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from teachbot import __version__
from teachbot.answering.knowledge import Knowledge, LoadedVersion
from teachbot.answering.local_model import LocalModel
from teachbot.config import ActivationPolicy
from teachbot.datasets.examples import Example
from teachbot.datasets.service import DatasetService, TrainingSet
from teachbot.errors import UserError
from teachbot.store.db import Database
from teachbot.training.crossval import CrossValidation, cross_validate
from teachbot.training.data import Split, split_training_set, starter_examples
from teachbot.training.evaluation import EvaluationReport
from teachbot.training.runs import Progress, RunCancelled, RunLedger, RunState
from teachbot.training.testing import TestingService
from teachbot.training.updates import (
    UPDATE,
    UPDATE_FROM,
    UpdateCheck,
    UpdatePlan,
    learned_pairs,
    new_examples,
    update_budget,
    update_size,
)
from teachbot.training.versions import VersionInfo, VersionRegistry

log = logging.getLogger(__name__)

#: Key of a version's stored metrics listing the held-out questions its gate answered right and wrong.
HELD_OUT = "held_out"
#: Key of a version's stored metrics listing the held-out questions the version itself, which learned them,
#: answered right and wrong: an update compares with it there without asking it again (``training/updates.py``).
SERVED = "held_out_learned"
#: Key of a version's stored metrics holding the hash of what it was trained from (``inputs_hash``).
INPUTS = "inputs"
#: A held-out split smaller than this is too few questions to judge a version by (one question moves
#: the score by more than 3 points): the run cross-validates the user's examples instead.
FEW_HELD_OUT = 30
#: Cross-validation needs at least this many of the user's examples, and uses at most CV_FOLDS folds.
MIN_CV_EXAMPLES = 10
CV_FOLDS = 5

#: Reports a run's step (text, fraction done) and stops the run if a trainer cancelled it.
StageCallback = Callable[[str, float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class DataCounts:
    """What a run learned from: the user's selected examples and their answers, and the built-in small talk."""

    yours: int = 0
    your_answers: int = 0
    built_in: int = 0


@dataclass(frozen=True, slots=True)
class TrainOutcome:
    """What a run made: the version, whether it answers now, and what its figures mean (``reused``: the
    inputs were those of an existing version, so that version was kept instead of making a new one)."""

    version: VersionInfo
    activated: bool
    report: EvaluationReport | None
    previous: str | None
    data: DataCounts | None = None
    crossval: CrossValidation | None = None
    reused: bool = False
    update: UpdateCheck | None = None  # the run only added a few examples: an update (``training/updates.py``)

    @property
    def few_held_out(self) -> bool:
        """Whether the held-out score rests on too few questions to mean much."""
        return self.report is not None and self.report.examples < FEW_HELD_OUT


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
        starter: bool = True,
    ) -> None:
        self.db = db
        self.datasets = datasets
        self.knowledge = knowledge
        self.ledger = ledger
        self.registry = registry
        self.testing = testing
        self.holdout_fraction = holdout_fraction
        self.activation = activation
        self.starter = starter  # False: a project's own data only, without the built-in small talk
        #: True in a process that trains once and answers nothing (the train command): the scope's active
        #: version leaves memory once it has answered the held-out questions, before the fits, the run's peaks
        #: (CLINC150: 50 MB). A process that answers or trains again keeps it: the next run compares with it.
        self.one_shot = False
        self.update_from = UPDATE_FROM  # the fewest learned examples a run may update (``training/updates.py``)
        self._locks: dict[str, asyncio.Lock] = {}

    async def train(
        self,
        scope: str,
        *,
        author: str,
        progress: Progress | None = None,
        activation: ActivationPolicy | None = None,
        run_id: int | None = None,
    ) -> TrainOutcome:
        """Train a new version for ``scope`` from everything selected, then evaluate and maybe activate.

        The run is recorded in the ledger; chat keeps answering meanwhile (fitting runs in a thread).
        """
        lock = self._locks.setdefault(scope, asyncio.Lock())
        if lock.locked():
            raise UserError("A training run for this scope is already going; wait for it or cancel it.", see="jobs")
        async with lock:
            if run_id is None:  # else a queued run a worker took (``ledger.begin``)
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
            note = (
                f"Kept {trained.name}: same data, settings and encoder."
                if outcome.reused
                else f"Trained {trained.name} on {trained.examples} examples ({trained.answers} answers)."
            )
            await self.ledger.finish(run_id, RunState.SUCCEEDED, note, trained.name)
            return outcome

    async def cancel(self, scope: str, run_id: int) -> None:
        """Ask a running run to stop at its next stage; the active model is never touched."""
        run = await self.ledger.find(scope, run_id)
        if run is None:
            raise UserError(f"There is no run #{run_id} here.")
        if run.state not in (RunState.RUNNING, RunState.QUEUED):
            raise UserError(f"Run #{run_id} is {run.state}; only a running run can be cancelled.")
        await self.ledger.request_cancel(run_id)

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
        starter = starter_examples() if self.starter else []
        split = split_training_set(training, starter, self.holdout_fraction)  # every scope starts there
        train, held = split.train, split.held
        policy = activation or self.activation
        counts = DataCounts(len(training.positives), len({e.answer for e in training.positives}), len(starter))
        encoder_id = self.knowledge.encoder.model_id if self.knowledge.encoder is not None else None
        inputs = inputs_hash(training, starter, encoder=encoder_id, holdout_fraction=self.holdout_fraction)
        same = next((v for v in reversed(await self.registry.in_scope(scope)) if v.metrics.get(INPUTS) == inputs), None)
        if same is not None:
            outcome = await self._reuse(scope, same, policy, author, counts)
            if progress is not None:
                progress("done", 1.0)
            return outcome
        current = self.knowledge.active(scope)  # already in memory: no reload from disk
        previous = current.version if current is not None else None
        update = await self._plan_update(scope, current, split, training.negatives) if current is not None else None
        del current  # each path looks it up, and lets it go before fitting (``one_shot``)
        if update is not None:
            candidate, served, check, carried = await self._update(scope, split, training.negatives, update, stage)
            evaluation, crossval = None, None
            compared: tuple[float, float] | None = (check.right, check.base_right)
        else:
            candidate, served, evaluation, compared, crossval = await self._gated(
                scope, split, training, starter, counts, stage
            )
            check, carried = None, {}
        name = candidate.version
        activate = policy is ActivationPolicy.ALWAYS or (
            policy is ActivationPolicy.IF_NOT_WORSE and (compared is None or compared[0] >= compared[1])
        )
        await stage("saving the new version", 0.9)
        path = await asyncio.to_thread(self.registry.write, candidate.model, name, candidate.prompt_ids)
        examples = len(candidate.prompt_ids)
        answers = len({e.answer for e in (*train, *held)})
        version = await self.registry.add_local(name, scope, path, examples=examples, answers=answers, author=author)
        if version.name != name:  # another process took the name meanwhile: the row has the next free one
            name = version.name
            candidate = replace(candidate, version=name)
        if check is None:
            metrics = {**_metrics(evaluation), INPUTS: inputs}
        else:  # the last gate's held-out figures stay this version's estimate of them (``training/updates.py``)
            metrics = {**carried, UPDATE: check.to_json(), INPUTS: inputs}
        if served:
            metrics[SERVED] = _keys(served)
        await self.registry.store_metrics(name, metrics)
        if activate:
            await self.registry.activate_trained(scope, candidate)
        if progress is not None:
            progress("done", 1.0)
        log.info("trained %s scope=%s examples=%s activated=%s author=%s", name, scope, examples, activate, author)
        info = replace(version, active=activate, metrics=metrics)
        return TrainOutcome(info, activate, evaluation, previous, counts, crossval, update=check)

    async def _gated(
        self,
        scope: str,
        split: Split,
        training: TrainingSet,
        starter: Sequence[Example],
        counts: DataCounts,
        stage: StageCallback,
    ) -> tuple[
        LoadedVersion, dict[str, bool], EvaluationReport | None, tuple[float, float] | None, CrossValidation | None
    ]:
        """A full run: the gate model, fitted without the held-out split and scored there (next to the active
        version), then the version that serves, fitted on everything, with its own held-out outcomes (see
        ``_fit_final``); with few held-out questions, the cross-validation of the user's examples too."""
        train, held = split.train, split.held
        current = self.knowledge.active(scope)
        theirs = await self._unseen_outcomes(scope, current, held) if current is not None and held else {}
        previous = current.version if current is not None else None
        if self.one_shot and current is not None:
            self.knowledge.set_model(scope, None)  # compared with already: see ``one_shot``
        del current  # not held through the fits (peak memory)
        await stage(f"training on {len(train)} examples", 0.2)
        model = await asyncio.to_thread(
            lambda: LocalModel.fit(
                [e.prompt for e in train],
                [e.answer for e in train],
                negatives=training.negatives,
                encoder=self.knowledge.encoder,  # cached: a retrain encodes only new prompts
                weights=split.train_weights,
            )
        )
        name = await self.registry.next_name(scope)
        gate = LoadedVersion(name, model, tuple(split.train_ids))
        evaluation, compared = await self._score(gate, held, previous, theirs, stage)
        del gate  # scored: not held through the final fit (peak memory)
        crossval = None
        if len(held) < FEW_HELD_OUT and counts.yours >= MIN_CV_EXAMPLES:
            crossval = await self._cross_validate(training.positives, starter, stage)
        if not held:
            return LoadedVersion(name, model, tuple(split.train_ids)), {}, evaluation, compared, crossval
        del model  # scored: free the gate model before the second fit (peak memory)
        candidate, served = await self._fit_final(name, split, training.negatives, evaluation, stage)
        return candidate, served, evaluation, compared, crossval

    async def _plan_update(
        self, scope: str, current: LoadedVersion, split: Split, negatives: Sequence[tuple[str, str]]
    ) -> UpdatePlan | None:
        """What this run adds to ``current`` when it is an update (``training/updates.py``), else None: it then
        fits a gate model as usual."""
        encoder_id = self.knowledge.encoder.model_id if self.knowledge.encoder is not None else None
        if not split.held or current.model.encoder_id != encoder_id:
            return None
        learned = learned_pairs(current.model)
        added = update_size(current.model, learned, [*split.train, *split.held], negatives)
        if not added:
            return None
        base = await self.registry.find(scope, current.version)
        since_gate = update_budget(base.metrics, sum(learned.values()), added, self.update_from)
        return None if since_gate is None else UpdatePlan(added, since_gate, learned, base.metrics)

    async def _update(
        self,
        scope: str,
        split: Split,
        negatives: Sequence[tuple[str, str]],
        plan: UpdatePlan,
        stage: StageCallback,
    ) -> tuple[LoadedVersion, dict[str, bool], UpdateCheck, dict[str, object]]:
        """An update's one fit, on every selected example, with its held-out outcomes; its check against the
        active version on the held-out questions both learned (did the new examples break answers it gave?); and
        the active version's stored held-out figures, the last gate's, which the update carries."""
        current = self.knowledge.active(scope)
        if current is None:
            raise UserError("The active version was switched off as training began; nothing changed: train again.")
        held = [e for e in split.held if (e.prompt, e.answer) in plan.learned]  # new ones: only the update's
        before = _recorded(
            plan.base_metrics, SERVED
        )  # what it answered when it was made: the same model, the same answers
        unasked = [e for e in held if question_key(e.prompt, e.answer) not in before]
        if unasked:  # a version made before they were recorded
            await stage(f"asking {current.version} {len(unasked)} held-out questions", 0.2)
            report = await self.testing.score(current, unasked)
            before.update((question_key(o.prompt, o.expected), o.correct) for o in report.outcomes)
        last = UpdateCheck.from_json(plan.base_metrics.get(UPDATE))  # the active version is an update itself
        gate_version = last.gate_version if last is not None else current.version
        gate_accuracy = plan.base_metrics.get("accuracy")
        base_name = current.version
        name = await self.registry.next_name(scope)
        adding = new_examples(plan.learned, split)
        await stage(f"learning {len(adding)} new examples beside {sum(plan.learned.values())}", 0.4)
        prompts, answers = [e.prompt for e, _, _ in adding], [e.answer for e, _, _ in adding]
        model = await asyncio.to_thread(current.model.extended, prompts, answers, [w for *_, w in adding])
        ids = (*current.prompt_ids, *(i for _, i, _ in adding))
        if self.one_shot:
            self.knowledge.set_model(scope, None)  # asked already: see ``one_shot``
        del current
        if model is None:  # a version saved before its rows' weights were kept: fitted from scratch
            candidate, after = await self._fit_final(name, split, negatives, None, stage)
        else:
            candidate = LoadedVersion(name, model, ids)
            after = await self._served(candidate, split.held)
        keys = [question_key(e.prompt, e.answer) for e in held]
        check = UpdateCheck(
            base=base_name,
            added=plan.added,
            added_since_gate=plan.since_gate,
            questions=len(held),
            right=sum(after[k] for k in keys),
            base_right=sum(before[k] for k in keys),
            gate_version=gate_version,
            gate_accuracy=float(gate_accuracy) if isinstance(gate_accuracy, int | float) else None,
        )
        carried = {k: v for k, v in plan.base_metrics.items() if k not in (UPDATE, INPUTS, SERVED)}
        return candidate, after, check, carried

    async def _reuse(
        self, scope: str, same: VersionInfo, policy: ActivationPolicy, author: str, counts: DataCounts
    ) -> TrainOutcome:
        """Training what ``same`` was trained from would make the same model again: keep ``same``, and
        activate it unless it is active already or the policy never activates."""
        previous = self.knowledge.model_version(scope) if self.knowledge.has_model(scope) else None
        activate = not same.active and policy is not ActivationPolicy.NEVER
        if activate:
            await self.registry.activate(scope, same.name, author=author)
        log.info("kept %s scope=%s: same inputs; activated=%s author=%s", same.name, scope, activate, author)
        info = replace(same, active=same.active or activate)
        return TrainOutcome(info, activate, None, previous, counts, reused=True)

    async def _cross_validate(
        self, examples: Sequence[Example], starter: Sequence[Example], stage: StageCallback
    ) -> CrossValidation:
        """Each of the user's examples answered by a model that did not learn it (see ``training/crossval.py``):
        what a small held-out split cannot tell. Each question is asked once: a copy (a dataset imported
        twice) in another fold would let that fold's model learn the very question it is asked."""
        examples = list({(e.prompt, e.answer): e for e in examples}.values())
        folds = min(CV_FOLDS, len(examples) // 2)
        await stage(f"cross-validating your {len(examples)} examples ({folds} folds)", 0.55)
        return await asyncio.to_thread(
            lambda: cross_validate(
                examples,
                folds=folds,
                starter=starter,
                threshold=self.knowledge.threshold,
                source="your examples",
                encoder=self.knowledge.encoder,
            )
        )

    async def _score(
        self,
        gate: LoadedVersion,
        held: Sequence[Example],
        current: str | None,
        theirs: dict[str, bool],
        stage: StageCallback,
    ) -> tuple[EvaluationReport | None, tuple[float, float] | None]:
        """The gate model's report on the held-out split, and its accuracy next to that of the active version
        ``current`` on the same questions (``theirs``, from ``_unseen_outcomes``; None without a held-out
        split or an active version to compare with)."""
        if not held:
            return None, None
        await stage(f"evaluating on {len(held)} held-out examples", 0.5)
        evaluation = await self.testing.score(gate, held)
        if current is None or not theirs:
            return evaluation, None
        mine = {question_key(o.prompt, o.expected): o.correct for o in evaluation.outcomes}
        candidate = sum(mine[k] for k in theirs) / len(theirs)
        before = sum(theirs.values()) / len(theirs)
        evaluation.previous = {"model_version": current, "accuracy": before, "questions": len(theirs)}
        return evaluation, (candidate, before)

    async def _unseen_outcomes(self, scope: str, current: LoadedVersion, held: Sequence[Example]) -> dict[str, bool]:
        """Whether ``current`` answers each held-out question right without having learned it.

        A version serves after learning its held-out questions too, so scoring it on them would
        flatter it: for a question it learned, its gate model's recorded outcome counts; a question
        it never saw (new data) is asked directly; a learned one without a record is left out.
        """
        learned = set(current.model.prompts)
        row = await self.registry.find(scope, current.version)
        recorded = _recorded(row.metrics)
        outcomes: dict[str, bool] = {}
        fresh = [e for e in held if e.prompt not in learned]
        if fresh:
            report = await self.testing.score(current, fresh)
            outcomes.update((question_key(o.prompt, o.expected), o.correct) for o in report.outcomes)
        for e in held:
            key = question_key(e.prompt, e.answer)
            if e.prompt in learned and key in recorded:
                outcomes[key] = recorded[key]
        return outcomes

    async def _fit_final(
        self,
        name: str,
        split: Split,
        negatives: Sequence[tuple[str, str]],
        evaluation: EvaluationReport | None,
        stage: StageCallback,
    ) -> tuple[LoadedVersion, dict[str, bool]]:
        """The version that serves: fitted on every selected example, the held-out ones included; and whether
        it answers each held-out question right (by ``question_key``), which the next update compares with.

        The gate model (fitted without them) was scored on the held-out split and decided
        activation; what users get should also know those questions, a tenth of the data.
        It costs a second fit of about the same size.
        """
        examples = [*split.train, *split.held]
        await stage(f"training the final version on all {len(examples)} examples", 0.6)
        model = await asyncio.to_thread(
            lambda: LocalModel.fit(
                [e.prompt for e in examples],
                [e.answer for e in examples],
                negatives=negatives,
                encoder=self.knowledge.encoder,  # the gate's vectors are cached: only the held-out ones are new
                weights=split.weights(),
            )
        )
        if evaluation is not None:
            evaluation.note = (
                f"Scored before learning these {len(split.held)} held-out questions; "
                f"{name} then learned from all {len(examples)} examples."
            )
        candidate = LoadedVersion(name, model, (*split.train_ids, *split.held_ids))
        return candidate, await self._served(candidate, split.held)

    async def _served(self, candidate: LoadedVersion, held: Sequence[Example]) -> dict[str, bool]:
        """Whether the version that serves answers each held-out question right, by ``question_key``."""
        report = await self.testing.score(candidate, held)
        return {question_key(o.prompt, o.expected): o.correct for o in report.outcomes}


def inputs_hash(
    training: TrainingSet, starter: Sequence[Example], *, encoder: str | None, holdout_fraction: float
) -> str:
    """A hash of everything a local run learns from and how: the selected examples with their ids, the
    negatives, the starter set, the encoder, the held-out fraction and the code's version. Two runs with the
    same hash make the same model, so the second keeps the first's version."""
    digest = hashlib.sha256()
    head = {"teachbot": __version__, "encoder": encoder, "holdout": holdout_fraction}
    rows: list[list[object]] = [[head]]
    rows += [["starter", e.prompt, e.answer, e.system, e.rejected, e.weight] for e in starter]
    rows += [
        [example_id, e.prompt, e.answer, e.system, e.rejected, e.weight, may_hold]
        for e, example_id, may_hold in zip(
            training.positives, training.example_ids, training.holdout_candidates, strict=True
        )
    ]
    rows += [["negative", prompt, answer] for prompt, answer in training.negatives]
    for row in rows:
        digest.update(json.dumps(row, ensure_ascii=False, sort_keys=True).encode() + b"\n")
    return digest.hexdigest()


def question_key(prompt: str, answer: str) -> str:
    """A short stable key of a held-out question with its expected answer, as versions record them."""
    return hashlib.sha256(json.dumps([prompt, answer], ensure_ascii=False).encode()).hexdigest()[:16]


def _metrics(evaluation: EvaluationReport | None) -> dict[str, object]:
    """A version's stored metrics: the gate's held-out report, plus which held-out questions it got
    right (``HELD_OUT``), so the next run can compare with this version on questions it had not seen."""
    if evaluation is None:
        return {}
    metrics = evaluation.to_json()
    metrics[HELD_OUT] = _keys({question_key(o.prompt, o.expected): o.correct for o in evaluation.outcomes})
    return metrics


def _keys(outcomes: Mapping[str, bool]) -> dict[str, list[str]]:
    """Outcomes by question key as a version's metrics store them: the keys answered right, and the others."""
    right = sorted(k for k, correct in outcomes.items() if correct)
    return {"right": right, "wrong": sorted(k for k, correct in outcomes.items() if not correct)}


def _recorded(metrics: Mapping[str, object], key: str = HELD_OUT) -> dict[str, bool]:
    """The held-out outcomes a version's metrics recorded under ``key`` (none for versions made before)."""
    held = metrics.get(key)
    if not isinstance(held, dict):
        return {}
    outcomes = {str(k): False for k in held.get("wrong", [])}
    outcomes.update((str(k), True) for k in held.get("right", []))
    return outcomes
