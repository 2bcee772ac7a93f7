"""One loaded sentence encoder for the answering tests, and an encoder that counts what reaches it."""

from __future__ import annotations

import pytest
from encoders import CountingEncoder

from teachbot.answering.encoding import OnnxEncoder, load_encoder


@pytest.fixture(scope="session")
def minilm() -> OnnxEncoder:
    """The bundled model, loaded once per test session (about half a second)."""
    loaded = load_encoder("minilm")
    assert isinstance(loaded, OnnxEncoder)
    return loaded


@pytest.fixture
def counting(minilm: OnnxEncoder) -> CountingEncoder:
    return CountingEncoder(minilm)
