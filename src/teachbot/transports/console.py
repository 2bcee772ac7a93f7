"""Chat in the terminal: the same brain and commands as on Discord, one line at a time.

A line starting with the command prefix is a command; anything else is a message to the bot. Works
interactively and with piped input. The console user is the owner. Files named in commands are
resolved inside the data folder, like everywhere else.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import TextIO

from teachbot.answering.chat import StoredAnswer, Where
from teachbot.app import App
from teachbot.errors import UserError
from teachbot.paths import resolve_inside
from teachbot.transports.actions import Actions, Upload, split_leading_id, usage
from teachbot.transports.catalogue import Privilege, help_text, instruction_text

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
        self.actions = Actions(app)
        self.where = Where(scope=scope, channel=CONSOLE_CHANNEL, author=CONSOLE_USER, author_name="console")
        self.handlers: dict[str, Handler] = {
            "hi": self._hi,
            "help": self._help,
            "instruction": self._instruction,
            "correct": self._correct,
            "feedback": self._feedback,
            "undo": self._undo,
            "forget": self._forget,
            "review": self._review,
            "approve": self._approve,
            "reject": self._reject,
            "train": self._train,
            "test": self._test,
            "datasets": self._datasets,
            "select_dataset": self._select_dataset,
            "models": self._models,
            "archive": self._archive,
            "getfile": self._getfile,
            "jobs": self._jobs,
            "validate": self._validate,
        }

    async def handle(self, line: str) -> str:
        """One line in, the reply out. Never raises for a bad line."""
        line = line.strip()
        if not line:
            return ""
        try:
            if line.startswith(self.prefix):
                name, _, rest = line[len(self.prefix) :].partition(" ")
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

    async def _last(self) -> StoredAnswer | None:
        return await self.app.chat.last_answer(self.scope, CONSOLE_CHANNEL)

    async def _correct(self, rest: str) -> str:
        target_id, better = split_leading_id(rest)
        if target_id is not None:
            target = await self.app.chat.find_answer(self.scope, answer_id=target_id)
        else:
            target = await self._last()
        return await self.actions.correct(self.where, target, better, trusted=True)

    async def _feedback(self, rest: str) -> str:
        if rest in ("+", "👍", "-", "👎"):
            return await self.actions.rate(self.where, await self._last(), good=rest in ("+", "👍"), trusted=True)
        return await self.actions.feedback(self.where, rest, trusted=True)

    async def _undo(self, _: str) -> str:
        return await self.actions.undo(self.where)

    async def _forget(self, rest: str) -> str:
        return await self.actions.forget(self.where, await self._last(), rest)

    async def _review(self, _: str) -> str:
        return await self.actions.review_list(self.scope)

    async def _approve(self, rest: str) -> str:
        return await self.actions.review(self.where, rest, approve=True)

    async def _reject(self, rest: str) -> str:
        return await self.actions.review(self.where, rest, approve=False)

    async def _upload(self, name: str) -> Upload:
        """A file inside the data folder, read like an attachment (size checked first)."""
        path = resolve_inside(self.app.data_dir, name)
        if not path.is_file():
            raise UserError(f"There is no file `{name}` in the data folder ({self.app.data_dir}).")
        if path.stat().st_size > self.app.settings.max_upload_bytes:
            raise UserError(f"`{name}` is larger than the upload limit ({self.app.settings.max_upload_bytes:,} bytes).")
        return Upload(path.name, await asyncio.to_thread(path.read_bytes))

    async def _train(self, rest: str) -> str:
        return await self.actions.train(self.where, await self._upload(rest) if rest else None)

    async def _test(self, rest: str) -> str:
        """``!test`` (held-out split), ``!test [JSON]``, ``!test FILE``, each optionally after a version."""
        head, _, tail = rest.partition(" ")
        if head and not head.startswith(("[", "{")) and "." not in head:
            version, rest = head, tail.strip()  # a version name (files have an extension)
        else:
            version = ""
        if rest and not rest.startswith(("[", "{")):
            summary, _ = await self.actions.test(self.where, await self._upload(rest), version)
        else:
            summary, _ = await self.actions.test(self.where, None, f"{version} {rest}".strip())
        return summary

    async def _datasets(self, rest: str) -> str:
        return await self.actions.datasets(self.where, rest)

    async def _validate(self, rest: str) -> str:
        if not rest:
            raise usage(self.prefix, "validate")
        return (await self.actions.validate(await self._upload(rest))).to_text()

    async def _select_dataset(self, rest: str) -> str:
        return await self.actions.select_dataset(self.scope, rest)

    async def _models(self, rest: str) -> str:
        return await self.actions.models(self.where, rest)

    async def _jobs(self, rest: str) -> str:
        return await self.actions.jobs(self.where, rest)

    async def _archive(self, rest: str) -> str:
        return await self.actions.archive(self.where, rest or "all")

    async def _getfile(self, rest: str) -> str:
        return f"The file is at {await self.actions.file_to_send(rest)}"


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
