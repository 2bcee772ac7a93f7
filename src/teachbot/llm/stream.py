"""A streamed answer: text deltas while the model writes, then the whole ``Answer``.

Usage::

    async with model.stream(question) as stream:
        async for delta in stream:
            ...  # show the text so far
    answer = stream.answer
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from types import TracebackType
from typing import Protocol, runtime_checkable

from teachbot.answering.protocols import Answer, Question

__all__ = ["AnswerStream", "Finish", "StreamingChatModel"]

Finish = Callable[[Answer], None]
Producer = Callable[[Finish], AsyncGenerator[str, None]]


class AnswerStream:
    """Iterate once for the deltas; ``answer`` is set when the producer finished normally."""

    def __init__(self, produce: Producer) -> None:
        self._answer: Answer | None = None
        self._generator = produce(self._finish)
        self._started = False

    def _finish(self, answer: Answer) -> None:
        self._answer = answer

    @property
    def done(self) -> bool:
        return self._answer is not None

    @property
    def answer(self) -> Answer:
        """The final answer (text, usage, examples used); only after the stream was read to its end."""
        if self._answer is None:
            raise RuntimeError("the answer is known only after the stream was read to its end")
        return self._answer

    def __aiter__(self) -> AsyncIterator[str]:
        if self._started:
            raise RuntimeError("an answer stream can be read only once")
        self._started = True
        return self._generator

    async def aclose(self) -> None:
        """Stop early: closes the HTTP response and records what was spent so far."""
        await self._generator.aclose()

    async def __aenter__(self) -> AnswerStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def collect(self) -> Answer:
        """Read every delta and return the answer (for callers that want streaming's code path only)."""
        async with self:
            async for _ in self:
                pass
        return self.answer


@runtime_checkable
class StreamingChatModel(Protocol):
    """A ``ChatModel`` that can also stream its answer."""

    name: str

    async def answer(self, question: Question) -> Answer: ...

    def stream(self, question: Question) -> AnswerStream: ...
