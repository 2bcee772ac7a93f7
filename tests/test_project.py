"""`teachbot init`'s project: the generated teachbot.toml, the example data, refusals."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from teachbot.answering.local_model import LocalModel
from teachbot.config import Settings, load_settings
from teachbot.datasets.formats import read_examples
from teachbot.datasets.validation import validate_file
from teachbot.errors import UserError
from teachbot.project import DATASET_FILE, TEST_FILE, TRY_QUESTIONS, create_project, settings_toml
from teachbot.training.data import starter_examples

SECRETS = {name for name, field in Settings.model_fields.items() if "SecretStr" in str(field.annotation)}


def test_settings_toml_lists_every_setting_with_its_description() -> None:
    text = settings_toml()
    assert tomllib.loads(text) == {}  # everything is commented out: defaults stay defaults
    for name, field in Settings.model_fields.items():
        assert f"# {field.description}" in text
        assert f"# {name} = " in text or f"TEACHBOT_{name.upper()}=" in text, name


def test_uncommented_defaults_load_as_the_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [line[2:] for line in settings_toml().splitlines() if line.startswith("# ") and " = " in line]
    lines = [line for line in lines if "(not set by default)" not in line]
    config = tmp_path / "all.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    parsed = tomllib.loads(config.read_text(encoding="utf-8"))
    assert "starter_examples" in parsed and parsed["starter_examples"] is True
    assert not SECRETS & parsed.keys()  # no secret ever gets a line to fill in
    unset = [name for name, field in Settings.model_fields.items() if field.default is None and name not in SECRETS]
    assert len(parsed) == len(Settings.model_fields) - len(SECRETS) - len(unset)
    monkeypatch.setenv("TEACHBOT_CONFIG", str(config))
    monkeypatch.delenv("TEACHBOT_ENCODER_PREPARED_COPY")  # the tests' own choice would win over the file
    loaded, defaults = load_settings(), Settings.model_construct()
    for name in parsed:
        assert getattr(loaded, name) == getattr(defaults, name), name


def test_create_project_writes_the_files(tmp_path: Path) -> None:
    project = create_project(tmp_path / "cafe")
    names = sorted(path.name for path in project.files)
    assert names == sorted([".gitignore", DATASET_FILE, TEST_FILE, "teachbot.toml"])
    assert all(path.is_file() and path.stat().st_size for path in project.files)
    assert (project.folder / "teachbot.toml").read_text(encoding="utf-8") == settings_toml()
    assert "teachbot-data/" in (project.folder / ".gitignore").read_text(encoding="utf-8")


def test_existing_project_or_files_are_refused_and_kept(tmp_path: Path) -> None:
    first = create_project(tmp_path / "cafe")
    (first.folder / "teachbot.toml").write_text('scope = "mine"\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"already holds a teachbot project \(teachbot\.toml\)"):
        create_project(tmp_path / "cafe")
    assert (first.folder / "teachbot.toml").read_text(encoding="utf-8") == 'scope = "mine"\n'
    other = tmp_path / "other"
    other.mkdir()
    (other / DATASET_FILE).write_text("mine", encoding="utf-8")
    with pytest.raises(UserError, match=r"already has faq\.csv"):
        create_project(other)
    assert (other / DATASET_FILE).read_text(encoding="utf-8") == "mine" and not (other / "teachbot.toml").exists()
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(UserError, match="is a file, not a folder"):
        create_project(tmp_path / "file")


def test_a_non_empty_folder_without_a_project_is_fine(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("my notes", encoding="utf-8")
    create_project(tmp_path)
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == "my notes"


def test_example_data_is_a_clean_faq_with_several_phrasings_and_a_separate_test_set(tmp_path: Path) -> None:
    project = create_project(tmp_path / "cafe")
    train, test = read_examples(project.dataset), read_examples(project.test_set)
    answers = {e.answer for e in train}
    assert len(answers) >= 20
    assert all(sum(e.answer == a for e in train) >= 5 for a in answers)
    assert {e.answer for e in test} == answers
    assert not {e.prompt.lower() for e in train} & {e.prompt.lower() for e in test}
    for path in (project.dataset, project.test_set):
        report = validate_file(path)
        assert report.counts == {}, report.to_text()


def test_the_example_model_answers_most_new_phrasings_and_the_suggested_ones(tmp_path: Path) -> None:
    project = create_project(tmp_path / "cafe")
    train = [*starter_examples(), *read_examples(project.dataset)]
    model = LocalModel.fit([e.prompt for e in train], [e.answer for e in train])
    test = read_examples(project.test_set)
    right = sum(model.predict(e.prompt).answer == e.answer for e in test)
    assert right / len(test) >= 0.8
    expected = {e.prompt: e.answer for e in test}
    for question in TRY_QUESTIONS:
        assert model.predict(question).answer == expected[question]
