"""Similarity of meaning: when two questions count as the same, and a table of taught vectors.

Cosines between sentence-encoder vectors (``answering/encoding``). The cut-offs below were chosen on
CLINC150's validation split (bench/teach.py, bench/intents.py --retrieval), never on its test split.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["RETRIEVE_MEANING", "SAME_MEANING", "TAUGHT_MARGIN", "VectorTable"]

#: A taught example (or a refusal) this close in meaning to a question counts as the same question.
SAME_MEANING = 0.62
#: ...if it is also this much closer than the nearest taught example with a different answer.
TAUGHT_MARGIN = 0.06
#: Worked examples shown to an LLM must be at least this close in meaning to the question.
RETRIEVE_MEANING = 0.6


class VectorTable:
    """Unit vectors under integer keys, growing one at a time; not thread-safe (callers hold a lock).

    Rows of removed keys are zeroed and reused by nothing: the table is compacted when half of it is dead.
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._keys: list[int] = []
        self._rows = np.zeros((0, dim), dtype=np.float32)
        self._used = 0
        self._row_of: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._row_of)

    def __contains__(self, key: object) -> bool:
        return key in self._row_of

    def add_many(self, keys: Sequence[int], vectors: np.ndarray) -> None:
        for key in keys:
            self.remove(key)
        need = self._used + len(keys)
        if need > len(self._rows):
            grown = np.zeros((max(need, 2 * len(self._rows), 16), self.dim), dtype=np.float32)
            grown[: self._used] = self._rows[: self._used]
            self._rows = grown
        for offset, key in enumerate(keys):
            row = self._used + offset
            if key in self._row_of:  # the same key twice in one call: the last one wins
                self._rows[self._row_of[key]] = 0.0
            self._row_of[key] = row
            self._keys.append(key)
        self._rows[self._used : need] = vectors
        self._used = need

    def remove(self, key: int) -> None:
        row = self._row_of.pop(key, None)
        if row is None:
            return
        self._rows[row] = 0.0
        self._keys[row] = -1
        if self._used >= 64 and len(self._row_of) * 2 < self._used:
            self._compact()

    def scores(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The live keys and the cosine of ``query`` with each (one matrix product)."""
        if not self._row_of:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        rows = np.fromiter(self._row_of.values(), dtype=np.int64, count=len(self._row_of))
        keys = np.fromiter(self._row_of.keys(), dtype=np.int64, count=len(self._row_of))
        return keys, self._rows[rows] @ query

    def _compact(self) -> None:
        live = sorted(self._row_of.values())
        self._rows = self._rows[live].copy()
        self._keys = [self._keys[row] for row in live]
        self._used = len(live)
        self._row_of = {key: row for row, key in enumerate(self._keys)}
