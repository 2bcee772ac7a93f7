"""Ids people type (``!forget 12``, ``!jobs cancel #3``, ``C12``): parsed once, bounded to what the database holds.

SQLite and PostgreSQL keep ids in signed 64-bit integers; a larger number is not an error of ours
but an id that cannot exist, so it is answered the same way as any unknown id.
"""

from __future__ import annotations

from teachbot.errors import UserError, show_name

__all__ = ["MAX_ID", "id_in_range", "parse_id"]

MAX_ID = 2**63 - 1


def parse_id(text: str, what: str, *, shown: str | None = None) -> int:
    """The id in ``text`` (digits, optionally after ``#``), or a ``UserError`` naming ``what`` (e.g.
    "learned answer"): not a number, or "There is no {what} {shown} here." beyond the 64-bit range."""
    digits = text.strip().removeprefix("#").strip()
    if not digits or not digits.isdecimal():
        raise UserError(f"`{show_name(text.strip(), 40)}` is not a number; give the {what}'s number, like 12.")
    significant = digits.lstrip("0") or "0"
    number = int(significant) if len(significant) <= 19 else MAX_ID + 1  # int() refuses > 4,300 digits
    if number > MAX_ID:
        raise UserError(f"There is no {what} {show_name(shown or digits, 40)} here.")
    return number


def id_in_range(number: int) -> bool:
    """True when ``number`` can be an id in the database (a positive signed 64-bit integer)."""
    return 0 < number <= MAX_ID
