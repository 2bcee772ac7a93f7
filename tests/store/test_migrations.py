"""Migrations on SQLite and PostgreSQL: up from empty, up from the first version, and equal to the models."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

import teachbot
from teachbot.store.db import Database, newest_revision
from teachbot.store.migrations import QUEUE_TABLE_PREFIX, ours
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
        queue_tables = {t for t in tables if t.startswith(QUEUE_TABLE_PREFIX)}
        if db.engine.dialect.name == "sqlite":
            assert not queue_tables, "SQLite has no job queue"
            with db.engine.connect() as connection:
                assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        else:  # the job queue's tables come with our migrations
            assert {"procrastinate_jobs", "procrastinate_workers", "procrastinate_events"} <= queue_tables
        db.migrate()  # a second start changes nothing
        assert db.current_revision() == Database.head_revision()
    finally:
        db.close()


def test_migrated_schema_matches_the_models(database_url: str) -> None:
    db = Database(database_url)
    try:
        db.migrate()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True, "include_name": ours})
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


async def test_a_database_migrated_by_us_runs_a_queued_job(postgres_url: str) -> None:
    """No other set-up step: after ``migrate``, procrastinate defers a job and a worker runs it."""
    import procrastinate

    from teachbot.worker.queue import TrainingQueue

    db = Database(postgres_url)
    try:
        db.migrate()
    finally:
        db.close()
    queue = TrainingQueue(postgres_url)
    await queue.open()
    try:
        done: list[int] = []

        @queue.app.task(name="tests.note", queue="tests")
        async def note(value: int) -> None:
            done.append(value)

        job_id = await note.defer_async(value=7)
        await queue.app.run_worker_async(queues=["tests"], wait=False, install_signal_handlers=False)
        assert done == [7]
        job = await queue.app.job_manager.get_job_status_async(job_id)
        assert job == procrastinate.jobs.Status.SUCCEEDED
    finally:
        await queue.close()


def test_queue_tables_made_by_procrastinate_itself_are_kept(postgres_url: str) -> None:
    """A database whose queue tables the queue created before migration 0005 upgrades without touching them."""
    from procrastinate.schema import SchemaManager

    old = Database(postgres_url)
    try:
        old.migrate("0004")
        with old.engine.begin() as connection:
            connection.connection.cursor().execute(SchemaManager.get_schema())
            connection.execute(text("INSERT INTO procrastinate_jobs (queue_name, task_name) VALUES ('q', 't')"))
        old.migrate()
        assert old.current_revision() == Database.head_revision()
        with old.engine.connect() as connection:
            assert connection.execute(text("SELECT task_name FROM procrastinate_jobs")).scalar() == "t"
    finally:
        old.close()


@pytest.mark.slow
def test_processes_starting_together_migrate_one_after_the_other(postgres_url: str) -> None:
    """Three processes on a new database (as compose starts them) all reach head; none fails."""
    import subprocess
    import sys
    from pathlib import Path

    import teachbot

    sources = str(Path(teachbot.__file__).resolve().parents[1])
    bounded = postgres_url + "?options=-c%20lock_timeout%3D20000"  # a wait for a lock fails, never hangs
    script = "import sys; from teachbot.store.db import Database; Database(sys.argv[1]).migrate()"
    starts = [
        subprocess.Popen(
            [sys.executable, "-c", script, bounded],
            env={"PYTHONPATH": sources, "PATH": "/usr/bin:/bin"},
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    errors = [p.communicate(timeout=120)[1] for p in starts]
    assert [p.returncode for p in starts] == [0, 0, 0], errors
    db = Database(postgres_url)
    try:
        assert db.current_revision() == Database.head_revision()
    finally:
        db.close()


def test_the_newest_revision_is_read_from_the_files_as_alembic_reads_it() -> None:
    assert newest_revision() == Database.head_revision()


def test_a_database_at_the_newest_revision_starts_without_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    db = Database(url)
    try:
        db.migrate("0003")  # one revision behind: alembic upgrades it, as before
        db.migrate()
        assert db.current_revision() == Database.head_revision()
    finally:
        db.close()
    check = (
        "import sys\n"
        "from teachbot.store.db import Database\n"
        f"db = Database({url!r})\n"
        "db.migrate()\n"
        "db.close()\n"
        "print('alembic' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(teachbot.__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == "False"
