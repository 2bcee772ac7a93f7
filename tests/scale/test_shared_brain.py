"""Two processes on one database stay one brain: versions, corrections, refusals, forgets and activations
made through one reach the other, which was already running (on SQLite and on PostgreSQL)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from scale.conftest import Pair, eventually, settings_for
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from teachbot.answering.chat import Origin
from teachbot.app import App
from teachbot.config import ActivationPolicy
from teachbot.datasets.examples import Example
from teachbot.store.db import Database
from teachbot.store.tables import Artefact, ModelVersion
from teachbot.teaching.service import FeedbackKind, TeachStatus
from teachbot.training.versions import ARTEFACTS_DIR

QUESTION = "what is the capital of the planet zorblax"
WHERE = Origin(scope="global", channel="c1", author="u1")
CAPITALS = [
    Example(f"what is the capital of {country}", capital)
    for country, capital in [("France", "Paris"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Japan", "Tokyo")] * 5
]


async def version_count(app: App) -> int:
    return await app.db.run(lambda s: int(s.scalar(select(func.count()).select_from(ModelVersion)) or 0))


async def answer(app: App, question: str = QUESTION) -> str:
    return (await app.chat.ask(question, WHERE)).answer.text


async def test_a_version_trained_through_one_process_is_loaded_by_another_without_training(pair: Pair) -> None:
    a, b = pair.first, pair.second
    assert await version_count(a) == 1, "the second process trained a version of its own"
    assert a.knowledge.model_version("global") == b.knowledge.model_version("global") == "v1"
    sha = await a.db.run(lambda s: s.scalar(select(ModelVersion.artefact)))
    assert sha and (b.data_dir / "models" / ARTEFACTS_DIR / sha).is_dir(), "B unpacked its own cached copy"
    assert await answer(b, "who are you") == await answer(a, "who are you")


async def test_a_correction_taught_through_one_process_is_answered_by_the_other_within_2s(pair: Pair) -> None:
    a, b = pair.first, pair.second
    first = await a.chat.ask(QUESTION, WHERE)
    target = await a.chat.find_answer("global", answer_id=first.answer_id)
    taught = await a.teaching.correct(WHERE, target, "Zorbopolis", trusted=True)
    assert taught.status is TeachStatus.APPLIED

    async def b_knows() -> bool:
        return await answer(b) == "Zorbopolis"

    assert await eventually(b_knows, timeout=2.0) < 2.0
    # undo through B: A stops giving the answer too
    assert await b.teaching.undo_last("global", "u1") == taught.item_id

    async def a_forgot() -> bool:
        return await answer(a) != "Zorbopolis"

    await eventually(a_forgot, timeout=2.0)


async def test_forget_and_refusals_reach_the_other_process(pair: Pair) -> None:
    a, b = pair.first, pair.second
    first = await a.chat.ask(QUESTION, WHERE)
    target = await a.chat.find_answer("global", answer_id=first.answer_id)
    await a.teaching.correct(WHERE, target, "Zorbopolis", trusted=True)
    await eventually(lambda: _says(b, QUESTION, "Zorbopolis"), timeout=2.0)
    example_id = (await b.chat.ask(QUESTION, WHERE)).answer.matched_example_id
    assert example_id is not None
    await a.teaching.forget("global", example_id, author="trainer")
    await eventually(lambda: _not_says(b, QUESTION, "Zorbopolis"), timeout=2.0)

    # a trusted 👎 through B stops A giving that answer
    said = await b.chat.ask("who are you", WHERE)
    target = await b.chat.find_answer("global", answer_id=said.answer_id)
    assert target is not None
    await b.teaching.feedback(WHERE, FeedbackKind.DOWN, target=target, trusted=True)
    await eventually(lambda: _not_says(a, "who are you", said.answer.text), timeout=2.0)


async def test_review_decisions_reach_the_other_process(pair: Pair) -> None:
    a, b = pair.first, pair.second
    first = await a.chat.ask(QUESTION, WHERE)
    target = await a.chat.find_answer("global", answer_id=first.answer_id)
    pending = await a.teaching.correct(Origin("global", "c1", "member"), target, "Zorbopolis", trusted=False)
    assert [item.item_id for item in await b.teaching.pending("global")] == [pending.item_id]
    await b.teaching.review("global", pending.item_id, approve=True, reviewer="trainer")
    await eventually(lambda: _says(a, QUESTION, "Zorbopolis"), timeout=2.0)
    assert await a.teaching.pending("global") == []


async def test_a_version_activated_through_one_process_is_used_by_the_other_within_5s(pair: Pair) -> None:
    a, b = pair.first, pair.second
    await a.datasets.import_examples("global", "capitals", CAPITALS, source_name="capitals.csv", author="t")
    outcome = await a.training.train("global", author="trainer", activation=ActivationPolicy.ALWAYS)
    assert outcome.activated and outcome.version.name == "v2"

    async def b_uses(version: str) -> bool:
        return b.knowledge.model_version("global") == version

    assert await eventually(lambda: b_uses("v2"), timeout=5.0) < 5.0
    assert await answer(b, "what is the capital of Japan") == "Tokyo"
    await b.versions.rollback("global", author="trainer")
    await eventually(lambda: _uses(a, "v1"), timeout=5.0)
    await a.versions.activate("global", "v2", author="trainer")
    await eventually(lambda: _uses(b, "v2"), timeout=5.0)


async def test_two_processes_training_at_once_get_different_version_names(pair: Pair) -> None:
    a, b = pair.first, pair.second
    # a stale folder in B's cache, as another database or a killed run could leave
    (b.data_dir / "models" / "v2").mkdir(parents=True)
    (b.data_dir / "models" / "v2" / "junk").write_text("stale", encoding="utf-8")
    new_data = [Example("when do you open", "At nine.")]  # the starter data alone would keep v1
    await a.datasets.import_examples("global", "extra", new_data, source_name="extra.csv", author="a")
    first, second = await asyncio.gather(
        a.training.train("global", author="a", activation=ActivationPolicy.NEVER),
        b.training.train("global", author="b", activation=ActivationPolicy.NEVER),
    )
    assert {first.version.name, second.version.name} == {"v2", "v3"}
    for name in ("v2", "v3"):  # each loads in the other process, from the database
        assert (await a.versions.load("global", name)).version == name
        assert (await b.versions.load("global", name)).version == name


async def test_an_active_version_that_cannot_be_loaded_is_reported_not_retrained(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = await App.start(settings_for(tmp_path / "a", database_url))
    await first.close()

    def lose_the_files(s: Session) -> None:
        s.execute(delete(Artefact))

    db = Database(database_url)
    try:
        db.call(lose_the_files)
    finally:
        db.close()
    with caplog.at_level(logging.ERROR):
        second = await App.start(settings_for(tmp_path / "b", database_url))
    try:
        assert await version_count(second) == 1, "a process trained a version to replace one it could not load"
        assert not second.knowledge.has_model("global")
        assert "v1" in caplog.text and "is not in the database" in caplog.text
        assert "teachbot models activate" in caplog.text
    finally:
        await second.close()


async def _says(app: App, question: str, text: str) -> bool:
    return await answer(app, question) == text


async def _not_says(app: App, question: str, text: str) -> bool:
    return await answer(app, question) != text


async def _uses(app: App, version: str) -> bool:
    return app.knowledge.model_version("global") == version
