"""``OpenAIChatModel`` through the real openai SDK against the loopback server."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Sequence

import pytest
from fakes.openai_server import TEST_API_KEY as SECRET
from fakes.openai_server import FakeOpenAIServer

from teachbot.answering.protocols import Attachment, Question, TaughtExample, Turn
from teachbot.config import Settings
from teachbot.errors import UserError
from teachbot.llm import LLMError, OpenAIChatModel
from teachbot.llm.stream import AnswerStream

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
TAUGHT = [TaughtExample(42, "When is the meetup?", "Every Friday at 7pm in room 3.", 0.8)]


def retrieve_taught(question: Question) -> Sequence[TaughtExample]:
    return TAUGHT if "meetup" in question.text else ()


@pytest.fixture
async def model(llm_settings: Settings) -> AsyncIterator[OpenAIChatModel]:
    chat = OpenAIChatModel.from_settings(llm_settings, retrieve=retrieve_taught)
    try:
        yield chat
    finally:
        await chat.close()


async def make(settings: Settings, **changes: object) -> OpenAIChatModel:
    return OpenAIChatModel.from_settings(settings.model_copy(update=changes))


async def test_answer_with_usage_and_prompt(model: OpenAIChatModel, openai_server: FakeOpenAIServer) -> None:
    answer = await model.answer(Question("hello there", history=[Turn("user", "hi"), Turn("assistant", "hey")]))
    assert answer.text == "You said: hello there"
    assert answer.backend == "openai" and answer.model_version == "fake-model" and not answer.is_fallback
    body = openai_server.chat_bodies[0]
    assert body["model"] == "fake-model" and body["max_tokens"] == 512 and body["temperature"] == 0.7
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert answer.tokens_used > 0
    assert openai_server.requests[0].headers["Authorization"] == f"Bearer {SECRET}"


async def test_taught_examples_reach_the_prompt(model: OpenAIChatModel, openai_server: FakeOpenAIServer) -> None:
    answer = await model.answer(Question("when is the meetup?"))
    assert answer.used_example_ids == (42,)
    system = openai_server.chat_bodies[0]["messages"][0]["content"]
    assert "Q: When is the meetup?\nA: Every Friday at 7pm in room 3." in system
    other = await model.answer(Question("unrelated"))
    assert other.used_example_ids == ()


async def test_memory_within_budget(llm_settings: Settings, openai_server: FakeOpenAIServer) -> None:
    chat = await make(llm_settings, llm_context_tokens=250)
    history = [Turn("user" if i % 2 == 0 else "assistant", f"turn {i} " + "blah " * 30) for i in range(12)]
    try:
        await chat.answer(Question("now?", history=history))
    finally:
        await chat.close()
    messages = openai_server.chat_bodies[0]["messages"]
    assert messages[0]["role"] == "system" and messages[-1]["content"] == "now?"
    assert "turn 11" in messages[-2]["content"]
    assert all("turn 0 " not in m["content"] for m in messages)


async def test_text_attachment_and_vision(llm_settings: Settings, openai_server: FakeOpenAIServer) -> None:
    attachments = [Attachment("rules.txt", "text/plain", b"No spoilers."), Attachment("p.png", "image/png", PNG)]
    blind = await make(llm_settings)
    seeing = await make(llm_settings, llm_vision_models=["fake-model"])
    try:
        await blind.answer(Question("read this", attachments=attachments))
        await seeing.answer(Question("read this", attachments=attachments))
    finally:
        await blind.close()
        await seeing.close()
    blind_parts = openai_server.chat_bodies[0]["messages"][-1]["content"]
    assert [p["type"] for p in blind_parts] == ["text", "text"]
    assert "No spoilers." in blind_parts[1]["text"] and "cannot see images" in blind_parts[0]["text"]
    seeing_parts = openai_server.chat_bodies[1]["messages"][-1]["content"]
    assert [p["type"] for p in seeing_parts] == ["text", "text", "image_url"]
    assert seeing_parts[2]["image_url"]["url"].startswith("data:image/png;base64,")


async def test_retries_429_then_answers(model: OpenAIChatModel, openai_server: FakeOpenAIServer) -> None:
    openai_server.fail(429)
    answer = await model.answer(Question("again"))
    assert answer.text == "You said: again"
    assert len(openai_server.chat_bodies) == 2


async def test_429_after_retries(model: OpenAIChatModel, openai_server: FakeOpenAIServer) -> None:
    openai_server.fail(429, times=10)
    with pytest.raises(LLMError, match="rate-limiting"):
        await model.answer(Question("again"))
    assert len(openai_server.chat_bodies) == 3  # the first try and llm_max_retries=2 retries


async def test_500_retried_then_clear_error(model: OpenAIChatModel, openai_server: FakeOpenAIServer) -> None:
    openai_server.fail(500, times=3, message="database exploded at /srv/secret/path")
    with pytest.raises(LLMError, match="internal error") as caught:
        await model.answer(Question("x"))
    assert "secret" not in str(caught.value) and len(openai_server.chat_bodies) == 3


@pytest.mark.parametrize(("status", "words"), [(401, "API key"), (403, "API key")])
async def test_refusals_not_retried(
    model: OpenAIChatModel,
    openai_server: FakeOpenAIServer,
    status: int,
    words: str,
) -> None:
    openai_server.fail(status, message=f"Incorrect API key provided: {SECRET[:8]}****")
    with pytest.raises(LLMError, match=words) as caught:
        await model.answer(Question("x"))
    assert SECRET[:8] not in str(caught.value) and "Incorrect" not in str(caught.value)  # never quoted
    assert caught.value.status == status
    assert len(openai_server.chat_bodies) == 1


@pytest.mark.parametrize("status", [404, 400])
@pytest.mark.parametrize("streaming", [False, True])
async def test_unknown_model_says_what_the_server_said(
    llm_settings: Settings, openai_server: FakeOpenAIServer, status: int, streaming: bool
) -> None:
    openai_server.known_models = {"fake-model"}
    openai_server.unknown_model_status = status
    chat = await make(llm_settings, llm_model="gpt-nope")
    try:
        with pytest.raises(LLMError) as caught:
            await (chat.stream(Question("x")).collect() if streaming else chat.answer(Question("x")))
    finally:
        await chat.close()
    assert str(caught.value) == (
        f"The language model server does not know the model 'gpt-nope' (HTTP {status}). It said: “The model "
        "`gpt-nope` does not exist or you do not have access to it.” An admin should check the llm_model and "
        "llm_base_url settings."
    )
    assert "too large" not in str(caught.value) and caught.value.status == status


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (400, "temperature must be at most 2", "rejected the request (HTTP 400). It said: “temperature must be"),
        (400, "This model's maximum context length is 8192 tokens", "as too large (HTTP 400). It said: “This"),
        (413, "", "as too large (HTTP 413). Try a shorter question"),
        (422, "model 'x' not found, try pulling it first", "does not know the model 'fake-model' (HTTP 422)"),
        (400, f"bad key {SECRET} and {SECRET[:10]}*** in " + "x" * 500, "It said: “bad key ******** and ********"),
        (400, "line one\n\x1b[31mline two", "It said: “line one ?[31mline two”"),
    ],
)
async def test_bad_requests_quote_the_server_clipped_and_masked(
    model: OpenAIChatModel, openai_server: FakeOpenAIServer, status: int, message: str, expected: str
) -> None:
    openai_server.fail(status, message=message, body={"error": {"message": message}} if message else {})
    with pytest.raises(LLMError) as caught:
        await model.answer(Question("x"))
    assert expected in str(caught.value)
    assert SECRET[:10] not in str(caught.value) and len(str(caught.value)) < 400


async def test_plain_text_error_bodies_are_quoted(model: OpenAIChatModel, openai_server: FakeOpenAIServer) -> None:
    openai_server.fail(404, body="model 'fake-model' not found")  # older Ollama: a bare string
    with pytest.raises(LLMError, match="It said: “model 'fake-model' not found”"):
        await model.answer(Question("x"))
    openai_server.fail(400, body="<html><body>Bad gateway config</body></html>")  # a proxy's page: not quoted
    with pytest.raises(LLMError, match=r"rejected the request \(HTTP 400\)\.$"):
        await model.answer(Question("x"))


async def test_server_down(llm_settings: Settings) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    chat = await make(llm_settings, llm_base_url=f"http://127.0.0.1:{port}/v1", llm_max_retries=0)
    try:
        with pytest.raises(LLMError, match="cannot be reached"):
            await chat.answer(Question("anyone?"))
    finally:
        await chat.close()


@pytest.mark.parametrize("streaming", [False, True])
async def test_timeout_bounds_the_whole_answer_retries_included(
    llm_settings: Settings, openai_server: FakeOpenAIServer, streaming: bool
) -> None:
    """Each try would time out after 1 s and be retried twice (about 5 s with backoff); the setting is a
    deadline for the whole answer instead."""
    openai_server.delay = 30.0
    chat = await make(llm_settings, llm_timeout_seconds=1.0, llm_max_retries=2)
    started = time.monotonic()
    try:
        with pytest.raises(LLMError, match=r"took too long to answer \(more than 1 s\)"):
            await (chat.stream(Question("slow?")).collect() if streaming else chat.answer(Question("slow?")))
    finally:
        await chat.close()
    assert time.monotonic() - started < 2.5
    assert len(openai_server.chat_bodies) == 1


async def test_a_slow_stream_is_cut_at_the_deadline(llm_settings: Settings, openai_server: FakeOpenAIServer) -> None:
    openai_server.reply = lambda body: "one two three four five six seven eight"
    openai_server.piece_delay = 0.4  # every piece arrives well within the timeout, the whole answer does not
    chat = await make(llm_settings, llm_timeout_seconds=1.0)
    deltas: list[str] = []
    started = time.monotonic()
    try:
        with pytest.raises(LLMError, match=r"took too long to finish its answer \(more than 1 s\)"):
            async with chat.stream(Question("x")) as stream:
                async for delta in stream:
                    deltas.append(delta)
    finally:
        await chat.close()
    assert time.monotonic() - started < 2.5
    assert 0 < len(deltas) < 8


async def test_a_stream_cut_mid_answer_says_it_was_interrupted(
    model: OpenAIChatModel, openai_server: FakeOpenAIServer
) -> None:
    openai_server.reply = lambda body: "one two three four five six"
    openai_server.cut_stream_after = 3
    deltas: list[str] = []
    with pytest.raises(LLMError, match=r"^The answer was interrupted: the language model server stopped sending it"):
        async with model.stream(Question("x")) as stream:
            async for delta in stream:
                deltas.append(delta)
    assert deltas == ["one ", "two ", "three "]


async def test_timeout(llm_settings: Settings, openai_server: FakeOpenAIServer) -> None:
    openai_server.delay = 2.0
    chat = await make(llm_settings, llm_timeout_seconds=0.2, llm_max_retries=0)
    try:
        with pytest.raises(LLMError, match="too long"):
            await chat.answer(Question("slow?"))
    finally:
        await chat.close()


async def test_no_api_key_is_fine_for_local_servers(llm_settings: Settings, openai_server: FakeOpenAIServer) -> None:
    chat = await make(llm_settings, llm_api_key=None)
    try:
        assert (await chat.answer(Question("hi"))).text == "You said: hi"
    finally:
        await chat.close()
    assert SECRET not in openai_server.requests[0].headers.get("Authorization", "")


async def test_empty_answer_is_a_user_error(model: OpenAIChatModel, openai_server: FakeOpenAIServer) -> None:
    openai_server.reply = lambda body: ""
    with pytest.raises(UserError, match="empty"):
        await model.answer(Question("x"))


async def test_streaming_deltas_and_final_answer(model: OpenAIChatModel, openai_server: FakeOpenAIServer) -> None:
    stream = model.stream(Question("when is the meetup?"))
    assert isinstance(stream, AnswerStream)
    async with stream:
        deltas = [delta async for delta in stream]
    assert len(deltas) > 3
    assert "".join(deltas) == stream.answer.text == "You said: when is the meetup?"
    body = openai_server.chat_bodies[0]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert stream.answer.used_example_ids == (42,)
    assert stream.answer.tokens_used > 0


async def test_streaming_without_usage(model: OpenAIChatModel, openai_server: FakeOpenAIServer) -> None:
    openai_server.send_usage = False
    answer = await model.stream(Question("count me")).collect()
    assert answer.text == "You said: count me" and answer.tokens_used > 0  # our own estimate


async def test_streaming_server_refusing_stream_options(
    model: OpenAIChatModel,
    openai_server: FakeOpenAIServer,
) -> None:
    openai_server.reject_stream_options = True
    assert (await model.stream(Question("a")).collect()).text == "You said: a"
    assert (await model.stream(Question("b")).collect()).text == "You said: b"
    assert ["stream_options" in b for b in openai_server.chat_bodies] == [True, False, False]


async def test_stream_error_is_user_error(model: OpenAIChatModel, openai_server: FakeOpenAIServer) -> None:
    openai_server.fail(401)
    stream = model.stream(Question("x"))
    with pytest.raises(LLMError, match="API key"):
        await stream.collect()
    with pytest.raises(RuntimeError):
        _ = stream.answer


async def test_stream_stopped_early_still_counts(model: OpenAIChatModel, openai_server: FakeOpenAIServer) -> None:
    openai_server.reply = lambda body: "one two three four five six"
    async with model.stream(Question("x", user_id="u1")) as stream:
        async for _ in stream:
            break
    assert not stream.done
    used, _ = await model.quota.ledger.used_today("global", "u1")
    assert used > 0
