"""Exchanges asked together are stored together: each caller gets its own committed ids, in fewer trips to
the database, and a failure reaches only the caller it hit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from teachbot.answering.chat import ChatService, Origin
from teachbot.app import App

WHERE = Origin(scope="global", channel="c1", author="u1", author_name="User")


async def test_messages_asked_together_are_stored_in_fewer_trips(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    trips = 0
    run = app.db.run

    async def counted(fn: Any) -> Any:
        nonlocal trips
        trips += 1
        return await run(fn)

    monkeypatch.setattr(app.db, "run", counted)
    texts = [f"hello number {n}" for n in range(20)]
    replies = await asyncio.gather(
        *(app.chat.ask(text, WHERE, external_id=f"m{n}", deliver=_sent(f"r{n}")) for n, text in enumerate(texts))
    )
    assert trips < len(texts)
    assert len({r.question_id for r in replies} | {r.answer_id for r in replies}) == 2 * len(texts)
    for n, (text, reply) in enumerate(zip(texts, replies, strict=True)):
        stored = await app.chat.find_answer("global", external_id=f"r{n}")
        assert stored is not None and stored.message_id == reply.answer_id
        assert (stored.question, stored.answer) == (text, reply.answer.text)
    assert [t.content for t in await app.chat.reply_chain("global", "r3")] == [texts[3], replies[3].answer.text]


async def test_an_exchange_that_cannot_be_stored_fails_only_its_own_message(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ChatService._store_exchange

    def failing(s: Any, text: str, *args: Any) -> Any:
        if text == "boom":
            raise RuntimeError("cannot store this one")
        return store(s, text, *args)

    monkeypatch.setattr(ChatService, "_store_exchange", staticmethod(failing))
    results = await asyncio.gather(
        *(app.chat.ask(text, WHERE) for text in ["hello", "boom", "who are you", "thanks"]),
        return_exceptions=True,
    )
    assert [type(r) for r in results].count(RuntimeError) == 1 and isinstance(results[1], RuntimeError)
    for text, reply in zip(["hello", "who are you", "thanks"], [results[0], results[2], results[3]], strict=True):
        assert not isinstance(reply, BaseException)
        stored = await app.chat.find_answer("global", answer_id=reply.answer_id)
        assert stored is not None and stored.question == text


def _sent(external_id: str) -> Any:
    async def deliver(_answer: Any) -> str:
        return external_id

    return deliver
