"""The console through a real subprocess with piped stdin, as a user runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fakes.env import child_env

import teachbot as teachbot_package

pytestmark = pytest.mark.slow  # each test starts teachbot as a process


@pytest.fixture(autouse=True)
def _trained(tmp_path: Path, trained_data_dir: Path) -> None:
    """Each process starts on a copy of the session's trained data folder (no starter training per test)."""
    shutil.copytree(trained_data_dir, tmp_path / "data")


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = child_env()
    env["TEACHBOT_DATA_DIR"] = str(tmp_path / "data")
    env.update(extra)
    return env


def teachbot(tmp_path: Path, *args: str, stdin: str = "", **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "teachbot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env_for(tmp_path, **extra),
        cwd=tmp_path,
        timeout=180,
    )


def test_hi_through_piped_stdin(tmp_path: Path) -> None:
    result = teachbot(tmp_path, "chat", stdin="!hi\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "HI!\n"


def test_chat_with_an_encoder_folder_that_is_not_there_says_so_in_one_line(tmp_path: Path) -> None:
    """The encoder starts loading before the rest of teachbot is imported; a bad setting still ends as one line."""
    result = teachbot(tmp_path, "chat", stdin="hello\n", TEACHBOT_ENCODER=str(tmp_path / "no-model"))
    assert result.returncode == 2
    assert result.stderr.startswith("error: setting 'encoder'") and "is not minilm, none or a folder" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_chat_with_a_damaged_model_file_says_so_in_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"not an onnx model")
    shutil.copy(Path(teachbot_package.__file__).parent / "resources" / "minilm" / "tokenizer.json", folder)
    result = teachbot(tmp_path, "chat", stdin="hello\n", TEACHBOT_ENCODER=str(folder))
    assert result.returncode == 2, result.stdout
    assert result.stderr.startswith("error: setting 'encoder'") and "not an ONNX model" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_without_token_chats_in_the_terminal_and_says_so(tmp_path: Path) -> None:
    result = teachbot(tmp_path, "run", stdin="!hi\n")
    assert result.returncode == 0, result.stderr
    assert "HI!" in result.stdout
    assert "No Discord token" in result.stderr


def test_correction_applies_to_the_question_and_a_paraphrase(tmp_path: Path) -> None:
    lines = [
        "what is the capital of the planet zorblax",
        "!correct Zorbopolis is the capital.",
        "what is the capital of the planet zorblax",
        "whats the capital of planet zorblax?",
        "hello",
    ]
    result = teachbot(tmp_path, "chat", stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout.strip().splitlines()
    assert out[0] != "Zorbopolis is the capital."
    assert out[1].startswith("Learned")
    assert out[2] == "Zorbopolis is the capital."
    assert out[3] == "Zorbopolis is the capital."
    assert out[4] != "Zorbopolis is the capital."


def test_help_instruction_and_bad_commands(tmp_path: Path) -> None:
    result = teachbot(tmp_path, "chat", stdin="!help\n!instruction\n!nope\n!correct\n!train ../../etc/passwd\n!test\n")
    assert result.returncode == 0, result.stderr
    assert "!correct" in result.stdout and "How to use teachbot" in result.stdout
    assert "# How to use teachbot" in result.stdout and "**Teach me**" in result.stdout  # piped: plain Markdown
    assert "Unknown command `!nope`" in result.stdout
    assert "leaves the data folder" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_scope_option_keeps_knowledge_apart(tmp_path: Path) -> None:
    teach = "what is the capital of the planet zorblax\n!correct Zorbopolis.\n"
    assert teachbot(tmp_path, "chat", "--scope", "lab", stdin=teach).returncode == 0
    lab = teachbot(tmp_path, "chat", "--scope", "lab", stdin="what is the capital of the planet zorblax\n")
    other = teachbot(tmp_path, "chat", stdin="what is the capital of the planet zorblax\n")
    assert lab.stdout.strip() == "Zorbopolis."
    assert other.stdout.strip() != "Zorbopolis."


def test_cli_train_and_test_json(tmp_path: Path) -> None:
    data = tmp_path / "faq.jsonl"
    rows = [
        {"prompt": p, "answer": a}
        for a, ps in {
            "Nine o'clock.": ["when do you open", "opening time", "what time do you open"],
            "Two days.": ["how long is delivery", "delivery time", "how fast is shipping"],
        }.items()
        for p in ps
    ]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    trained = teachbot(tmp_path, "train", str(data))
    assert trained.returncode == 0, trained.stderr
    assert "Trained v2" in trained.stdout
    tested = teachbot(tmp_path, "test", str(data), "--json")
    assert tested.returncode == 0, tested.stderr
    report = json.loads(tested.stdout)
    assert {"accuracy", "fallback_rate", "examples", "per_answer"} <= report.keys()
    assert report["examples"] == 6 and report["accuracy"] == 1.0
    listed = teachbot(tmp_path, "models", "list")
    assert "v1" in listed.stdout and "v2 (active)" in listed.stdout


def test_cli_train_malformed_file_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"question,answer\n\xff\xfe\x00garbage\n")
    result = teachbot(tmp_path, "train", str(bad))
    assert result.returncode == 2
    assert "bad.csv" in result.stderr and "Traceback" not in result.stderr


def test_bytes_that_are_not_utf8_on_stdin_are_read_not_fatal(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "teachbot", "chat"],
        input=b"\xff\xfe hello \xc3\n!hi\n",
        capture_output=True,
        env=env_for(tmp_path),
        cwd=tmp_path,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().splitlines()[-1] == "HI!"
    assert b"Traceback" not in result.stderr


def test_interactive_flag_offers_answers_and_a_choice_applies_at_once(tmp_path: Path) -> None:
    lines = [
        "what is the capital of the planet zorblax",
        "Zorbopolis is the capital.",
        "whats the capital of planet zorblax?",
    ]
    result = teachbot(tmp_path, "chat", "--interactive", stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert out[1] == "  Enter skips · or type the right answer"
    assert out[2].startswith("Learned")
    assert out[3] == "Zorbopolis is the capital."
    assert out[4].startswith("  1. Zorbopolis is the capital.") and out[4].endswith("← my answer")


def test_a_piped_chat_never_imports_rich(tmp_path: Path) -> None:
    """rich renders for a person at a terminal (log lines, progress bars, Markdown); importing it cost a piped
    chat's first answer about 40 ms, so it waits until something is rendered."""
    code = (
        "import sys\n"
        "from teachbot.cli import main\n"
        "sys.argv = ['teachbot', 'chat']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'rich', 'scipy', 'sklearn', 'yaml'}))\n"
    )
    env = env_for(tmp_path)
    env["PYTHONPATH"] = str(Path(teachbot_package.__file__).resolve().parents[1])
    done = subprocess.run(
        [sys.executable, "-c", code], input="!hi\n", capture_output=True, text=True, env=env, cwd=tmp_path, timeout=180
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["HI!", "[]"]
