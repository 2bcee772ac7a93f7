"""Training runs: build a new immutable model version, evaluate it, activate it, roll back.

Training never touches the active model: the new version is written to its own folder (atomically),
evaluated on a held-out split that is the same for every version, and activated only when the policy
allows. Earlier versions stay on disk, so activation and rollback are instant.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from importlib import resources
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from teachbot.answering.knowledge import ActiveModel, Knowledge, build_reference
from teachbot.answering.local_model import LocalModel
from teachbot.answering.protocols import GLOBAL_SCOPE, Answer, Question
from teachbot.config import ActivationPolicy
from teachbot.datasets.examples import Example
from teachbot.datasets.formats import parse_examples
from teachbot.datasets.service import DatasetService, TrainingSet
from teachbot.errors import TeachbotError, UserError
from teachbot.store.db import Database
from teachbot.store.tables import ModelVersion, TrainingRun, utcnow
from teachbot.training.evaluation import EvaluationReport, Outcome, build_report

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]
MIN_HOLDOUT_EXAMPLES = 20
EXAMPLE_IDS_FILE = "example_ids.json"


@dataclass(frozen=True, slots=True)
class VersionInfo:
    name: str
    scope: str
    examples: int
    answers: int
    active: bool
    created_by: str
    created_at: str
    metrics: dict[str, object]

    def describe(self) -> str:
        accuracy = self.metrics.get("accuracy")
        score = f", holdout accuracy {float(accuracy):.1%}" if isinstance(accuracy, int | float) else ""
        mark = " (active)" if self.active else ""
        made = f"{self.created_at} by {self.created_by}"
        return f"{self.name}{mark}: {self.examples} examples, {self.answers} answers{score}, {made}"


class RunState(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


class RunCancelled(UserError):
    """A trainer cancelled the run; nothing was activated."""


@dataclass(frozen=True, slots=True)
class RunInfo:
    run_id: int
    kind: str
    state: str
    stage: str
    progress: float
    author: str
    version: str | None
    message: str

    def describe(self) -> str:
        version = f" → {self.version}" if self.version else ""
        detail = self.stage if self.state == RunState.RUNNING else self.message.splitlines()[0] if self.message else ""
        return f"#{self.run_id} {self.kind} {self.state} {self.progress:.0%}{version} by {self.author}: {detail}"


@dataclass(frozen=True, slots=True)
class TrainOutcome:
    version: VersionInfo
    activated: bool
    report: EvaluationReport | None
    previous: str | None

    def describe(self) -> str:
        lines = [f"Trained {self.version.name} on {self.version.examples} examples ({self.version.answers} answers)."]
        if self.report is not None:
            lines.append(self.report.summary(max_lines=3))
        lines.append(
            f"{self.version.name} is now active."
            if self.activated
            else f"Kept {self.previous} active; `!models activate {self.version.name}` switches."
        )
        return "\n".join(lines)


def starter_examples() -> list[Example]:
    """The bundled knowledge about teachbot itself."""
    data = resources.files("teachbot.resources").joinpath("starter.yaml").read_bytes()
    return parse_examples(data, source="starter.yaml", fmt="yaml")


def is_held_out(prompt: str, fraction: float) -> bool:
    """Deterministic split by prompt, so every version is evaluated on the same questions."""
    if fraction <= 0:
        return False
    bucket = int.from_bytes(hashlib.sha256(prompt.strip().lower().encode()).digest()[:4], "big") / 2**32
    return bucket < fraction


class TrainingService:
    """Builds, stores, evaluates and activates local model versions."""

    def __init__(
        self,
        db: Database,
        datasets: DatasetService,
        knowledge: Knowledge,
        models_dir: Path,
        *,
        holdout_fraction: float,
        activation: ActivationPolicy,
        with_reference: bool = False,
    ) -> None:
        self.db = db
        self.datasets = datasets
        self.knowledge = knowledge
        self.models_dir = models_dir
        self.holdout_fraction = holdout_fraction
        self.activation = activation
        self._locks: dict[str, asyncio.Lock] = {}
        self._cancelled: set[int] = set()
        self.with_reference = with_reference  # LLM backends show training examples in their prompts
        self.remote_models: dict[str, str] = {}  # scope → active fine-tuned model (shared with the LLM backend)
        self.remote_answer: Callable[[str, Question], Awaitable[Answer]] | None = None  # set on LLM backends

    # -- training
    async def train(
        self, scope: str, *, author: str, progress: Progress | None = None, activation: ActivationPolicy | None = None
    ) -> TrainOutcome:
        """Train a new version for ``scope`` from everything selected, then evaluate and maybe activate.

        The run is recorded for ``!jobs``; chat keeps answering meanwhile (fitting runs in a thread).
        """
        lock = self._locks.setdefault(scope, asyncio.Lock())
        if lock.locked():
            raise UserError("A training run for this scope is already going; wait for it or cancel it (`!jobs`).")
        async with lock:
            run_id = await self.db.run(lambda s: start_run(s, scope, author))
            try:
                outcome = await self._train(scope, run_id, author, progress, activation)
            except asyncio.CancelledError:
                await self.db.run(lambda s: finish_run(s, run_id, RunState.CANCELLED, "cancelled"))
                raise
            except UserError as exc:
                state = RunState.CANCELLED if isinstance(exc, RunCancelled) else RunState.FAILED
                reason = str(exc)
                await self.db.run(lambda s: finish_run(s, run_id, state, reason))
                raise
            except Exception as exc:
                reason = type(exc).__name__
                await self.db.run(lambda s: finish_run(s, run_id, RunState.FAILED, reason))
                raise
            finally:
                self._cancelled.discard(run_id)
            await self.db.run(
                lambda s: finish_run(s, run_id, RunState.SUCCEEDED, outcome.describe(), outcome.version.name)
            )
            return outcome

    async def _train(
        self, scope: str, run_id: int, author: str, progress: Progress | None, activation: ActivationPolicy | None
    ) -> TrainOutcome:
        async def stage(text: str, fraction: float) -> None:
            if run_id in self._cancelled:
                raise RunCancelled(f"Run #{run_id} was cancelled; nothing changed.")
            if progress is not None:
                progress(text, fraction)
            await self.db.run(lambda s: record_progress(s, run_id, text, fraction))

        await stage("collecting examples", 0.05)
        training = await self.db.run(lambda s: self.datasets.training_set(s, scope))
        starter = starter_examples()  # global knowledge: every scope starts from it
        train, train_ids, held = self._split(training, starter)
        await stage(f"training on {len(train)} examples", 0.2)
        model = await asyncio.to_thread(
            LocalModel.fit, [e.prompt for e in train], [e.answer for e in train], negatives=training.negatives
        )
        await stage("saving the new version", 0.7)
        name = await self.db.run(lambda s: next_version_name(s, scope))
        path = await asyncio.to_thread(self._save, model, name, train_ids)
        answers = len({e.answer for e in train})
        version = await self.db.run(lambda s: _insert_version(s, name, scope, path, len(train), answers, author))
        evaluation, previous_report = None, None
        if held:
            await stage(f"evaluating on {len(held)} held-out examples", 0.8)
            candidate = ActiveModel(name, model, tuple(train_ids))
            evaluation = await asyncio.to_thread(self._evaluate_model, candidate, held)
            current = self.knowledge.active(scope)  # already in memory: no reload from disk
            if current is not None:
                previous_report = await asyncio.to_thread(self._evaluate_model, current, held)
                evaluation.previous = {"model_version": current.version, "accuracy": previous_report.accuracy}
            metrics = evaluation.to_json()
            await self.db.run(lambda s: _store_metrics(s, name, metrics))
        policy = activation or self.activation
        previous = self.knowledge.model_version(scope) if self.knowledge.has_model(scope) else None
        activate = policy is ActivationPolicy.ALWAYS or (
            policy is ActivationPolicy.IF_NOT_WORSE
            and (previous_report is None or evaluation is None or evaluation.accuracy >= previous_report.accuracy)
        )
        if activate:
            await self.db.run(lambda s: _set_active(s, scope, name))
            ids = tuple(train_ids)
            reference = await asyncio.to_thread(build_reference, model, ids) if self.with_reference else None
            self.knowledge.set_model(scope, ActiveModel(name, model, ids, reference))
        if progress is not None:
            progress("done", 1.0)
        log.info("trained %s scope=%s examples=%s activated=%s author=%s", name, scope, len(train), activate, author)
        info = replace(version, active=activate, metrics=evaluation.to_json() if evaluation else {})
        return TrainOutcome(info, activate, evaluation, previous)

    # -- runs
    async def runs(self, scope: str, limit: int = 10) -> list[RunInfo]:
        """The newest training runs of ``scope``."""

        def load(s: Session) -> list[RunInfo]:
            rows = s.scalars(
                select(TrainingRun).where(TrainingRun.scope == scope).order_by(TrainingRun.id.desc()).limit(limit)
            )
            return [
                RunInfo(r.id, r.kind, r.state, r.stage, r.progress, r.author, r.version_name, r.message) for r in rows
            ]

        return await self.db.run(load)

    async def cancel(self, scope: str, run_id: int) -> str:
        """Ask a running run to stop at its next stage; the active model is never touched."""
        state = await self.db.run(lambda s: _run_state(s, scope, run_id))
        if state is None:
            raise UserError(f"There is no run #{run_id} here.")
        if state != RunState.RUNNING:
            raise UserError(f"Run #{run_id} is {state}; only a running run can be cancelled.")
        self._cancelled.add(run_id)
        return f"Run #{run_id} will stop at its next step."

    async def run_kind(self, scope: str, run_id: int) -> str | None:
        """``local`` or ``remote`` for a run of ``scope``, None when there is no such run."""
        return await self.db.run(
            lambda s: s.scalars(
                select(TrainingRun.kind).where(TrainingRun.id == run_id, TrainingRun.scope == scope)
            ).first()
        )

    async def mark_interrupted(self) -> int:
        """Runs left 'running' by a process that died are marked interrupted (at start)."""

        def mark(s: Session) -> int:
            result = s.execute(
                update(TrainingRun)
                .where(TrainingRun.state == RunState.RUNNING)
                .values(state=RunState.INTERRUPTED, finished_at=utcnow(), message="the process stopped during the run")
            )
            return int(getattr(result, "rowcount", 0) or 0)

        return await self.db.run(mark)

    def _split(
        self, training: TrainingSet, starter: list[Example]
    ) -> tuple[list[Example], list[int | None], list[Example]]:
        train: list[Example] = list(starter)
        ids: list[int | None] = [None] * len(starter)
        held: list[Example] = []
        candidates = sum(training.holdout_candidates)
        fraction = self.holdout_fraction if candidates >= MIN_HOLDOUT_EXAMPLES else 0.0
        for example, example_id, may_hold in zip(
            training.positives, training.example_ids, training.holdout_candidates, strict=True
        ):
            if may_hold and is_held_out(example.prompt, fraction):
                held.append(example)
            else:
                train.append(example)
                ids.append(example_id)
        if not train:
            raise UserError("There is nothing to train on: import a dataset or teach me something first.")
        return train, ids, held

    def _save(self, model: LocalModel, name: str, example_ids: Sequence[int | None]) -> str:
        self.models_dir.mkdir(parents=True, exist_ok=True)
        final = self.models_dir / name
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=self.models_dir))
        try:
            model.save(staging)
            (staging / EXAMPLE_IDS_FILE).write_text(json.dumps(list(example_ids)), encoding="utf-8")
            staging.rename(final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return name

    @staticmethod
    def _evaluate_model(active: ActiveModel, examples: Sequence[Example]) -> EvaluationReport:
        predictions = active.model.predict_many([e.prompt for e in examples])
        outcomes = [
            Outcome(e.prompt, e.answer, p.answer, p.confidence) for e, p in zip(examples, predictions, strict=True)
        ]
        return build_report(active.version, outcomes)

    # -- testing
    async def test(self, scope: str, examples: Sequence[Example], *, version: str | None = None) -> EvaluationReport:
        """Ask every prompt and score the answers; trains nothing.

        Without ``version`` this tests what users get now: the active model plus taught answers.
        """
        if not examples:
            raise UserError("The test set has no examples.")
        if version is not None:
            remote = await self.db.run(
                lambda s: s.scalars(
                    select(ModelVersion.remote_model).where(ModelVersion.name == version, ModelVersion.scope == scope)
                ).first()
            )
            if remote:
                return await self._evaluate_remote(scope, version, remote, examples)
            chosen = await self.load_version(scope, version)
            return await asyncio.to_thread(self._evaluate_model, chosen, examples)
        report = await asyncio.to_thread(self._evaluate_knowledge, scope, examples)
        earlier = await self._previous_version(scope)
        if earlier is not None:
            previous = await asyncio.to_thread(self._evaluate_model, earlier, examples)
            report.previous = {"model_version": previous.model_version, "accuracy": previous.accuracy}
        return report

    async def holdout_examples(self, scope: str) -> list[Example]:
        """The held-out split of ``scope``'s selected data: the questions every version is scored on."""
        training = await self.db.run(lambda s: self.datasets.training_set(s, scope))
        if not training.positives:
            return []
        _, _, held = self._split(training, [])
        return held

    async def _evaluate_remote(
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

    def _evaluate_knowledge(self, scope: str, examples: Sequence[Example]) -> EvaluationReport:
        outcomes = []
        for e in examples:
            answer = self.knowledge.answer(e.prompt, scope)
            outcomes.append(Outcome(e.prompt, e.answer, None if answer.is_fallback else answer.text, answer.confidence))
        return build_report(self.knowledge.model_version(scope) or "untrained", outcomes)

    async def _previous_name(self, scope: str) -> str | None:
        """The local version activated before the active one, by creation order."""

        def previous(s: Session) -> str | None:
            rows = list(
                s.scalars(
                    select(ModelVersion)
                    .where(ModelVersion.scope == scope, ModelVersion.backend == "local")
                    .order_by(ModelVersion.id)
                )
            )
            current = next((i for i, r in enumerate(rows) if r.active), None)
            return rows[current - 1].name if current else None

        return await self.db.run(previous)

    async def _previous_version(self, scope: str) -> ActiveModel | None:
        name = await self._previous_name(scope)
        if name is None:
            return None
        try:
            return await self.load_version(scope, name)
        except TeachbotError:
            return None

    # -- versions
    async def load_version(self, scope: str, name: str) -> ActiveModel:
        """Load stored version ``name`` (visible from ``scope``) from disk."""
        row = await self.db.run(lambda s: s.scalars(select(ModelVersion).where(ModelVersion.name == name)).first())
        if row is None or row.scope not in (scope, GLOBAL_SCOPE):
            raise UserError(f"There is no model version `{name}` here. `!models` lists them.")
        return await asyncio.to_thread(self._load, row.name, row.path)

    def _load(self, name: str, path: str) -> ActiveModel:
        folder = self.models_dir / path
        model = LocalModel.load(folder)
        try:
            ids = json.loads((folder / EXAMPLE_IDS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise TeachbotError(f"model {name}: unreadable {EXAMPLE_IDS_FILE}: {exc}") from None
        prompt_ids = tuple(i if isinstance(i, int) else None for i in ids)
        reference = build_reference(model, prompt_ids) if self.with_reference else None
        return ActiveModel(name, model, prompt_ids, reference)

    def remove_partial_versions(self) -> int:
        """Delete half-written version folders a killed run left behind (they were never recorded)."""
        if not self.models_dir.is_dir():
            return 0
        partial = [p for p in self.models_dir.iterdir() if p.is_dir() and p.name.startswith(".")]
        for folder in partial:
            shutil.rmtree(folder, ignore_errors=True)
        return len(partial)

    async def load_active(self) -> int:
        """Load every scope's active version into the knowledge (at start). Returns how many loaded."""
        await asyncio.to_thread(self.remove_partial_versions)
        rows = await self.db.run(
            lambda s: list(
                s.scalars(select(ModelVersion).where(ModelVersion.active.is_(True), ModelVersion.backend == "local"))
            )
        )
        loaded = 0
        for row in rows:
            try:
                active = await asyncio.to_thread(self._load, row.name, row.path)
            except TeachbotError as exc:
                log.error("cannot load model %s for scope %s: %s", row.name, row.scope, exc)
                continue
            self.knowledge.set_model(row.scope, active)
            loaded += 1
        return loaded

    async def versions(self, scope: str) -> list[VersionInfo]:
        def load(s: Session) -> list[VersionInfo]:
            rows = s.scalars(select(ModelVersion).where(ModelVersion.scope == scope).order_by(ModelVersion.id))
            return [_version_info(r) for r in rows]

        return await self.db.run(load)

    async def activate(self, scope: str, name: str, *, author: str) -> str:
        """Make stored version ``name`` the active one for ``scope`` (a fine-tuned one answers through the LLM)."""
        row = await self.db.run(lambda s: s.scalars(select(ModelVersion).where(ModelVersion.name == name)).first())
        if row is None or row.scope not in (scope, GLOBAL_SCOPE):
            raise UserError(f"There is no model version `{name}` here. `!models` lists them.")
        if row.scope != scope:
            raise UserError(f"`{name}` belongs to the global scope; train this server's own version first.")
        if row.backend != "local":
            await self.db.run(lambda s: _set_active(s, scope, name))
            self.remote_models[scope] = row.remote_model or ""
            log.info("activated fine-tuned %s (%s) scope=%s author=%s", name, row.remote_model, scope, author)
            return f"{name} ({row.remote_model}) now answers here."
        active = await self.load_version(scope, name)
        await self.db.run(lambda s: _set_active(s, scope, name))
        self.knowledge.set_model(scope, active)
        log.info("activated %s scope=%s author=%s", name, scope, author)
        return f"{name} is now active."

    async def rollback(self, scope: str, *, author: str) -> str:
        """Activate the version before the active one."""
        earlier = await self._previous_name(scope)
        if earlier is None:
            raise UserError("There is no earlier version to roll back to.")
        return await self.activate(scope, earlier, author=author)


def start_run(s: Session, scope: str, author: str) -> int:
    run = TrainingRun(scope=scope, author=author, state=RunState.RUNNING, stage="starting")
    s.add(run)
    s.flush()
    return run.id


def record_progress(s: Session, run_id: int, stage: str, fraction: float) -> None:
    s.execute(update(TrainingRun).where(TrainingRun.id == run_id).values(stage=stage[:200], progress=fraction))


def finish_run(s: Session, run_id: int, state: RunState, message: str, version: str | None = None) -> None:
    values: dict[str, object] = {"state": state, "message": message[:2000], "finished_at": utcnow()}
    if state == RunState.SUCCEEDED:
        values["progress"] = 1.0
        values["version_name"] = version
    s.execute(update(TrainingRun).where(TrainingRun.id == run_id).values(**values))


def _run_state(s: Session, scope: str, run_id: int) -> str | None:
    return s.scalars(select(TrainingRun.state).where(TrainingRun.id == run_id, TrainingRun.scope == scope)).first()


def next_version_name(s: Session, scope: str) -> str:
    count = s.scalar(select(func.count()).select_from(ModelVersion).where(ModelVersion.scope == scope)) or 0
    prefix = "v" if scope == GLOBAL_SCOPE else f"{scope}-v"
    return f"{prefix}{count + 1}"


def _insert_version(
    s: Session, name: str, scope: str, path: str, examples: int, answers: int, author: str
) -> VersionInfo:
    row = ModelVersion(name=name, scope=scope, path=path, examples=examples, answers=answers, created_by=author)
    s.add(row)
    s.flush()
    return _version_info(row)


def _store_metrics(s: Session, name: str, metrics: dict[str, object]) -> None:
    s.execute(update(ModelVersion).where(ModelVersion.name == name).values(metrics=metrics))


def _set_active(s: Session, scope: str, name: str) -> str | None:
    """Activate ``name`` among the scope's versions of the same backend; returns its remote model, if any."""
    row = s.scalars(select(ModelVersion).where(ModelVersion.name == name)).one()
    s.execute(
        update(ModelVersion)
        .where(ModelVersion.scope == scope, ModelVersion.backend == row.backend)
        .values(active=False)
    )
    row.active = True
    return row.remote_model


def _version_info(row: ModelVersion) -> VersionInfo:
    return VersionInfo(
        name=row.name,
        scope=row.scope,
        examples=row.examples,
        answers=row.answers,
        active=row.active,
        created_by=row.created_by,
        created_at=row.created_at.strftime("%Y-%m-%d %H:%M"),
        metrics=dict(row.metrics or {}),
    )
