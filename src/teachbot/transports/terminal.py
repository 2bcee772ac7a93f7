"""The interactive terminal: line editing, history kept in the data folder, streamed answers, a clean exit.

prompt_toolkit reads each line inside the event loop, so Ctrl-C and Ctrl-D end the chat at once
(reading in a thread would keep the process waiting for Enter), and the arrow keys edit and recall lines.
Piped input never comes here: ``console.run_console`` reads it line by line.
"""

from __future__ import annotations

import sys
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.history import FileHistory

from teachbot.transports import wording
from teachbot.transports.console import ConsoleChat, show_markdown

HISTORY_FILE = "console-history"
LEAVE_WORDS = frozenset({"exit", "quit", "bye", ":q", "/exit", "/quit"})


def welcome(chat: ConsoleChat) -> str:
    """The first screen: what this is, three things to try, how to leave."""
    p = chat.prefix
    backend = chat.app.settings.backend.value
    where = "" if chat.scope == "global" else f" (scope {chat.scope})"
    return "\n".join(
        [
            f"teachbot — a bot you talk to and teach, answering with the {backend} backend{where}.",
            "Try:",
            "  what can you do?                  ask anything",
            f"  {p}correct <the right answer>      teach it a better answer to the last question",
            f"  {p}help                            every command",
            f"Each answer shows its number: `{p}correct #12 …` corrects answer #12 instead of the last.",
            wording.interactive_mode(True) if chat.interactive.on else f"`{p}interactive` teaches as you go.",
            "Leave with exit, Ctrl-D or Ctrl-C.",
        ]
    )


class StreamPrinter:
    """Prints an answer as it grows, then what remains of it (the final text may differ from the stream)."""

    def __init__(self) -> None:
        self.shown = ""

    async def __call__(self, text: str) -> None:
        if text.startswith(self.shown):
            sys.stdout.write(text[len(self.shown) :])
            sys.stdout.flush()
            self.shown = text

    def finish(self, reply: str) -> None:
        if not self.shown:
            print(reply)
        elif reply.startswith(self.shown):
            print(reply[len(self.shown) :])
        else:  # the stored answer is not what streamed (e.g. cut to fit): show it whole
            print(f"\n{reply}")


async def run_terminal(chat: ConsoleChat) -> None:
    """Chat on a terminal until the user leaves."""
    history = Path(chat.app.data_dir) / HISTORY_FILE
    session: PromptSession[str] = PromptSession(history=FileHistory(str(history)))
    print(welcome(chat))
    while True:
        try:
            line = await session.prompt_async("teach> " if chat.offer is not None else "you> ")
        except (EOFError, KeyboardInterrupt):
            break
        if line.strip().lower() in LEAVE_WORDS:
            break
        printer = StreamPrinter()
        reply = await chat.handle(line, on_text=printer)
        if reply and chat.markdown:
            show_markdown(reply, sys.stdout)
        elif reply:
            printer.finish(reply)
            if chat.last_answer_id is not None:
                print(f"  (#{chat.last_answer_id})")
        if chat.offer is not None:
            print(chat.menu())
    print("Bye.")
