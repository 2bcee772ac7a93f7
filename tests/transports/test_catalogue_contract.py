"""The catalogue is the single declaration of a command: every door reaches every entry, with its privilege."""

from __future__ import annotations

import inspect
from types import SimpleNamespace
from typing import Any

import pytest

from teachbot.transports.catalogue import BY_NAME, COMMANDS, ArgKind, CommandSpec, Door, Privilege, handler_name
from teachbot.transports.discord.commands import CommandDoor
from teachbot.transports.handlers import CommandHandlers

ENTRIES = [(None, spec) for spec in COMMANDS if not spec.subcommands] + [
    (group, sub) for group in COMMANDS for sub in group.subcommands
]


def _id(entry: tuple[CommandSpec | None, CommandSpec]) -> str:
    return handler_name(*entry)


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_every_entry_has_a_handler_taking_its_typed_arguments(entry: tuple[CommandSpec | None, CommandSpec]) -> None:
    group, spec = entry
    handler = getattr(CommandHandlers, handler_name(group, spec), None)
    assert handler is not None and inspect.iscoroutinefunction(handler)
    parameters = list(inspect.signature(handler).parameters.values())[2:]  # self, call
    positional = [p for p in parameters if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    assert sorted(p.name for p in positional) == sorted(a.name for a in spec.args)
    for arg in spec.args:
        declared = next(p for p in positional if p.name == arg.name)
        assert (declared.default is inspect.Parameter.empty) == (arg.required and arg.kind is not ArgKind.FILE)


def _built() -> dict[str, Any]:
    door = CommandDoor(SimpleNamespace(app=SimpleNamespace()))  # type: ignore[arg-type]
    return {command.name: command for command in door.build()}


def test_every_discord_entry_is_a_prefix_and_a_slash_command_with_the_catalogue_help() -> None:
    built = _built()
    assert sorted(built) == sorted(s.name for s in COMMANDS if s.doors & Door.DISCORD)
    for name, command in built.items():
        spec = BY_NAME[name]
        assert command.app_command is not None and command.app_command.description == spec.help
        if spec.subcommands:
            prefix_subs = {c.name for c in command.commands}
            slash_subs = {c.name for c in command.app_command.commands}
            assert prefix_subs == {s.name for s in spec.subcommands}
            assert slash_subs == {s.name for s in spec.subcommands}  # the default is the slash fallback
        else:
            slash_options = {p.name for p in command.app_command.parameters}
            assert slash_options == {a.name for a in spec.args}
            assert set(command.clean_params) == {a.name for a in spec.args}


def test_console_reaches_every_console_entry(tmp_path: Any) -> None:
    from teachbot.transports.console import ConsoleChat

    chat = ConsoleChat.__new__(ConsoleChat)  # dispatch only: no app needed to find the handler
    chat.prefix = "!"
    chat.handlers = CommandHandlers.__new__(CommandHandlers)
    for group, spec in ENTRIES:
        if not (group or spec).doors & Door.CONSOLE:
            continue
        assert callable(getattr(chat.handlers, handler_name(group, spec)))


PRIVILEGED = [spec for spec in COMMANDS if spec.privilege > Privilege.MEMBER]


def test_privileged_entries_are_the_trainer_commands() -> None:
    assert {s.name for s in PRIVILEGED} == {
        "forget", "review", "approve", "reject", "train", "test", "validate", "datasets",
        "select_dataset", "jobs", "status", "models", "archive", "getfile",
    }  # fmt: skip
