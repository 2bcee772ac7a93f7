"""``teachbot init``: a project folder people can start from and read.

A project is a folder holding ``teachbot.toml`` (every setting, commented, generated from ``Settings``
so it never goes stale), an example dataset (the FAQ of The Wobbly Meeple, a made-up board-game café),
a test set asking the same things in other words, and the data folder. Run from inside it, every
``teachbot`` command reads that ``teachbot.toml``.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from teachbot.config import DEFAULT_CONFIG_FILE, Settings
from teachbot.errors import UserError, show_name
from teachbot.paths import atomic_write_bytes

if TYPE_CHECKING:
    from teachbot.app import App
    from teachbot.training.runs import Progress
    from teachbot.training.service import TrainOutcome

__all__ = [
    "DATASET_FILE",
    "DATASET_NAME",
    "TEST_FILE",
    "TRY_QUESTIONS",
    "Project",
    "create_project",
    "settings_toml",
    "train_example",
    "try_this",
]

DATASET_FILE = "faq.csv"
TEST_FILE = "faq-test.csv"
DATASET_NAME = "faq"
#: Questions the example model answers right although they are not in faq.csv (tests check it).
TRY_QUESTIONS = ("is the cafe open on a tuesday afternoon", "can my dog come with us")
_IGNORE = "# teachbot: the data folder and secrets stay out of version control\nteachbot-data/\n.env\n"


@dataclass(frozen=True, slots=True)
class Project:
    """A created project: its folder (absolute, and as the user named it) and the files written into it."""

    folder: Path
    shown: str
    files: tuple[Path, ...]

    @property
    def dataset(self) -> Path:
        return self.folder / DATASET_FILE

    @property
    def test_set(self) -> Path:
        return self.folder / TEST_FILE


def settings_toml() -> str:
    """``teachbot.toml`` with every setting commented out at its default, each under one line saying what
    it does; secrets are shown as environment variables to set instead."""
    lines = [
        "# teachbot settings for this project, read when teachbot runs in this folder.",
        "# Every setting is listed at its default: remove the leading `# ` of a line to change it.",
        "# Environment variables (TEACHBOT_<NAME>) and a .env file here override this file;",
        "# keep secrets (tokens, keys) in .env or the environment, never in this file.",
    ]
    for name, field in Settings.model_fields.items():
        lines.append("")
        lines.append(f"# {field.description}")
        default = field.get_default(call_default_factory=True)
        annotation = str(field.annotation)
        if "SecretStr" in annotation or isinstance(default, SecretStr):
            lines.append(f"# secret: set TEACHBOT_{name.upper()}=… in .env or the environment")
        elif default is None:
            lines.append(f"# {name} =    (not set by default)")
        else:
            lines.append(f"# {name} = {_toml_value(default)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    """A default as a TOML value: JSON's strings, numbers, booleans and arrays are valid TOML."""
    if isinstance(value, StrEnum):
        value = value.value
    elif isinstance(value, Path):
        value = str(value)
    return json.dumps(value, ensure_ascii=False)


def create_project(folder: Path) -> Project:
    """Write a new project into ``folder`` (created if missing). A folder that already holds a
    ``teachbot.toml``, or any file this would write, is refused: nothing is overwritten."""
    shown = show_name(str(folder))
    if folder.exists() and not folder.is_dir():
        raise UserError(f"`{shown}` is a file, not a folder; give a new or existing folder.")
    if (folder / DEFAULT_CONFIG_FILE).exists():
        raise UserError(
            f"`{shown}` already holds a teachbot project ({DEFAULT_CONFIG_FILE}); choose another folder, "
            f"e.g. `teachbot init my-bot`."
        )
    example = resources.files("teachbot.resources").joinpath("example")
    contents = {
        DEFAULT_CONFIG_FILE: settings_toml().encode(),
        DATASET_FILE: example.joinpath(DATASET_FILE).read_bytes(),
        TEST_FILE: example.joinpath(TEST_FILE).read_bytes(),
        ".gitignore": _IGNORE.encode(),
    }
    taken = [name for name in contents if (folder / name).exists()]
    if taken:
        raise UserError(f"`{shown}` already has {', '.join(taken)}; choose an empty or new folder.")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in contents.items():
        atomic_write_bytes(folder / name, data)
        written.append(folder.absolute() / name)
    return Project(folder.absolute(), shown, tuple(written))


async def train_example(app: App, project: Project, *, progress: Progress | None = None) -> TrainOutcome:
    """Import the example dataset and train a version on it (with the starter small talk unless the
    project turned it off)."""
    await app.datasets.import_file(
        app.settings.scope, project.dataset, author="init", name=DATASET_NAME, max_bytes=app.settings.max_upload_bytes
    )
    return await app.training.train(app.settings.scope, author="init", progress=progress)


def command_name() -> str:
    """How to run teachbot from this shell: ``teachbot`` when it is on the PATH, else the script next to
    this Python (a virtual environment that is not activated), else ``python -m teachbot``."""
    if shutil.which("teachbot"):
        return "teachbot"
    script = Path(sys.executable).parent / "teachbot"
    return str(script) if script.is_file() else f"{Path(sys.executable).name} -m teachbot"


def try_this(project: Project, *, command: str, prefix: str, starter: bool) -> str:
    """The screen printed after ``teachbot init``: how to start, three things to type, how to leave."""
    from teachbot.datasets.formats import read_examples

    folder = project.shown
    examples = read_examples(project.dataset)
    answers = len({e.answer for e in examples})
    built_in = " plus teachbot's built-in small talk" if starter else ""
    return "\n".join(
        [
            "",
            f"Your project is ready in {folder}/: a bot for The Wobbly Meeple, a made-up board-game café,",
            f"trained on {DATASET_FILE} ({answers} answers, {len(examples)} ways of asking){built_in}.",
            "",
            "Start chatting:",
            f"  cd {folder}",
            f"  {command} chat",
            "",
            "Then type:",
            f"  {TRY_QUESTIONS[0]}",
            f"  {TRY_QUESTIONS[1]}",
            f"  {prefix}help",
            "",
            "Leave with Ctrl-D.",
            "",
            f"Next: `{command} test {TEST_FILE}` scores the bot on questions it never saw; edit {DATASET_FILE} (or",
            f"add your own file) and `{command} train {DATASET_FILE}`; every setting is in {DEFAULT_CONFIG_FILE}.",
        ]
    )
