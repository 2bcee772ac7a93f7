"""``OpenAIChatModel``: answers through any OpenAI-compatible chat server, grounded in taught examples.

Per question: check the quota, retrieve taught examples close to the question (the injected
``retrieve``), build the prompt within the token budget, call ``/chat/completions`` (whole or
streamed), record the tokens spent. The retrieval callable runs on the event loop: it must be a quick
in-memory lookup, which also lets it read an index the loop mutates without locks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any, cast

import openai
from openai import AsyncOpenAI, AsyncStream, omit
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessageParam

from teachbot.answering.protocols import Answer, Question, TaughtExample
from teachbot.config import Settings
from teachbot.llm.client import LLMError, build_client, describe, llm_errors
from teachbot.llm.prompt import BuiltPrompt, PromptBuilder
from teachbot.llm.quota import InMemoryUsageLedger, QuotaGuard, UsageLedger
from teachbot.llm.stream import AnswerStream, Finish
from teachbot.tokens import count_tokens

__all__ = ["OpenAIChatModel", "Retrieve"]

log = logging.getLogger(__name__)

Retrieve = Callable[[Question], Sequence[TaughtExample]]

EMPTY_ANSWER = "The language model returned an empty answer. Please ask again."


def _no_examples(question: Question) -> Sequence[TaughtExample]:
    return ()


class OpenAIChatModel:
    """A ``ChatModel`` (and ``StreamingChatModel``) backed by an OpenAI-compatible server."""

    name = "openai"

    def __init__(
        self,
        client: AsyncOpenAI,
        prompts: PromptBuilder,
        *,
        model: str,
        retrieve: Retrieve | None = None,
        quota: QuotaGuard | None = None,
        temperature: float = 0.7,
        max_tokens: int = 512,
        timeout: float | None = None,
        owns_client: bool = True,
    ) -> None:
        self.client = client
        self.prompts = prompts
        self.model = model
        self.retrieve: Retrieve = retrieve or _no_examples
        self.quota = quota or QuotaGuard(InMemoryUsageLedger())
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout = timeout
        self._owns_client = owns_client
        self.scope_models: dict[str, str] = {}  # fine-tuned model active in a scope (else ``model``)
        # Learned from the server's 400 answers, so later requests go through the first time:
        # some servers refuse stream_options, OpenAI's reasoning models refuse max_tokens.
        self._stream_usage = True
        self._completion_tokens_param = False

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        retrieve: Retrieve | None = None,
        ledger: UsageLedger | None = None,
        client: AsyncOpenAI | None = None,
    ) -> OpenAIChatModel:
        """Everything from ``Settings``; pass ``ledger`` (database-backed) to keep quotas across restarts."""
        return cls(
            client or build_client(settings),
            PromptBuilder.from_settings(settings),
            model=settings.llm_model,
            retrieve=retrieve,
            quota=QuotaGuard.from_settings(settings, ledger or InMemoryUsageLedger()),
            temperature=settings.llm_temperature,
            max_tokens=settings.llm_max_tokens,
            timeout=settings.llm_timeout_seconds,
            owns_client=client is None,
        )

    async def close(self) -> None:
        """Close the HTTP connections (only of a client this model built)."""
        if self._owns_client:
            await self.client.close()

    def model_for(self, scope: str) -> str:
        """The model answering in ``scope``: its active fine-tuned model, the global one, else the base."""
        return self.scope_models.get(scope) or self.scope_models.get("global") or self.model

    def prepare(self, question: Question) -> BuiltPrompt:
        """Retrieval plus prompt building: the bot's own work before the HTTP request."""
        return self.prompts.build(question, self.retrieve(question))

    async def answer(self, question: Question) -> Answer:
        return await self.answer_as(self.model_for(question.scope), question)

    async def answer_as(self, model: str, question: Question) -> Answer:
        """Answer with a named model (e.g. a fine-tuned version being tested before activation)."""
        await self.quota.check(question.scope, question.user_id)
        built = self.prepare(question)
        with llm_errors(model, timeout=self.timeout, secrets=self._secrets):
            async with asyncio.timeout(self.timeout):  # the whole answer, the SDK's retries included
                completion = await self._complete(model, built.messages)
        text = _completion_text(completion)
        tokens = completion.usage.total_tokens if completion.usage else _estimate(built, text)
        await self.quota.record(question.scope, question.user_id, tokens)
        if not text.strip():
            raise LLMError(EMPTY_ANSWER)
        if completion.choices and completion.choices[0].finish_reason == "length":
            log.info("LLM answer cut at llm_max_tokens=%d", self.max_tokens)
        return self._answer(model, text, built, tokens)

    def stream(self, question: Question) -> AnswerStream:
        """Stream the answer; the request starts when iteration starts (see ``AnswerStream``)."""

        async def produce(finish: Finish) -> AsyncGenerator[str, None]:
            await self.quota.check(question.scope, question.user_id)
            built = self.prepare(question)
            model = self.model_for(question.scope)
            pieces: list[str] = []
            usage: int | None = None
            answered = False
            # One deadline for the whole answer. It is applied around each await, never across a
            # ``yield``: a timeout scope left open while the reader runs would cancel the reader.
            deadline = None if self.timeout is None else asyncio.get_running_loop().time() + self.timeout
            try:
                with llm_errors(model, timeout=self.timeout, secrets=self._secrets):
                    async with asyncio.timeout_at(deadline):
                        chunks = await self._complete_stream(model, built.messages)
                answered = True
                with llm_errors(model, timeout=self.timeout, secrets=self._secrets, answering=True):
                    async with chunks:
                        while True:
                            async with asyncio.timeout_at(deadline):
                                chunk = await anext(chunks, None)
                            if chunk is None:
                                break
                            if chunk.usage is not None:  # the last chunk, when the server sends usage
                                usage = chunk.usage.total_tokens
                            delta = _chunk_text(chunk)
                            if delta:
                                pieces.append(delta)
                                yield delta
            finally:
                if answered:  # spent tokens count even when the reader stopped early or the stream broke
                    text = "".join(pieces)
                    await self.quota.record(question.scope, question.user_id, usage or _estimate(built, text))
            text = "".join(pieces)
            if not text.strip():
                raise LLMError(EMPTY_ANSWER)
            finish(self._answer(model, text, built, usage or _estimate(built, text)))

        return AnswerStream(produce)

    @property
    def _secrets(self) -> tuple[str, ...]:
        """Masked in anything a server says that is shown to users."""
        return (self.client.api_key,)

    def _answer(self, model: str, text: str, built: BuiltPrompt, tokens: int) -> Answer:
        return Answer(
            text=text,
            confidence=1.0,
            model_version=model,
            used_example_ids=built.example_ids,
            backend=self.name,
            tokens_used=tokens,
        )

    async def _complete(self, model: str, messages: list[dict[str, Any]]) -> ChatCompletion:
        for _ in range(3):
            try:
                return await self.client.chat.completions.create(
                    model=model,
                    messages=cast("list[ChatCompletionMessageParam]", messages),
                    temperature=self.temperature,
                    max_tokens=omit if self._completion_tokens_param else self.max_tokens,
                    max_completion_tokens=self.max_tokens if self._completion_tokens_param else omit,
                )
            except openai.BadRequestError as exc:
                if not self._adapt(exc, streaming=False):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _complete_stream(self, model: str, messages: list[dict[str, Any]]) -> AsyncStream[ChatCompletionChunk]:
        for _ in range(3):
            try:
                return await self.client.chat.completions.create(
                    model=model,
                    messages=cast("list[ChatCompletionMessageParam]", messages),
                    temperature=self.temperature,
                    stream=True,
                    stream_options={"include_usage": True} if self._stream_usage else omit,
                    max_tokens=omit if self._completion_tokens_param else self.max_tokens,
                    max_completion_tokens=self.max_tokens if self._completion_tokens_param else omit,
                )
            except openai.BadRequestError as exc:
                if not self._adapt(exc, streaming=True):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _adapt(self, exc: openai.BadRequestError, *, streaming: bool) -> bool:
        """Whether a 400 named an optional parameter we can change and retry once without."""
        said = f"{exc.param or ''} {exc.message}".lower()
        if streaming and self._stream_usage and ("stream_options" in said or "include_usage" in said):
            log.info("server refuses stream_options; streaming without usage (%s)", describe(exc))
            self._stream_usage = False
            return True
        if not self._completion_tokens_param and "max_tokens" in said and "max_completion_tokens" in said:
            log.info("server wants max_completion_tokens instead of max_tokens")
            self._completion_tokens_param = True
            return True
        return False


def _completion_text(completion: ChatCompletion) -> str:
    if not completion.choices:
        return ""
    message = completion.choices[0].message
    return message.content or message.refusal or ""


def _chunk_text(chunk: ChatCompletionChunk) -> str:
    for choice in chunk.choices:  # empty in the final usage chunk
        if choice.index == 0:
            return choice.delta.content or choice.delta.refusal or ""
    return ""


def _estimate(built: BuiltPrompt, text: str) -> int:
    """Tokens spent when the server reports no usage: our prompt count plus the answer's."""
    return built.prompt_tokens + count_tokens(text)
