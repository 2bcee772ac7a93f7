from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


# In a fresh interpreter: this test process imported bpe-openai above.
LAZY_SCRIPT = """
import sys
from teachbot.datasets.examples import Example
from teachbot.datasets.validation import validate_examples
from teachbot.config import Backend

report = validate_examples([Example("what time is it", "noon")] * 3, backend=Backend.LOCAL)
print("bpe_openai" in sys.modules, report.tokens is None)
from teachbot.tokens import count_tokens
print(count_tokens("hello world"), "bpe_openai" in sys.modules)
"""


def test_bpe_openai_loads_only_when_tokens_are_counted() -> None:
    """Its import reads three encodings' tables (68 MB, never given back): a local-backend run that checks a
    dataset counts no tokens and must not pay for them."""
    source = str(Path(__file__).resolve().parents[1] / "src")
    done = subprocess.run(
        [sys.executable, "-c", LAZY_SCRIPT], capture_output=True, text=True, timeout=120, check=True,
        env={"PYTHONPATH": source, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.stdout.split() == ["False", "True", "2", "True"], done.stdout + done.stderr
