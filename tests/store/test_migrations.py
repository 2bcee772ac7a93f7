from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import inspect, text

from teachbot.store.db import Database

FIRST_REVISION = "0001"


def test_empty_database_migrates_to_head_in_wal_mode(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'new.sqlite3'}")
    try:
        db.migrate()
        assert db.current_revision() == Database.head_revision()
        tables = set(inspect(db.engine).get_table_names())
        assert {"messages", "examples", "corrections", "feedback", "model_versions", "datasets"} <= tables
        with db.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        db.migrate()  # a second start changes nothing
        assert db.current_revision() == Database.head_revision()
    finally:
        db.close()


def test_database_from_the_first_version_upgrades_without_loss(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    old = Database(f"sqlite:///{path}")
    old.migrate(FIRST_REVISION)
    old.close()
    with sqlite3.connect(path) as raw:
        raw.execute(
            "INSERT INTO examples (scope, prompt, answer, source, author, status, polarity, created_at) "
            "VALUES ('global', 'what is up', 'the sky', 'correction', 'u1', 'active', 'positive', "
            "'2025-01-01 00:00:00')"
        )
        raw.execute(
            "INSERT INTO messages (scope, channel, author, author_name, is_bot, text, created_at) "
            "VALUES ('g1', 'c1', 'u1', 'ann', 0, 'hello there', '2025-01-01 00:00:00')"
        )
    db = Database(f"sqlite:///{path}")
    try:
        db.migrate()
        assert db.current_revision() == Database.head_revision()
        with db.engine.connect() as connection:
            assert connection.execute(text("SELECT prompt, answer FROM examples")).all() == [("what is up", "the sky")]
            assert connection.execute(text("SELECT text FROM messages")).scalar() == "hello there"
    finally:
        db.close()
