"""`teachbot test`: the results folder (report, chart, confusion table, wrong answers to import back) and
cross-validation, through the command line."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from typer.testing import CliRunner

from teachbot.cli import app
from teachbot.config import Settings
from teachbot.datasets.examples import Example
from teachbot.datasets.formats import read_examples
from teachbot.training.crossval import assign_folds, cross_validate
from teachbot.training.data import starter_examples
from teachbot.training.results import RESULT_FILES

runner = CliRunner()
HELLO = "Hello! I'm teachbot. Ask me something, and teach me when I get it wrong."
BYE = "Goodbye! Come back any time."
ZORBLAX = "what is the capital of the planet zorblax"


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    return {"TEACHBOT_DATA_DIR": str(settings.data_dir)}


@pytest.fixture(autouse=True)
def _umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def write_tests(path: Path, rows: list[tuple[str, str]]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([("prompt", "answer"), *rows])
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def results_folder(output: str) -> Path:
    line = next(line for line in output.splitlines() if line.startswith("Results in "))
    return Path(line.removeprefix("Results in ").split("/:", 1)[0])


def test_results_folder_has_every_file_readable_by_others(tmp_path: Path, env: dict[str, str]) -> None:
    tests = write_tests(
        tmp_path / "t.csv", [("hello", HELLO), ("hi there", HELLO), ("good morning", BYE), (ZORBLAX, "Zorbopolis.")]
    )
    result = runner.invoke(app, ["test", str(tests)], env=env)
    assert result.exit_code == 0, result.output
    assert "accuracy 50.0%" in result.stdout
    folder = results_folder(result.stdout)
    assert folder.parent == Path(env["TEACHBOT_DATA_DIR"]) / "results" and folder.name.startswith("v1-")
    assert sorted(p.name for p in folder.iterdir()) == sorted(RESULT_FILES)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o644 for p in folder.iterdir())

    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert report["accuracy"] == 0.5 and report["examples"] == 4 and report["source"] == "t.csv"
    assert report["confidence_threshold"] == 0.35
    assert (folder / "chart.png").read_bytes().startswith(b"\x89PNG")

    confusions = list(csv.reader(io.StringIO((folder / "confusions.csv").read_text(encoding="utf-8"))))
    assert confusions[0] == ["expected", "answered", "count"]
    assert {tuple(row) for row in confusions[1:3]} == {(BYE, HELLO, "1"), ("Zorbopolis.", "(fallback)", "1")}
    assert confusions[3:] == [[HELLO, HELLO, "2"]]  # the right answers come last

    wrong = list(csv.DictReader(io.StringIO((folder / "wrong.csv").read_text(encoding="utf-8"))))
    assert [(w["prompt"], w["answer"], w["given"]) for w in wrong] == [
        ("good morning", BYE, HELLO),  # the most confident mistake first
        (ZORBLAX, "Zorbopolis.", "(fallback)"),
    ]
    assert "wrong.csv lists the 2 wrong answer(s)" in result.stdout


def test_wrong_answers_import_back_with_train(tmp_path: Path, env: dict[str, str]) -> None:
    tests = write_tests(tmp_path / "t.csv", [("hello", HELLO), (ZORBLAX, "Zorbopolis is the capital.")])
    wrong = results_folder(runner.invoke(app, ["test", str(tests)], env=env).stdout) / "wrong.csv"
    assert [(e.prompt, e.answer) for e in read_examples(wrong)] == [(ZORBLAX, "Zorbopolis is the capital.")]
    trained = runner.invoke(app, ["train", str(wrong), "--name", "fixes"], env=env)
    assert trained.exit_code == 0, trained.output
    assert "Dataset `fixes`" in trained.stdout
    again = runner.invoke(app, ["test", str(tests)], env=env)
    assert "accuracy 100.0%" in again.stdout, again.stdout


def test_out_and_json(tmp_path: Path, env: dict[str, str]) -> None:
    tests = write_tests(tmp_path / "t.csv", [("hello", HELLO)])
    result = runner.invoke(app, ["test", str(tests), "--json", "--out", str(tmp_path / "here")], env=env)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["accuracy"] == 1.0 and document["results_folder"] == str(tmp_path / "here")
    assert "Results in" in result.stderr
    assert sorted(p.name for p in (tmp_path / "here").iterdir()) == sorted(RESULT_FILES)
    assert (tmp_path / "here" / "wrong.csv").read_text(encoding="utf-8") == "prompt,answer,given,confidence\n"


def test_cross_validation_reports_each_fold(tmp_path: Path, env: dict[str, str]) -> None:
    faq = tmp_path / "faq-test.csv"
    faq.write_bytes(resources.files("teachbot.resources").joinpath("example").joinpath("faq-test.csv").read_bytes())
    result = runner.invoke(app, ["test", str(faq), "--folds", "3"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("3-fold cross-validation of faq-test.csv (60 examples, 20–20 per fold)")
    assert "plus the built-in small talk" in result.stdout
    folder = results_folder(result.stdout)
    assert folder.name.startswith("3-fold-")
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    folds = report["cross_validation"]
    assert folds["folds"] == 3 and len(folds["fold_accuracies"]) == 3 and folds["fold_sizes"] == [20, 20, 20]
    assert min(folds["fold_accuracies"]) <= folds["mean_accuracy"] <= max(folds["fold_accuracies"])
    assert report["examples"] == 60  # every example answered once, by a model that did not learn it


def test_cross_validation_refusals(tmp_path: Path, env: dict[str, str]) -> None:
    tests = write_tests(tmp_path / "t.csv", [("hello", HELLO), ("goodbye", BYE)])
    both = runner.invoke(app, ["test", str(tests), "--folds", "2", "--version", "v1"], env=env)
    assert both.exit_code == 2 and "--version" in both.stderr
    too_many = runner.invoke(app, ["test", str(tests), "--folds", "3"], env=env)
    assert too_many.exit_code == 2 and "between 2 and 2" in too_many.stderr
    assert runner.invoke(app, ["test", str(tests), "--folds", "1"], env=env).exit_code == 2


def test_folds_spread_each_answer_and_are_balanced() -> None:
    examples = [Example(f"q{i}", f"a{i % 4}") for i in range(22)]
    folds = assign_folds(examples, 5)
    sizes = [folds.count(f) for f in range(5)]
    assert max(sizes) - min(sizes) <= 1
    for answer in {e.answer for e in examples}:
        used = {f for e, f in zip(examples, folds, strict=True) if e.answer == answer}
        assert len(used) == min(5, sum(e.answer == answer for e in examples))
    assert assign_folds(examples, 5) == folds  # deterministic


def test_cross_validation_never_scores_a_model_on_what_it_learned() -> None:
    # Each answer's phrasings are unrelated nonsense words: a model that saw the question would get it
    # right, one that did not cannot. So out-of-fold accuracy must be low, not perfect.
    examples = [Example(f"zq{i}x{i * 7919 % 1000}", f"answer {i % 3}") for i in range(30)]
    result = cross_validate(examples, folds=3, starter=starter_examples(), threshold=0.35, source="n.csv")
    assert result.report.examples == 30 and len(result.accuracies) == 3
    assert result.mean < 0.7
