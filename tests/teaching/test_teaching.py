"""Teaching through the services: corrections apply at once or after review, scopes stay apart."""

from __future__ import annotations

import pytest

from teachbot.answering.chat import Origin
from teachbot.answering.encoding import CachedEncoder, lazy_encoder
from teachbot.app import App
from teachbot.config import Settings
from teachbot.errors import UserError
from teachbot.teaching.service import FeedbackKind, TeachStatus

QUESTION = "what is the capital of the planet zorblax"
PARAPHRASE = "what's the capital of planet zorblax?"
UNRELATED = "hello"


def where(scope: str = "global", author: str = "u1") -> Origin:
    return Origin(scope=scope, channel="c1", author=author)


async def ask(app: App, text: str, scope: str = "global") -> str:
    return (await app.chat.ask(text, where(scope))).answer.text


async def test_trusted_correction_applies_at_once_to_question_and_paraphrase(app: App) -> None:
    before_unrelated = await ask(app, UNRELATED)
    reply = await app.chat.ask(QUESTION, where())
    target = await app.chat.find_answer("global", answer_id=reply.answer_id)
    result = await app.teaching.correct(where(), target, "Zorbopolis", trusted=True)
    assert result.status is TeachStatus.APPLIED
    assert await ask(app, QUESTION) == "Zorbopolis"
    assert await ask(app, PARAPHRASE) == "Zorbopolis"
    assert await ask(app, UNRELATED) == before_unrelated


async def test_untrusted_correction_waits_for_review_then_applies(app: App) -> None:
    reply = await app.chat.ask(QUESTION, where())
    target = await app.chat.find_answer("global", answer_id=reply.answer_id)
    result = await app.teaching.correct(where(author="member"), target, "Zorbopolis", trusted=False)
    assert result.status is TeachStatus.PENDING
    assert await ask(app, QUESTION) != "Zorbopolis"
    pending = await app.teaching.pending("global")
    assert [item.item_id for item in pending] == [result.item_id]
    await app.teaching.review("global", result.item_id, approve=True, reviewer="trainer")
    assert await ask(app, QUESTION) == "Zorbopolis"
    with pytest.raises(UserError, match="already"):
        await app.teaching.review("global", result.item_id, approve=True, reviewer="trainer")


async def test_rejected_correction_never_applies(app: App) -> None:
    reply = await app.chat.ask(QUESTION, where())
    target = await app.chat.find_answer("global", answer_id=reply.answer_id)
    result = await app.teaching.correct(where(author="member"), target, "Wrongville", trusted=False)
    await app.teaching.review("global", result.item_id, approve=False, reviewer="trainer")
    assert await ask(app, QUESTION) != "Wrongville"
    assert await app.teaching.pending("global") == []


async def test_a_server_correction_does_not_change_another_server(app: App) -> None:
    reply = await app.chat.ask(QUESTION, where("111"))
    target = await app.chat.find_answer("111", answer_id=reply.answer_id)
    await app.teaching.correct(where("111"), target, "Zorbopolis", trusted=True)
    assert await ask(app, QUESTION, "111") == "Zorbopolis"
    assert await ask(app, QUESTION, "222") != "Zorbopolis"
    assert await ask(app, QUESTION, "global") != "Zorbopolis"


async def test_global_knowledge_reaches_every_server(app: App) -> None:
    reply = await app.chat.ask(QUESTION, where())
    target = await app.chat.find_answer("global", answer_id=reply.answer_id)
    await app.teaching.correct(where(), target, "Zorbopolis", trusted=True)
    assert await ask(app, QUESTION, "333") == "Zorbopolis"


async def test_undo_and_forget_remove_what_was_taught(app: App) -> None:
    reply = await app.chat.ask(QUESTION, where())
    target = await app.chat.find_answer("global", answer_id=reply.answer_id)
    await app.teaching.correct(where(), target, "Zorbopolis", trusted=True)
    assert (await app.teaching.undo_last("global", "u1")).startswith(("C", "F"))
    assert await ask(app, QUESTION) != "Zorbopolis"
    await app.teaching.correct(where(), target, "Zorbopolis", trusted=True)
    taught = await app.chat.ask(QUESTION, where())
    stored = await app.chat.find_answer("global", answer_id=taught.answer_id)
    assert stored is not None and stored.example_id is not None
    await app.teaching.forget("global", stored.example_id, author="u1")
    assert await ask(app, QUESTION) != "Zorbopolis"
    with pytest.raises(UserError):
        await app.teaching.forget("global", stored.example_id, author="u1")


async def test_trusted_thumbs_down_stops_that_answer(app: App) -> None:
    reply = await app.chat.ask(QUESTION, where())
    target = await app.chat.find_answer("global", answer_id=reply.answer_id)
    await app.teaching.correct(where(), target, "Zorbopolis", trusted=True)
    taught = await app.chat.ask(QUESTION, where())
    target = await app.chat.find_answer("global", answer_id=taught.answer_id)
    await app.teaching.feedback(where(), FeedbackKind.DOWN, target=target, trusted=True)
    assert await ask(app, QUESTION) != "Zorbopolis"


async def test_teaching_survives_a_restart(app: App) -> None:
    reply = await app.chat.ask(QUESTION, where())
    target = await app.chat.find_answer("global", answer_id=reply.answer_id)
    await app.teaching.correct(where(), target, "Zorbopolis", trusted=True)
    again = await App.start(app.settings)
    try:
        assert (await again.chat.ask(QUESTION, where())).answer.text == "Zorbopolis"
    finally:
        await again.close()


@pytest.mark.parametrize("better", ["", "   ", "x" * 5000])
async def test_bad_corrections_are_refused_and_store_nothing(app: App, better: str) -> None:
    reply = await app.chat.ask(QUESTION, where())
    target = await app.chat.find_answer("global", answer_id=reply.answer_id)
    with pytest.raises(UserError):
        await app.teaching.correct(where(), target, better, trusted=True)
    assert await app.teaching.pending("global") == []
    with pytest.raises(UserError, match="can't find"):
        await app.teaching.correct(where(), None, "answer", trusted=True)


async def test_text_feedback_is_stored_and_empty_refused(app: App) -> None:
    result = await app.teaching.feedback(where(), FeedbackKind.TEXT, text="more about cats please", trusted=False)
    assert result.item_id.startswith("F")
    with pytest.raises(UserError):
        await app.teaching.feedback(where(), FeedbackKind.TEXT, text="  ", trusted=False)


@pytest.mark.parametrize(
    ("item_id", "message"),
    [
        ("C99999999999999999999", "There is no review item C99999999999999999999 here"),
        ("F" + "9" * 5000, "There is no review item F999"),
        ("C9223372036854775807", "There is no review item C9223372036854775807 here"),
        ("C²", "is not a review item id"),
        ("X12", "is not a review item id"),
    ],
)
async def test_review_ids_the_database_cannot_hold_are_unknown(app: App, item_id: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        await app.teaching.review("global", item_id, approve=True, reviewer="trainer")


@pytest.mark.parametrize("example_id", [2**63, 2**64, 10**400, -1])
async def test_forgetting_an_id_the_database_cannot_hold(app: App, example_id: int) -> None:
    with pytest.raises(UserError, match="There is no learned answer with that number here"):
        await app.teaching.forget("global", example_id, author="trainer")


async def test_the_next_training_run_learns_a_correction(app: App) -> None:
    reply = await app.chat.ask(QUESTION, where())
    target = await app.chat.find_answer("global", answer_id=reply.answer_id)
    await app.teaching.correct(where(), target, "Zorbopolis", trusted=True)
    taught = (await app.chat.ask(QUESTION, where())).answer.matched_example_id
    assert taught is not None
    active = app.knowledge.active("global")
    assert active is None or not active.learned(taught)
    await app.training.train("global", author="t")
    active = app.knowledge.active("global")
    assert active is not None and active.learned(taught)
    # the model now carries the correction; the overlay still answers the taught question itself
    assert await ask(app, QUESTION) == "Zorbopolis"
    again = await App.start(app.settings)
    try:
        restarted = again.knowledge.active("global")
        assert restarted is not None and restarted.learned(taught)
    finally:
        await again.close()


async def test_a_correction_never_asked_after_is_encoded_before_the_app_closes(settings: Settings) -> None:
    """Its vector is then in the cache for the next training run, which need not load the encoder at all."""
    app = await App.start(settings)
    try:
        reply = await app.chat.ask(QUESTION, where())  # questions are not kept in the cache
        target = await app.chat.find_answer("global", answer_id=reply.answer_id)
        await app.teaching.correct(where(), target, "Zorbopolis", trusted=True)
        assert app.encoder is not None and app.encoder.known(QUESTION) is None  # encoded by the next question
    finally:
        await app.close()
    cache = CachedEncoder(lazy_encoder(settings.encoder), settings.cache_dir)
    try:
        assert cache.known(QUESTION) is not None
    finally:
        cache.close()
