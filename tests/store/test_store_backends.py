"""Every table, the usage ledger and the teaching flow behave the same on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from teachbot.answering.chat import Origin
from teachbot.app import App
from teachbot.config import load_settings
from teachbot.store.db import Database
from teachbot.store.tables import (
    Artefact,
    Change,
    Correction,
    Dataset,
    DatasetVersion,
    Example,
    ExampleSource,
    Feedback,
    Message,
    ModelVersion,
    Polarity,
    TokenUsage,
    TrainingRun,
)
from teachbot.store.usage import DatabaseUsageLedger
from teachbot.teaching.service import TeachStatus

TEXT = "Ünïcødé ✓ привет 你好 🚀 and 'quotes' \"too\"\nsecond line"
BLOB = bytes(range(256)) * 3
WHEN = datetime(2026, 3, 4, 5, 6, 7, 891011)
QUESTION = "what is the capital of the planet zorblax"


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.migrate()
    try:
        yield database
    finally:
        database.close()


def _fill(s: Session) -> dict[str, int]:
    dataset = Dataset(scope="g1", name="capitals", selected="positive")
    s.add(dataset)
    s.flush()
    version = DatasetVersion(dataset_id=dataset.id, version=1, content_hash="ab" * 32, source_name="c.csv", rows=1)
    s.add(version)
    s.flush()
    example = Example(
        scope="g1",
        prompt=TEXT,
        answer="Paris",
        source=ExampleSource.DATASET,
        dataset_version_id=version.id,
        created_at=WHEN,
    )
    taught = Example(scope="g1", prompt="hi", answer="no", source=ExampleSource.FEEDBACK, polarity=Polarity.NEGATIVE)
    s.add_all([example, taught])
    s.flush()
    question = Message(scope="g1", channel="c1", author="u1", author_name="Ann", text=TEXT, external_id="9" * 19)
    s.add(question)
    s.flush()
    answer = Message(
        scope="g1",
        channel="c1",
        author="bot",
        is_bot=True,
        text="Paris",
        reply_to_id=question.id,
        confidence=0.875,
        model_version="v1",
        example_id=taught.id,
    )
    s.add(answer)
    s.flush()
    s.add_all(
        [
            Correction(
                scope="g1",
                message_id=answer.id,
                question=TEXT,
                wrong_answer="Paris",
                better_answer="Lyon",
                author="u2",
                status="pending",
            ),
            Feedback(scope="g1", message_id=answer.id, author="u3", kind="down", status="pending"),
            ModelVersion(
                name="v1",
                scope="g1",
                path="v1",
                examples=10,
                answers=3,
                metrics={"accuracy": 0.5, "labels": ["a", TEXT], "nested": {"n": 1}},
                active=True,
                artefact="cd" * 32,
            ),
            TrainingRun(scope="g1", stage="evaluating", progress=0.25, version_name="v1"),
            TokenUsage(scope="g1", user="u1", tokens=123),
            Change(scope="g1", kind="taught", payload={"example_id": taught.id, "prompt": TEXT}),
            Artefact(sha256="cd" * 32, size=len(BLOB), data=BLOB),
        ]
    )
    return {"dataset": dataset.id, "example": example.id, "taught": taught.id, "answer": answer.id}


def test_every_table_stores_and_returns_its_values(db: Database) -> None:
    ids = db.call(_fill)

    def check(s: Session) -> None:
        example = s.get(Example, ids["example"])
        assert example is not None
        assert (example.prompt, example.answer, example.created_at) == (TEXT, "Paris", WHEN)
        answer = s.get(Message, ids["answer"])
        assert answer is not None and answer.is_bot is True and answer.confidence == 0.875
        question = s.get(Message, answer.reply_to_id)
        assert question is not None and question.text == TEXT and question.is_bot is False
        assert s.scalars(select(Correction.better_answer)).all() == ["Lyon"]
        assert s.scalars(select(Feedback.kind)).all() == ["down"]
        version = s.scalars(select(ModelVersion)).one()
        assert version.metrics == {"accuracy": 0.5, "labels": ["a", TEXT], "nested": {"n": 1}}
        assert version.active is True and version.artefact == "cd" * 32 and version.remote_model is None
        run = s.scalars(select(TrainingRun)).one()
        assert (run.state, run.progress, run.finished_at) == ("running", 0.25, None)
        assert s.scalar(select(func.sum(TokenUsage.tokens))) == 123
        change = s.scalars(select(Change)).one()
        assert change.payload == {"example_id": ids["taught"], "prompt": TEXT}
        assert s.scalars(select(Artefact.data)).one() == BLOB
        dataset = s.get(Dataset, ids["dataset"])
        assert dataset is not None and dataset.selected == "positive"

    db.call(check)


def test_deletes_cascade_and_clear_references_alike(db: Database) -> None:
    ids = db.call(_fill)
    db.call(lambda s: s.execute(delete(Example).where(Example.id == ids["taught"])))
    db.call(lambda s: s.execute(delete(Dataset).where(Dataset.id == ids["dataset"])))

    def check(s: Session) -> None:
        assert s.scalar(select(func.count()).select_from(DatasetVersion)) == 0
        assert s.get(Example, ids["example"]) is None  # its dataset version went, and the example with it
        answer = s.get(Message, ids["answer"])
        assert answer is not None and answer.example_id is None

    db.call(check)


def test_unique_names_are_enforced(db: Database) -> None:
    db.call(lambda s: s.add(Dataset(scope="g1", name="same")))
    with pytest.raises(IntegrityError):
        db.call(lambda s: s.add(Dataset(scope="g1", name="same")))
    db.call(lambda s: s.add(Dataset(scope="g2", name="same")))  # another scope may use the name


async def test_usage_ledger_sums_per_user_and_scope(db: Database) -> None:
    ledger = DatabaseUsageLedger(db)
    await ledger.record("g1", "u1", 100)
    await ledger.record("g2", "u1", 20)
    await ledger.record("g1", "u2", 3)
    await ledger.record("g1", "u2", 0)
    assert await ledger.used_today("g1", "u1") == (120, 103)
    assert await ledger.used_today("g2", "u2") == (3, 20)


@pytest.fixture
async def app(database_url: str, tmp_path: Path) -> AsyncIterator[App]:
    application = await App.start(load_settings(data_dir=tmp_path / "data", database_url=database_url))
    try:
        yield application
    finally:
        await application.close()


def where(author: str = "u1") -> Origin:
    return Origin(scope="global", channel="c1", author=author)


async def test_teaching_flow_through_the_app(app: App, database_url: str, tmp_path: Path) -> None:
    reply = await app.chat.ask(QUESTION, where())
    target = await app.chat.find_answer("global", answer_id=reply.answer_id)
    assert (await app.teaching.correct(where(), target, "Zorbopolis", trusted=True)).status is TeachStatus.APPLIED
    assert (await app.chat.ask(QUESTION, where())).answer.text == "Zorbopolis"

    other = await app.chat.ask("who paints the moon", where())
    target = await app.chat.find_answer("global", answer_id=other.answer_id)
    pending = await app.teaching.correct(where("member"), target, "The night owls", trusted=False)
    assert [item.item_id for item in await app.teaching.pending("global")] == [pending.item_id]
    await app.teaching.review("global", pending.item_id, approve=True, reviewer="trainer")
    assert (await app.chat.ask("who paints the moon", where())).answer.text == "The night owls"
    assert await app.teaching.undo_last("global", "member") == pending.item_id

    # a second process on the same database sees what was taught, and not what was undone
    second = await App.start(load_settings(data_dir=tmp_path / "second", database_url=database_url))
    try:
        assert (await second.chat.ask(QUESTION, where())).answer.text == "Zorbopolis"
        assert (await second.chat.ask("who paints the moon", where())).answer.text != "The night owls"
    finally:
        await second.close()
