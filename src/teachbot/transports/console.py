"""Chat in the terminal: the same brain and commands as on Discord, one line at a time.

A line starting with the command prefix is a command, dispatched through the catalogue; anything
else is a message to the bot. Works interactively and with piped input. The terminal user is the
owner. Files named in commands are resolved inside the data folder, like everywhere else.
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TextIO

from teachbot.answering.chat import Origin
from teachbot.answering.knowledge import Candidate
from teachbot.answering.protocols import Answer
from teachbot.app import App
from teachbot.errors import UserError
from teachbot.paths import read_user_file
from teachbot.transports import wording
from teachbot.transports.arguments import parse_line, readable
from teachbot.transports.catalogue import BY_NAME, ArgKind, CommandSpec, Door, Privilege, handler_name
from teachbot.transports.handlers import Call, CommandHandlers, Reply, Toggle, Upload

log = logging.getLogger(__name__)

OnText = Callable[[str], Awaitable[None]]

CONSOLE_CHANNEL = "console"
CONSOLE_USER = "owner"


@dataclass(frozen=True, slots=True)
class Offer:
    """The answers offered after an answer in interactive teaching, waiting for the user's choice."""

    answer_id: int
    choices: tuple[Candidate, ...]
    given: bool  # the first choice is the answer given (else the answer was the fallback)


class ConsoleChat:
    """Turns terminal lines into command calls or questions and returns the text to print.

    With interactive teaching on (``interactive``, or the ``interactive`` command) each answer comes with
    the likeliest answers (``menu``), and the next line chooses: Enter keeps the answer, a number picks
    another, other text is the right answer; a pick or a typed answer is taught at once, like ``!correct``.
    """

    def __init__(self, app: App, scope: str, *, interactive: bool = False) -> None:
        self.app = app
        self.scope = scope
        self.prefix = app.settings.command_prefix
        self.handlers = CommandHandlers(app)
        self.origin = Origin(scope=scope, channel=CONSOLE_CHANNEL, author=CONSOLE_USER, author_name="console")
        self.last_answer_id: int | None = None  # the id of the latest answer (``!correct #id`` names it)
        self.markdown = False  # the latest reply is Markdown (``!instruction``): a terminal renders it
        self.interactive = Toggle(interactive)
        self.offer: Offer | None = None  # the choices after the latest answer, in interactive teaching

    def call(self) -> Call:
        return Call(
            self.origin, Door.CONSOLE, Privilege.OWNER, trusted=True, external_ids=False, interactive=self.interactive
        )

    def menu(self) -> str:
        """The choices waiting for the next line (empty when none are)."""
        if self.offer is None:
            return ""
        return wording.candidate_menu(self.offer.choices, given=self.offer.given)

    async def handle(self, line: str, on_text: OnText | None = None) -> str:
        """One line in, the reply out. Never raises for a bad line. ``on_text`` sees a streamed answer grow."""
        line = readable(line).strip()
        self.last_answer_id = None
        self.markdown = False
        offer, self.offer = self.offer, None
        try:
            if offer is not None and not line.startswith(self.prefix):
                return await self._choose(offer, line)
            if not line:
                return ""
            if line.startswith(self.prefix):
                done = await self.command(line[len(self.prefix) :])
                self.markdown = done.markdown
                return done.text
            if on_text is not None and self.app.chat.streams:
                reply = await self.app.chat.ask_streaming(line, self.origin, on_text)
            else:
                reply = await self.app.chat.ask(line, self.origin)
            self.last_answer_id = reply.answer_id
            text = reply.answer.text
            if self.interactive.on:
                self.offer = await self._offer(line, reply.answer_id, reply.answer)
            if self.offer is None and reply.answer.is_fallback:
                text = f"{text} {wording.teach_hint(self.prefix, terminal=True)}"
            return text
        except UserError as exc:
            return wording.user_error(exc, self.prefix)
        except Exception:
            log.exception("console line failed: %r", line[:200])
            return wording.GENERIC_ERROR

    async def _offer(self, question: str, answer_id: int, answer: Answer) -> Offer | None:
        """The choices after an answer; None when they cannot be found (the answer still counts)."""
        try:
            choices = await self.handlers.candidates(self.scope, question, answer)
        except Exception:
            log.exception("could not find candidate answers")
            return None
        return Offer(answer_id, tuple(choices), not answer.is_fallback)

    async def _choose(self, offer: Offer, line: str) -> str:
        """The user's answer to the choices: keep, pick one, or the right answer typed out."""
        if not line:
            return "Kept." if offer.given else "Skipped."
        if line.isdigit():
            number = int(line)
            if not 1 <= number <= len(offer.choices):
                self.offer = offer  # still waiting for a choice
                return wording.no_such_choice(number, len(offer.choices), self.prefix)
            if number == 1 and offer.given:
                return "Kept."
            line = offer.choices[number - 1].answer
        return (await self.handlers.correct(self.call(), line, message_id=offer.answer_id)).text

    async def command(self, text: str) -> Reply:
        """Run ``name [sub] args…`` (without the prefix) through the catalogue."""
        name, _, rest = text.partition(" ")
        spec = BY_NAME.get(name.lower())
        if spec is None or not spec.doors & Door.CONSOLE:
            raise UserError(f"Unknown command `{self.prefix}{name}`. Type `{self.prefix}help`.")
        group: CommandSpec | None = None
        if spec.subcommands:
            word, _, after = rest.strip().partition(" ")
            sub = spec.subcommand(word.lower()) if word else spec.subcommand(spec.default)
            if sub is None:
                raise UserError(f"Usage: `{self.prefix}{spec.name} {spec.usage}`")
            group, spec, rest = spec, sub, after if word else ""
        log.info("command %s scope=%s author=%s", handler_name(group, spec), self.scope, CONSOLE_USER)
        values = parse_line(self.prefix, spec, rest, group)
        for arg in spec.args:
            if arg.kind is ArgKind.FILE and values.get(arg.name) is not None:
                values[arg.name] = await self._upload(values[arg.name])
        handler: Any = getattr(self.handlers, handler_name(group, spec))
        reply: Reply = await handler(self.call(), **values)
        if reply.send_path is not None:
            return Reply(f"The file is at {reply.send_path}")
        return reply

    async def _upload(self, name: str) -> Upload:
        """A file inside the data folder, read like an attachment (regular files only, size checked first)."""
        limit = self.app.settings.max_upload_bytes
        path, data = await asyncio.to_thread(read_user_file, self.app.data_dir, name, max_bytes=limit)
        return Upload(path.name, data)


async def run_console(
    app: App, scope: str, *, interactive: bool = False, stdin: TextIO | None = None, stdout: TextIO | None = None
) -> None:
    """Chat until the user leaves: with line editing and history on a terminal, line by line otherwise;
    ``interactive`` starts with interactive teaching on."""
    chat = ConsoleChat(app, scope, interactive=interactive)
    if stdin is None and stdout is None and sys.stdin.isatty() and sys.stdout.isatty():
        from teachbot.transports.terminal import run_terminal

        await run_terminal(chat)
        return
    if stdin is None:
        stdin = sys.stdin
        if isinstance(stdin, io.TextIOWrapper):  # bytes that are not UTF-8 become U+FFFD, not a crash
            stdin.reconfigure(errors="replace")
    stdout = stdout or sys.stdout
    while True:
        line = await asyncio.to_thread(stdin.readline)
        if not line:
            break
        reply = await chat.handle(line)
        menu = chat.menu()
        if chat.markdown and stdout.isatty():
            show_markdown(reply, stdout)
            reply = ""
        if reply or menu:
            stdout.write("\n".join(text for text in (reply, menu) if text) + "\n")
            stdout.flush()


def show_markdown(text: str, stdout: TextIO) -> None:
    """Markdown rendered for a terminal (headings, bold, lists, code), not its raw marks."""
    from rich.console import Console
    from rich.markdown import Markdown

    Console(file=stdout, soft_wrap=False).print(Markdown(text))
