"""Token counting in OpenAI's o200k_base encoding, offline (bpe-openai ships the encoding).

bpe-openai is imported on the first count, not with this module: its import alone reads three encodings'
tables (68 MB that the process never gets back, 0.85 s), which a run that counts no tokens (the local
backend's training and dataset checks) should not pay.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, cast

ENCODING = "o200k_base"


@cache
def _encoding() -> Any:
    import bpe_openai

    return bpe_openai.get_encoding(ENCODING)


@cache
def _fast_count() -> Callable[[str], int] | None:
    """bpe-openai's backend counts without building the token list (about 2.5× faster); it is a
    private module, so fall back to encoding when it is missing."""
    try:
        from bpe_openai import _bindings

        return cast(Callable[[str], int], _bindings.tokenizer_for_encoding(ENCODING).count)
    except (ImportError, AttributeError, ValueError):  # pragma: no cover - other bpe-openai versions
        return None


def count_tokens(text: str) -> int:
    """Number of o200k_base tokens in ``text`` (special-token text counts as ordinary text)."""
    if not text:
        return 0
    fast = _fast_count()
    if fast is not None:
        try:
            return int(fast(text))
        except Exception:  # lone surrogates and the like: the encoder path cleans them
            pass
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
