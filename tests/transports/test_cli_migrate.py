"""`teachbot migrate`: the schema created or upgraded, and said so in one line; nothing else started."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from teachbot.cli import app
from teachbot.config import load_settings
from teachbot.store.db import Database

runner = CliRunner()


def test_migrate_creates_then_finds_the_schema_up_to_date(tmp_path: Path) -> None:
    env = {"TEACHBOT_DATA_DIR": str(tmp_path / "data")}
    first = runner.invoke(app, ["migrate"], env=env)
    head = Database.head_revision()
    assert first.exit_code == 0, first.output
    assert first.stdout.strip().endswith(f"was upgraded from schema (new) to {head}.")
    assert not (tmp_path / "data" / "models").exists()  # no model trained, no app started

    again = runner.invoke(app, ["migrate"], env=env)
    assert again.exit_code == 0 and f"is up to date (schema {head})" in again.stdout


def test_migrate_uses_the_configured_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.sqlite3'}"
    env = {"TEACHBOT_DATA_DIR": str(tmp_path / "data"), "TEACHBOT_DATABASE_URL": url}
    result = runner.invoke(app, ["migrate"], env=env)
    assert result.exit_code == 0 and str(tmp_path / "elsewhere.sqlite3") in result.stdout
    db = Database(url)
    try:
        assert db.current_revision() == Database.head_revision()
    finally:
        db.close()


def test_the_database_url_is_shown_without_its_password(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, database_url="postgresql+psycopg://bot:s3cret@db:5432/teachbot")
    assert settings.shown_database_url == "postgresql+psycopg://bot:***@db:5432/teachbot"
