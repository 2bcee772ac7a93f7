"""The unit every format reads into and every trainer learns from."""

from __future__ import annotations

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
