"""Dataset checks before training: OpenAI's chat-format rules plus duplicates, contradictions, leaks, size.

Errors block training; warnings do not. Files are streamed line by line and only small hashes are
kept per example, so a large file is checked in bounded memory. With a sentence encoder, duplicates and
contradictions are also found by meaning: the prompts (at most ``MEANING_LIMIT``) are encoded once (a
cached encoder keeps the vectors for training) and compared by matrix products in chunks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

import numpy as np

from teachbot.config import Backend
from teachbot.datasets import formats, readers
from teachbot.datasets.examples import LONE_SURROGATE, Example, is_storable
from teachbot.datasets.readers import EmptyFieldError, MissingColumnError, known_keys_hint, shown_value
from teachbot.errors import ConfigError, DataFormatError, FileTooLarge, file_error, show_name
from teachbot.memory import release_free_memory
from teachbot.paths import open_regular_file
from teachbot.tokens import count_tokens

if TYPE_CHECKING:
    from teachbot.answering.encoding import Encoder

__all__ = ["CHECKS", "Issue", "TokenStats", "ValidationReport", "validate_examples", "validate_file"]

Level = Literal["error", "warning"]
MAX_TOKENS = 65_536  # the longest training example OpenAI accepts for current chat models
WARN_TOKENS = 16_384  # longer examples are allowed but usually a mistake (a pasted log, a whole file)
MIN_EXAMPLES = 10  # OpenAI's fine-tuning minimum
KEEP_PER_CODE = 1_000  # issues kept per code; the rest are only counted

CHECKS: dict[str, tuple[Level, str]] = {
    "format": ("error", "the file or line cannot be read"),
    "invalid_json": ("error", "a line is not valid JSON"),
    "data_type": ("error", "a line is not a JSON object"),
    "missing_messages": ("error", "no `messages` list"),
    "missing_keys": ("error", "no prompt or answer column (or key)"),
    "message_missing_key": ("error", "a message lacks `role` or `content`"),
    "message_unrecognized_key": ("error", "a message has a key OpenAI does not accept"),
    "unrecognized_role": ("error", "a message role is not system, user, assistant, tool or function"),
    "missing_content": ("error", "empty or non-text content"),
    "missing_assistant": ("error", "no assistant message"),
    "invalid_weight": ("error", "`weight` is not 0 or 1"),
    "weight_not_assistant": ("error", "`weight` on a message that is not the assistant's"),
    "no_examples": ("error", "no examples at all"),
    "too_many_tokens": ("error", f"an example is over the token limit ({MAX_TOKENS:,} by default)"),
    "discord_token": ("error", "a Discord bot token"),
    "api_key": ("error", "an API key or access token"),
    "missing_system": ("warning", "no system message"),
    "missing_user": ("warning", "no user message"),
    "few_examples": ("warning", f"fewer than {MIN_EXAMPLES} examples (OpenAI's fine-tuning minimum)"),
    "long_example": ("warning", f"an example is long ({WARN_TOKENS:,} tokens by default)"),
    "duplicate": ("warning", "the same example twice"),
    "near_duplicate": ("warning", "the same example up to case, punctuation and spacing"),
    "contradiction": ("warning", "the same prompt with a different answer"),
    "same_meaning": ("warning", "the same example in other words (found by meaning)"),
    "contradiction_meaning": ("warning", "the same question in other words with a different answer (found by meaning)"),
    "validation_overlap": ("warning", "a prompt that is also in the validation set"),
    "email_address": ("warning", "an e-mail address (personal data)"),
}

#: Cosines of meaning (all-MiniLM-L6-v2) at or above which two prompts are flagged. On CLINC150's training
#: set 728 pairs reach 0.98, all but 2 with the same intent (rewordings such as "what's" / "what is"); at
#: 0.95, 8 of 3,644 pairs have different intents, among them a mislabelled example.
SAME_MEANING_DUPLICATE = 0.98
SAME_MEANING_CONTRADICTION = 0.95
#: Prompts compared by meaning at most (the first ones): 20,000 encode in about a minute on two cores
#: and compare in a few seconds; beyond, the report says how many were left out.
MEANING_LIMIT = 20_000
_MEANING_CHUNK = 256  # prompts compared with all the others at a time: four 256 × n blocks (55 MB at n = 15,000)

_ROLES = {"system", "user", "assistant", "tool", "function"}
# Keys that make a JSON line a prompt/answer or preference line rather than a chat line.
_FLAT_KEYS = {*readers.PROMPT_COLUMNS, *readers.ANSWER_COLUMNS, "preferred_output", "non_preferred_output"}
_MESSAGE_KEYS = {
    "role",
    "content",
    "name",
    "function_call",
    "weight",
    "tool_calls",
    "tool_call_id",
    "refusal",
}
_WORDS = re.compile(r"\w+")
_SECRETS: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    (
        "discord_token",
        "a Discord bot token",
        re.compile(r"(?<![\w-])[\w-]{23,28}\.[\w-]{6,7}\.[\w-]{27,40}(?![\w-])", re.A),
    ),
    (
        "api_key",
        "an API key",
        re.compile(
            r"(?<![\w-])(?:sk-(?:proj-|ant-|svcacct-|admin-)?[\w-]{20,}|(?:AKIA|ASIA)[0-9A-Z]{16}"
            r"|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_\w{22,}|xox[abposr]-[A-Za-z0-9-]{10,})",
            re.A,
        ),
    ),
    (
        "email_address",
        "an e-mail address",
        re.compile(r"[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
    ),
)


@dataclass(frozen=True, slots=True)
class Issue:
    """One finding; ``code`` is a stable identifier (see ``CHECKS``), ``line`` 1-based when known."""

    level: Level
    code: str
    message: str
    line: int | None = None


@dataclass(frozen=True, slots=True)
class TokenStats:
    """o200k_base tokens per example, including OpenAI's chat framing."""

    total: int = 0
    min: int = 0
    max: int = 0
    mean: float = 0.0


@dataclass(slots=True)
class ValidationReport:
    """What a validation found; ``counts`` counts every issue, ``issues`` keeps the first of each code."""

    source: str
    issues: list[Issue] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    examples: int = 0
    records: int = 0
    tokens: TokenStats | None = field(default_factory=TokenStats)  # None: not counted (the local backend)
    notes: list[str] = field(default_factory=list)  # what was not checked, and why

    @property
    def ok(self) -> bool:
        """True when nothing blocks training."""
        return self.error_count == 0

    @property
    def error_count(self) -> int:
        return sum(n for code, n in self.counts.items() if CHECKS[code][0] == "error")

    @property
    def warning_count(self) -> int:
        return sum(n for code, n in self.counts.items() if CHECKS[code][0] == "warning")

    @property
    def stats(self) -> dict[str, Any]:
        t = self.tokens
        return {
            "examples": self.examples,
            "records": self.records,
            "tokens": None if t is None else {"total": t.total, "min": t.min, "max": t.max, "mean": round(t.mean, 1)},
        }

    def to_text(self, limit: int = 5) -> str:
        """A short human report: a summary line, then issues grouped by code, ``limit`` lines each."""
        t = self.tokens
        tokens = "" if t is None else f", {t.total:,} tokens (min {t.min:,}, mean {t.mean:,.0f}, max {t.max:,})"
        lines = [
            f"{self.source}: {_plural(self.error_count, 'error')}, "
            f"{_plural(self.warning_count, 'warning')} — "
            f"{_plural(self.examples, 'example')}{tokens}"
        ]
        for level, title in (("error", "Errors (these block training):"), ("warning", "Warnings:")):
            codes = [code for code in CHECKS if CHECKS[code][0] == level and self.counts.get(code)]
            if codes:
                lines.append(title)
            for code in codes:
                shown = [i for i in self.issues if i.code == code][:limit]
                lines.append(f"  {code} ({self.counts[code]:,}): {CHECKS[code][1]}")
                lines.extend(f"    {'line ' + str(i.line) + ': ' if i.line else ''}{i.message}" for i in shown)
                if self.counts[code] > len(shown):
                    lines.append(f"    ... and {self.counts[code] - len(shown):,} more")
        if not self.counts:
            lines.append("No problems found.")
        lines.extend(f"Note: {note}" for note in self.notes)
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """The report as plain JSON-ready data."""
        return {
            "source": self.source,
            "ok": self.ok,
            "errors": self.error_count,
            "warnings": self.warning_count,
            "stats": self.stats,
            "counts": dict(self.counts),
            "issues": [{"level": i.level, "code": i.code, "message": i.message, "line": i.line} for i in self.issues],
            "notes": list(self.notes),
        }


def validate_examples(
    examples: Iterable[Example],
    *,
    source: str = "examples",
    validation: Iterable[Example] | None = None,
    max_tokens: int = MAX_TOKENS,
    warn_tokens: int = WARN_TOKENS,
    backend: Backend = Backend.OPENAI,
    encoder: Encoder | None = None,
) -> ValidationReport:
    """Check examples already in memory (from any reader, or from the database); OpenAI's minimum count
    applies only when ``backend`` is openai (fine-tuning); with an ``encoder`` prompts are compared by
    meaning too (blocking: seconds for thousands of prompts)."""
    checker = _Checker(source, max_tokens=max_tokens, warn_tokens=warn_tokens, backend=backend, encoder=encoder)
    if validation is not None:
        checker.set_validation(validation)
    for number, example in enumerate(examples, start=1):
        line = example.line if example.line is not None else number
        empty = [name for name in ("prompt", "answer") if not getattr(example, name).strip()]
        if empty:
            checker.issue("missing_content", " and ".join(f"the {name} is empty" for name in empty), line)
            continue
        if not all(is_storable(t) for t in _example_texts(example)):
            checker.issue("format", LONE_SURROGATE, line)
            continue
        checker.record([example], line, _example_texts(example))
    return checker.finish()


def validate_file(
    path: Path,
    *,
    fmt: str | None = None,
    validation: Path | None = None,
    prompt_column: str | None = None,
    answer_column: str | None = None,
    max_bytes: int | None = None,
    max_tokens: int = MAX_TOKENS,
    warn_tokens: int = WARN_TOKENS,
    backend: Backend = Backend.OPENAI,
    encoder: Encoder | None = None,
) -> ValidationReport:
    """Check a dataset file without importing it; JSONL is streamed and checked line by line.

    A file that cannot be opened (missing, a folder, a pipe, unreadable) raises ``UserError``; one that
    opens but cannot be read as a dataset (too large, not text, malformed) is reported as ``format``, or
    as ``missing_keys`` / ``missing_content`` when no column holds the prompt or answer, or one is empty.
    OpenAI's minimum count applies only when ``backend`` is openai (fine-tuning). With an ``encoder``
    prompts are compared by meaning too.
    """
    source = show_name(path.name or str(path))
    checker = _Checker(source, max_tokens=max_tokens, warn_tokens=warn_tokens, backend=backend, encoder=encoder)
    if validation is not None:
        try:
            checker.set_validation(formats.read_examples(validation, max_bytes=max_bytes))
        except DataFormatError as exc:
            checker.issue("format", f"validation set {_bare(exc)}", exc.line)
    try:
        with open_regular_file(path, max_bytes=max_bytes, shown=source) as handle:
            head = handle.read(4096)
            handle.seek(0)
            fmt = fmt or _guess(path.name, head)
            if fmt == "jsonl":
                for number, line in _jsonl_lines(handle, source):
                    if line.strip():
                        _check_json_line(checker, line, number, prompt_column, answer_column)
                return checker.finish()
            data = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
        if max_bytes is not None and len(data) > max_bytes:
            raise FileTooLarge(source, None, max_bytes)
        examples = formats.parse_examples(
            data, source=source, fmt=fmt, prompt_column=prompt_column, answer_column=answer_column
        )
    except FileTooLarge as exc:
        checker.issue("format", exc.detail)
        return checker.finish()
    except DataFormatError as exc:
        checker.issue(_code(exc), _bare(exc), exc.line)
        return checker.finish()
    except OSError as exc:  # a read failing half way (a disk error, a file on a vanished mount)
        raise file_error(exc, source) from None
    for example in examples:
        checker.record([example], example.line, _example_texts(example))
    return checker.finish()


class _Checker:
    """Accumulates issues and per-example hashes; one instance checks one dataset."""

    def __init__(
        self, source: str, *, max_tokens: int, warn_tokens: int, backend: Backend, encoder: Encoder | None = None
    ) -> None:
        self.report = ValidationReport(source)
        self.backend = backend
        self.meaning = _MeaningCheck(encoder) if encoder is not None else None
        self.max_tokens, self.warn_tokens = max_tokens, warn_tokens
        # Tokens are spent on OpenAI-compatible servers only. On the local backend the report counts none,
        # and the long-example checks count only what could be long: o200k_base's tables take 67 MB that
        # the process never gets back.
        self.counted = backend is not Backend.LOCAL
        self.count = count_tokens
        self.exact: dict[int, int] = {}
        self.near: dict[int, int] = {}
        self.answers: dict[int, tuple[int, int]] = {}
        self.held_out: dict[int, int] = {}
        self.token_min, self.token_max, self.token_total = 0, 0, 0

    def issue(self, code: str, message: str, line: int | None = None) -> None:
        seen = self.report.counts.get(code, 0)
        self.report.counts[code] = seen + 1
        if seen < KEEP_PER_CODE:
            self.report.issues.append(Issue(CHECKS[code][0], code, message, line))

    def set_validation(self, examples: Iterable[Example]) -> None:
        for number, e in enumerate(examples, start=1):
            self.held_out.setdefault(hash((_norm(e.system), _norm(e.prompt))), e.line or number)

    def record(self, examples: list[Example], line: int | None, texts: list[str]) -> None:
        """One training record (a line): its examples, and the message texts its tokens come from."""
        report = self.report
        report.records += 1
        report.examples += len(examples)
        tokens = self._tokens(texts)
        if report.records == 1 or tokens < self.token_min:
            self.token_min = tokens
        self.token_max = max(self.token_max, tokens)
        self.token_total += tokens
        if tokens > self.max_tokens:
            self.issue("too_many_tokens", f"{tokens:,} tokens, over the limit of {self.max_tokens:,}", line)
        elif tokens > self.warn_tokens:
            self.issue("long_example", f"{tokens:,} tokens", line)
        for text in texts:
            self._scan_secrets(text, line)
        for e in examples:
            self._compare(e, line)

    def _tokens(self, texts: list[str]) -> int:
        """The record's tokens with OpenAI's chat framing. Uncounted, a record is as many tokens as UTF-8
        bytes at most (every o200k_base token covers a byte or more): counted only when that bound is long."""
        if not self.counted:
            bound = 3 + sum(3 + len(text.encode("utf-8", "surrogatepass")) for text in texts)
            if bound <= self.warn_tokens:
                return bound
        return 3 + sum(3 + self.count(text) for text in texts)

    def _compare(self, e: Example, line: int | None) -> None:
        """Duplicate, near-duplicate, contradiction and overlap checks on hashes only (no O(n²))."""
        exact = hash((e.system, e.prompt, e.answer))
        if exact in self.exact:
            self.issue("duplicate", f"same as line {self.exact[exact]}", line)
            return
        self.exact[exact] = line or 0
        system, prompt, answer = _norm(e.system), _norm(e.prompt), _norm(e.answer)
        near = hash((system, prompt, answer))
        if near in self.near:
            self.issue("near_duplicate", f"same as line {self.near[near]} up to case, punctuation and spacing", line)
            return
        self.near[near] = line or 0
        question = hash((system, prompt))
        first_line, first_answer = self.answers.setdefault(question, (line or 0, hash(answer)))
        if first_answer != hash(answer):
            self.issue("contradiction", f"line {first_line} answers the same prompt differently", line)
        elif self.meaning is not None and first_line == (line or 0):  # a prompt the characters saw first here
            self.meaning.add(e.prompt, hash((system, answer)), line or 0)
        if question in self.held_out:
            self.issue(
                "validation_overlap",
                f"prompt is also in the validation set (line {self.held_out[question]})",
                line,
            )

    def _scan_secrets(self, text: str, line: int | None) -> None:
        for code, label, pattern in _SECRETS:
            if code == "email_address" and "@" not in text:
                continue
            match = pattern.search(text)
            if match:
                self.issue(code, f"looks like {label}: {_redact(match.group())}", line)

    def finish(self) -> ValidationReport:
        report = self.report
        if report.examples == 0 and not report.error_count:  # an error already says why nothing could be read
            self.issue("no_examples", "there are no examples to train on")
        elif 0 < report.examples < MIN_EXAMPLES and self.backend is Backend.OPENAI:
            self.issue("few_examples", f"only {report.examples}; OpenAI's fine-tuning asks for at least {MIN_EXAMPLES}")
        if self.meaning is not None:
            self.meaning.compare(self)
        if not self.counted:
            report.tokens = None
        elif report.records:
            report.tokens = TokenStats(
                self.token_total, self.token_min, self.token_max, self.token_total / report.records
            )
        report.issues.sort(key=lambda i: i.line or 0)
        return report


class _MeaningCheck:
    """Prompts kept for the comparison by meaning (text, answer hash, line); the comparison itself."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.prompts: list[str] = []
        self.answers: list[int] = []
        self.lines: list[int] = []
        self.left_out = 0

    def add(self, prompt: str, answer: int, line: int) -> None:
        if len(self.prompts) >= MEANING_LIMIT:
            self.left_out += 1
            return
        self.prompts.append(prompt)
        self.answers.append(answer)
        self.lines.append(line)

    def compare(self, checker: _Checker) -> None:
        """Each prompt against the earlier ones: a contradiction (another answer) or a duplicate (the same one)."""
        if self.left_out:
            checker.report.notes.append(
                f"the comparison by meaning covered the first {MEANING_LIMIT:,} prompts "
                f"({self.left_out:,} more not compared)"
            )
        if len(self.prompts) < 2:
            return
        try:
            vectors = self.encoder.encode(self.prompts)
        except ConfigError as exc:  # the encoder's files are unusable: the checks by characters still stand
            checker.report.notes.append(f"no comparison by meaning: {exc}")
            return
        answers = np.asarray(self.answers, dtype=np.int64)
        for start in range(0, len(vectors), _MEANING_CHUNK):
            end = min(start + _MEANING_CHUNK, len(vectors))
            cosines = vectors[start:end] @ vectors[:end].T
            earlier = np.arange(end)[None, :] < np.arange(start, end)[:, None]
            other = answers[start:end, None] != answers[None, :end]
            apart = np.where(earlier & other, cosines, -1.0)
            alike = np.where(earlier & ~other, cosines, -1.0)
            for row in range(end - start):
                line = self.lines[start + row]
                rival = int(apart[row].argmax())
                if apart[row, rival] >= SAME_MEANING_CONTRADICTION:
                    checker.issue(
                        "contradiction_meaning",
                        f"line {self.lines[rival]} asks the same in other words (meaning {apart[row, rival]:.2f}) "
                        "and answers differently",
                        line,
                    )
                    continue
                twin = int(alike[row].argmax())
                if alike[row, twin] >= SAME_MEANING_DUPLICATE:
                    checker.issue(
                        "same_meaning",
                        f"line {self.lines[twin]} says the same in other words (meaning {alike[row, twin]:.2f})",
                        line,
                    )
        release_free_memory()


def _check_json_line(checker: _Checker, line: str, number: int, prompt_key: str | None, answer_key: str | None) -> None:
    """OpenAI's per-line checks on the raw object, then the examples it yields."""
    try:
        record = readers.load_json_line(line, checker.report.source, number)
    except DataFormatError as exc:
        checker.issue("invalid_json", _bare(exc), number)
        return
    if not isinstance(record, dict):
        checker.issue("data_type", "line is not a JSON object", number)
        return
    keys = {str(key).casefold() for key in record}
    chat = "messages" in record or not (_FLAT_KEYS & keys or prompt_key)
    if chat and "messages" not in record:
        found = ", ".join(f"`{show_name(str(key), 40)}`" for key in list(record)[:8]) or "none"
        checker.issue(
            "missing_messages", f"no `messages` list, and no key teachbot reads (found: {found}); a line needs "
            f"`messages`, or {known_keys_hint()}", number,
        )  # fmt: skip
        return
    if chat and not _check_messages(checker, record.get("messages"), number):
        return
    try:
        examples = readers.examples_from_record(
            record, source=checker.report.source, line=number, prompt_key=prompt_key, answer_key=answer_key
        )
    except DataFormatError as exc:
        checker.issue(_code(exc), _bare(exc), number)
        return
    if chat:
        texts = [_content(m.get("content")) for m in record["messages"]]
    else:
        texts = [t for e in examples for t in _example_texts(e)]
    checker.record(examples, number, texts)


def _check_messages(checker: _Checker, messages: Any, line: int) -> bool:
    """Every check of OpenAI's chat data-preparation guide; False when the line has an error."""
    if not isinstance(messages, list) or not messages:
        checker.issue("missing_messages", "no `messages` list", line)
        return False
    before = checker.report.error_count
    roles: set[str] = set()
    for position, message in enumerate(messages, start=1):
        where = f"message {position}"
        if not isinstance(message, dict):
            checker.issue("message_missing_key", f"{where} is not an object", line)
            continue
        tool_call = bool(message.get("tool_calls") or message.get("function_call"))
        if "role" not in message or ("content" not in message and not tool_call):
            checker.issue("message_missing_key", f"{where} lacks `role` or `content`", line)
        unknown = sorted(show_name(str(key), 40) for key in message if key not in _MESSAGE_KEYS)
        if unknown:
            listed = ", ".join(unknown[:8]) + (" …" if len(unknown) > 8 else "")
            checker.issue("message_unrecognized_key", f"{where} has unrecognised key(s): {listed}", line)
        role = message.get("role")
        if "role" in message and not (isinstance(role, str) and role in _ROLES):
            checker.issue("unrecognized_role", f"{where} has role {shown_value(role)}", line)
        if isinstance(role, str):
            roles.add(role)
        if "content" in message or not tool_call:
            content = message.get("content")
            if not (isinstance(content, (str, list)) and _content(content).strip()) and not tool_call:
                checker.issue("missing_content", f"{where} ({_role(role)}) has empty or non-text content", line)
        if "weight" in message:
            if role != "assistant":
                checker.issue("weight_not_assistant", f"{where} ({_role(role)}) has a weight", line)
            elif isinstance(message["weight"], bool) or message["weight"] not in (0, 1):
                checker.issue("invalid_weight", f"{where} has weight {shown_value(message['weight'])}", line)
    if "assistant" not in roles:
        checker.issue("missing_assistant", "no assistant message", line)
    if "system" not in roles:
        checker.issue("missing_system", "no system message", line)
    if "user" not in roles:
        checker.issue("missing_user", "no user message", line)
    return checker.report.error_count == before


def _jsonl_lines(handle: BinaryIO, source: str) -> Iterator[tuple[int, str]]:
    """Stream a UTF-8 file's lines; UTF-16/32 files (rare, small) are decoded whole."""
    head = handle.read(4)
    handle.seek(0)
    if head.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")):
        yield from formats.split_lines(formats.decode_text(handle.read(), source), source)
    else:
        yield from formats.iter_file_lines(handle, source)


def _guess(name: str, head: bytes) -> str:
    """The format from the extension or the first 4 KiB; unknown content is checked as JSONL."""
    try:
        return formats.guess_format(name, head.decode("utf-8", errors="replace"))
    except DataFormatError:
        return "jsonl"


def _example_texts(e: Example) -> list[str]:
    return [t for t in (e.system, e.prompt, e.answer, e.rejected) if t]


def _content(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _role(role: Any) -> str:
    return role if isinstance(role, str) and len(role) <= 40 else shown_value(role, 40)


def _norm(text: str | None) -> str:
    """Text with case, punctuation and spacing folded away, for near-duplicate detection."""
    return " ".join(_WORDS.findall(text.casefold())) if text else ""


def _redact(secret: str) -> str:
    return secret[:4] + "…" if len(secret) > 8 else "…"


def _code(exc: DataFormatError) -> str:
    """The check a reader's error belongs to."""
    if isinstance(exc, MissingColumnError):
        return "missing_keys"
    if isinstance(exc, EmptyFieldError):
        return "missing_content"
    return "format"


def _bare(exc: DataFormatError) -> str:
    """The message of a format error without its ``file:line:`` prefix (the report shows the line)."""
    prefix = exc.source + (f":{exc.line}" if exc.line is not None else "") + ": "
    return str(exc).removeprefix(prefix)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"
