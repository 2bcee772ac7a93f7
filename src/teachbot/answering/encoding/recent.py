"""The vectors of recently encoded inputs, so a question asked again ("hi", "thanks") skips the model.

Keyed by token ids, not by text: the model sees only the ids, so "Hello  there" and "hello there" (for an
uncased tokenizer) share one entry and the vector is exactly the one the model would give again. About
7 ms of CPU per short question on a 2-core machine (bench/load.py) against a dictionary look-up.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

import numpy as np

__all__ = ["RECENT_INPUTS", "RecentVectors"]

#: Distinct inputs remembered: 4,096 MiniLM vectors are 6 MB.
RECENT_INPUTS = 4096

Key = tuple[int, ...]


class RecentVectors:
    """A bounded least-recently-used map from token ids to a vector; safe to use from several threads."""

    def __init__(self, size: int = RECENT_INPUTS) -> None:
        self.size = size
        self._vectors: OrderedDict[Key, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._vectors)

    def get_many(self, keys: Iterable[Key]) -> dict[Key, np.ndarray]:
        """The vectors known for these keys (each one found becomes the most recent)."""
        found: dict[Key, np.ndarray] = {}
        with self._lock:
            for key in keys:
                vector = self._vectors.get(key)
                if vector is not None:
                    self._vectors.move_to_end(key)
                    found[key] = vector
        return found

    def put_many(self, items: Iterable[tuple[Key, np.ndarray]]) -> None:
        """Remember vectors (read-only copies), dropping the least recently used beyond ``size``."""
        if self.size <= 0:
            return
        with self._lock:
            for key, vector in items:
                kept = np.array(vector, dtype=np.float32)
                kept.setflags(write=False)
                self._vectors[key] = kept
                self._vectors.move_to_end(key)
            while len(self._vectors) > self.size:
                self._vectors.popitem(last=False)
