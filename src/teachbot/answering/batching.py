"""Questions for the local model that arrive together are answered together, on one worker thread.

Every answer takes the knowledge's lock and the encoder runs one batch at a time, so answering in parallel
threads only adds thread hops and lock hand-offs: under load each message paid a trip to a worker thread
and a wake-up of the event loop. Here a question asked while others are being answered waits for the
current batch, then goes with everything that arrived meanwhile in one trip (the new ones encoded in one
call). Alone, a question goes at once, as before. Answers are exactly those of ``Knowledge.answer``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from teachbot.answering.knowledge import Knowledge
from teachbot.answering.protocols import Answer

log = logging.getLogger(__name__)

__all__ = ["MAX_BATCH", "AnswerQueue"]

#: Questions answered in one trip at most: encoding more short questions at once saves nothing per question
#: (all-MiniLM-L6-v2 int8, 2 cores: 7.9 ms per question alone, 7.7 in fours, 10.4 in sixteens).
MAX_BATCH = 8

_Waiting = tuple[str, str, "asyncio.Future[Answer]"]


class AnswerQueue:
    """Answers (text, scope) questions with ``knowledge`` off the event loop, in batches of what is waiting."""

    def __init__(self, knowledge: Knowledge, *, max_batch: int = MAX_BATCH) -> None:
        self.knowledge = knowledge
        self.max_batch = max_batch
        self.batches = 0  # trips to the worker thread so far (for tests and benchmarks)
        self._waiting: list[_Waiting] = []
        self._worker: asyncio.Task[None] | None = None

    async def answer(self, text: str, scope: str) -> Answer:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Answer] = loop.create_future()
        self._waiting.append((text, scope, future))
        if self._worker is None or self._worker.done() or self._worker.get_loop() is not loop:
            self._worker = asyncio.create_task(self._work(), name="answer-queue")
        return await future

    async def _work(self) -> None:
        while self._waiting:
            batch = [waiting for waiting in self._waiting[: self.max_batch] if not waiting[2].done()]
            del self._waiting[: self.max_batch]
            if not batch:
                continue
            self.batches += 1
            results: Sequence[Answer | BaseException]
            try:
                results = await asyncio.to_thread(self._answer_all, [(text, scope) for text, scope, _ in batch])
            except asyncio.CancelledError:
                for _, _, future in batch:
                    future.cancel()
                raise
            except Exception as exc:  # a lone question that failed: its caller reports it
                results = [exc] * len(batch)
            for (_, _, future), result in zip(batch, results, strict=True):
                if future.done():  # its caller gave up meanwhile
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    def _answer_all(self, questions: Sequence[tuple[str, str]]) -> Sequence[Answer | Exception]:
        """All at once; if that fails, one by one, so one bad question costs only its own answer."""
        try:
            return self.knowledge.answer_each(questions)
        except Exception:
            if len(questions) == 1:
                raise
            log.debug("a batch of %d questions failed; answering them one by one", len(questions), exc_info=True)
        results: list[Answer | Exception] = []
        for text, scope in questions:
            try:
                results.append(self.knowledge.answer(text, scope))
            except Exception as exc:  # handed to that question's caller, who reports it
                results.append(exc)
        return results
