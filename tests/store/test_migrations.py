"""Migrations on SQLite and PostgreSQL: up from empty, up from the first version, and equal to the models."""

from __future__ import annotations

from datetime import datetime

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from teachbot.store.db import Database
from teachbot.store.tables import Base

FIRST_REVISION = "0001"


def test_empty_database_migrates_to_head(database_url: str) -> None:
    db = Database(database_url)
    try:
        db.migrate()
        assert db.current_revision() == Database.head_revision()
        tables = set(inspect(db.engine).get_table_names())
        assert {
            "messages",
            "examples",
            "corrections",
            "feedback",
            "model_versions",
            "datasets",
            "changes",
            "artefacts",
        } <= tables
        if db.engine.dialect.name == "sqlite":
            with db.engine.connect() as connection:
                assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        db.migrate()  # a second start changes nothing
        assert db.current_revision() == Database.head_revision()
    finally:
        db.close()


def test_migrated_schema_matches_the_models(database_url: str) -> None:
    db = Database(database_url)
    try:
        db.migrate()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        db.close()


def test_database_from_the_first_version_upgrades_without_loss(database_url: str) -> None:
    old = Database(database_url)
    old.migrate(FIRST_REVISION)
    then = datetime(2025, 1, 1)
    with old.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO examples (scope, prompt, answer, source, author, status, polarity, created_at) "
                "VALUES ('global', 'what is up', 'the sky', 'correction', 'u1', 'active', 'positive', :then)"
            ),
            {"then": then},
        )
        connection.execute(
            text(
                "INSERT INTO messages (scope, channel, author, author_name, is_bot, text, created_at) "
                "VALUES ('g1', 'c1', 'u1', 'ann', :no, 'hello there', :then)"
            ),
            {"no": False, "then": then},
        )
        connection.execute(
            text(
                "INSERT INTO model_versions (name, scope, backend, path, examples, answers, metrics, active, "
                "created_by, created_at) VALUES ('v1', 'global', 'local', 'v1', 3, 2, '{}', :yes, 'u1', :then)"
            ),
            {"yes": True, "then": then},
        )
    old.close()
    db = Database(database_url)
    try:
        db.migrate()
        assert db.current_revision() == Database.head_revision()
        with db.engine.connect() as connection:
            assert connection.execute(text("SELECT prompt, answer FROM examples")).all() == [("what is up", "the sky")]
            assert connection.execute(text("SELECT text FROM messages")).scalar() == "hello there"
            assert connection.execute(text("SELECT name, artefact FROM model_versions")).all() == [("v1", None)]
    finally:
        db.close()


def test_every_migration_downgrades_to_empty_and_up_again(database_url: str) -> None:
    from alembic import command

    from teachbot.store.db import alembic_config

    db = Database(database_url)
    try:
        db.migrate()
        config = alembic_config()
        with db.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        db.migrate()
        assert db.current_revision() == Database.head_revision()
    finally:
        db.close()
