"""Conversation memory after a correction: the LLM reads the corrected answer as its own turn.

Through the whole app on the openai backend, against the loopback OpenAI-compatible server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fakes.openai_server import FakeOpenAIServer

from teachbot.answering.chat import Origin
from teachbot.app import App
from teachbot.config import Settings
from teachbot.transports.console import ConsoleChat

WRONG = "Frobville is the capital."
RIGHT = "Zorbopolis is the capital."
QUESTION = "what is the capital of the planet zorblax?"
WHERE = Origin(scope="77", channel="c1", author="u1")


def turns(body: dict[str, Any]) -> list[tuple[str, str]]:
    """The conversation part of a chat request: (role, text) of every non-system message."""
    return [(m["role"], str(m["content"])) for m in body["messages"] if m["role"] != "system"]


def every_text(body: dict[str, Any]) -> str:
    return "\n".join(str(m["content"]) for m in body["messages"])


@pytest.fixture
async def llm_app(llm_settings: Settings, openai_server: FakeOpenAIServer) -> AsyncIterator[App]:
    openai_server.reply = lambda body: WRONG if "zorblax" in turns(body)[-1][1] else "Sure."
    application = await App.start(llm_settings)
    try:
        yield application
    finally:
        await application.close()


async def test_the_console_memory_shows_the_corrected_answer(llm_app: App, openai_server: FakeOpenAIServer) -> None:
    console = ConsoleChat(llm_app, "global")
    assert await console.handle(QUESTION) == WRONG
    assert (await console.handle(f"!correct {RIGHT}")).startswith("Learned")
    await console.handle("are you sure?")
    body = openai_server.chat_bodies[-1]
    assert turns(body)[-3:] == [("user", QUESTION), ("assistant", RIGHT), ("user", "are you sure?")]
    assert WRONG not in every_text(body), "the old wrong answer came back into the prompt"


async def test_a_reply_chain_shows_the_corrected_answer(llm_app: App, openai_server: FakeOpenAIServer) -> None:
    first = await llm_app.chat.ask(QUESTION, WHERE, external_id="m1")
    assert first.answer.text == WRONG
    await llm_app.chat.link_external(first.answer_id, "b1")
    target = await llm_app.chat.find_answer("77", external_id="b1")
    await llm_app.teaching.correct(WHERE, target, RIGHT, trusted=True)
    await llm_app.chat.ask("and how many people live there?", WHERE, external_id="m2", reply_to="b1")
    body = openai_server.chat_bodies[-1]
    assert turns(body) == [("user", QUESTION), ("assistant", RIGHT), ("user", "and how many people live there?")]
    assert WRONG not in every_text(body)


async def test_only_a_correction_in_force_replaces_the_answer(llm_app: App, openai_server: FakeOpenAIServer) -> None:
    first = await llm_app.chat.ask(QUESTION, WHERE)
    target = await llm_app.chat.find_answer("77", answer_id=first.answer_id)
    pending = await llm_app.teaching.correct(WHERE, target, RIGHT, trusted=False)  # waits for review
    await llm_app.chat.ask("are you sure?", WHERE)
    assert ("assistant", WRONG) in turns(openai_server.chat_bodies[-1])

    await llm_app.teaching.review("77", pending.item_id, approve=True, reviewer="trainer")
    await llm_app.chat.ask("really?", WHERE)
    memory = turns(openai_server.chat_bodies[-1])
    assert ("assistant", RIGHT) in memory and ("assistant", WRONG) not in memory

    await llm_app.teaching.undo_last("77", "u1")  # the correction no longer holds: the answer as sent
    await llm_app.chat.ask("once more?", WHERE)
    memory = turns(openai_server.chat_bodies[-1])
    assert ("assistant", WRONG) in memory and ("assistant", RIGHT) not in memory

    again = await llm_app.chat.ask(QUESTION, WHERE)
    target = await llm_app.chat.find_answer("77", answer_id=again.answer_id)
    await llm_app.teaching.correct(WHERE, target, "Zorbopolis, since 3012.", trusted=True)
    await llm_app.teaching.correct(WHERE, target, RIGHT, trusted=True)  # the newest correction wins
    await llm_app.chat.ask("thanks", WHERE)
    assert turns(openai_server.chat_bodies[-1])[-3:] == [("user", QUESTION), ("assistant", RIGHT), ("user", "thanks")]
