"""Work that arrives together goes in one trip: questions to the local model, exchanges to the database.

Every answer takes the knowledge's lock and the encoder runs one batch at a time, and every stored exchange
costs a trip to the database thread and a commit: under load each message paid those trips one by one.
A ``Batcher`` runs what waits together in one call: an item submitted while a trip is under way waits for
it, then goes with everything that arrived meanwhile. Alone, an item goes at once, as before. If a trip
fails, its items are run one by one, so a bad one costs only its own caller.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from teachbot.answering.knowledge import Knowledge
from teachbot.answering.protocols import Answer

log = logging.getLogger(__name__)

__all__ = ["MAX_BATCH", "AnswerQueue", "Batcher"]

#: Questions answered in one trip at most: encoding more short questions at once saves nothing per question
#: (all-MiniLM-L6-v2 int8, 2 cores: 7.9 ms per question alone, 7.7 in fours, 10.4 in sixteens).
MAX_BATCH = 8

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Runs submitted items with ``run_many`` in batches of what is waiting (``run_one`` for a lone item
    and for the items of a failed batch). ``skip_abandoned`` drops items whose caller gave up before their
    trip (an answer nobody waits for); otherwise every item is run (an exchange is stored regardless)."""

    def __init__(
        self,
        run_many: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        run_one: Callable[[T], Awaitable[R]],
        *,
        max_batch: int,
        name: str,
        skip_abandoned: bool = False,
    ) -> None:
        self._run_many = run_many
        self._run_one = run_one
        self.max_batch = max_batch
        self.name = name
        self.skip_abandoned = skip_abandoned
        self.batches = 0  # trips so far (for tests and benchmarks)
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._waiting.append((item, future))
        if self._worker is None or self._worker.done() or self._worker.get_loop() is not loop:
            self._worker = asyncio.create_task(self._work(), name=self.name)
        return await future

    async def _work(self) -> None:
        while self._waiting:
            batch = self._waiting[: self.max_batch]
            del self._waiting[: self.max_batch]
            if self.skip_abandoned:
                batch = [waiting for waiting in batch if not waiting[1].done()]
            if not batch:
                continue
            self.batches += 1
            items = [item for item, _ in batch]
            try:
                results = await self._run(items)
            except asyncio.CancelledError:
                for _, future in batch:
                    future.cancel()
                raise
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():  # its caller gave up meanwhile
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def _run(self, items: list[T]) -> Sequence[R | Exception]:
        """All at once (a lone item by ``run_one``); if that fails, one by one."""
        try:
            return [await self._run_one(items[0])] if len(items) == 1 else await self._run_many(items)
        except Exception as exc:
            if len(items) == 1:
                return [exc]
            log.debug("%s: a batch of %d failed; running them one by one", self.name, len(items), exc_info=True)
        results: list[R | Exception] = []
        for item in items:
            try:
                results.append(await self._run_one(item))
            except Exception as exc:  # handed to that item's caller, who reports it
                results.append(exc)
        return results


class AnswerQueue:
    """Answers (text, scope) questions with ``knowledge`` off the event loop, in batches of what is waiting;
    the answers are exactly those of ``Knowledge.answer``."""

    def __init__(self, knowledge: Knowledge, *, max_batch: int = MAX_BATCH) -> None:
        async def many(questions: Sequence[tuple[str, str]]) -> Sequence[Answer]:
            return await asyncio.to_thread(knowledge.answer_each, questions)

        async def one(question: tuple[str, str]) -> Answer:
            return await asyncio.to_thread(knowledge.answer, *question)

        self._batcher = Batcher(many, one, max_batch=max_batch, name="answer-queue", skip_abandoned=True)

    @property
    def batches(self) -> int:
        return self._batcher.batches

    async def answer(self, text: str, scope: str) -> Answer:
        return await self._batcher.submit((text, scope))
