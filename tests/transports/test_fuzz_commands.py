"""Every command's arguments, fuzzed through the terminal door: a bad line gets a sentence, never a crash.

``ConsoleChat.handle`` turns a ``UserError`` into its text and anything unexpected into the generic
error line (and a logged traceback); so the property is that no generated line ever produces the
generic line, and each line is answered within a bound.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from teachbot.config import load_settings
from teachbot.transports import wording
from teachbot.transports.catalogue import COMMANDS, Door
from teachbot.transports.console import ConsoleChat

NAMES = [  # each command, and each subcommand of a group (training and archiving are too slow to fuzz)
    f"{spec.name} {sub.name}" if spec.subcommands else spec.name
    for spec in COMMANDS
    if spec.doors & Door.CONSOLE and spec.name not in ("train", "archive")
    for sub in spec.subcommands or (spec,)
]
WORDS = st.sampled_from(
    ["", "0", "-1", "#3", "v2", "99999999999999999999", "C9999999999999999999999", "F1", "list", "show", "diff",
     "export", "delete", "from_chat", "cancel", "activate", "rollback", "liked", "csv", "yaml", "positive",
     "[", "[[[[[[[[", '["q"]', '{"prompt": 1}', "../../etc/passwd", "/etc/passwd", "a" * 300, "x.jsonl",
     "données.jsonl", "\x00", "\ud800", "nul\u202e", "✓"]
)  # fmt: skip
LINE_SECONDS = 10.0


@pytest.fixture(scope="module")
def console(
    tmp_path_factory: pytest.TempPathFactory, trained_data_dir: Path
) -> Iterator[tuple[ConsoleChat, asyncio.AbstractEventLoop]]:
    from teachbot.app import App

    folder = tmp_path_factory.mktemp("fuzz") / "data"
    shutil.copytree(trained_data_dir, folder)
    loop = asyncio.new_event_loop()
    app = loop.run_until_complete(App.start(load_settings(data_dir=folder)))
    try:
        yield ConsoleChat(app, "global"), loop
    finally:
        loop.run_until_complete(app.close())
        loop.close()


@example(name="datasets export", words=["\ud800"])  # the hostile cases seen, then random ones
@example(name="getfile", words=["\ud800"])
@example(name="forget", words=["99999999999999999999"])
@example(name="approve", words=["C" + "9" * 30])
@example(name="reject", words=["C" + "9" * 30])
@example(name="jobs cancel", words=["9" * 30])
@example(name="test", words=["[" * 100_000])
@example(name="test", words=["nosuchversion", '["q"]'])
@example(name="validate", words=["a" * 300 + ".jsonl"])
@example(name="datasets show", words=["x", "v99999999999999999999"])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(NAMES), words=st.lists(st.one_of(WORDS, st.text(max_size=30)), max_size=4))
def test_no_command_line_ends_in_the_generic_error(
    console: tuple[ConsoleChat, asyncio.AbstractEventLoop], name: str, words: list[str]
) -> None:
    chat, loop = console
    line = f"!{name} " + " ".join(words)
    started = time.monotonic()
    reply = loop.run_until_complete(asyncio.wait_for(chat.handle(line), LINE_SECONDS))
    assert reply != wording.GENERIC_ERROR, line
    assert time.monotonic() - started < LINE_SECONDS
