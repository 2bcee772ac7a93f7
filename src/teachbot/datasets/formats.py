"""Dataset files in and out: format guessing, safe decoding, and the public read/write entry points.

Reading is all or nothing: a malformed file raises ``DataFormatError`` naming the file and line, and
no examples are returned. The per-format parsers live in ``readers``, the renderers in ``writers``.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from teachbot.datasets import readers, writers
from teachbot.datasets.examples import LONE_SURROGATE, Example, first_unstorable
from teachbot.errors import DataFormatError, FileTooLarge, UserError, show_name
from teachbot.paths import read_regular_file

__all__ = [
    "EXPORT_FORMATS",
    "FORMATS",
    "MAX_LINE_CHARS",
    "check_size",
    "decode_text",
    "guess_format",
    "iter_file_lines",
    "parse_examples",
    "read_bytes",
    "read_examples",
    "render_examples",
    "split_lines",
    "write_examples",
]

FORMATS = ("csv", "tsv", "jsonl", "yaml", "text")
EXPORT_FORMATS = writers.EXPORT_FORMATS
MAX_LINE_CHARS = 1_000_000  # one example per line never needs more; longer lines are hostile or broken

_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".txt": "text",
    ".text": "text",
    ".md": "text",
}
_BOMS = (  # longest first: the UTF-32 LE BOM starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_QA_HEAD = re.compile(r"^\s*(q|question)\s*:", re.IGNORECASE)
_YAML_HEAD = re.compile(r"^(categories|conversations)\s*:", re.MULTILINE)
_MAGIC = {
    b"PK\x03\x04": "a zip archive",
    b"%PDF": "a PDF document",
    b"\x1f\x8b": "a gzip file",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
}


def read_examples(
    path: Path,
    *,
    fmt: str | None = None,
    prompt_column: str | None = None,
    answer_column: str | None = None,
    max_bytes: int | None = None,
) -> list[Example]:
    """Read every example in ``path``; the size is checked before the file is read."""
    data = read_bytes(path, max_bytes=max_bytes)
    return parse_examples(
        data,
        source=show_name(path.name),
        fmt=fmt,
        prompt_column=prompt_column,
        answer_column=answer_column,
        max_bytes=max_bytes,
    )


def parse_examples(
    data: bytes,
    *,
    source: str,
    fmt: str | None = None,
    prompt_column: str | None = None,
    answer_column: str | None = None,
    max_bytes: int | None = None,
) -> list[Example]:
    """Parse a dataset that arrived as bytes (a Discord attachment, a zip member)."""
    if max_bytes is not None and len(data) > max_bytes:
        raise DataFormatError(FileTooLarge(source, len(data), max_bytes).detail, source=source)
    text = decode_text(data, source)
    fmt = _check_format(fmt) if fmt else guess_format(source, text)
    if (prompt_column or answer_column) and fmt in ("yaml", "text"):
        raise UserError(f"{source}: column names apply to CSV, TSV or JSONL files, not {fmt}.")
    if fmt in ("csv", "tsv"):
        examples = readers.parse_table(
            text,
            source,
            delimiter="," if fmt == "csv" else "\t",
            prompt_column=prompt_column,
            answer_column=answer_column,
        )
    elif fmt == "jsonl":
        examples = readers.parse_jsonl(
            split_lines(text, source), source, prompt_key=prompt_column, answer_key=answer_column
        )
    elif fmt == "yaml":
        from teachbot.datasets.corpus_yaml import parse_corpus_yaml  # PyYAML only when a corpus is read

        examples = parse_corpus_yaml(text, source)
    else:
        examples = readers.parse_qa_text(split_lines(text, source), source)
    if not examples:
        raise DataFormatError("no examples found in the file", source=source)
    unstorable = first_unstorable(examples)
    if unstorable is not None:  # nothing that cannot be stored or hashed leaves a reader
        position, example = unstorable
        raise DataFormatError(LONE_SURROGATE, source=source, line=example.line or position)
    return examples


def render_examples(examples: Sequence[Example], fmt: str) -> bytes:
    """The bytes of ``examples`` in export format ``fmt`` (see ``EXPORT_FORMATS``)."""
    return writers.render(examples, fmt)


def write_examples(examples: Sequence[Example], path: Path, fmt: str) -> Path:
    """Write ``examples`` to ``path`` atomically: readers see the old file or the whole new one."""
    writers.write_atomic(path, render_examples(examples, fmt))
    return path


def read_bytes(path: Path, *, max_bytes: int | None) -> bytes:
    """The bytes of a dataset file a user named: a regular file within ``max_bytes``, checked before it
    is read (and again if it grows meanwhile); folders, pipes, link loops and the like are refused."""
    source = show_name(path.name or str(path))
    try:
        return read_regular_file(path, max_bytes=max_bytes, shown=source)
    except FileTooLarge as exc:
        raise DataFormatError(exc.detail, source=source) from None


def decode_text(data: bytes, source: str) -> str:
    """Text from bytes: UTF-8 (BOM optional) or UTF-16/32 with a BOM; binary data is refused."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                text = data[len(bom) :].decode(encoding)
            except UnicodeDecodeError as exc:
                raise DataFormatError(f"is not valid {encoding.upper()} text ({exc.reason})", source=source) from None
            break
    else:
        _refuse_binary(data, source)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise DataFormatError(
                f"is not UTF-8 text (byte 0x{data[exc.start]:02x}); save it as UTF-8 and try again",
                source=source,
                line=line,
            ) from None
    if "\x00" in text:
        raise DataFormatError(
            "contains NUL characters; it looks like a binary file",
            source=source,
            line=text.count("\n", 0, text.index("\x00")) + 1,
        )
    return text


def guess_format(name: str, text: str) -> str:
    """The format a file is in, from its extension, else from its first lines."""
    by_extension = _EXTENSIONS.get(Path(name).suffix.lower())
    if by_extension:
        return by_extension
    head = text.lstrip()[:4096]
    first = head.split("\n", 1)[0]
    if head.startswith("{"):
        return "jsonl"
    if _YAML_HEAD.search(head):
        return "yaml"
    if _QA_HEAD.match(first):
        return "text"
    if "\t" in first:
        return "tsv"
    if "," in first:
        return "csv"
    raise DataFormatError(f"cannot tell the format; name it (one of {', '.join(FORMATS)})", source=name)


def iter_file_lines(handle: BinaryIO, source: str) -> Iterator[tuple[int, str]]:
    """Stream ``(line number, text)`` from a binary file without holding it whole (UTF-8 only)."""
    number = 0
    while True:
        raw = handle.readline(MAX_LINE_CHARS * 4 + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE_CHARS * 4:
            raise DataFormatError(f"line is longer than {MAX_LINE_CHARS:,} characters", source=source, line=number)
        if number == 1:
            if raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                raise DataFormatError("is UTF-16; streaming needs UTF-8", source=source)
            _refuse_binary(raw, source)
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataFormatError(
                f"is not UTF-8 text (byte 0x{raw[exc.start]:02x})", source=source, line=number
            ) from None
        if "\x00" in line:
            raise DataFormatError("contains NUL characters; it looks like a binary file", source=source, line=number)
        yield number, line.rstrip("\r\n")


def split_lines(text: str, source: str) -> Iterator[tuple[int, str]]:
    """Numbered lines split on newlines only (JSON strings may hold U+2028, which is not a line break)."""
    for number, line in enumerate(text.split("\n"), start=1):
        if len(line) > MAX_LINE_CHARS:
            raise DataFormatError(f"line is longer than {MAX_LINE_CHARS:,} characters", source=source, line=number)
        yield number, line.rstrip("\r")


def _refuse_binary(head: bytes, source: str) -> None:
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            raise DataFormatError(f"is {kind}, not a dataset text file", source=source)


def check_size(handle: BinaryIO, source: str, max_bytes: int | None) -> None:
    if max_bytes is None:
        return
    size = handle.seek(0, 2)
    handle.seek(0)
    if size > max_bytes:
        raise DataFormatError(FileTooLarge(source, size, max_bytes).detail, source=source)


def _check_format(fmt: str) -> str:
    fmt = fmt.lower().strip()
    if fmt not in FORMATS:
        raise UserError(f"Unknown dataset format `{fmt}`; use one of: {', '.join(FORMATS)}.")
    return fmt
