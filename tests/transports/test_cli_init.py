"""`teachbot init`, then `teachbot chat` in the new folder, as a new user would run them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from teachbot.app import App
from teachbot.cli import app
from teachbot.config import load_settings
from teachbot.datasets.formats import read_examples
from teachbot.project import DATASET_FILE, TEST_FILE, TRY_QUESTIONS

pytestmark = pytest.mark.slow  # trains the example model

runner = CliRunner()


def test_init_then_chat_in_the_folder(tmp_path: Path) -> None:
    made = runner.invoke(app, ["init", "cafe"])
    assert made.exit_code == 0, made.output
    folder = tmp_path / "cafe"
    assert {p.name for p in folder.iterdir()} >= {"teachbot.toml", DATASET_FILE, TEST_FILE, "teachbot-data"}
    screen = made.stdout
    assert "v2 is now active" in screen
    assert "cd cafe" in screen and "chat" in screen and "Ctrl-D" in screen and "!help" in screen
    assert all(question in screen for question in TRY_QUESTIONS)
    assert "plus teachbot's built-in small talk" in screen

    expected = {e.prompt: e.answer for e in read_examples(folder / TEST_FILE)}
    chatted = runner.invoke(app, ["chat"], input="".join(q + "\n" for q in TRY_QUESTIONS))  # cwd: the project
    assert chatted.exit_code == 0, chatted.output
    assert chatted.stdout.splitlines() == [expected[q] for q in TRY_QUESTIONS]


def test_init_refuses_an_existing_project(tmp_path: Path) -> None:
    (tmp_path / "teachbot.toml").write_text('scope = "mine"\n', encoding="utf-8")
    refused = runner.invoke(app, ["init"])
    assert refused.exit_code == 2
    assert refused.stderr.startswith("error: ") and "already holds a teachbot project" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert (tmp_path / "teachbot.toml").read_text(encoding="utf-8") == 'scope = "mine"\n'
    assert not (tmp_path / DATASET_FILE).exists()


def test_init_without_the_starter_small_talk(tmp_path: Path) -> None:
    made = runner.invoke(app, ["init", "bare"], env={"TEACHBOT_STARTER_EXAMPLES": "false"})
    assert made.exit_code == 0, made.output
    answers = {e.answer for e in read_examples(tmp_path / "bare" / DATASET_FILE)}
    assert "small talk" not in made.stdout

    async def versions() -> list[tuple[str, int, bool]]:
        application = await App.start(load_settings(starter_examples=False))  # cwd: the project
        try:
            return [(v.name, v.answers, v.active) for v in await application.versions.in_scope("global")]
        finally:
            await application.close()

    assert asyncio.run(versions()) == [("v1", len(answers), True)]  # no starter-only version, no starter answers
