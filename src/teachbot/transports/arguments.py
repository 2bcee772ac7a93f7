"""Reading a command's arguments from text, once, the same way in every door that takes text.

The terminal reads whole lines with ``parse_line``; Discord's prefix and slash commands read each
argument with ``parse_value`` (through discord.py's converters), so ``12``, ``#12`` and ``v3`` mean the
same everywhere and a number too large for an id is refused in words, not with an overflow.
"""

from __future__ import annotations

from typing import Any

from teachbot.errors import UserError
from teachbot.ids import parse_id
from teachbot.transports.catalogue import Arg, ArgKind, CommandSpec, usage_line


class UsageError(UserError):
    """The arguments do not fit the command; the text names the command's usage."""


def readable(text: str) -> str:
    """User text as valid Unicode: a lone surrogate (from a JSON ``\\ud800`` escape, or bytes the terminal
    could not decode) becomes U+FFFD, so nothing downstream fails to store, hash or send it."""
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def parse_value(arg: Arg, word: str) -> int | str:
    """One argument word → its value; ``UsageError`` when it does not fit ``arg``."""
    word = word.strip()
    if not word:
        raise UsageError(f"`{arg.name}` is missing.")
    if arg.kind is ArgKind.NUMBER:
        try:
            return parse_id(word.removeprefix("v"), arg.name.replace("_", " ").removesuffix(" id"), shown=word)
        except UserError as exc:
            raise UsageError(str(exc)) from None
    if arg.kind is ArgKind.CHOICE:
        chosen = word.lower()
        if chosen not in arg.choices:
            raise UsageError(f"`{word[:40]}` is not one of: {', '.join(arg.choices)}.")
        return chosen
    if arg.kind is ArgKind.WORD and arg.not_starting and word[0] in arg.not_starting:
        raise UsageError(f"`{word[:40]}` is not a {arg.name}.")
    return word


def looks_like_file(word: str) -> bool:
    """In the terminal a FILE argument is a file name: it has an extension or a folder."""
    return "." in word.lstrip(".") or "/" in word


def parse_line(prefix: str, spec: CommandSpec, text: str, group: CommandSpec | None = None) -> dict[str, Any]:
    """The arguments of ``spec`` from the rest of a command line; FILE arguments stay file names."""
    rest = text.strip()
    values: dict[str, Any] = {}
    skipped: UsageError | None = None  # why an optional argument did not take the word it was offered
    for arg in spec.args:
        if arg.kind is ArgKind.TEXT:
            values[arg.name] = rest
            if arg.required and not rest:
                raise UsageError(f"Usage: `{usage_line(prefix, spec, group)}`")
            rest = ""
            continue
        word, _, after = rest.partition(" ")
        value: Any = None
        if arg.marked and not word.startswith("#"):
            word = ""  # an unmarked word is not this argument (``!correct 42 is the answer``)
        if word and (arg.kind is not ArgKind.FILE or looks_like_file(word)):
            try:
                value = word if arg.kind is ArgKind.FILE else parse_value(arg, word)
            except UsageError as exc:
                if arg.required:
                    raise UsageError(f"{exc} Usage: `{usage_line(prefix, spec, group)}`") from None
                skipped = exc
        if value is None and arg.required:
            raise UsageError(f"Usage: `{usage_line(prefix, spec, group)}`")
        if value is not None:
            rest = after.strip()
        values[arg.name] = value
    if rest:
        reason = str(skipped) if skipped is not None else "Too many arguments."
        raise UsageError(f"{reason} Usage: `{usage_line(prefix, spec, group)}`")
    return values
