"""One parser per dataset format, each turning decoded text into examples or raising at the bad line."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from teachbot.datasets.examples import LONE_SURROGATE, Example
from teachbot.errors import DataFormatError, show_name

__all__ = [
    "ANSWER_COLUMNS",
    "PROMPT_COLUMNS",
    "EmptyFieldError",
    "MissingColumnError",
    "examples_from_record",
    "parse_jsonl",
    "parse_qa_text",
    "parse_table",
    "shown_value",
]

# Column (CSV) or key (JSONL) names read as the prompt and the answer, first match wins; "instruction" comes
# before "input" because instruction/input/output files keep optional context in "input".
PROMPT_COLUMNS = ("prompt", "question", "q", "instruction", "query", "text", "input", "utterance")
ANSWER_COLUMNS = ("answer", "a", "response", "reply", "label", "intent", "category", "output", "completion")
_OPTIONAL_COLUMNS = ("system", "rejected")
_Q = re.compile(r"^\s*(?:q|question)\s*:\s?(.*)$", re.IGNORECASE)
_A = re.compile(r"^\s*(?:a|answer)\s*:\s?(.*)$", re.IGNORECASE)


class MissingColumnError(DataFormatError):
    """No column (or key) holds the prompt or the answer."""


class EmptyFieldError(DataFormatError):
    """A prompt or answer is empty; ``field`` says which."""

    def __init__(self, field: str, *, source: str, line: int | None) -> None:
        super().__init__(f"empty {field}", source=source, line=line)
        self.field = field


def known_keys_hint(what: str = "key") -> str:
    """Which names teachbot reads as prompt and answer, for messages about files it cannot read."""
    prompts = ", ".join(f"`{name}`" for name in PROMPT_COLUMNS[:5])
    answers = ", ".join(f"`{name}`" for name in ANSWER_COLUMNS[:4])
    return f"a prompt {what} ({prompts} …) and an answer {what} ({answers} …)"


def parse_table(
    text: str, source: str, *, delimiter: str, prompt_column: str | None, answer_column: str | None
) -> list[Example]:
    """CSV or TSV with a header row naming the prompt and answer columns."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    columns: dict[str, int] = {}
    examples: list[Example] = []
    start = 1
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if header is None:
                header = [cell.strip().casefold() for cell in row]
                columns = _pick_columns(header, source, line, prompt_column, answer_column)
                continue
            if len(row) != len(header):
                raise DataFormatError(
                    f"row has {len(row)} fields but the header has {len(header)}", source=source, line=line
                )
            values = {name: row[index].strip() for name, index in columns.items()}
            examples.append(_example(values, source, line))
    except csv.Error as exc:
        raise DataFormatError(f"is not valid CSV ({exc})", source=source, line=reader.line_num or None) from None
    return examples


def parse_jsonl(
    lines: Iterable[tuple[int, str]],
    source: str,
    *,
    prompt_key: str | None = None,
    answer_key: str | None = None,
) -> list[Example]:
    """JSON Lines: prompt/answer objects, OpenAI chat ``messages`` or OpenAI preference lines."""
    examples: list[Example] = []
    for number, line in lines:
        if not line.strip():
            continue
        record = load_json_line(line, source, number)
        examples.extend(
            examples_from_record(record, source=source, line=number, prompt_key=prompt_key, answer_key=answer_key)
        )
    return examples


def load_json_line(line: str, source: str, number: int) -> Any:
    """One JSON value, or a ``DataFormatError`` saying where it broke. This is the one place dataset JSON
    is decoded: deep nesting and ``\\ud800``-style escapes that decode to no character are refused here."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"invalid JSON: {exc.msg} (column {exc.colno})", source=source, line=number) from None
    except RecursionError:
        raise DataFormatError("invalid JSON: it is nested too deeply", source=source, line=number) from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise DataFormatError(f"invalid JSON: {type(exc).__name__}", source=source, line=number) from None
    if "\\u" in line:  # only an escape can produce a lone surrogate from decoded text
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise DataFormatError(LONE_SURROGATE, source=source, line=number) from None
        except (RecursionError, ValueError):
            raise DataFormatError("invalid JSON: it is nested too deeply", source=source, line=number) from None
    return value


def examples_from_record(
    record: Any, *, source: str, line: int, prompt_key: str | None = None, answer_key: str | None = None
) -> list[Example]:
    """The examples in one JSON line, whichever of the three shapes it has."""
    if not isinstance(record, dict):
        raise DataFormatError(f"expected a JSON object, got {_kind(record)}", source=source, line=line)
    if "messages" in record:
        return _from_chat(record["messages"], source, line)
    if "preferred_output" in record or "non_preferred_output" in record:
        return [_from_preference(record, source, line)]
    keys = [str(key).casefold() for key in record]
    lowered = {str(key).casefold(): value for key, value in record.items()}
    columns = _pick_columns(keys, source, line, prompt_key, answer_key, what="key")
    values = {name: _text(lowered[keys[index]], f"`{keys[index]}`", source, line) for name, index in columns.items()}
    weight = lowered.get("weight", 1)
    return [_example(values, source, line, weight=_weight(weight, source, line))]


def parse_qa_text(lines: Iterable[tuple[int, str]], source: str) -> list[Example]:
    """Plain text: ``Q: ...`` then ``A: ...`` blocks separated by blank lines; lines may continue."""
    examples: list[Example] = []
    question: list[str] | None = None
    answer: list[str] | None = None
    start = 0

    def finish() -> None:
        if question is None:
            return
        if answer is None:
            raise DataFormatError("question has no answer (add a line starting with `A:`)", source=source, line=start)
        examples.append(
            _example({"prompt": " ".join(question).strip(), "answer": "\n".join(answer).strip()}, source, start)
        )

    for number, line in lines:
        if not line.strip():
            finish()
            question = answer = None
        elif (match := _Q.match(line)) and (question is None or answer is not None):
            finish()
            question, answer, start = [match.group(1)], None, number
        elif (match := _A.match(line)) and question is not None and answer is None:
            answer = [match.group(1)]
        elif answer is not None:
            answer.append(line.strip())
        elif question is not None:
            if _Q.match(line):
                raise DataFormatError(
                    "question has no answer (add a line starting with `A:`)", source=source, line=start
                )
            question.append(line.strip())
        elif _A.match(line):
            raise DataFormatError("answer without a question (start the block with `Q:`)", source=source, line=number)
        elif not line.lstrip().startswith("#"):
            raise DataFormatError("expected a line starting with `Q:` (or `Question:`)", source=source, line=number)
    finish()
    return examples


def _pick_columns(
    names: list[str], source: str, line: int, prompt: str | None, answer: str | None, what: str = "column"
) -> dict[str, int]:
    """Indexes of the prompt, answer and optional columns among ``names``."""
    found = ", ".join(f"`{show_name(name, 40)}`" for name in names[:12]) + (" …" if len(names) > 12 else "")
    chosen: dict[str, int] = {}
    for role, named, candidates in (("prompt", prompt, PROMPT_COLUMNS), ("answer", answer, ANSWER_COLUMNS)):
        if named is not None:
            if named.strip().casefold() not in names:
                raise MissingColumnError(
                    f"has no {what} `{show_name(named, 40)}`; the {what}s are: {found or 'none'}",
                    source=source,
                    line=line,
                )
            chosen[role] = names.index(named.strip().casefold())
            continue
        index = next((names.index(c) for c in candidates if c in names and names.index(c) not in chosen.values()), None)
        if index is None:
            hint = (
                f"the first row must name the columns: {known_keys_hint('column')}"
                if what == "column"
                else f"a line needs `messages`, or {known_keys_hint()}"
            )
            raise MissingColumnError(f"no {role} {what} among {found or 'none'}; {hint}", source=source, line=line)
        chosen[role] = index
    for name in _OPTIONAL_COLUMNS:
        if name in names:
            chosen.setdefault(name, names.index(name))
    return chosen


def _example(values: Mapping[str, str | None], source: str, line: int, weight: float = 1.0) -> Example:
    prompt, answer = (values.get("prompt") or "").strip(), (values.get("answer") or "").strip()
    if not prompt:
        raise EmptyFieldError("prompt", source=source, line=line)
    if not answer:
        raise EmptyFieldError("answer", source=source, line=line)
    return Example(
        prompt,
        answer,
        system=(values.get("system") or "").strip() or None,
        rejected=(values.get("rejected") or "").strip() or None,
        weight=weight,
        line=line,
    )


def _from_chat(messages: Any, source: str, line: int) -> list[Example]:
    """Each user message followed by an assistant answer is one example; the latest system prompt applies."""
    if not isinstance(messages, list) or not messages:
        raise DataFormatError("`messages` must be a non-empty list", source=source, line=line)
    system: str | None = None
    user: str | None = None
    examples: list[Example] = []
    for position, message in enumerate(messages, start=1):
        where = f"message {position}"
        if not isinstance(message, dict):
            raise DataFormatError(f"{where} must be an object, got {_kind(message)}", source=source, line=line)
        role = message.get("role")
        if role not in ("system", "user", "assistant", "tool", "function"):
            raise DataFormatError(f"{where} has an unknown role {shown_value(role)}", source=source, line=line)
        if role in ("tool", "function"):
            continue
        if role == "assistant" and message.get("content") is None and message.get("tool_calls"):
            user = None
            continue
        content = _text(message.get("content"), f"{where} ({role}) content", source, line)
        if not content.strip():
            raise DataFormatError(f"{where} ({role}) has empty content", source=source, line=line)
        if role == "system":
            system = content.strip()
        elif role == "user":
            user = content.strip()
        elif user is not None:
            weight = _weight(message.get("weight", 1), source, line)
            examples.append(Example(user, content.strip(), system=system, weight=weight, line=line))
            user = None
    if not examples:
        raise DataFormatError("no user message is followed by an assistant answer", source=source, line=line)
    return examples


def _from_preference(record: dict[str, Any], source: str, line: int) -> Example:
    """An OpenAI preference line: the prompt in ``input``, a preferred and a non-preferred answer."""
    given = record.get("input")
    messages = given.get("messages") if isinstance(given, dict) else given
    if not isinstance(messages, list):
        raise DataFormatError("`input` must hold a `messages` list", source=source, line=line)
    system = user = None
    for message in messages:
        if isinstance(message, dict) and message.get("role") in ("system", "user"):
            text = _text(message.get("content"), f"`{message['role']}` content", source, line).strip()
            system, user = (text, user) if message["role"] == "system" else (system, text)
    if not user:
        raise DataFormatError("`input` has no user message", source=source, line=line)
    chosen = _output(record, "preferred_output", source, line)
    rejected = _output(record, "non_preferred_output", source, line)
    return Example(user, chosen, system=system or None, rejected=rejected, line=line)


def _output(record: dict[str, Any], key: str, source: str, line: int) -> str:
    output = record.get(key)
    if not isinstance(output, list) or not output or not isinstance(output[-1], dict):
        raise DataFormatError(f"`{key}` must be a list holding an assistant message", source=source, line=line)
    if output[-1].get("role") != "assistant":
        raise DataFormatError(f"`{key}` must end with an assistant message", source=source, line=line)
    text = _text(output[-1].get("content"), f"`{key}` content", source, line).strip()
    if not text:
        raise DataFormatError(f"`{key}` has empty content", source=source, line=line)
    return text


def _text(value: Any, what: str, source: str, line: int) -> str:
    """A string field; OpenAI's list-of-text-parts content is joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(p, dict) and isinstance(p.get("text"), str) for p in value):
        return "".join(part["text"] for part in value)
    if value is None:
        raise DataFormatError(f"{what} is missing", source=source, line=line)
    raise DataFormatError(f"{what} must be text, got {_kind(value)}", source=source, line=line)


def _weight(value: Any, source: str, line: int) -> float:
    if isinstance(value, bool) or value not in (0, 1):
        raise DataFormatError(f"weight must be 0 or 1, got {shown_value(value)}", source=source, line=line)
    return float(value)


def shown_value(value: Any, limit: int = 60) -> str:
    """A JSON value from a file, short enough to quote in a message."""
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError, RecursionError):
        text = _kind(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _kind(value: Any) -> str:
    names = {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "true/false",
        int: "a number",
        float: "a number",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)
