"""Ids people type are parsed once, and numbers the database cannot hold are answered like unknown ids."""

from __future__ import annotations

import pytest

from teachbot.errors import UserError
from teachbot.ids import MAX_ID, id_in_range, parse_id


@pytest.mark.parametrize(
    ("text", "number"),
    [("12", 12), ("#12", 12), (" 007 ", 7), ("# 3", 3), ("１２", 12), ("0", 0), (str(MAX_ID), MAX_ID)],
)
def test_ids_are_read(text: str, number: int) -> None:
    assert parse_id(text, "training run") == number


@pytest.mark.parametrize("text", ["", "  ", "#", "-1", "1.5", "1e3", "²", "twelve", "C12", "12 13", "0x10"])
def test_not_a_number(text: str) -> None:
    with pytest.raises(UserError, match="is not a number; give the training run's number, like 12"):
        parse_id(text, "training run")


@pytest.mark.parametrize("text", [str(MAX_ID + 1), "99999999999999999999", "9" * 5000, "#" + "1" * 30])
def test_numbers_beyond_64_bits_are_unknown_ids(text: str) -> None:
    with pytest.raises(UserError, match=r"^There is no training run \d{1,40}…?\d* here\.$"):
        parse_id(text, "training run")


def test_leading_zeros_do_not_count() -> None:
    assert parse_id("0" * 100 + "5", "x") == 5


def test_id_in_range() -> None:
    assert id_in_range(1) and id_in_range(MAX_ID)
    assert not id_in_range(0) and not id_in_range(-1) and not id_in_range(MAX_ID + 1) and not id_in_range(10**5000)
