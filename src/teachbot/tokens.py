"""Token counting in OpenAI's o200k_base encoding, offline (bpe-openai ships the encoding)."""

from __future__ import annotations

from functools import cache
from typing import Any

import bpe_openai

ENCODING = "o200k_base"


@cache
def _encoding() -> Any:
    return bpe_openai.get_encoding(ENCODING)


def count_tokens(text: str) -> int:
    """Number of o200k_base tokens in ``text``."""
    if not text:
        return 0
    return len(_encoding().encode(text, disallowed_special=()))


def truncate_to_tokens(text: str, limit: int) -> str:
    """The longest prefix of ``text`` that fits in ``limit`` tokens."""
    if limit <= 0:
        return ""
    tokens = _encoding().encode(text, disallowed_special=())
    if len(tokens) <= limit:
        return text
    return str(_encoding().decode(tokens[:limit]))


def count_chat_tokens(messages: list[dict[str, Any]]) -> int:
    """Tokens a chat request uses: content plus OpenAI's per-message framing (3 each, 3 to prime)."""
    total = 3
    for message in messages:
        total += 3
        content = message.get("content")
        if isinstance(content, str):
            total += count_tokens(content)
        elif isinstance(content, list):
            total += sum(count_tokens(part.get("text", "")) for part in content if isinstance(part, dict))
        if message.get("name"):
            total += 1
    return total
