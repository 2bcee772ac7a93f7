"""Chat in the terminal: the same brain and commands as on Discord, one line at a time.

A line starting with the command prefix is a command; anything else is a message to the bot. Works
interactively and with piped input. The console user is the owner. Files named in commands are
resolved inside the data folder, like everywhere else.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import sys
from collections.abc import Awaitable, Callable
from typing import TextIO

from teachbot.answering.chat import Where
from teachbot.app import App
from teachbot.errors import UserError
from teachbot.paths import resolve_inside
from teachbot.teaching.service import FeedbackKind
from teachbot.transports.catalogue import BY_NAME, Privilege, help_text, instruction_text

log = logging.getLogger(__name__)

CONSOLE_CHANNEL = "console"
CONSOLE_USER = "owner"
GENERIC_ERROR = "Something went wrong on my side; the details are in the log."

Handler = Callable[[str], Awaitable[str]]


class ConsoleChat:
    """Turns console lines into service calls and returns the text to print."""

    def __init__(self, app: App, scope: str) -> None:
        self.app = app
        self.scope = scope
        self.prefix = app.settings.command_prefix
        self.where = Where(scope=scope, channel=CONSOLE_CHANNEL, author=CONSOLE_USER, author_name="console")
        self.handlers: dict[str, Handler] = {
            "hi": self._hi, "help": self._help, "instruction": self._instruction, "correct": self._correct,
            "feedback": self._feedback, "undo": self._undo, "forget": self._forget, "review": self._review,
            "approve": self._approve, "reject": self._reject, "train": self._train, "test": self._test,
            "datasets": self._datasets, "select_dataset": self._select_dataset, "models": self._models,
        }

    async def handle(self, line: str) -> str:
        """One line in, the reply out. Never raises for a bad line."""
        line = line.strip()
        if not line:
            return ""
        try:
            if line.startswith(self.prefix):
                name, _, rest = line[len(self.prefix):].partition(" ")
                handler = self.handlers.get(name.lower())
                if handler is None:
                    return f"Unknown command `{self.prefix}{name}`. Type `{self.prefix}help`."
                log.info("command %s scope=%s author=%s", name.lower(), self.scope, CONSOLE_USER)
                return await handler(rest.strip())
            reply = await self.app.chat.ask(line, self.where)
            return reply.answer.text
        except UserError as exc:
            return str(exc)
        except Exception:
            log.exception("console line failed: %r", line[:200])
            return GENERIC_ERROR

    # -- commands
    async def _hi(self, _: str) -> str:
        return "HI!"

    async def _help(self, _: str) -> str:
        return help_text(self.prefix, console=True, privilege=Privilege.OWNER)

    async def _instruction(self, _: str) -> str:
        return await asyncio.to_thread(instruction_text, self.app.settings.instruction_file)

    async def _correct(self, rest: str) -> str:
        target_id, better = _split_leading_id(rest)
        if target_id is not None:
            target = await self.app.chat.find_answer(self.scope, answer_id=target_id)
        else:
            target = await self.app.chat.last_answer(self.scope, CONSOLE_CHANNEL)
        result = await self.app.teaching.correct(self.where, target, better, trusted=True)
        return result.describe()

    async def _feedback(self, rest: str) -> str:
        kind = {"+": FeedbackKind.UP, "👍": FeedbackKind.UP, "-": FeedbackKind.DOWN, "👎": FeedbackKind.DOWN}.get(rest)
        if kind is None:
            result = await self.app.teaching.feedback(self.where, FeedbackKind.TEXT, text=rest, trusted=True)
            return f"Thanks, feedback {result.item_id} is stored."
        target = await self.app.chat.last_answer(self.scope, CONSOLE_CHANNEL)
        result = await self.app.teaching.feedback(self.where, kind, target=target, trusted=True)
        return f"Thanks, feedback {result.item_id} is stored."

    async def _undo(self, _: str) -> str:
        return await self.app.teaching.undo_last(self.scope, CONSOLE_USER)

    async def _forget(self, rest: str) -> str:
        if not rest.lstrip("#").isdigit():
            raise UserError(f"Usage: {self.prefix}forget {BY_NAME['forget'].usage}")
        return await self.app.teaching.forget(self.scope, int(rest.lstrip("#")), author=CONSOLE_USER)

    async def _review(self, _: str) -> str:
        items = await self.app.teaching.pending(self.scope)
        if not items:
            return "Nothing waits for review."
        return "\n".join(item.describe() for item in items)

    async def _approve(self, rest: str) -> str:
        return (await self.app.teaching.review(self.scope, rest, approve=True, reviewer=CONSOLE_USER)).describe()

    async def _reject(self, rest: str) -> str:
        return (await self.app.teaching.review(self.scope, rest, approve=False, reviewer=CONSOLE_USER)).describe()

    async def _train(self, rest: str) -> str:
        lines = []
        if rest:
            path = resolve_inside(self.app.data_dir, rest)
            info = await self.app.datasets.import_file(
                self.scope, path, author=CONSOLE_USER, max_bytes=self.app.settings.max_upload_bytes
            )
            lines.append(info.describe())
        outcome = await self.app.training.train(self.scope, author=CONSOLE_USER)
        lines.append(outcome.describe())
        return "\n".join(lines)

    async def _test(self, rest: str) -> str:
        from teachbot.datasets.formats import read_examples

        if not rest:
            raise UserError(f"Usage: {self.prefix}test <file inside the data folder>")
        path = resolve_inside(self.app.data_dir, rest)
        examples = await asyncio.to_thread(read_examples, path, max_bytes=self.app.settings.max_upload_bytes)
        report = await self.app.training.test(self.scope, examples)
        return report.summary()

    async def _datasets(self, _: str) -> str:
        infos = await self.app.datasets.list(self.scope)
        return "\n".join(i.describe() for i in infos) if infos else "No datasets yet."

    async def _select_dataset(self, rest: str) -> str:
        parts = rest.split()
        if not parts or len(parts) > 2:
            raise UserError(f"Usage: {self.prefix}select_dataset {BY_NAME['select_dataset'].usage}")
        info = await self.app.datasets.select(self.scope, parts[0], parts[1] if len(parts) > 1 else "positive")
        return info.describe()

    async def _models(self, rest: str) -> str:
        parts = shlex.split(rest) if rest else []
        if parts[:1] == ["activate"] and len(parts) == 2:
            return await self.app.training.activate(self.scope, parts[1], author=CONSOLE_USER)
        if parts == ["rollback"]:
            return await self.app.training.rollback(self.scope, author=CONSOLE_USER)
        if parts:
            raise UserError(f"Usage: {self.prefix}models {BY_NAME['models'].usage}")
        versions = await self.app.training.versions(self.scope)
        return "\n".join(v.describe() for v in versions) if versions else "No model versions yet."


def _split_leading_id(text: str) -> tuple[int | None, str]:
    """``"12 better answer"`` → ``(12, "better answer")``; no leading number → ``(None, text)``."""
    head, _, tail = text.partition(" ")
    if head.isdigit() and tail.strip():
        return int(head), tail.strip()
    return None, text


async def run_console(app: App, scope: str, *, stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
    """Read lines until end of input and print each reply."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    chat = ConsoleChat(app, scope)
    interactive = stdin.isatty()
    while True:
        if interactive:
            stdout.write("you> ")
            stdout.flush()
        line = await asyncio.to_thread(stdin.readline)
        if not line:
            break
        reply = await chat.handle(line)
        if reply:
            stdout.write(reply + "\n")
            stdout.flush()
