"""Property-based fuzzing of every parser a user can feed: whatever arrives, the only exception that
escapes is ``UserError`` (shown to the user as is), each case answers quickly, and nothing unstorable
comes out. Settings keep the whole file to seconds in CI; dig deeper locally with ``FUZZ_EXAMPLES=5000``."""

from __future__ import annotations

import io
import json
import os
import warnings
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from teachbot.datasets.examples import is_storable
from teachbot.datasets.formats import FORMATS, parse_examples
from teachbot.datasets.names import check_dataset_name, dataset_name_for, export_filename
from teachbot.datasets.safezip import dataset_members, read_zip_members
from teachbot.datasets.validation import validate_file
from teachbot.errors import UserError
from teachbot.ids import MAX_ID, parse_id
from teachbot.paths import FILE_NAME_MAX_BYTES, resolve_inside, safe_filename

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=1),
    database=None,  # nothing written into the working tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
DEEP = b"[" * 100_000

# JSON values biased towards the shapes the readers look for, so fuzzing reaches past the first check.
WORDS = [
    "prompt",
    "answer",
    "messages",
    "role",
    "content",
    "weight",
    "system",
    "rejected",
    "user",
    "assistant",
    "tool",
    "input",
    "preferred_output",
    "non_preferred_output",
    "text",
    "name",
    "tool_calls",
    "question",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, -1, 2, 2**63, 10**30, 0.5, 1.0, float("inf"), float("nan")]),
    st.sampled_from(["", " ", "hi", "\ud800", "a\udfffb", "\ud83d\ude00", "\x00", "\u2028", *WORDS]),
    st.text(alphabet="ab \n\t\x00é\ud800", max_size=8),
)
shallow = st.lists(scalars, max_size=3) | st.dictionaries(st.sampled_from(WORDS), scalars, max_size=4)
json_values = (  # three levels reach every field of every shape; deeper nesting has its own examples
    scalars
    | shallow
    | st.lists(shallow, max_size=3)
    | st.dictionaries(st.sampled_from(WORDS), shallow | st.lists(shallow, max_size=3), max_size=4)
)
records = st.dictionaries(st.sampled_from(WORDS), json_values, max_size=5)
TABLE = st.text(alphabet=',"\t\n\r ab\\\x00é', max_size=300)
QA = st.text(alphabet="QqAa:uestionsw \n#x\t\r", max_size=300)
YAML = st.text(alphabet="-:[]{}!&*#|>'\"\n abc%@`\\ud80?,.", max_size=300)


def _only_user_errors(call: Any) -> Any:
    try:
        return call()
    except UserError as exc:
        assert str(exc) and len(str(exc)) < 2_000
        return None


def _check_examples(examples: Any) -> None:
    if examples is not None:
        for e in examples:
            assert e.prompt.strip() and e.answer.strip()
            assert all(is_storable(t) for t in (e.prompt, e.answer, e.system or "", e.rejected or ""))


@pytest.mark.parametrize("fmt", [*FORMATS, None])
@FUZZ
@given(data=st.binary(max_size=500))
@example(data=DEEP)
@example(data=b"\xff\xfe" + "é".encode("utf-16-le") + b"\x00\xd8")
def test_parse_examples_any_bytes(fmt: str | None, data: bytes) -> None:
    _check_examples(_only_user_errors(lambda: parse_examples(data, source="upload.bin", fmt=fmt)))


@FUZZ
@given(lines=st.lists(records | json_values, min_size=1, max_size=5))
@example(lines=[{"messages": [{"role": ["user"], "content": "hi"}, {"role": "assistant", "content": "x"}]}])
@example(lines=[{"prompt": "bad \ud800", "answer": "x"}])
@example(lines=[{"input": {"messages": [{"role": "user", "content": ["x"]}]}, "preferred_output": [{"role": 1}]}])
def test_parse_jsonl_any_json(lines: list[Any]) -> None:
    data = "\n".join(json.dumps(line) for line in lines).encode()
    _check_examples(_only_user_errors(lambda: parse_examples(data, source="d.jsonl")))


@pytest.mark.parametrize(("fmt", "text"), [("csv", TABLE), ("tsv", TABLE), ("text", QA), ("yaml", YAML)])
@FUZZ
@given(data=st.data())
def test_parse_text_formats_any_text(fmt: str, text: st.SearchStrategy[str], data: st.DataObject) -> None:
    content = data.draw(text)
    prefix = "conversations:\n" if fmt == "yaml" else ""
    _check_examples(_only_user_errors(lambda: parse_examples((prefix + content).encode(), source="d", fmt=fmt)))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.parametrize("name", ["d.jsonl", "d.csv", "d.yaml", "d.txt", "d"])
@settings(FUZZ, max_examples=max(1, EXAMPLES // 2))  # each case writes a file: fewer, over five readers
@given(
    data=st.binary(max_size=500)
    | st.lists(records, max_size=4).map(lambda lines: "\n".join(json.dumps(line) for line in lines).encode())
)
@example(data=DEEP)
def test_validate_file_any_content(folder: Path, name: str, data: bytes) -> None:
    path = folder / name
    path.write_bytes(data)
    report = _only_user_errors(lambda: validate_file(path, max_bytes=10_000))
    if report is not None:
        assert report.to_text() and json.dumps(report.to_json())


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        warnings.simplefilter("ignore")  # duplicate names are part of the fuzzing
        for name, content in members:
            archive.writestr(name, content)
    return buffer.getvalue()


ZIP_NAMES = st.text(alphabet="ab/._-é \\:\x01", min_size=1, max_size=12)


@FUZZ
@given(
    data=st.binary(max_size=400),
    members=st.lists(st.tuples(ZIP_NAMES, st.binary(max_size=50)), max_size=4),
    flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=4),
)
def test_read_zip_members_any_archive(data: bytes, members: list[tuple[str, bytes]], flips: list[Any]) -> None:
    for archive in (data, _damaged(_zip_or_empty(members), flips)):
        found = _only_user_errors(lambda archive=archive: read_zip_members(archive, max_total_bytes=100_000))
        if found:
            datasets = _only_user_errors(lambda found=found: dataset_members(found))
            if datasets:
                names = [d.name for d in datasets]
                assert len(set(names)) == len(names)
                assert all(check_dataset_name(n) == n for n in names)


def _zip_or_empty(members: list[tuple[str, bytes]]) -> bytes:
    try:
        return _zip(members)
    except (ValueError, UnicodeEncodeError):  # zipfile itself refuses some names
        return b""


def _damaged(data: bytes, flips: list[tuple[int, int]]) -> bytes:
    if not data:
        return data
    buffer = bytearray(data)
    for position, value in flips:
        buffer[position % len(buffer)] = value
    return bytes(buffer)


NAMES = (
    st.text(max_size=300)
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=120)
    | st.sampled_from([".", "..", "a/b", "\ud800", "é" * 200, " ", "\u200b", "ｏｋ"])
)


@FUZZ
@given(name=NAMES, scope=st.sampled_from(["global", "123456789012345678901"]))
def test_name_rules(name: str, scope: str) -> None:
    accepted = _only_user_errors(lambda: check_dataset_name(name))
    if accepted is not None:
        assert check_dataset_name(accepted) == accepted
        exported = export_filename(scope, accepted, "openai-chat", "jsonl")  # what import accepts, export accepts
        assert len(exported.encode()) <= FILE_NAME_MAX_BYTES
    derived = dataset_name_for(name)
    assert check_dataset_name(derived) == derived
    filename = _only_user_errors(lambda: safe_filename(name))
    if filename is not None:
        assert "/" not in filename and not filename.startswith(".") and filename.isprintable()


@FUZZ
@given(name=NAMES)
def test_resolve_inside_any_name(folder: Path, name: str) -> None:
    resolved = _only_user_errors(lambda: resolve_inside(folder, name))
    if resolved is not None:
        assert resolved == folder.resolve() or folder.resolve() in resolved.parents


@FUZZ
@given(
    text=st.text(max_size=50)
    | st.integers(min_value=-(10**30), max_value=10**30).map(str)
    | st.text(alphabet="0123456789#", max_size=5000)
)
def test_parse_id_any_text(text: str) -> None:
    number = _only_user_errors(lambda: parse_id(text, "review item"))
    if number is not None:
        assert 0 <= number <= MAX_ID
