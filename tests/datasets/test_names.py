"""Dataset names: any printable Unicode without spaces; whatever an import accepts, an export accepts."""

from __future__ import annotations

import pytest

from teachbot.app import App
from teachbot.datasets.examples import Example
from teachbot.datasets.formats import EXPORT_FORMATS
from teachbot.datasets.names import (
    DATASET_NAME_MAX_CHARS,
    check_dataset_name,
    dataset_name_for,
    export_filename,
)
from teachbot.errors import UserError


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("données", "données"),
        ("ｏｋ", "ｏｋ"),
        ("faq_v2.1", "faq_v2.1"),
        ("вопросы-ответы", "вопросы-ответы"),
        ("质量", "质量"),
        ("emoji🙂", "emoji🙂"),
        ("cafe\u0301", "caf\u00e9"),  # NFC
        ("  padded  ", "padded"),
        ("a..b", "a..b"),
        ("x" * DATASET_NAME_MAX_CHARS, "x" * DATASET_NAME_MAX_CHARS),
    ],
)
def test_printable_unicode_names_are_accepted(name: str, stored: str) -> None:
    assert check_dataset_name(name) == stored


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "is empty"),
        (".hidden", "starts with a dot"),
        ("..", "starts with a dot"),
        ("a/b", "holds a / or"),
        ("a\\b", "holds a / or"),
        ("my data", "holds a space"),
        ("tab\tname", "holds control or invisible"),
        ("bell\x07", "holds control or invisible"),
        ("zero\u200bwidth", "holds control or invisible"),
        ("bad\ud800", "holds control or invisible"),
        ("x" * (DATASET_NAME_MAX_CHARS + 1), "is longer than 100 characters"),
        ("质" * 60, "is longer than 160 bytes"),
    ],
)
def test_unusable_names_are_refused_with_the_reason(name: str, reason: str) -> None:
    with pytest.raises(UserError, match=f"cannot be a dataset name: it {reason}"):
        check_dataset_name(name)


@pytest.mark.parametrize(
    ("filename", "name"),
    [
        ("données.jsonl", "données"),
        ("my data.jsonl", "my-data"),
        ("x/y/faq.csv", "faq"),
        ("C:\\Users\\me\\faq.csv", "faq"),
        (".hidden.jsonl", "hidden"),
        ("...", "dataset"),
        ("", "dataset"),
        ("tab\there.csv", "tab-here"),
        ("ｏｋ.yaml", "ｏｋ"),
        ("archive.tar.gz", "archive.tar"),
        ("n" * 300 + ".jsonl", "n" * DATASET_NAME_MAX_CHARS),
        ("质" * 300 + ".jsonl", "质" * 53),
    ],
)
def test_names_derived_from_files_are_always_accepted(filename: str, name: str) -> None:
    assert dataset_name_for(filename) == name
    assert check_dataset_name(name) == name


@pytest.mark.parametrize("name", ["données", "ｏｋ", "x" * DATASET_NAME_MAX_CHARS, "质" * 53, "emoji🙂"])
@pytest.mark.parametrize("scope", ["global", "123456789012345678901"])
def test_every_accepted_name_can_be_exported(name: str, scope: str) -> None:
    for fmt in EXPORT_FORMATS:
        assert export_filename(scope, check_dataset_name(name), fmt, "jsonl") == f"{scope}-{name}-{fmt}.jsonl"


async def test_a_unicode_dataset_round_trips_through_import_lookup_and_export(app: App) -> None:
    info = await app.datasets.import_examples(
        "global", "ｏｋ", [Example("hi", "hello")], source_name="ok.jsonl", author="t"
    )
    assert info.name == "ｏｋ"
    nfd = await app.datasets.import_examples(
        "global", "cafe\u0301", [Example("hi", "hello")], source_name="c.jsonl", author="t"
    )
    assert nfd.name == "caf\u00e9"
    assert [e.prompt for e in await app.datasets.examples("global", "cafe\u0301")] == ["hi"]  # typed NFD, found
    assert export_filename("global", info.name, "openai-chat", "jsonl") == "global-ｏｋ-openai-chat.jsonl"
