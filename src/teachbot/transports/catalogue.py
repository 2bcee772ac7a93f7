"""Every bot command once: its name, typed arguments, help text, who may use it and where it exists.

This list is the single declaration of a command. The Discord commands (prefix and slash) are built
from it, the terminal dispatches from it, the permission check reads the privilege from it, and
``!help`` and the README table are printed from it. What a command *does* is the method of the same
name on ``CommandHandlers`` (``transports/handlers.py``); a subcommand's method is ``group_sub``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Flag, IntEnum, StrEnum, auto
from importlib import resources
from pathlib import Path


class Privilege(IntEnum):
    """The privilege ladder: each level includes the ones below it."""

    MEMBER = 1
    TRAINER = 2
    OWNER = 3


class Door(Flag):
    """Origin a command exists."""

    DISCORD = auto()
    CONSOLE = auto()
    EVERYWHERE = DISCORD | CONSOLE


class ArgKind(StrEnum):
    """How an argument is written and what the handler receives."""

    WORD = "word"  # one word → str
    NUMBER = "number"  # a whole number such as an id → int (``#12`` and ``v3`` accepted)
    CHOICE = "choice"  # one of ``choices`` → str
    TEXT = "text"  # the rest of the line → str
    FILE = "file"  # an attachment on Discord, a file in the data folder in the terminal → Upload


@dataclass(frozen=True, slots=True)
class Arg:
    """One argument of a command. Optional ones may be left out; a word that does not fit is then
    read as the next argument (``!correct 12 better`` vs ``!correct better``)."""

    name: str
    kind: ArgKind
    help: str
    required: bool = False
    choices: tuple[str, ...] = ()
    not_starting: str = ""  # a WORD never starts with one of these characters (so JSON is not a version)
    marked: bool = False  # in the terminal a NUMBER is written ``#12``, so "42 is the answer" stays text

    @property
    def usage(self) -> str:
        shown = "|".join(self.choices) if self.kind is ArgKind.CHOICE else self.name
        return f"<{shown}>" if self.required else f"[{shown}]"


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """A command: ``help`` is its one-line description everywhere (help, slash description, README)."""

    name: str
    help: str
    args: tuple[Arg, ...] = ()
    privilege: Privilege = Privilege.MEMBER
    doors: Door = Door.EVERYWHERE
    heavy: bool = False  # long or costly: a per-user cooldown (``heavy_cooldown_seconds``), and Discord defers
    progress: str = ""  # shows a live status message with this title while it runs (Discord)
    subcommands: tuple[CommandSpec, ...] = ()  # a group: ``!name sub …``
    default: str = ""  # the subcommand run when a group is called alone
    guild_only: bool = False

    @property
    def usage(self) -> str:
        if self.subcommands:
            return "[" + " | ".join(f"{s.name} {s.usage}".strip() for s in self.subcommands) + "]"
        return " ".join(arg.usage for arg in self.args)

    def subcommand(self, name: str) -> CommandSpec | None:
        return next((s for s in self.subcommands if s.name == name), None)


TRAINER = Privilege.TRAINER
FILE_ARG = Arg("file", ArgKind.FILE, "A dataset file (attached on Discord, in the data folder in the terminal).")

COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec("hi", "Say hi."),
    CommandSpec("help", "List the commands."),
    CommandSpec("instruction", "Show the guide to using and teaching the bot."),
    CommandSpec(
        "correct",
        "Correct one of the bot's answers (reply to it, give its id, or the last one).",
        (
            Arg(
                "message_id",
                ArgKind.NUMBER,
                "Id of the answer to correct (default: the one replied to, or the last).",
                marked=True,
            ),
            Arg("answer", ArgKind.TEXT, "The better answer.", required=True),
        ),
    ),
    CommandSpec(
        "interactive",
        "Interactive teaching: after each answer, pick the right one of the likeliest answers or type it.",
        (Arg("mode", ArgKind.CHOICE, "on or off (default: switch).", choices=("on", "off")),),
        doors=Door.CONSOLE,
    ),
    CommandSpec(
        "feedback", "Send a note to the people who train the bot.", (Arg("text", ArgKind.TEXT, "Your note.", True),)
    ),
    CommandSpec("undo", "Undo your last correction or feedback."),
    CommandSpec(
        "forget",
        "Stop giving a learned answer (reply to the answer, or give the example id).",
        (Arg("example_id", ArgKind.NUMBER, "Id of the learned example (default: the answer replied to)."),),
        TRAINER,
    ),
    CommandSpec("review", "Show corrections and 👎 waiting for review.", privilege=TRAINER),
    CommandSpec(
        "approve",
        "Approve a review item: it applies at once.",
        (Arg("item_id", ArgKind.WORD, "Review item id, like C12 or F3.", True),),
        TRAINER,
    ),
    CommandSpec(
        "reject",
        "Reject a review item: it is never used.",
        (Arg("item_id", ArgKind.WORD, "Review item id, like C12 or F3.", True),),
        TRAINER,
    ),
    CommandSpec(
        "train",
        "Import an attached/named dataset and train a new model version.",
        (FILE_ARG, Arg("name", ArgKind.WORD, "Dataset name: to name the import, or to train on a stored dataset.")),
        TRAINER,
        heavy=True,
        progress="Training",
    ),
    CommandSpec(
        "test",
        "Evaluate a model version (default: what answers now) on a test set, or on the held-out split.",
        (
            FILE_ARG,
            Arg("version", ArgKind.WORD, "Model version to test (default: what answers now).", not_starting="[{"),
            Arg("data", ArgKind.TEXT, 'Inline JSON: ["question", …] or [{"prompt": …, "answer": …}, …].'),
        ),
        TRAINER,
        heavy=True,
    ),
    CommandSpec("validate", "Check a dataset file without importing it.", (FILE_ARG,), TRAINER),
    CommandSpec(
        "datasets",
        "Manage datasets: list, inspect, compare versions, export, delete, or build one from conversations.",
        privilege=TRAINER,
        default="list",
        subcommands=(
            CommandSpec("list", "List the datasets and how each feeds training."),
            CommandSpec(
                "show",
                "Show a dataset version's size and first examples.",
                (Arg("name", ArgKind.WORD, "Dataset name.", True), Arg("version", ArgKind.NUMBER, "Version number.")),
            ),
            CommandSpec(
                "diff",
                "Compare two versions of a dataset.",
                (
                    Arg("name", ArgKind.WORD, "Dataset name.", True),
                    Arg("old", ArgKind.NUMBER, "Older version.", True),
                    Arg("new", ArgKind.NUMBER, "Newer version.", True),
                ),
            ),
            CommandSpec(
                "export",
                "Write a dataset (or `corrections` as preference pairs) into exports/.",
                (
                    Arg("name", ArgKind.WORD, "Dataset name, or `corrections`.", True),
                    Arg("format", ArgKind.CHOICE, "File format.", choices=("openai-chat", "preference", "csv", "yaml")),
                ),
            ),
            CommandSpec(
                "delete", "Delete a dataset and all its versions.", (Arg("name", ArgKind.WORD, "Dataset name.", True),)
            ),
            CommandSpec(
                "from_chat",
                "Turn stored conversations into a dataset (corrections applied).",
                (
                    Arg("name", ArgKind.WORD, "Name of the new dataset.", True),
                    Arg("liked", ArgKind.CHOICE, "Only answers with a 👍 (and corrected ones).", choices=("liked",)),
                ),
            ),
        ),
    ),
    CommandSpec(
        "select_dataset",
        "Choose what feeds training: answers to give, never to give, or nothing.",
        (
            Arg("name", ArgKind.WORD, "Dataset name.", True),
            Arg("use", ArgKind.CHOICE, "How it feeds training.", choices=("positive", "negative", "off")),
        ),
        TRAINER,
    ),
    CommandSpec(
        "jobs",
        "List training runs with their state, or cancel one.",
        privilege=TRAINER,
        default="list",
        subcommands=(
            CommandSpec("list", "List training runs with their state."),
            CommandSpec("cancel", "Cancel a running run.", (Arg("run_id", ArgKind.NUMBER, "Run id.", True),)),
        ),
    ),
    CommandSpec(
        "status",
        "Show the processes serving the bot, their shards, the active versions and the training queue.",
        privilege=TRAINER,
    ),
    CommandSpec(
        "models",
        "List model versions, activate one, or roll back.",
        privilege=TRAINER,
        default="list",
        subcommands=(
            CommandSpec("list", "List the model versions."),
            CommandSpec(
                "activate", "Make a stored version the active one.", (Arg("version", ArgKind.WORD, "Version.", True),)
            ),
            CommandSpec("rollback", "Activate the version before the active one."),
        ),
    ),
    CommandSpec(
        "archive",
        "Zip data into the archives folder.",
        (
            Arg(
                "what",
                ArgKind.CHOICE,
                "What to archive (default: all).",
                choices=("datasets", "exports", "logs", "all"),
            ),
        ),
        TRAINER,
        heavy=True,
    ),
    CommandSpec(
        "getfile",
        "Send a file from the exports or archives folder.",
        (Arg("name", ArgKind.WORD, "File name.", True),),
        TRAINER,
    ),
    CommandSpec("join", "Join your voice channel and speak answers there.", doors=Door.DISCORD, guild_only=True),
    CommandSpec("leave", "Leave the voice channel.", doors=Door.DISCORD, guild_only=True),
    CommandSpec(
        "listen",
        "Join your voice channel and answer aloud what members say there.",
        doors=Door.DISCORD,
        guild_only=True,
    ),
    CommandSpec("stop", "Stop listening and leave the voice channel.", doors=Door.DISCORD, guild_only=True),
)

BY_NAME = {spec.name: spec for spec in COMMANDS}


def handler_name(group: CommandSpec | None, spec: CommandSpec) -> str:
    """The ``CommandHandlers`` method that runs ``spec``: its name, or ``group_sub`` for a subcommand."""
    return f"{group.name}_{spec.name}" if group is not None else spec.name


def usage_line(prefix: str, spec: CommandSpec, group: CommandSpec | None = None) -> str:
    words = [f"{prefix}{group.name}" if group else "", f"{prefix}{spec.name}" if not group else spec.name, spec.usage]
    return " ".join(w for w in words if w)


HELP_FOOTER = "Anything else is a message to the bot."


def help_rows(prefix: str, door: Door, privilege: Privilege) -> list[tuple[str, str]]:
    """(usage, help) of the commands this user may run through this door."""
    return [
        (usage_line(prefix, spec), spec.help) for spec in COMMANDS if spec.doors & door and spec.privilege <= privilege
    ]


def help_text(prefix: str, door: Door, privilege: Privilege) -> str:
    """The ``!help`` reply as text: the commands this user may run through this door."""
    lines = ["Commands:", *(f"  {usage} — {text}" for usage, text in help_rows(prefix, door, privilege))]
    lines.append(HELP_FOOTER)
    return "\n".join(lines)


def instruction_text(path: Path | None) -> str:
    """The ``!instruction`` guide: the configured file, or the bundled one."""
    if path is not None:
        return path.read_text(encoding="utf-8")
    return resources.files("teachbot.resources").joinpath("instruction.md").read_text(encoding="utf-8")
