"""Hostile dataset content gets a clear answer with its line: wrong JSON types in every field of every
format, lone surrogates, deep nesting, and files that are pipes or folders."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakes.bounded import within

from teachbot.app import App
from teachbot.datasets.examples import Example
from teachbot.datasets.formats import parse_examples, read_examples
from teachbot.datasets.validation import validate_examples, validate_file
from teachbot.errors import DataFormatError, UserError

CLEAN: dict[str, dict[str, Any]] = {
    "prompt/answer": {"prompt": "hi", "answer": "hello", "system": "Be brief.", "rejected": "go away", "weight": 1},
    "chat": {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi", "name": "ann"},
            {"role": "assistant", "content": "hello", "weight": 1},
        ]
    },
    "preference": {
        "input": {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]},
        "preferred_output": [{"role": "assistant", "content": "hello"}],
        "non_preferred_output": [{"role": "assistant", "content": "go away"}],
    },
}
FIELDS: dict[str, list[tuple[Any, ...]]] = {
    "prompt/answer": [("prompt",), ("answer",), ("system",), ("rejected",), ("weight",)],
    "chat": [
        ("messages",),
        ("messages", 1),
        ("messages", 0, "role"),
        ("messages", 1, "role"),
        ("messages", 2, "role"),
        ("messages", 0, "content"),
        ("messages", 1, "content"),
        ("messages", 2, "content"),
        ("messages", 1, "name"),
        ("messages", 2, "weight"),
    ],
    "preference": [
        ("input",),
        ("input", "messages"),
        ("input", "messages", 1),
        ("input", "messages", 1, "role"),
        ("input", "messages", 1, "content"),
        ("input", "messages", 0, "content"),
        ("preferred_output",),
        ("preferred_output", 0),
        ("preferred_output", 0, "role"),
        ("preferred_output", 0, "content"),
        ("non_preferred_output", 0, "content"),
    ],
}
BAD_VALUES = [["user"], {"role": "user"}, 42, 1.5, -1, True, None, [], {}, [[[["deep"]]]], 10**30]
CASES = [
    pytest.param(shape, field, value, id=f"{shape}:{'.'.join(map(str, field))}={json.dumps(value)[:12]}")
    for shape, fields in FIELDS.items()
    for field in fields
    for value in BAD_VALUES
]


def replaced(record: dict[str, Any], field: tuple[Any, ...], value: Any) -> dict[str, Any]:
    record = copy.deepcopy(record)
    target: Any = record
    for key in field[:-1]:
        target = target[key]
    target[field[-1]] = value
    return record


@pytest.mark.parametrize(("shape", "field", "value"), CASES)
def test_any_json_type_in_any_field_is_answered_clearly(
    tmp_path: Path, shape: str, field: tuple[Any, ...], value: Any
) -> None:
    """Readers and the validator agree: a record is read, or refused at its line; nothing crashes."""
    lines = [json.dumps(CLEAN[shape]), json.dumps(replaced(CLEAN[shape], field, value))]
    data = ("\n".join(lines) + "\n").encode()
    try:
        parse_examples(data, source="d.jsonl")
        parsed = True
    except DataFormatError as exc:
        assert exc.line == 2, str(exc)
        assert len(str(exc)) < 300
        parsed = False
    path = tmp_path / "d.jsonl"
    path.write_bytes(data)
    report = validate_file(path)
    if not parsed:
        assert not report.ok
        assert {i.line for i in report.issues if i.level == "error"} == {2}, report.to_text()
    assert report.to_text() and json.dumps(report.to_json())


def test_a_role_that_is_a_list_is_an_unrecognised_role(tmp_path: Path) -> None:
    record = replaced(CLEAN["chat"], ("messages", 1, "role"), ["user"])
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(record) + "\n")
    report = validate_file(path)
    assert report.counts["unrecognized_role"] == 1
    assert [i.message for i in report.issues if i.code == "unrecognized_role"] == ['message 2 has role ["user"]']
    with pytest.raises(DataFormatError, match=r'd\.jsonl:1: message 2 has an unknown role \["user"\]'):
        parse_examples(path.read_bytes(), source="d.jsonl")


@pytest.mark.parametrize(
    ("source", "content", "line"),
    [
        ("d.jsonl", '{"prompt": "ok", "answer": "x"}\n{"prompt": "bad \\ud800", "answer": "x"}\n', 2),
        ("d.jsonl", '{"prompt": "bad", "answer": "\\udfff"}\n', 1),
        ("d.jsonl", '{"prompt": "a", "answer": "b", "rejected": "\\ud800\\u0041"}\n', 1),
        ("d.jsonl", '{"messages": [{"role": "user", "content": "\\ud83d"}, {"role": "assistant", "content": "x"}]}', 1),
        ("d.jsonl", '{"pr\\ud800ompt": "a", "answer": "b"}\n', 1),
        ("c.yaml", 'conversations:\n- - "fine"\n  - "ok"\n- - "bad \\ud800"\n  - "x"\n', 4),
    ],
)
def test_lone_surrogates_are_refused_with_their_line(tmp_path: Path, source: str, content: str, line: int) -> None:
    data = content.encode()
    with pytest.raises(DataFormatError, match="lone UTF-16 surrogate") as raised:
        parse_examples(data, source=source)
    assert raised.value.line == line
    path = tmp_path / source
    path.write_bytes(data)
    report = validate_file(path)
    assert not report.ok
    assert [i.line for i in report.issues if "surrogate" in i.message] == [line], report.to_text()


def test_surrogate_pairs_are_characters() -> None:
    examples = parse_examples(b'{"prompt": "smile \\ud83d\\ude00", "answer": "\\u00e9"}\n', source="d.jsonl")
    assert (examples[0].prompt, examples[0].answer) == ("smile 😀", "é")


def test_in_memory_examples_with_a_lone_surrogate_are_reported() -> None:
    report = validate_examples([Example("fine", "ok"), Example("bad \ud800", "x")])
    assert report.counts == {"format": 1, "few_examples": 1}
    assert [i.line for i in report.issues if i.code == "format"] == [2]


async def test_a_lone_surrogate_never_reaches_the_database(app: App) -> None:
    with pytest.raises(UserError, match=r"d\.jsonl: example 2 holds a lone UTF-16 surrogate"):
        await app.datasets.import_examples(
            "global", "d", [Example("a", "b"), Example("bad \ud800", "x")], source_name="d.jsonl", author="t"
        )
    assert await app.datasets.list_datasets("global") == []


@pytest.mark.parametrize(
    ("source", "content"),
    [
        ("d.jsonl", "[" * 100_000),
        ("d.jsonl", '{"prompt": ' + "[" * 100_000 + "]" * 100_000 + ', "answer": "x"}'),
        ("d.jsonl", '{"prompt": "\\u0041", "answer": ' + "[" * 5_000 + "]" * 5_000 + "}"),
        ("c.yaml", "conversations:\n- " + "[" * 100_000),
        ("c.yaml", "conversations:\n" + "".join(" " * i + "- \n" for i in range(3_000))),
        ("c.yaml", "conversations:\n- " + "- " * 3_000 + "x"),
    ],
)
def test_deep_nesting_is_a_format_error(tmp_path: Path, source: str, content: str) -> None:
    """Refused early: PyYAML would spend seconds on 100,000 levels before a RecursionError."""
    error = within(5, lambda: parse_examples(content.encode(), source=source))
    assert isinstance(error, DataFormatError), repr(error)
    assert "nested" in str(error)
    path = tmp_path / source
    path.write_text(content)
    assert not validate_file(path).ok


@pytest.mark.parametrize("reader", ["validate", "read", "validate as validation set"])
@pytest.mark.parametrize("kind", ["named pipe", "folder", "link loop", "long name"])
def test_files_that_are_not_datasets_are_refused_at_once(tmp_path: Path, reader: str, kind: str) -> None:
    path = tmp_path / "f.jsonl"
    if kind == "named pipe":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "link loop":
        os.symlink(path.name, path)
    else:
        path = tmp_path / ("n" * 300 + ".jsonl")
    good = tmp_path / "good.jsonl"
    good.write_text('{"prompt": "a", "answer": "b"}\n')
    calls: dict[str, Callable[[], object]] = {
        "validate": lambda: validate_file(path, max_bytes=1000),
        "read": lambda: read_examples(path, max_bytes=1000),
        "validate as validation set": lambda: validate_file(good, validation=path),
    }
    error = within(5, calls[reader])
    assert isinstance(error, UserError), repr(error)
    assert any(word in str(error) for word in ("not a regular file", "folder", "loops", "too long")), str(error)
