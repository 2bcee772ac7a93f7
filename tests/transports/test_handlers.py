"""The command handlers: typed arguments in, replies out, the same for every door."""

from __future__ import annotations

from pathlib import Path

import pytest

from teachbot.answering.chat import Origin
from teachbot.app import App
from teachbot.errors import UserError
from teachbot.transports.arguments import UsageError, parse_line, parse_value
from teachbot.transports.catalogue import BY_NAME, Arg, ArgKind, Door, Privilege
from teachbot.transports.console import ConsoleChat
from teachbot.transports.handlers import Call, CommandHandlers, Upload, parse_inline_test

NUMBER = Arg("id", ArgKind.NUMBER, "An id.", required=True)


@pytest.mark.parametrize(("word", "value"), [("12", 12), ("#12", 12), ("v3", 3), (str(2**63 - 1), 2**63 - 1)])
def test_numbers_are_read_the_same_everywhere(word: str, value: int) -> None:
    assert parse_value(NUMBER, word) == value


@pytest.mark.parametrize("word", ["99999999999999999999", "12a", "-1", "", "v"])
def test_bad_numbers_are_refused_in_words(word: str) -> None:
    with pytest.raises(UsageError):
        parse_value(NUMBER, word)


def test_a_line_is_read_into_typed_arguments() -> None:
    correct = BY_NAME["correct"]
    assert parse_line("!", correct, "#12 Paris is the capital.") == {
        "message_id": 12,
        "answer": "Paris is the capital.",
    }
    assert parse_line("!", correct, "42 is the answer.") == {"message_id": None, "answer": "42 is the answer."}
    assert parse_line("!", correct, "Paris is the capital.") == {"message_id": None, "answer": "Paris is the capital."}
    test = BY_NAME["test"]
    assert parse_line("!", test, 'v2 ["q"]') == {"file": None, "version": "v2", "data": '["q"]'}
    assert parse_line("!", test, '["q"]') == {"file": None, "version": None, "data": '["q"]'}
    assert parse_line("!", test, "check.jsonl") == {"file": "check.jsonl", "version": None, "data": ""}
    train = BY_NAME["train"]
    assert parse_line("!", train, "shop") == {"file": None, "name": "shop"}  # a dataset name, not a file
    with pytest.raises(UsageError, match="Usage: `!feedback <text>`"):
        parse_line("!", BY_NAME["feedback"], "")
    with pytest.raises(UsageError, match="Too many arguments"):
        parse_line("!", BY_NAME["undo"], "now please")


def test_deeply_nested_inline_json_is_refused_in_words() -> None:
    with pytest.raises(UserError, match="nested too deeply"):
        parse_inline_test("[" * 100_000)
    assert parse_inline_test('["a [ b", "c"]') == (["a [ b", "c"], [])


def call(scope: str = "global") -> Call:
    return Call(Origin(scope, "c", "trainer"), Door.CONSOLE, Privilege.OWNER, trusted=True, external_ids=False)


async def test_handlers_return_replies_worded_with_the_configured_prefix(app: App) -> None:
    handlers = CommandHandlers(app)
    app.settings.command_prefix = "?"
    help_text = (await handlers.help(call())).text
    assert "?correct" in help_text and "!correct" not in help_text
    reply = await handlers.review(call())
    assert reply.text == "Nothing waits for review." and not reply.review_items
    with pytest.raises(UserError, match="no run #9223372036854775807"):
        await handlers.jobs_cancel(call(), 2**63 - 1)


async def test_train_validate_and_export_through_the_handlers(app: App, tmp_path: Path) -> None:
    handlers = CommandHandlers(app)
    rows = "question,answer\n" + "".join(f"what is thing {i},Thing {i % 4}.\n" for i in range(24))
    reply = await handlers.validate(call(), Upload("things.csv", rows.encode()))
    assert reply.text.startswith("things.csv: 0 errors") and reply.files[0].filename == "validation.json"
    trained = await handlers.train(call(), Upload("things.csv", rows.encode()))
    assert "Dataset `things`" in trained.text and "is now active" in trained.text
    exported = await handlers.datasets_export(call(), "things", "csv")
    assert "`!getfile global-things-csv.csv`" in exported.text
    sent = await handlers.getfile(call(), "global-things-csv.csv")
    assert sent.send_path is not None and "what is thing 1" in sent.send_path.read_text(encoding="utf-8")


async def test_console_dispatches_groups_and_reports_usage(app: App) -> None:
    chat = ConsoleChat(app, "global")
    assert await chat.handle("!datasets") == "No datasets yet."
    assert await chat.handle("!datasets list") == "No datasets yet."
    assert (await chat.handle("!datasets nosuch")).startswith("Usage: `!datasets [list | show")
    assert (await chat.handle("!jobs")).startswith("#1 local succeeded")  # the starter model's run
    assert "is not a number" in await chat.handle("!jobs cancel soon")
    assert await chat.handle("!forget 99999999999999999999") == (
        "There is no example 99999999999999999999 here. Usage: `!forget [example_id]`"
    )
    assert (await chat.handle("!join")).startswith("Unknown command `!join`")
    assert (await chat.handle("!nosuch")).startswith("Unknown command")
