"""Every bot command once: name, arguments, help text and who may use it.

The console, the Discord cogs, ``!help`` and the README table all read this list, so the help a
user sees is the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from importlib import resources
from pathlib import Path


class Privilege(IntEnum):
    """The privilege ladder: each level includes the ones below it."""

    MEMBER = 1
    TRAINER = 2
    OWNER = 3


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    usage: str
    help: str
    privilege: Privilege = Privilege.MEMBER
    console: bool = True
    discord: bool = True


COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec("hi", "", "Say hi."),
    CommandSpec("help", "", "List the commands."),
    CommandSpec("instruction", "", "Show the guide to using and teaching the bot."),
    CommandSpec(
        "correct",
        "[message id] <better answer>",
        "Correct one of the bot's answers (reply to it, give its id, or the last one).",
    ),
    CommandSpec("feedback", "<text>", "Send a note to the people who train the bot."),
    CommandSpec("undo", "", "Undo your last correction or feedback."),
    CommandSpec(
        "forget",
        "<example id>",
        "Stop giving a learned answer (reply to the answer, or give the example id).",
        Privilege.TRAINER,
    ),
    CommandSpec("review", "", "Show corrections and 👎 waiting for review.", Privilege.TRAINER),
    CommandSpec("approve", "<item id>", "Approve a review item: it applies at once.", Privilege.TRAINER),
    CommandSpec("reject", "<item id>", "Reject a review item: it is never used.", Privilege.TRAINER),
    CommandSpec(
        "train",
        "[file or dataset name]",
        "Import an attached/named dataset and train a new model version.",
        Privilege.TRAINER,
    ),
    CommandSpec(
        "test",
        "[version] [file or JSON]",
        "Evaluate a model version (default: what answers now) on a test set, or on the held-out split.",
        Privilege.TRAINER,
    ),
    CommandSpec("validate", "[file]", "Check a dataset file without importing it.", Privilege.TRAINER),
    CommandSpec(
        "datasets",
        "[list | show NAME | diff NAME V1 V2 | export NAME FORMAT | delete NAME | from_chat NAME [liked]]",
        "Manage datasets: list, inspect, compare versions, export, delete, or build one from conversations.",
        Privilege.TRAINER,
    ),
    CommandSpec(
        "select_dataset",
        "<name> [positive|negative|off]",
        "Choose what feeds training: answers to give, never to give, or nothing.",
        Privilege.TRAINER,
    ),
    CommandSpec("jobs", "[cancel <run id>]", "List training runs with their state, or cancel one.", Privilege.TRAINER),
    CommandSpec(
        "models",
        "[activate <version> | rollback]",
        "List model versions, activate one, or roll back.",
        Privilege.TRAINER,
    ),
    CommandSpec("archive", "[datasets|exports|logs|all]", "Zip data into the archives folder.", Privilege.TRAINER),
    CommandSpec("getfile", "<name>", "Send a file from the exports or archives folder.", Privilege.TRAINER),
    CommandSpec("join", "", "Join your voice channel and speak answers there.", console=False),
    CommandSpec("leave", "", "Leave the voice channel.", console=False),
)

BY_NAME = {spec.name: spec for spec in COMMANDS}


def help_text(prefix: str, *, console: bool, privilege: Privilege) -> str:
    """The ``!help`` reply: the commands this user may run here."""
    lines = ["Commands:"]
    for spec in COMMANDS:
        if (console and not spec.console) or (not console and not spec.discord) or spec.privilege > privilege:
            continue
        usage = f" {spec.usage}" if spec.usage else ""
        lines.append(f"  {prefix}{spec.name}{usage} — {spec.help}")
    lines.append("Anything else is a message to the bot.")
    return "\n".join(lines)


def instruction_text(path: Path | None) -> str:
    """The ``!instruction`` guide: the configured file, or the bundled one."""
    if path is not None:
        return path.read_text(encoding="utf-8")
    return resources.files("teachbot.resources").joinpath("instruction.md").read_text(encoding="utf-8")
