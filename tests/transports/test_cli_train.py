"""`teachbot train` and the command line's manners: validation before import, the progress bar's last
line, plain `--help`, one-line usage errors."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fakes.env import child_env
from typer.testing import CliRunner

from teachbot import cli
from teachbot.cli import app
from teachbot.config import Settings

runner = CliRunner()
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    return {"TEACHBOT_DATA_DIR": str(settings.data_dir)}


def test_a_bad_file_is_fully_validated_and_nothing_is_imported(tmp_path: Path, env: dict[str, str]) -> None:
    bad = tmp_path / "bad.jsonl"
    lines = [
        {"prompt": "when do you open", "answer": "At nine."},
        {"question": "", "reply": "At ten."},
        {"prompt": "where are you", "answer": "Main Street."},
        {"foo": "x"},
    ]
    bad.write_text("".join(json.dumps(line) + "\n" for line in lines) + "{not json\n", encoding="utf-8")
    result = runner.invoke(app, ["train", str(bad)], env=env)
    assert result.exit_code == 2
    assert "line 2: empty prompt" in result.stderr  # the whole report, not only the first error
    assert "line 4: no `messages` list" in result.stderr and "line 5:" in result.stderr
    assert f"run `teachbot datasets validate {bad}` for details" in result.stderr
    assert "few_examples" not in result.stderr  # OpenAI's minimum is not shown on the local backend
    listed = runner.invoke(app, ["datasets", "list"], env=env)
    assert "bad" not in listed.stdout


def test_question_reply_lines_are_read(tmp_path: Path, env: dict[str, str]) -> None:
    good = tmp_path / "qa.jsonl"
    good.write_text(
        "".join(json.dumps({"question": f"what is fact {i}", "reply": f"Fact {i}."}) + "\n" for i in range(3)),
        encoding="utf-8",
    )
    result = runner.invoke(app, ["train", str(good)], env=env)
    assert result.exit_code == 0, result.output
    assert "Dataset `qa` (new version v1): 3 examples" in result.stdout


def test_train_without_the_starter_small_talk(tmp_path: Path, env: dict[str, str]) -> None:
    data = tmp_path / "shop.csv"
    data.write_text("prompt,answer\nwhen do you open,At nine.\nwhere are you,On Main Street.\n", encoding="utf-8")
    result = runner.invoke(app, ["train", str(data)], env={**env, "TEACHBOT_STARTER_EXAMPLES": "false"})
    assert result.exit_code == 0, result.output
    assert "Trained v2 on 2 of your examples (2 answers)." in result.stdout
    assert "built-in" not in result.stdout


def every_command(group: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    commands = getattr(group, "commands", {})
    found = [path] if path else []
    for name, command in commands.items():
        found += every_command(command, (*path, name)) if getattr(command, "commands", None) else [(*path, name)]
    return found


def test_help_shows_flags_without_a_type() -> None:
    from typer.main import get_command

    commands = every_command(get_command(app))
    assert ("test",) in commands and ("init",) in commands and ("doctor",) in commands
    for command in [(), *commands]:
        shown = runner.invoke(app, [*command, "--help"])
        assert shown.exit_code == 0, command
        assert "<bool>" not in shown.stdout, command
    help_text = runner.invoke(app, ["test", "--help"]).stdout
    assert re.search(r"^\s+--json\s+Print the full report", help_text, re.MULTILINE), help_text


def test_a_bad_option_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["teachbot", "test", "--bogus"])
    with pytest.raises(SystemExit) as stopped:
        cli.main()
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "No such option: --bogus" in err and "Traceback" not in err
    monkeypatch.setattr(sys, "argv", ["teachbot"])
    with pytest.raises(SystemExit) as bare:
        cli.main()
    assert bare.value.code == 2 and "Commands:" in capsys.readouterr().err


@pytest.mark.slow  # starts teachbot in a pseudo-terminal
def test_progress_bar_leaves_the_next_line_clean(tmp_path: Path, settings: Settings) -> None:
    env = child_env()
    env.update(TEACHBOT_DATA_DIR=str(settings.data_dir), TERM="xterm-256color", COLUMNS="100")
    data = tmp_path / "shop.csv"  # new data: the same data again would keep v1 instead of training
    data.write_text("prompt,answer\nwhen do you open,At nine.\nwhere are you,On Main Street.\n", encoding="utf-8")
    parent, child = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "teachbot", "train", str(data)], stdin=subprocess.DEVNULL, stdout=child, stderr=child,
        env=env, cwd=tmp_path,
    )  # fmt: skip
    os.close(child)
    chunks = []
    while True:
        try:
            chunk = os.read(parent, 65536)
        except OSError:  # the pseudo-terminal closes when the process exits
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(parent)
    assert process.wait(timeout=120) == 0
    screen = ANSI.sub("", b"".join(chunks).decode("utf-8", errors="replace"))
    lines = [line.rsplit("\r", 1)[-1] for line in screen.replace("\r\n", "\n").split("\n")]
    trained = [line for line in lines if "Trained v2" in line]
    assert trained and all(line.startswith("Trained v2") for line in trained), screen
