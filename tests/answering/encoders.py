"""An encoder that counts the texts reaching it (and can pose as another model), for the answering tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from teachbot.answering.encoding import Encoder


class CountingEncoder:
    """A real encoder, counting the texts that reach it."""

    def __init__(self, inner: Encoder, model_id: str | None = None) -> None:
        self.inner = inner
        self.encoded = 0
        self._model_id = model_id or inner.model_id

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.encoded += len(texts)
        return self.inner.encode(texts)

    def reads(self, text: str) -> bool:
        return self.inner.reads(text)
