from __future__ import annotations

import bpe_openai
import pytest

from teachbot.tokens import count_chat_tokens, count_tokens, truncate_to_tokens

TEXTS = ["", "hello", "Größe ünd 日本語 🎉", "a" * 5000, "<|endoftext|> special", "\ud800 lone"]


@pytest.mark.parametrize("text", TEXTS)
def test_count_matches_the_encoder(text: str) -> None:
    encoding = bpe_openai.get_encoding("o200k_base")
    clean = text.encode("utf-8", "replace").decode("utf-8")
    assert count_tokens(text) == len(encoding.encode(clean, disallowed_special=()))


def test_truncate_keeps_a_prefix_within_the_limit() -> None:
    text = "one two three four five six"
    cut = truncate_to_tokens(text, 3)
    assert text.startswith(cut) and count_tokens(cut) == 3
    assert truncate_to_tokens(text, 100) == text
    assert truncate_to_tokens(text, 0) == ""


def test_chat_tokens_count_framing() -> None:
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert count_chat_tokens(messages) == 3 + 3 + count_tokens("hi") + 3 + count_tokens("hello")
