"""`teachbot datasets validate`: which keys are read, and how an unreadable line is reported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from teachbot.cli import app

runner = CliRunner()


def validate(path: Path, **env: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, ["datasets", "validate", str(path), "--json"], env=env)
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.parametrize(
    ("prompt_key", "answer_key"),
    [("question", "answer"), ("question", "reply"), ("q", "a"), ("input", "output"), ("instruction", "response")],
)
def test_common_prompt_and_answer_keys_are_read(tmp_path: Path, prompt_key: str, answer_key: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(
        "".join(json.dumps({prompt_key: f"question {i}", answer_key: f"answer {i}"}) + "\n" for i in range(12)),
        encoding="utf-8",
    )
    code, report = validate(path)
    assert code == 0 and report["counts"] == {} and report["stats"]["examples"] == 12
    table = tmp_path / "d.csv"
    table.write_text(f"{prompt_key},{answer_key}\n" + "".join(f"q {i},a {i}\n" for i in range(12)), encoding="utf-8")
    assert validate(table)[1]["counts"] == {}


def test_instruction_wins_over_its_optional_input(tmp_path: Path) -> None:
    path = tmp_path / "alpaca.jsonl"
    path.write_text(json.dumps({"instruction": "say hi", "input": "", "output": "hi"}) + "\n", encoding="utf-8")
    code, report = validate(path)
    assert code == 0 and report["stats"]["examples"] == 1


def test_unknown_keys_name_the_keys_expected(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(
        json.dumps({"query": "hello", "retort": "hi"}) + "\n" + json.dumps({"foo": "x", "bar": "y"}) + "\n",
        encoding="utf-8",
    )
    code, report = validate(path)
    assert code == 1
    issues = {i["line"]: i for i in report["issues"]}
    assert issues[1]["code"] == "missing_keys"
    assert "no answer key among `query`, `retort`" in issues[1]["message"]
    assert issues[2]["code"] == "missing_messages"
    assert "found: `foo`, `bar`" in issues[2]["message"]
    for issue in (issues[1], issues[2]):
        assert "`prompt`" in issue["message"] and "`answer`" in issue["message"] and "`messages`" in issue["message"]
    assert "no_examples" not in report["counts"]  # the errors already say why nothing could be read


def test_an_empty_prompt_is_missing_content_on_its_line(tmp_path: Path) -> None:
    lines = [{"prompt": f"q{i}", "answer": f"a{i}"} for i in range(11)] + [{"prompt": " ", "answer": "x"}]
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    code, report = validate(path)
    assert code == 1 and report["counts"] == {"missing_content": 1}
    assert report["issues"] == [{"level": "error", "code": "missing_content", "message": "empty prompt", "line": 12}]
    table = tmp_path / "d.csv"
    table.write_text("prompt,answer\nhello,hi\nthere,\n", encoding="utf-8")
    code, report = validate(table)
    assert report["issues"] == [{"level": "error", "code": "missing_content", "message": "empty answer", "line": 3}]
    assert report["counts"] == {"missing_content": 1}


def test_openai_minimum_count_only_on_the_openai_backend(tmp_path: Path) -> None:
    path = tmp_path / "small.csv"
    path.write_text("prompt,answer\nhi,hello\n", encoding="utf-8")
    assert validate(path)[1]["counts"] == {}
    assert validate(path, TEACHBOT_BACKEND="hybrid")[1]["counts"] == {}
    assert validate(path, TEACHBOT_BACKEND="openai")[1]["counts"] == {"few_examples": 1}
