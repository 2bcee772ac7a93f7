"""Each validation check: a file that triggers it and one that does not; the report's text and JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from teachbot.config import Backend
from teachbot.datasets.examples import Example
from teachbot.datasets.validation import (
    CHECKS,
    ValidationReport,
    validate_examples,
    validate_file,
)
from teachbot.tokens import count_tokens

SYSTEM = {"role": "system", "content": "You are teachbot."}


def chat(user: str, answer: str, **extra: Any) -> dict[str, Any]:
    return {
        "messages": [
            SYSTEM,
            {"role": "user", "content": user},
            {"role": "assistant", "content": answer, **extra},
        ]
    }


def clean_lines(n: int = 12) -> list[Any]:
    return [chat(f"question number {i}", f"answer number {i}") for i in range(n)]


def jsonl(tmp_path: Path, records: list[Any], name: str = "d.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def codes(report: ValidationReport) -> set[str]:
    return set(report.counts)


def test_clean_file_has_no_issues(tmp_path: Path) -> None:
    report = validate_file(jsonl(tmp_path, clean_lines()))
    assert report.ok and report.counts == {}
    assert report.examples == 12 and report.records == 12
    assert "No problems found." in report.to_text()


# (code, offending line) — each line is appended to a clean file; the clean file alone triggers none of these.
TRIGGERS: list[tuple[str, Any]] = [
    ("invalid_json", '{"messages": [}'),
    ("data_type", "[1, 2, 3]"),
    ("missing_messages", {"messages": []}),
    ("missing_messages", {"other": "thing"}),
    ("message_missing_key", {"messages": [{"role": "user"}, {"role": "assistant", "content": "a"}]}),
    ("message_missing_key", {"messages": ["just text", {"role": "assistant", "content": "a"}]}),
    ("message_unrecognized_key", chat("q", "a", mood="happy")),
    (
        "unrecognized_role",
        {"messages": [{"role": "robot", "content": "q"}, {"role": "assistant", "content": "a"}]},
    ),
    ("missing_content", chat("q", "")),
    ("missing_content", chat("q", 42)),
    ("missing_assistant", {"messages": [SYSTEM, {"role": "user", "content": "q"}]}),
    (
        "missing_system",
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
    ),
    ("missing_user", {"messages": [SYSTEM, {"role": "assistant", "content": "a"}]}),
    ("invalid_weight", chat("q", "a", weight=0.5)),
    (
        "weight_not_assistant",
        {"messages": [{"role": "user", "content": "q", "weight": 1}, {"role": "assistant", "content": "a"}]},
    ),
    (
        "format",
        {"messages": [SYSTEM, {"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}]},
    ),
    ("duplicate", chat("question number 3", "answer number 3")),
    ("near_duplicate", chat("Question  number 3?", "ANSWER number 3!")),
    ("contradiction", chat("question number 3", "something else entirely")),
    (
        "discord_token",
        chat("my token", "MTA5ODc2NTQzMjEwOTg3NjU0MzIx.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456"),
    ),
    ("api_key", chat("key?", "use sk-proj-abcdefghijklmnopqrstuvwxyz012345")),
    ("api_key", chat("key?", "AKIAIOSFODNN7EXAMPLE")),
    ("api_key", chat("key?", "ghp_" + "a1" * 18)),
    ("api_key", chat("key?", "xoxb-1234567890-abcdefghij")),
    ("email_address", chat("who to mail?", "write to someone@example.org please")),
]


@pytest.mark.parametrize(("code", "line"), TRIGGERS, ids=[f"{c}-{i}" for i, (c, _) in enumerate(TRIGGERS)])
def test_check_triggers_with_line_number(tmp_path: Path, code: str, line: Any) -> None:
    report = validate_file(jsonl(tmp_path, [*clean_lines(), line]))
    assert code in report.counts, report.to_text()
    assert any(i.code == code and i.line == 13 for i in report.issues)
    assert report.ok == (CHECKS[code][0] == "warning" and all(CHECKS[c][0] == "warning" for c in report.counts))


def test_tool_calls_and_content_parts_are_accepted(tmp_path: Path) -> None:
    record = {
        "messages": [
            SYSTEM,
            {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "1", "type": "function"}]},
            {"role": "tool", "content": "sunny", "tool_call_id": "1"},
            {"role": "user", "content": "so?"},
            {"role": "assistant", "content": "It is sunny.", "weight": 1},
        ]
    }
    report = validate_file(jsonl(tmp_path, [*clean_lines(), record]))
    assert report.counts == {}, report.to_text()


def test_secrets_are_not_echoed(tmp_path: Path) -> None:
    secret = "sk-proj-abcdefghijklmnopqrstuvwxyz012345"
    report = validate_file(jsonl(tmp_path, [*clean_lines(), chat("key", secret)]))
    assert secret not in report.to_text() and secret not in json.dumps(report.to_json())


def test_ordinary_dotted_text_is_not_a_token() -> None:
    report = validate_examples([Example("see www.example.com/docs.html", "version 1.2.3, e.g. etc.")])
    assert not {"discord_token", "api_key", "email_address"} & codes(report)


def test_example_counts() -> None:
    assert validate_examples([]).counts == {"no_examples": 1}
    few = validate_examples([Example(f"q{i}", f"a{i}") for i in range(3)])
    assert few.counts == {"few_examples": 1} and few.ok
    enough = validate_examples([Example(f"q{i}", f"a{i}") for i in range(10)])
    assert enough.counts == {}


def test_token_limits_and_stats() -> None:
    examples = [Example(f"q{i}", "word " * (50 if i == 0 else 5)) for i in range(10)]
    report = validate_examples(examples, warn_tokens=40, max_tokens=1000)
    assert report.counts == {"long_example": 1}
    assert validate_examples(examples, warn_tokens=20, max_tokens=40).counts == {"too_many_tokens": 1}
    expected = [3 + 3 + count_tokens(e.prompt) + 3 + count_tokens(e.answer) for e in examples]
    assert report.stats["tokens"] == {
        "total": sum(expected),
        "min": min(expected),
        "max": max(expected),
        "mean": round(sum(expected) / len(expected), 1),
    }


def test_the_local_backend_counts_no_tokens_but_still_finds_long_examples() -> None:
    """No tokens are spent on the local backend: its report has no token figures, and o200k_base's tables
    (67 MB, never given back) load only for an example whose UTF-8 bytes could pass the warning limit."""
    from teachbot import tokens

    tokens._encoding.cache_clear()
    tokens._fast_count.cache_clear()
    short = [Example(f"question {i}", f"answer {i} ✓") for i in range(10)]
    report = validate_examples(short, backend=Backend.LOCAL, warn_tokens=40, max_tokens=1000)
    assert report.counts == {} and report.tokens is None and report.stats["tokens"] is None
    assert "tokens" not in report.to_text() and "10 examples" in report.to_text()
    assert tokens._fast_count.cache_info().currsize == tokens._encoding.cache_info().currsize == 0, "tables loaded"

    long = [*short, Example("q", "word " * 50), Example("q2", "😀" * 20)]  # 80 bytes but few tokens
    found = validate_examples(long, backend=Backend.LOCAL, warn_tokens=40, max_tokens=1000)
    assert found.counts == {"long_example": 1} and found.issues[0].line == 11
    over = validate_examples(long, backend=Backend.LOCAL, warn_tokens=20, max_tokens=40)
    assert over.counts == {"too_many_tokens": 1, "long_example": 1}  # 59 and 29 tokens
    for local, warn, limit in ((found, 40, 1000), (over, 20, 40)):
        assert (
            validate_examples(long, backend=Backend.OPENAI, warn_tokens=warn, max_tokens=limit).counts == local.counts
        )


def test_validation_overlap(tmp_path: Path) -> None:
    held_out = jsonl(tmp_path, [chat("Question number 4", "whatever")], name="valid.jsonl")
    report = validate_file(jsonl(tmp_path, clean_lines()), validation=held_out)
    assert report.counts == {"validation_overlap": 1}
    assert report.issues[0].line == 5
    other = jsonl(tmp_path, [chat("unrelated", "x")], name="other.jsonl")
    assert validate_file(jsonl(tmp_path, clean_lines()), validation=other).counts == {}


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("d.csv", "prompt,answer\n" + "".join(f"q{i},a{i}\n" for i in range(12)) + "q3,a3\n"),
        ("d.yaml", "conversations:\n" + "".join(f"- [q{i}, a{i}]\n" for i in range(12)) + "- [q3, a3]\n"),
        ("d.txt", "".join(f"Q: q{i}\nA: a{i}\n\n" for i in range(12)) + "Q: q3\nA: a3\n"),
    ],
)
def test_other_formats_are_checked(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    report = validate_file(path)
    assert report.counts == {"duplicate": 1}
    assert report.examples == 13


def test_unreadable_file_is_a_format_error_with_line(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("prompt,answer\na,b\nc,d,e\n")
    report = validate_file(path)
    assert not report.ok and report.counts == {"format": 1}
    assert report.issues[0].line == 3 and "3 fields" in report.issues[0].message


def test_jsonl_stream_stops_at_bad_encoding(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(json.dumps(chat("q", "a")).encode() + b"\n\xff\xfe garbage\n")
    report = validate_file(path)
    assert report.counts["format"] == 1 and report.issues[-1].line == 2


def test_jsonl_utf16_file_is_validated(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes("".join(json.dumps(r) + "\n" for r in clean_lines()).encode("utf-16"))
    assert validate_file(path).counts == {}


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    report = validate_file(jsonl(tmp_path, clean_lines()), max_bytes=100)
    assert report.counts == {"format": 1} and "over the limit" in report.issues[0].message


def test_report_text_is_grouped_and_capped(tmp_path: Path) -> None:
    lines = [*clean_lines(), *[chat("question number 1", "answer number 1")] * 8, chat("q", "")]
    report = validate_file(jsonl(tmp_path, lines))
    text = report.to_text(limit=3)
    assert text.splitlines()[0].startswith("d.jsonl: 1 error, 8 warnings — 20 examples")
    assert text.index("Errors (these block training):") < text.index("missing_content (1)") < text.index("Warnings:")
    assert "duplicate (8)" in text and "line 14: same as line 2" in text and "... and 5 more" in text
    data = report.to_json()
    assert data["ok"] is False and data["counts"] == {"duplicate": 8, "missing_content": 1}
    assert json.loads(json.dumps(data)) == data


def test_near_duplicate_check_is_linear() -> None:
    """50,000 distinct examples in well under the time a pairwise comparison would take."""
    import time

    examples = [Example(f"question {i}", f"answer {i}") for i in range(50_000)]
    start = time.perf_counter()
    report = validate_examples(examples)
    assert time.perf_counter() - start < 10
    assert report.counts == {}


@pytest.fixture(scope="module")
def encoder() -> Any:
    from teachbot.answering.encoding import load_encoder

    return load_encoder("minilm")


def test_duplicates_and_contradictions_are_found_by_meaning(tmp_path: Path, encoder: Any) -> None:
    records = [
        {"prompt": "How do I reset my password?", "answer": "Use the reset link."},
        {"prompt": "how can I reset my password", "answer": "Use the reset link."},  # the same, other words
        {"prompt": "What's the way to reset my password?", "answer": "Call the help desk."},  # another answer
        {"prompt": "What time does the shop open?", "answer": "At nine."},
        {"prompt": "How do I reset my router?", "answer": "Unplug it for ten seconds."},  # same words, other meaning
        {"prompt": "When does the store open in the morning?", "answer": "At nine."},
    ]
    path = jsonl(tmp_path, records)
    report = validate_file(path, backend=Backend.LOCAL, encoder=encoder)
    flagged = {(i.code, i.line) for i in report.issues}
    assert ("same_meaning", 2) in flagged
    assert ("contradiction_meaning", 3) in flagged
    assert {line for _, line in flagged} == {2, 3}, report.to_text()
    assert report.ok  # warnings, never errors
    assert "line 1" in next(i.message for i in report.issues if i.code == "contradiction_meaning")
    plain = validate_file(path, backend=Backend.LOCAL)  # without the encoder: by characters only
    assert not {"same_meaning", "contradiction_meaning"} & set(plain.counts)
    examples = [Example(prompt=r["prompt"], answer=r["answer"]) for r in records]
    assert validate_examples(examples, backend=Backend.LOCAL, encoder=encoder).counts == report.counts


def test_the_comparison_by_meaning_is_bounded(tmp_path: Path, encoder: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from teachbot.datasets import validation

    monkeypatch.setattr(validation, "MEANING_LIMIT", 3)
    records = [{"prompt": f"question {n} about the weather", "answer": f"answer {n}"} for n in range(5)]
    report = validate_file(jsonl(tmp_path, records), backend=Backend.LOCAL, encoder=encoder)
    assert any("first 3 prompts (2 more not compared)" in note for note in report.notes)
    assert "Note: the comparison by meaning" in report.to_text()
    assert report.to_json()["notes"] == report.notes
