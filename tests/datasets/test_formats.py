"""Reading every dataset format, refusing malformed input all or nothing, and writing round trips."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import teachbot
from teachbot.datasets.examples import Example
from teachbot.datasets.formats import parse_examples, read_examples, render_examples, write_examples
from teachbot.errors import DataFormatError, UserError

PAIRS = [
    ("hello", "Hi there!"),
    ("what are you?", 'A bot, with a comma, and "quotes".'),
    ("multi", "line\nanswer"),
]


def pairs(examples: list[Example]) -> list[tuple[str, str]]:
    return [(e.prompt, e.answer) for e in examples]


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


# --- readers


def test_csv_with_known_header_names(tmp_path: Path) -> None:
    path = write(tmp_path, "d.csv", 'id,Question,Response\n1,hi,hello\n2,"a, b","x\ny"\n3,bye,ciao\n')
    examples = read_examples(path)
    assert pairs(examples) == [("hi", "hello"), ("a, b", "x\ny"), ("bye", "ciao")]
    assert [e.line for e in examples] == [2, 3, 5]


def test_tsv_and_named_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "d.tsv", "utterance\tnotes\treply\nhi\tx\thello\n")
    assert pairs(read_examples(path, answer_column="reply")) == [("hi", "hello")]


def test_named_column_missing_lists_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "d.csv", "prompt,answer\nhi,hello\n")
    with pytest.raises(DataFormatError, match=r"d\.csv:1: has no column `reply`.*`prompt`, `answer`"):
        read_examples(path, answer_column="reply")


def test_csv_without_header_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "d.csv", "hi,hello\nbye,ciao\n")
    with pytest.raises(DataFormatError, match=r"d\.csv:1: no prompt column .*first row must name the columns"):
        read_examples(path)


def test_csv_ragged_row_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "d.csv", "prompt,answer\nhi,hello\nbye,ciao,extra\n")
    with pytest.raises(DataFormatError, match=r"d\.csv:3: row has 3 fields but the header has 2"):
        read_examples(path)


def test_csv_empty_answer(tmp_path: Path) -> None:
    path = write(tmp_path, "d.csv", "prompt,answer\nhi,hello\nbye,  \n")
    with pytest.raises(DataFormatError, match=r"d\.csv:3: empty answer"):
        read_examples(path)


def test_jsonl_prompt_answer_chat_and_preference(tmp_path: Path) -> None:
    lines = [
        {"prompt": "p1", "answer": "a1"},
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "u1"},
                {"role": "assistant", "content": "b1", "weight": 0},
                {"role": "user", "content": "u2"},
                {"role": "assistant", "content": [{"type": "text", "text": "b2"}]},
            ]
        },
        {
            "input": {"messages": [{"role": "user", "content": "q"}]},
            "preferred_output": [{"role": "assistant", "content": "good"}],
            "non_preferred_output": [{"role": "assistant", "content": "bad"}],
        },
    ]
    path = write(tmp_path, "d.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n\n")
    examples = read_examples(path)
    assert examples == [
        Example("p1", "a1", line=1),
        Example("u1", "b1", system="Be brief.", weight=0.0, line=2),
        Example("u2", "b2", system="Be brief.", line=2),
        Example("q", "good", rejected="bad", line=3),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"d\.jsonl:2: invalid JSON"),
        ("[1, 2]", r"d\.jsonl:2: expected a JSON object, got a list"),
        ('{"prompt": 3, "answer": "x"}', r"d\.jsonl:2: `prompt` must be text, got a number"),
        ('{"prompt": "", "answer": "x"}', r"d\.jsonl:2: empty prompt"),
        ('{"foo": "bar"}', r"d\.jsonl:2: no prompt key"),
        ('{"messages": []}', r"d\.jsonl:2: `messages` must be a non-empty list"),
        ('{"messages": [{"role": "robot", "content": "x"}]}', r"d\.jsonl:2: message 1 has an unknown role"),
        ('{"messages": [{"role": "user", "content": "x"}]}', r"d\.jsonl:2: no user message is followed"),
        (
            '{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", "weight": 2}]}',
            r"d\.jsonl:2: weight must be 0 or 1",
        ),
        (
            '{"input": {"messages": []}, "preferred_output": [], "non_preferred_output": []}',
            r"d\.jsonl:2: `input` has no user message",
        ),
        ("[" * 100_000 + "]" * 100_000, r"d\.jsonl:2: invalid JSON"),
    ],
)
def test_jsonl_malformed_line_refuses_whole_file(tmp_path: Path, line: str, message: str) -> None:
    path = write(tmp_path, "d.jsonl", '{"prompt": "ok", "answer": "fine"}\n' + line + "\n")
    with pytest.raises(DataFormatError, match=message):
        read_examples(path)


def test_chatterbot_corpus(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "c.yml",
        "categories:\n- greetings\nconversations:\n- - hi\n  - hello\n  - how are you\n- - are you a bot?\n  - yes\n",
    )
    examples = read_examples(path)
    assert pairs(examples) == [("hi", "hello"), ("hello", "how are you"), ("are you a bot?", "yes")]
    assert [e.line for e in examples] == [4, 5, 7]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("- just\n- a list\n", r"c\.yaml:1: must be a mapping"),
        ("categories: [x]\n", r"c\.yaml:1: has no `conversations` list"),
        ("conversations:\n- - only one\n", r"c\.yaml:2: a conversation needs a statement and a response"),
        ("conversations:\n- - hi\n  - ~\n", r"c\.yaml:3: empty statement"),
        ("conversations:\n- - hi\n  - [nested]\n", r"c\.yaml:3: a statement must be text"),
        ("conversations:\n- - hi\n  - !!python/object/apply:os.system [echo hi]\n", r"c\.yaml:3: YAML tag"),
        ("conversations: [[a, b]\n", r"c\.yaml:2: invalid YAML"),
        ("a: &x [q, r]\nconversations:\n- *x\n- *x\n", r"c\.yaml:\d+: YAML aliases"),
    ],
)
def test_corpus_yaml_errors(tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(DataFormatError, match=message):
        read_examples(write(tmp_path, "c.yaml", content))


def test_plain_text_qa(tmp_path: Path) -> None:
    text = "# my notes\nQ: hi\nA: hello\n\nquestion: how are you?\nANSWER: fine,\nthanks\nQ: next\nA: one\n"
    examples = read_examples(write(tmp_path, "qa.txt", text))
    assert pairs(examples) == [("hi", "hello"), ("how are you?", "fine,\nthanks"), ("next", "one")]
    assert [e.line for e in examples] == [2, 5, 8]


def test_plain_text_question_without_answer(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"qa\.txt:3: question has no answer"):
        read_examples(write(tmp_path, "qa.txt", "Q: a\nA: b\nQ: lonely\n\nQ: c\nA: d\n"))


def test_format_guessed_from_content_for_attachments() -> None:
    assert pairs(parse_examples(b'{"prompt": "a", "answer": "b"}\n', source="upload")) == [("a", "b")]
    assert pairs(parse_examples(b"Q: a\nA: b\n", source="upload")) == [("a", "b")]
    assert pairs(parse_examples(b"conversations:\n- [a, b]\n", source="upload")) == [("a", "b")]
    assert pairs(parse_examples(b"prompt\tanswer\na\tb\n", source="upload")) == [("a", "b")]
    with pytest.raises(DataFormatError, match="cannot tell the format"):
        parse_examples(b"hello there\n", source="upload")


# --- hostile and broken input


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"prompt,answer\n"])
def test_empty_file_says_no_examples(tmp_path: Path, content: bytes) -> None:
    with pytest.raises(DataFormatError, match="no examples"):
        read_examples(write(tmp_path, "d.csv", content))


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "d.csv", b"prompt,answer\nhi,hello\n" + "caf\xe9,ok\n".encode("latin-1"))
    with pytest.raises(DataFormatError, match=r"d\.csv:3: is not UTF-8 text \(byte 0xe9\)"):
        read_examples(path)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-32"])
def test_boms_are_accepted(tmp_path: Path, encoding: str) -> None:
    path = write(tmp_path, "d.csv", "prompt,answer\ncafé,ok\n".encode(encoding))
    assert pairs(read_examples(path)) == [("café", "ok")]


@pytest.mark.parametrize("content", [b"PK\x03\x04rest of a zip", b"prompt,answer\nhi,he\x00llo\n", bytes(range(256))])
def test_binary_garbage_is_refused(tmp_path: Path, content: bytes) -> None:
    with pytest.raises(DataFormatError, match=r"zip archive|binary|not UTF-8"):
        read_examples(write(tmp_path, "d.csv", content))


def test_oversized_file_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    with path.open("wb") as handle:  # a sparse 8 GiB file: reading it whole would exhaust memory
        handle.truncate(8 * 1024**3)
    with pytest.raises(DataFormatError, match=r"big\.jsonl: is 8192\.0 MiB, over the limit of 1,000 bytes"):
        read_examples(path, max_bytes=1000)


def test_oversized_bytes_refused() -> None:
    with pytest.raises(DataFormatError, match="over the limit"):
        parse_examples(b"Q: a\nA: b\n" * 100, source="qa.txt", max_bytes=100)


def test_huge_line_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "d.jsonl", '{"prompt": "' + "x" * 1_100_000 + '", "answer": "b"}\n')
    with pytest.raises(DataFormatError, match=r"d\.jsonl:1: line is longer than"):
        read_examples(path)


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such file"):
        read_examples(tmp_path / "nope.csv")
    with pytest.raises(UserError, match="Unknown dataset format `xml`"):
        parse_examples(b"x", source="a", fmt="xml")


# --- writers

EXAMPLES = [Example(p, a) for p, a in PAIRS]


@pytest.mark.parametrize(
    ("fmt", "suffix"), [("openai-chat", "jsonl"), ("csv", "csv"), ("tsv", "tsv"), ("yaml", "yaml")]
)
def test_round_trip(tmp_path: Path, fmt: str, suffix: str) -> None:
    first = write_examples(EXAMPLES, tmp_path / f"one.{suffix}", fmt)
    again = write_examples(read_examples(first), tmp_path / f"two.{suffix}", fmt)
    assert pairs(read_examples(again)) == PAIRS
    assert first.read_bytes() == again.read_bytes()


def test_round_trip_keeps_system_weight_and_rejected(tmp_path: Path) -> None:
    rich = [Example("q", "a", system="Be kind.", weight=0.0), Example("q2", "good", rejected="bad")]
    chat = read_examples(write_examples(rich, tmp_path / "c.jsonl", "openai-chat"))
    assert [(e.prompt, e.answer, e.system, e.weight) for e in chat] == [
        ("q", "a", "Be kind.", 0.0),
        ("q2", "good", None, 1.0),
    ]
    table = read_examples(write_examples(rich, tmp_path / "t.csv", "csv"))
    assert [(e.system, e.rejected) for e in table] == [("Be kind.", None), (None, "bad")]


def test_preference_export_round_trip(tmp_path: Path) -> None:
    rich = [Example("q", "good", system="Sys", rejected="bad"), Example("plain", "skipped")]
    path = write_examples(rich, tmp_path / "p.jsonl", "preference")
    record = json.loads(path.read_text().splitlines()[0])
    assert record["input"]["messages"] == [
        {"role": "system", "content": "Sys"},
        {"role": "user", "content": "q"},
    ]
    assert record["non_preferred_output"] == [{"role": "assistant", "content": "bad"}]
    back = read_examples(path)
    assert [(e.prompt, e.answer, e.rejected, e.system) for e in back] == [("q", "good", "bad", "Sys")]
    with pytest.raises(UserError, match="rejected answer"):
        render_examples([Example("a", "b")], "preference")


def test_yaml_export_quotes_words_yaml_would_reinterpret(tmp_path: Path) -> None:
    tricky = [Example("yes", "no"), Example("null", "3.0"), Example("- dash", "key: value # not a comment")]
    assert pairs(read_examples(write_examples(tricky, tmp_path / "t.yaml", "yaml"))) == pairs(tricky)


def test_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_examples(EXAMPLES, tmp_path / "out.csv", "csv")
    before = path.read_bytes()

    def fail(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_examples([Example("new", "content")], path, "csv")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_unknown_export_format_and_empty_export() -> None:
    with pytest.raises(UserError, match="Unknown export format"):
        render_examples(EXAMPLES, "xml")
    with pytest.raises(UserError, match="no examples"):
        render_examples([], "csv")


def test_pyyaml_is_imported_only_when_a_corpus_is_read() -> None:
    """Every start of the bot imports the dataset readers; PyYAML waits for a corpus file."""
    code = (
        "import sys\n"
        "from teachbot.app import App\n"
        "from teachbot.transports.console import run_console\n"
        "from teachbot.datasets.formats import parse_examples\n"
        "before = 'yaml' in sys.modules\n"
        "examples = parse_examples(b'conversations:\\n- - hi\\n  - hello\\n', source='c.yml')\n"
        "print(before, [(e.prompt, e.answer) for e in examples], 'yaml' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(teachbot.__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.split() == ["False", "[('hi',", "'hello')]", "True"]
