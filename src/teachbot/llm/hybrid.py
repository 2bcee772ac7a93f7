"""``HybridChatModel``: the local model answers what the community taught, the LLM everything else.

What was taught (a correction) or imported (a dataset example) is answered locally when the local
model is confident: free, instant, exactly as taught. The small talk teachbot ships with (the
starter examples) never answers here: on a model that knows little, an open question such as
"Name three fruits." lands near "what are you?" with a confidence above the threshold, and would be
answered "I'm teachbot…" instead of by the LLM. The LLM handles everything else, and still sees
taught examples through its own retrieval.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator

from teachbot.answering.protocols import Answer, ChatModel, Question
from teachbot.llm.stream import AnswerStream, Finish, StreamingChatModel

__all__ = ["HybridChatModel"]


class HybridChatModel:
    """Routes each question: local when it rests on a taught or imported example and is confident, else the LLM."""

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
        """Whether the local ``answer`` should stand: it is not a fallback, its confidence reaches the
        threshold, and it rests on a stored example (``matched_example_id``: a taught overlay hit or a
        dataset example the model trained on; None for the built-in starter examples)."""
        return not answer.is_fallback and answer.confidence >= self.threshold and answer.matched_example_id is not None

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
