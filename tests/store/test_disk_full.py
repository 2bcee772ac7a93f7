"""A full disk is refused with one clear sentence, and nothing is half saved or pretended saved."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, func, select, text

from teachbot.answering.chat import Origin
from teachbot.app import App
from teachbot.datasets.examples import Example
from teachbot.errors import DiskFull
from teachbot.store.tables import Correction

WHERE = Origin(scope="global", channel="c1", author="trainer")


def fill_the_disk(app: App) -> None:
    """Let SQLite grow by no page at all (PRAGMA max_page_count), as when the disk is full."""
    with app.db.engine.connect() as connection:
        pages = connection.execute(text("PRAGMA page_count")).scalar()

    def limit(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA max_page_count={pages}")
        cursor.close()

    event.listen(app.db.engine, "connect", limit)
    app.db.engine.dispose()  # every connection from now on has the limit
    app.__dict__["_limit"] = limit


def free_the_disk(app: App) -> None:
    event.remove(app.db.engine, "connect", app.__dict__.pop("_limit"))
    app.db.engine.dispose()


async def test_teaching_on_a_full_disk_refuses_instead_of_pretending(app: App) -> None:
    reply = await app.chat.ask("what is the capital of zorblax", WHERE)
    target = await app.chat.find_answer("global", answer_id=reply.answer_id)
    fill_the_disk(app)
    saved = 0
    with pytest.raises(DiskFull, match=r"^The disk is full: nothing was saved\.") as raised:
        for n in range(2000):  # until the pages' free space runs out
            await app.teaching.correct(WHERE, target, f"Zorbopolis {n} " + "x" * 1500, trusted=True)
            saved += 1
    assert "Traceback" not in str(raised.value) and "sqlite" not in str(raised.value).lower()
    free_the_disk(app)
    stored = await app.db.run(lambda s: s.scalar(select(func.count()).select_from(Correction)))
    assert stored == saved  # the refused correction left nothing behind
    answer = (await app.chat.ask("what is the capital of zorblax", WHERE)).answer.text
    assert answer != f"Zorbopolis {saved} " + "x" * 1500  # and the bot does not answer with it either


async def test_dataset_import_on_a_full_disk_stores_nothing(app: App) -> None:
    fill_the_disk(app)
    examples = [Example(f"question {i}", "answer " + "y" * 500) for i in range(500)]
    with pytest.raises(DiskFull):
        await app.datasets.import_examples("global", "big", examples, source_name="big.jsonl", author="t")
    free_the_disk(app)
    assert [d.name for d in await app.datasets.list_datasets("global")] == []
