"""``HybridChatModel``: the local model answers what it knows well, the LLM everything else.

What the community taught is answered locally (free, instant, exactly as taught); the LLM handles
open questions, and still sees the taught examples through its own retrieval.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator

from teachbot.answering.protocols import Answer, ChatModel, Question
from teachbot.llm.stream import AnswerStream, Finish, StreamingChatModel

__all__ = ["HybridChatModel"]


class HybridChatModel:
    """Routes each question: local when confident (not a fallback, confidence ≥ threshold), else the LLM."""

    name = "hybrid"

    def __init__(self, local: ChatModel, llm: ChatModel, threshold: float) -> None:
        self.local = local
        self.llm = llm
        self.threshold = threshold

    async def close(self) -> None:
        """Close whichever backends hold connections."""
        for part in (self.local, self.llm):
            close = getattr(part, "close", None)
            if close is not None:
                await close()

    def confident(self, answer: Answer) -> bool:
        return not answer.is_fallback and answer.confidence >= self.threshold

    async def answer(self, question: Question) -> Answer:
        local = await self.local.answer(question)
        if self.confident(local):
            return dataclasses.replace(local, backend=self.local.name)
        answer = await self.llm.answer(question)
        return dataclasses.replace(answer, backend=self.llm.name)

    def stream(self, question: Question) -> AnswerStream:
        """A local answer arrives as one delta; an LLM answer streams when the LLM model can stream."""

        async def produce(finish: Finish) -> AsyncGenerator[str, None]:
            local = await self.local.answer(question)
            if self.confident(local):
                finish(dataclasses.replace(local, backend=self.local.name))
                yield local.text
                return
            if isinstance(self.llm, StreamingChatModel):
                async with self.llm.stream(question) as inner:
                    async for delta in inner:
                        yield delta
                finish(dataclasses.replace(inner.answer, backend=self.llm.name))
                return
            answer = await self.llm.answer(question)
            finish(dataclasses.replace(answer, backend=self.llm.name))
            yield answer.text

        return AnswerStream(produce)
