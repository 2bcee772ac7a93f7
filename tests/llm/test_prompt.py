"""Prompt building: budget, priorities, examples, attachments (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from teachbot.answering.protocols import Attachment, Question, TaughtExample, Turn
from teachbot.config import load_settings
from teachbot.errors import ConfigError
from teachbot.llm.prompt import IMAGE_TOKENS, PromptBuilder, load_system_prompt
from teachbot.tokens import count_chat_tokens

SYSTEM = "You are teachbot."
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def builder(budget: int = 4000, vision: bool = False) -> PromptBuilder:
    return PromptBuilder(system_prompt=SYSTEM, context_tokens=budget, model="m", vision_models=["m"] if vision else [])


def long_history(n: int) -> list[Turn]:
    return [Turn("user" if i % 2 == 0 else "assistant", f"turn {i}: " + "words " * 40) for i in range(n)]


def test_everything_fits_in_order() -> None:
    history = [Turn("user", "hi"), Turn("assistant", "hello!")]
    built = builder().build(Question("how are you?", history=history))
    assert built.messages == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello!"},
        {"role": "user", "content": "how are you?"},
    ]
    assert built.dropped_turns == 0
    assert built.prompt_tokens == count_chat_tokens(built.messages)


def test_oldest_turns_dropped_first_system_and_question_kept() -> None:
    built = builder(budget=300).build(Question("the current question", history=long_history(20)))
    assert built.messages[0] == {"role": "system", "content": SYSTEM}
    assert built.messages[-1] == {"role": "user", "content": "the current question"}
    kept = [m["content"] for m in built.messages[1:-1]]
    assert kept and kept[-1].startswith("turn 19:")  # the newest turn survives
    assert not any(c.startswith("turn 0:") for c in kept)
    assert built.dropped_turns == 20 - len(kept)
    assert count_chat_tokens(built.messages) <= 300


def test_examples_in_system_message_best_first_and_reported() -> None:
    examples = [
        TaughtExample(7, "What is the capital of Atlantis?", "Poseidonia, as everyone knows.", 0.6),
        TaughtExample(3, "Who founded the club?", "Ada, in 1999.", 0.9),
    ]
    built = builder().build(Question("who founded the club"), examples)
    system = built.messages[0]["content"]
    assert system.startswith(SYSTEM)
    assert "answer exactly as taught" in system
    assert system.index("Q: Who founded the club?\nA: Ada, in 1999.") < system.index("Q: What is the capital")
    assert built.example_ids == (3, 7)
    assert len([m for m in built.messages if m["role"] == "system"]) == 1


def test_examples_that_do_not_fit_are_not_reported() -> None:
    big = TaughtExample(1, "long one", "x " * 300, 0.99)
    small = TaughtExample(2, "short", "yes", 0.5)
    built = builder(budget=120).build(Question("q"), [big, small])
    assert built.example_ids == (2,)
    assert "long one" not in built.messages[0]["content"]
    assert count_chat_tokens(built.messages) <= 120


def test_text_attachment_read_and_truncated() -> None:
    data = ("line of the file\n" * 2000).encode() + b"\xff\xfe broken bytes"
    question = Question(
        "summarise", attachments=[Attachment("notes.txt", "text/plain", data)], history=[Turn("user", "earlier")]
    )
    built = builder(budget=500).build(question)
    content = built.messages[-1]["content"]
    assert isinstance(content, list)
    assert content[0]["text"].startswith("summarise")
    assert "cut short" in content[0]["text"]
    assert content[1]["text"].startswith("Attached file notes.txt:\nline of the file")
    assert count_chat_tokens(built.messages) <= 500
    small = builder().build(Question("read", attachments=[Attachment("a.md", "", "héllo \xff".encode() + b"\xff")]))
    assert "héllo ÿ\ufffd" in small.messages[-1]["content"][1]["text"]


def test_image_only_for_vision_models() -> None:
    question = Question("what is this?", attachments=[Attachment("cat.png", "image/png", PNG)])
    blind = builder().build(question)
    assert isinstance(blind.messages[-1]["content"], str)
    assert "cat.png" in blind.messages[-1]["content"] and "cannot see images" in blind.messages[-1]["content"]
    assert blind.notes
    seeing = builder(vision=True).build(question)
    parts = seeing.messages[-1]["content"]
    assert parts[1]["type"] == "image_url"
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,iVBORw0KGgo")
    assert seeing.prompt_tokens >= IMAGE_TOKENS


def test_binary_attachment_ignored_with_note() -> None:
    built = builder().build(Question("q", attachments=[Attachment("a.bin", "application/octet-stream", b"\x00\x01")]))
    assert "a.bin" in built.messages[-1]["content"] and "ignored" in built.messages[-1]["content"]


def test_system_prompt_file(tmp_path: Path) -> None:
    path = tmp_path / "system.md"
    path.write_text("You are the club's bot.\n", encoding="utf-8")
    settings = load_settings(data_dir=tmp_path, llm_system_prompt_file=path)
    assert load_system_prompt(settings) == "You are the club's bot."
    assert PromptBuilder.from_settings(settings).system_prompt == "You are the club's bot."
    with pytest.raises(ConfigError):
        load_system_prompt(load_settings(data_dir=tmp_path, llm_system_prompt_file=tmp_path / "missing.md"))


def test_attachment_left_out_when_prompt_is_full() -> None:
    question = Question("q " * 60, attachments=[Attachment("big.txt", "text/plain", b"data " * 500)])
    built = builder(budget=90).build(question)
    text = built.messages[-1]["content"]
    assert isinstance(text, str) and "big.txt was left out" in text and "cut short" not in text
