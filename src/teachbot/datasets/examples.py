"""The unit every format reads into and every trainer learns from."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Example:
    """One teaching example: a prompt and the answer to give.

    ``rejected`` holds an answer *not* to give (preference data); ``line`` is the line in the
    source file, kept so validation can point at it.
    """

    prompt: str
    answer: str
    system: str | None = None
    rejected: str | None = None
    weight: float = 1.0
    line: int | None = None


LONE_SURROGATE = (
    "holds a lone UTF-16 surrogate (a `\\ud800`-style escape without its pair), which is not a character; "
    "remove it or complete the pair"
)


def is_storable(text: str) -> bool:
    """True when ``text`` can be encoded as UTF-8, i.e. stored, hashed and sent (no lone surrogate)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def first_unstorable(examples: Iterable[Example]) -> tuple[int, Example] | None:
    """The first example (and its 1-based position) with a field that cannot be stored, or None."""
    for position, e in enumerate(examples, start=1):
        if not all(is_storable(t) for t in (e.prompt, e.answer, e.system or "", e.rejected or "")):
            return position, e
    return None
