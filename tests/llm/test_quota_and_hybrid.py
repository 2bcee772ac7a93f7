"""Daily token quotas, and routing between the local model and the LLM."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fakes.openai_server import FakeOpenAIServer

from teachbot.answering.protocols import Answer, Question
from teachbot.config import Settings
from teachbot.llm import HybridChatModel, InMemoryUsageLedger, OpenAIChatModel, QuotaExceeded, QuotaGuard


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class FakeLocal:
    """A local ``ChatModel`` that knows one taught question, and "hello" from its starter examples."""

    name = "local"

    def __init__(self, known: str, confidence: float = 0.9) -> None:
        self.known, self.confidence = known, confidence
        self.asked: list[str] = []

    async def answer(self, question: Question) -> Answer:
        self.asked.append(question.text)
        if question.text == self.known:
            return Answer("taught answer", self.confidence, "local-v3", matched_example_id=5)
        if question.text == "hello":  # a starter example: no stored example behind it
            return Answer("Hello! I'm teachbot.", 1.0, "local-v3", matched_prompt="hello")
        return Answer("I don't know that yet.", 0.1, "local-v3", is_fallback=True)


async def test_ledger_sums_per_user_and_scope_and_forgets_yesterday() -> None:
    clock = Clock(datetime(2026, 5, 1, 23, 0, tzinfo=UTC))
    ledger = InMemoryUsageLedger(clock)
    await ledger.record("guild1", "ann", 100)
    await ledger.record("guild2", "ann", 50)
    await ledger.record("guild1", "bob", 10)
    assert await ledger.used_today("guild1", "ann") == (150, 110)
    clock.now += timedelta(hours=2)
    assert await ledger.used_today("guild1", "ann") == (0, 0)


async def test_guard_refuses_with_reset_time() -> None:
    clock = Clock(datetime(2026, 5, 1, 21, 30, tzinfo=UTC))
    guard = QuotaGuard(InMemoryUsageLedger(clock), user_quota=100, scope_quota=150, clock=clock)
    await guard.check("guild1", "ann")
    await guard.record("guild1", "ann", 100)
    with pytest.raises(QuotaExceeded, match=r"your 100 LLM tokens.*00:00 UTC, in 2 h 30 min") as caught:
        await guard.check("guild1", "ann")
    assert caught.value.resets_at == datetime(2026, 5, 2, tzinfo=UTC)
    await guard.check("guild1", "bob")
    await guard.record("guild1", "bob", 60)
    with pytest.raises(QuotaExceeded, match="This server has used its 150"):
        await guard.check("guild1", "bob")
    await guard.check("global", "carl")  # direct messages: only user quotas apply
    await QuotaGuard(InMemoryUsageLedger(clock)).check("guild1", "ann")  # 0 means unlimited


async def test_model_enforces_quota(llm_settings: Settings, openai_server: FakeOpenAIServer) -> None:
    ledger = InMemoryUsageLedger()
    settings = llm_settings.model_copy(update={"user_token_quota": 30})
    chat = OpenAIChatModel.from_settings(settings, ledger=ledger)
    try:
        question = Question("spend " * 10, scope="guild1", user_id="ann")
        answer = await chat.answer(question)
        assert await ledger.used_today("guild1", "ann") == (answer.tokens_used, answer.tokens_used)
        with pytest.raises(QuotaExceeded, match="resets at 00:00 UTC"):
            await chat.answer(question)
        with pytest.raises(QuotaExceeded):
            await chat.stream(question).collect()
    finally:
        await chat.close()
    assert len(openai_server.chat_bodies) == 1  # refused before any request


@pytest.fixture
def hybrid_parts(llm_settings: Settings) -> Callable[[float], tuple[HybridChatModel, FakeLocal, OpenAIChatModel]]:
    def build(threshold: float) -> tuple[HybridChatModel, FakeLocal, OpenAIChatModel]:
        local = FakeLocal("who runs the club?", confidence=0.6)
        llm = OpenAIChatModel.from_settings(llm_settings)
        return HybridChatModel(local, llm, threshold), local, llm

    return build


async def test_hybrid_routes(
    hybrid_parts: Callable[..., tuple[HybridChatModel, FakeLocal, OpenAIChatModel]], openai_server: FakeOpenAIServer
) -> None:
    hybrid, local, llm = hybrid_parts(0.5)
    try:
        known = await hybrid.answer(Question("who runs the club?"))
        assert (known.text, known.backend, known.matched_example_id) == ("taught answer", "local", 5)
        assert openai_server.chat_bodies == [] and local.asked == ["who runs the club?"]
        unknown = await hybrid.answer(Question("what is a monad?"))
        assert unknown.backend == "openai" and unknown.text == "You said: what is a monad?"
        streamed = hybrid.stream(Question("who runs the club?"))
        assert [d async for d in streamed] == ["taught answer"] and streamed.answer.backend == "local"
        streamed = hybrid.stream(Question("tell me more"))
        deltas = [d async for d in streamed]
        assert len(deltas) > 1 and streamed.answer.backend == "openai"
    finally:
        await llm.close()
    assert len(openai_server.chat_bodies) == 2


async def test_hybrid_below_threshold_goes_to_llm(
    hybrid_parts: Callable[..., tuple[HybridChatModel, FakeLocal, OpenAIChatModel]],
    openai_server: FakeOpenAIServer,
) -> None:
    hybrid, _, llm = hybrid_parts(0.7)  # local confidence 0.6 is not enough
    try:
        answer = await hybrid.answer(Question("who runs the club?"))
    finally:
        await llm.close()
    assert answer.backend == "openai"


async def test_hybrid_leaves_starter_small_talk_to_the_llm(
    hybrid_parts: Callable[..., tuple[HybridChatModel, FakeLocal, OpenAIChatModel]],
    openai_server: FakeOpenAIServer,
) -> None:
    hybrid, local, llm = hybrid_parts(0.5)
    try:
        answer = await hybrid.answer(Question("hello"))
        streamed = hybrid.stream(Question("hello"))
        text = "".join([d async for d in streamed])
    finally:
        await llm.close()
    assert local.asked == ["hello", "hello"]
    assert (answer.backend, answer.text) == ("openai", "You said: hello")
    assert (streamed.answer.backend, text) == ("openai", "You said: hello")
