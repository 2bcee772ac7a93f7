"""The whole app on the openai and hybrid backends, against the loopback OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fakes.openai_server import FakeOpenAIServer

from teachbot.answering.chat import Origin
from teachbot.app import App
from teachbot.config import Settings, load_settings
from teachbot.errors import UserError

QUESTION = "what is the capital of the planet zorblax"
WHERE = Origin(scope="77", channel="c1", author="u1")


def system_text(body: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content")) for m in body["messages"] if m["role"] == "system")


@pytest.fixture
async def llm_app(llm_settings: Settings) -> AsyncIterator[App]:
    application = await App.start(llm_settings)
    try:
        yield application
    finally:
        await application.close()


async def test_a_correction_reaches_the_llm_prompt_at_once(llm_app: App, openai_server: FakeOpenAIServer) -> None:
    first = await llm_app.chat.ask(QUESTION, WHERE)
    assert first.answer.backend == "openai" and first.answer.text.startswith("You said:")
    assert "Zorbopolis" not in system_text(openai_server.chat_bodies[-1])
    target = await llm_app.chat.find_answer("77", answer_id=first.answer_id)
    await llm_app.teaching.correct(WHERE, target, "Zorbopolis is the capital.", trusted=True)
    again = await llm_app.chat.ask(QUESTION, WHERE)
    assert "Zorbopolis is the capital." in system_text(openai_server.chat_bodies[-1])
    assert again.answer.used_example_ids, "the answer records which taught examples it used"
    other = await llm_app.chat.ask(QUESTION, Origin(scope="78", channel="c9", author="u2"))
    assert other.answer.text
    assert "Zorbopolis" not in system_text(openai_server.chat_bodies[-1]), "another server's teaching leaked"


async def test_recent_turns_of_the_channel_are_the_memory(llm_app: App, openai_server: FakeOpenAIServer) -> None:
    await llm_app.chat.ask("my name is Ada", WHERE)
    await llm_app.chat.ask("what is my name?", WHERE)
    messages = openai_server.chat_bodies[-1]["messages"]
    contents = [m["content"] for m in messages if m["role"] != "system"]
    assert contents[0] == "my name is Ada" and contents[-1] == "what is my name?"
    assert any(m["role"] == "assistant" for m in messages)


async def test_hybrid_answers_taught_and_imported_questions_locally_and_small_talk_through_the_llm(
    openai_server: FakeOpenAIServer, llm_settings: Settings, tmp_path: Path
) -> None:
    settings = load_settings(**{**llm_settings.model_dump(), "backend": "hybrid"})
    app = await App.start(settings)
    try:
        # the local model knows "who are you?" from its starter examples, surely, but only from them
        starter = app.knowledge.answer("who are you?", "77")
        assert not starter.is_fallback and starter.confidence >= settings.confidence_threshold
        assert starter.matched_example_id is None
        opened = await app.chat.ask("Name three fruits.", WHERE)
        assert opened.answer.backend == "openai" and opened.answer.text == "You said: Name three fruits."
        small_talk = await app.chat.ask("who are you?", WHERE)
        assert small_talk.answer.backend == "openai", "built-in small talk is the LLM's to answer"
        assert len(openai_server.chat_bodies) == 2

        target = await app.chat.find_answer("77", answer_id=opened.answer_id)
        await app.teaching.correct(WHERE, target, "Apples, pears and plums.", trusted=True)
        taught = await app.chat.ask("Name three fruits.", WHERE)
        assert (taught.answer.backend, taught.answer.text) == ("local", "Apples, pears and plums.")
        assert taught.answer.matched_example_id is not None

        rows = "question,answer\n" + "".join(
            f'"{q}","The club meets on Fridays."\n'
            for q in ("when does the club meet", "what day is the club", "club meeting day", "is the club on friday")
        )
        await app.datasets.import_file("77", write(tmp_path / "club.csv", rows), author="t")
        await app.training.train("77", author="t")
        imported = await app.chat.ask("when does the club meet?", WHERE)
        assert (imported.answer.backend, imported.answer.text) == ("local", "The club meets on Fridays.")
        assert len(openai_server.chat_bodies) == 2, "taught and imported answers cost no LLM call"
    finally:
        await app.close()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


async def test_user_quota_is_kept_across_restarts(openai_server: FakeOpenAIServer, llm_settings: Settings) -> None:
    settings = load_settings(**{**llm_settings.model_dump(), "user_token_quota": 30})
    app = await App.start(settings)
    try:
        await app.chat.ask("a first question that costs tokens", WHERE)
        with pytest.raises(UserError, match=r"quota|limit"):
            await app.chat.ask("another one", WHERE)
    finally:
        await app.close()
    again = await App.start(settings)
    try:
        with pytest.raises(UserError, match=r"quota|limit"):
            await again.chat.ask("after a restart", WHERE)
    finally:
        await again.close()


async def test_server_down_is_a_clear_error(llm_settings: Settings) -> None:
    settings = load_settings(
        **{**llm_settings.model_dump(), "llm_base_url": "http://127.0.0.1:9/v1", "llm_max_retries": 0}
    )
    app = await App.start(settings)
    try:
        with pytest.raises(UserError) as caught:
            await app.chat.ask("hello there", WHERE)
        assert "sk-" not in str(caught.value)
    finally:
        await app.close()


async def test_train_on_openai_backend_runs_a_fine_tuning_job(
    openai_server: FakeOpenAIServer, llm_settings: Settings, tmp_path: Path
) -> None:
    from teachbot.transports.catalogue import Door
    from teachbot.transports.handlers import Call, CommandHandlers, Upload

    settings = load_settings(**{**llm_settings.model_dump(), "llm_finetune_poll_seconds": 0.02})
    app = await App.start(settings)
    try:
        handlers = CommandHandlers(app)
        rows = "question,answer\n" + "".join(f"question number {i},answer {i % 3}\n" for i in range(12))
        stages: list[str] = []
        call = Call(WHERE, Door.CONSOLE, progress=lambda stage, _done: stages.append(stage))
        text = (await handlers.train(call, Upload("faq.csv", rows.encode()))).text
        assert "fine-tuning of fake-model" in text and "succeeded" in text
        assert any("running" in s for s in stages)
        uploads = openai_server.requests_to("/v1/files")
        assert uploads, "the training file was uploaded"
        versions = await app.versions.in_scope("77")
        remote = [v for v in versions if v.name == "77-v1"]
        assert remote, versions
        await app.versions.activate("77", "77-v1", author="t")
        await app.chat.ask("hello", WHERE)
        assert openai_server.chat_bodies[-1]["model"].startswith("ft:")
        assert "succeeded" in (await handlers.jobs_list(call)).text
        openai_server.reply = lambda body: "answer 0"
        from teachbot.datasets.examples import Example

        report = await app.testing.test("77", [Example("q1", "answer 0"), Example("q2", "answer 1")], version="77-v1")
        assert report.accuracy == 0.5 and report.model_version == "77-v1"
        assert openai_server.chat_bodies[-1]["model"].startswith("ft:")
    finally:
        await app.close()


async def test_fine_tuning_refused_offers_the_export(openai_server: FakeOpenAIServer, llm_settings: Settings) -> None:
    from teachbot.transports.catalogue import Door
    from teachbot.transports.handlers import Call, CommandHandlers, Upload

    openai_server.fine_tuning = False
    app = await App.start(llm_settings)
    try:
        rows = "question,answer\n" + "".join(f"question number {i},answer {i % 3}\n" for i in range(12))
        with pytest.raises(UserError, match="export"):
            await CommandHandlers(app).train(Call(WHERE, Door.CONSOLE), Upload("faq.csv", rows.encode()))
    finally:
        await app.close()


async def test_a_reply_chain_is_the_memory(llm_app: App, openai_server: FakeOpenAIServer) -> None:
    first = await llm_app.chat.ask("my name is Ada", WHERE, external_id="m1")
    await llm_app.chat.link_external(first.answer_id, "b1")
    await llm_app.chat.ask("an unrelated message in between", WHERE, external_id="m2")
    await llm_app.chat.ask("what is my name?", WHERE, external_id="m3", reply_to="b1")
    contents = [m["content"] for m in openai_server.chat_bodies[-1]["messages"] if m["role"] != "system"]
    assert contents[0] == "my name is Ada"
    assert "an unrelated message in between" not in contents
    assert contents[-1] == "what is my name?"
