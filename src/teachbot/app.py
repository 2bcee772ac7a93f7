"""The composition root: builds every service once from ``Settings`` and hands them to the transports."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from teachbot.answering.chat import ChatService
from teachbot.answering.encoding import CachedEncoder, LazyEncoder, lazy_encoder
from teachbot.answering.knowledge import Knowledge
from teachbot.answering.local import LocalChatModel
from teachbot.answering.nearest import TAUGHT_THRESHOLD
from teachbot.answering.protocols import GLOBAL_SCOPE, ChatModel
from teachbot.config import ActivationPolicy, Backend, Settings, TrainingRunner
from teachbot.datasets.service import DatasetService
from teachbot.files import FileService
from teachbot.follow import ChangeFollower
from teachbot.speech.service import SpeechService
from teachbot.store.changes import ChangeFeed, latest_id
from teachbot.store.db import Database
from teachbot.store.processes import Heartbeat, alive_processes
from teachbot.store.tables import Example, ExampleSource, ExampleStatus, ModelVersion, Polarity
from teachbot.store.usage import DatabaseUsageLedger
from teachbot.teaching.service import TeachingService
from teachbot.training.runs import RunLedger
from teachbot.training.service import TrainingService
from teachbot.training.testing import TestingService
from teachbot.training.versions import VersionRegistry

if TYPE_CHECKING:
    from teachbot.llm import OpenAIChatModel
    from teachbot.training.remote import RemoteTrainingService
    from teachbot.worker.queue import TrainingQueue
    from teachbot.worker.queued import QueuedTraining
    from teachbot.worker.queued_testing import QueuedTesting
    from teachbot.worker.queued_tuning import QueuedFineTuning

log = logging.getLogger(__name__)

MEMORY_TURNS = 20  # recent channel messages offered to LLM backends; the prompt keeps what fits its budget


@dataclass
class App:
    """Everything a transport needs; built by ``App.start`` and released by ``close``."""

    settings: Settings
    db: Database
    knowledge: Knowledge
    model: ChatModel
    chat: ChatService
    teaching: TeachingService
    datasets: DatasetService
    training: TrainingService | QueuedTraining  # what commands call: here, or through the job queue
    runs: RunLedger
    versions: VersionRegistry
    testing: TestingService | QueuedTesting  # what ``!test`` calls: here, or through the job queue
    files: FileService
    speech: SpeechService
    remote: RemoteTrainingService | QueuedFineTuning | None = None  # fine-tuning jobs, on the openai backend
    feed: ChangeFeed | None = field(default=None, repr=False)  # what other processes change, applied here
    heartbeat: Heartbeat | None = field(default=None, repr=False)  # this process's row in ``processes``
    queue: TrainingQueue | None = field(default=None, repr=False)  # the job queue (training_runner = queue)
    trainer: TrainingService | None = field(default=None, repr=False)  # trains in this process (starter, worker)
    encoder: CachedEncoder | None = field(default=None, repr=False)  # sentence encoder (None: encoder=none)

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    @classmethod
    async def start(
        cls, settings: Settings, *, role: str = "cli", encoder: LazyEncoder | None = None, preload_encoder: bool = True
    ) -> App:
        """Open the database (migrating it), load the active models and taught answers.

        ``role`` (bot, worker, chat, cli) is what ``teachbot status`` shows for this process. The sentence
        encoder loads in the background meanwhile, so the first question does not wait for it (``encoder``:
        the one ``settings.encoder`` names, already loading; the app closes it). ``preload_encoder=False`` leaves
        it to load on its first uncached text: a process that answers nothing (the train command) and finds
        every vector cached never loads it (CLINC150 retrain after 10 corrections: 406 MB at the peak, not 450).
        """
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if encoder is None:  # finds the files (or refuses the setting); loads nothing yet
            encoder = lazy_encoder(settings.encoder, cache_dir=settings.encoder_prepared_in)
        if encoder is not None and preload_encoder:
            encoder.start()  # loads while the database opens and the models load: the first question needs it
        db: Database | None = None
        cached: CachedEncoder | None = None
        try:
            db = Database(settings.effective_database_url)
            await db.run_blocking(db.migrate)
            if encoder is not None:
                cached = CachedEncoder(encoder, settings.cache_dir)
            knowledge = Knowledge(
                threshold=settings.confidence_threshold,
                taught_threshold=TAUGHT_THRESHOLD,
                fallback=settings.fallback_answer,
                encoder=cached,
            )
            model, llm = build_chat_model(settings, knowledge, db)
            datasets = DatasetService(db)
            runs = RunLedger(db, heartbeat_seconds=settings.heartbeat_seconds)
            versions = VersionRegistry(
                db,
                knowledge,
                settings.data_dir / "models",
                # scope → active fine-tuned model: the LLM backend answers with what activation puts here
                remote_models=llm.scope_models if llm is not None else {},
                with_reference=settings.backend is not Backend.LOCAL,
            )
            testing = TestingService(
                db,
                datasets,
                knowledge,
                versions,
                holdout_fraction=settings.holdout_fraction,
                remote_answer=llm.answer_as if llm is not None else None,
            )
            training = TrainingService(
                db,
                datasets,
                knowledge,
                ledger=runs,
                registry=versions,
                testing=testing,
                holdout_fraction=settings.holdout_fraction,
                activation=settings.activation,
                starter=settings.starter_examples,
            )
            remote = None
            if llm is not None:
                from teachbot.llm import FineTuner
                from teachbot.training.remote import RemoteTrainingService

                tuner = FineTuner(llm.client, model=settings.llm_model, system_prompt=llm.prompts.system_prompt)
                remote = RemoteTrainingService(
                    db,
                    datasets,
                    tuner,
                    ledger=runs,
                    registry=versions,
                    holdout_fraction=settings.holdout_fraction,
                    poll_seconds=settings.llm_finetune_poll_seconds,
                )
            app = cls(
                settings=settings,
                db=db,
                knowledge=knowledge,
                model=model,
                chat=ChatService(db, model, memory_turns=0 if settings.backend is Backend.LOCAL else MEMORY_TURNS),
                teaching=TeachingService(db, knowledge),
                datasets=datasets,
                training=training,
                trainer=training,
                runs=runs,
                versions=versions,
                testing=testing,
                files=FileService(settings.data_dir, max_send_bytes=settings.max_send_bytes),
                speech=SpeechService(settings),
                remote=remote,
                encoder=cached,
            )
        except BaseException:
            # a process that exits while onnxruntime is still starting its session in another thread aborts
            if cached is not None:
                cached.close()
            elif encoder is not None:
                encoder.close()
            if db is not None:
                db.close()
            raise
        try:
            await app._register(role)
            position = await db.run(latest_id)  # before loading: a change committed meanwhile is applied again
            await app._load_knowledge()
            await app._follow_changes(position)
            await app._open_queue(role)
        except BaseException:
            await app.close()
            raise
        return app

    async def _register(self, role: str) -> None:
        """Join the ``processes`` table: runs this process starts carry its id (see ``store/processes.py``)."""
        shards = self.settings.shard_label if role == "bot" else ""
        self.heartbeat = Heartbeat(
            self.db,
            role=role,
            shards=shards,
            interval=self.settings.heartbeat_seconds,
            change_retention=timedelta(hours=self.settings.change_retention_hours),
        )
        self.heartbeat.feed_position = lambda: self.feed.position if self.feed is not None else 0
        self.runs.process_id = await self.heartbeat.start()

    async def _open_queue(self, role: str) -> None:
        """With ``training_runner = queue``, commands train, fine-tune and test through the job queue
        (``worker/``); the worker itself does that work with the services built here."""
        if self.settings.training_runner is not TrainingRunner.QUEUE:
            return
        from teachbot.worker.queue import TrainingQueue
        from teachbot.worker.queued import QueuedTraining
        from teachbot.worker.queued_testing import QueuedTesting
        from teachbot.worker.queued_tuning import QueuedFineTuning

        self.queue = TrainingQueue(self.settings.effective_database_url)
        await self.queue.open()
        if role == "worker":
            return
        assert self.trainer is not None and isinstance(self.testing, TestingService)
        every = self.settings.heartbeat_seconds
        self.training = QueuedTraining(
            self.db,
            self.queue,
            trainer=self.trainer,
            ledger=self.runs,
            versions=self.versions,
            knowledge=self.knowledge,
            heartbeat_seconds=every,
        )
        self.testing = QueuedTesting(self.testing, self.queue, db=self.db, ledger=self.runs, heartbeat_seconds=every)
        if self.remote is not None:
            self.remote = QueuedFineTuning(self.db, self.queue, ledger=self.runs, heartbeat_seconds=every)

    async def _follow_changes(self, position: int) -> None:
        """Apply what other processes teach, forget and activate from now on (``store/changes.py``)."""
        follower = ChangeFollower(self.knowledge, self.versions)
        self.feed = ChangeFeed(self.db, follower.apply, after=position, poll_seconds=self.settings.change_poll_seconds)
        await self.feed.start()

    async def _needs_starter(self) -> bool:
        """Train the starter version only when the global scope never had an active local version: one that
        exists but cannot be loaded here is reported by ``load_active``, never replaced behind its back."""
        if self.knowledge.has_model(GLOBAL_SCOPE):
            return False
        active = await self.db.run(
            lambda s: s.scalar(
                select(ModelVersion.name).where(
                    ModelVersion.scope == GLOBAL_SCOPE, ModelVersion.backend == "local", ModelVersion.active.is_(True)
                )
            )
        )
        if active is not None:
            log.error(
                "the active global model %s could not be loaded (see above); answering with taught answers and "
                "the fallback until it can be, or until another version is activated (teachbot models activate)",
                active,
            )
            return False
        return True

    async def _other_processes(self) -> int:
        """How many other live processes share this database (the ``processes`` table)."""
        interval = self.settings.heartbeat_seconds
        alive = await self.db.run(lambda s: alive_processes(s, interval))
        mine = self.heartbeat.process_id if self.heartbeat is not None else None
        return sum(p.id != mine for p in alive)

    async def _load_knowledge(self) -> None:
        interrupted = await self.runs.mark_interrupted()
        if interrupted:
            log.warning("%s training run(s) were interrupted by a stop; the active models are unchanged", interrupted)
        loaded, stale = await self.versions.load_active()
        assert self.trainer is not None  # here, not through the queue: a bot must not wait for a worker
        others = await self._other_processes() if stale else 0
        for scope in stale:  # trained with another sentence encoder (or none): the same data, trained again
            if others:  # they may run with the other encoder: two settings would retrain each other's versions
                log.error(
                    "scope %s: the active version was trained with another sentence encoder (or none), and %d other "
                    "process(es) share this database, so it is not trained again here; give every process the "
                    "same `encoder` setting",
                    scope,
                    others,
                )
                continue
            log.warning("the sentence encoder changed since scope %s was trained: training it again", scope)
            serving = self.knowledge.has_model(scope)  # a wording-only version serves until then
            await self.trainer.train(scope, author="teachbot", activation=ActivationPolicy.ALWAYS)
            loaded += not serving
        if self.settings.starter_examples and await self._needs_starter():
            log.info("no trained model yet: training the starter version")
            await self.trainer.train(GLOBAL_SCOPE, author="teachbot")
            loaded += 1

        def taught(s: Session) -> list[tuple[str, int, str, str, bool]]:
            rows = s.execute(
                select(Example.scope, Example.id, Example.prompt, Example.answer, Example.polarity).where(
                    Example.status == ExampleStatus.ACTIVE,
                    Example.source.in_([ExampleSource.CORRECTION, ExampleSource.FEEDBACK]),
                )
            )
            return [(scope, i, p, a, pol == Polarity.NEGATIVE) for scope, i, p, a, pol in rows]

        rows = await self.db.run(taught)
        for scope, example_id, prompt, answer, negative in rows:
            self.knowledge.teach(scope, example_id, prompt, answer, negative=negative)
        log.info("knowledge loaded: %s active model(s), %s taught item(s)", loaded, len(rows))

    async def close(self) -> None:
        if self.feed is not None:
            await self.feed.close()
        if self.queue is not None:
            await self.queue.close()
        if self.heartbeat is not None:
            await self.heartbeat.close()
        close = getattr(self.model, "close", None)
        if close is not None:
            await close()
        if self.encoder is not None:
            await self._settle_taught()
            self.encoder.close()
        self.db.close()

    async def _settle_taught(self) -> None:
        """Encode what was taught and never asked after (a correction is encoded by the next question), so
        its vector is in the cache for the next training run, which then need not load the encoder at all."""
        try:
            await asyncio.to_thread(self.knowledge.settle)
        except Exception:  # closing goes on: the next run encodes it instead
            log.warning("could not encode the last taught prompts before closing", exc_info=True)


def build_chat_model(
    settings: Settings, knowledge: Knowledge, db: Database
) -> tuple[ChatModel, OpenAIChatModel | None]:
    """The answering backend the ``backend`` setting names, and its LLM part when it has one."""
    local = LocalChatModel(knowledge)
    if settings.backend is Backend.LOCAL:
        return local, None
    from teachbot.llm import HybridChatModel, OpenAIChatModel

    llm = OpenAIChatModel.from_settings(
        settings,
        retrieve=lambda question: knowledge.retrieve(question.text, question.scope),
        ledger=DatabaseUsageLedger(db),
    )
    if settings.backend is Backend.OPENAI:
        return llm, llm
    return HybridChatModel(local, llm, settings.confidence_threshold), llm
