"""A fit-free nearest-neighbour index over taught examples: what is taught applies at once.

Vectors come from hashing the n-grams of ``text.ngrams`` (word 1-2-grams, character 3-5-grams), so the
index needs no training and no vocabulary: ``add`` makes an example searchable immediately, for
corrections that must not wait for a training run and for picking examples to show an LLM.

Entries live in a column-friendly sparse matrix (CSC, rows = entries) so a search only touches
the posting lists of the query's features; new entries collect in a small batch that is merged
in every ``MERGE_EVERY`` additions. Removal leaves a tombstone; the matrix is compacted when half
of it is dead.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from teachbot.answering.text import ngrams, normalize_text

if TYPE_CHECKING:
    import scipy.sparse as sp

log = logging.getLogger(__name__)

__all__ = ["TAUGHT_THRESHOLD", "Hit", "NearestIndex", "embed", "embed_one"]

#: Cosine score at or above which a taught example counts as "the same question". Measured on
#: CLINC150 test against train: 70 % of questions have a same-intent example scoring ≥ 0.55, while
#: only 0.009 % of different-intent pairs do (0.05 % at 0.45, 0.003 % at 0.6); the overlay rule in
#: ``knowledge.taught_wins`` guards the remaining borderline cases.
TAUGHT_THRESHOLD = 0.55

#: Up to this many merged rows a search scores every row exactly (see ``NearestIndex.scores``).
EXACT_ROWS = 20_000
#: Beyond ``EXACT_ROWS``, how many candidate rows get an exact score.
RESCORE = 256

#: New entries are merged into the main matrix in batches of this size.
MERGE_EVERY = 1024

_N_FEATURES = 2**20
_MASK = _N_FEATURES - 1


def _hashed(grams: list[str], offset: int) -> np.ndarray:
    return (
        np.unique(np.fromiter((zlib.crc32(g.encode()) & _MASK for g in grams), dtype=np.int64, count=len(grams)))
        + offset
    )


def _features(text: str) -> tuple[np.ndarray, float, float]:
    """Sorted hashed features of a text (word block, then char block) and each block's value.

    Every feature of a block has the same value (binary features, each block half the norm),
    so an index stores only feature ids and two numbers per entry.
    """
    words, chars = ngrams(normalize_text(text))
    word_ids, char_ids = _hashed(words, 0), _hashed(chars, _N_FEATURES)
    share = 1.0 / np.sqrt(max(1, (len(word_ids) > 0) + (len(char_ids) > 0)))
    word_value = share / np.sqrt(len(word_ids)) if len(word_ids) else 0.0
    char_value = share / np.sqrt(len(char_ids)) if len(char_ids) else 0.0
    return np.concatenate([word_ids, char_ids]).astype(np.int32), float(word_value), float(char_value)


def embed_one(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Feature indices and weights of one text: binary word and char blocks, each half the norm."""
    ids, word_value, char_value = _features(text)
    vals = np.where(ids < _N_FEATURES, word_value, char_value).astype(np.float32)
    return ids.astype(np.int64), vals


def embed(texts: Iterable[str]) -> sp.csr_matrix:
    """Hashed, L2-normalised vectors (one row per text); stateless, so no fitting is needed."""
    import scipy.sparse as sp  # many texts at once (fitting); one pair takes ``similarity``

    rows = [embed_one(t) for t in texts]
    indptr = np.cumsum([0] + [len(c) for c, _ in rows])
    cols = np.concatenate([c for c, _ in rows]) if rows else np.zeros(0, dtype=np.int64)
    vals = np.concatenate([v for _, v in rows]) if rows else np.zeros(0, dtype=np.float32)
    return sp.csr_matrix((vals, cols, indptr), shape=(len(rows), 2 * _N_FEATURES), dtype=np.float32)


def similarity(a: str, b: str) -> float:
    """The cosine of two texts' ``embed`` vectors, without building them (or importing scipy)."""
    first, second = _Query.of(a), _Query.of(b)
    shared = np.intersect1d(first.ids, second.ids, assume_unique=True)
    chars = int(np.count_nonzero(shared >= _N_FEATURES))
    words = len(shared) - chars
    return words * first.word_value * second.word_value + chars * first.char_value * second.char_value


def _gather(ptr: np.ndarray, data: np.ndarray, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The slices ``data[ptr[i]:ptr[i+1]]`` for each i in ``which``, concatenated, and each item's
    position in ``which``: one vectorised gather instead of a Python loop over lists."""
    starts = ptr[which].astype(np.int64)
    lengths = ptr[which + 1].astype(np.int64) - starts
    total = int(lengths.sum())
    if total == 0:
        return data[:0], np.zeros(0, dtype=np.int64)
    owner = np.repeat(np.arange(len(which)), lengths)
    at = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths) + starts[owner]
    return data[at], owner


def _stack(rows: list[tuple[np.ndarray, float, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows from ``_features`` as a row store: (ptr, feature ids, block values)."""
    ptr = np.concatenate(([0], np.cumsum([len(f) for f, _, _ in rows], dtype=np.int64)))
    feats = np.concatenate([f for f, _, _ in rows]) if rows else np.zeros(0, dtype=np.int32)
    values = np.array([(w, c) for _, w, c in rows], dtype=np.float32).reshape(-1, 2)
    return ptr, feats, values


class _Query:
    """One embedded question: sorted feature ids and the value of its word and char features."""

    def __init__(self, ids: np.ndarray, word_value: float, char_value: float) -> None:
        self.ids, self.word_value, self.char_value = ids, word_value, char_value

    @classmethod
    def of(cls, text: str) -> _Query:
        return cls(*_features(text))

    @classmethod
    def from_vector(cls, vector: sp.csr_matrix) -> _Query:
        """From a row ``embed`` made (the public ``NearestIndex.scores`` takes those)."""
        order = np.argsort(vector.indices)
        ids, vals = vector.indices[order].astype(np.int32), vector.data[order]
        word, char = vals[ids < _N_FEATURES], vals[ids >= _N_FEATURES]
        return cls(ids, float(word[0]) if len(word) else 0.0, float(char[0]) if len(char) else 0.0)

    def overlap_scores(self, ptr: np.ndarray, feats: np.ndarray, which: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Exact cosine of the query with the rows ``which`` of a (ptr, feats) row store."""
        row_feats, owner = _gather(ptr, feats, which)
        if not len(self.ids) or not len(row_feats):
            return np.zeros(len(which), dtype=np.float32)
        at = np.minimum(np.searchsorted(self.ids, row_feats), len(self.ids) - 1)
        shared = self.ids[at] == row_feats
        return self.combine(owner[shared], row_feats[shared] >= _N_FEATURES, len(which), values[which])

    def combine(self, rows: np.ndarray, is_char: np.ndarray, n_rows: int, values: np.ndarray) -> np.ndarray:
        """Scores from shared features (row, block) and the rows' block values ``values[:, 0:2]``."""
        counts = np.bincount(rows * 2 + is_char, minlength=2 * n_rows).reshape(n_rows, 2)
        return (
            counts[:, 0] * (self.word_value * values[:, 0]) + counts[:, 1] * (self.char_value * values[:, 1])
        ).astype(np.float32)


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: the entry's key, its prompt and answer, and a cosine score in [0, 1]."""

    key: int
    prompt: str
    answer: str
    score: float


class NearestIndex:
    """Incremental cosine-similarity index; not thread-safe (callers hold a lock).

    Memory is one int32 per (entry, feature) twice (the rows and the posting lists) plus two
    float32 per entry: features are binary per block, so no per-feature values are stored.
    """

    def __init__(self) -> None:
        self._keys: list[int] = []
        self._prompts: list[str] = []
        self._answers: list[str] = []
        self._alive = np.zeros(0, dtype=bool)
        self._row_of: dict[int, int] = {}
        # merged rows: features of row r are _row_feats[_row_ptr[r]:_row_ptr[r + 1]], sorted
        self._row_ptr = np.zeros(1, dtype=np.int64)
        self._row_feats = np.zeros(0, dtype=np.int32)
        self._values = np.zeros((0, 2), dtype=np.float32)  # word and char feature value of each row
        # posting lists over the features present: rows of _vocab[i] are _post_rows[_post_ptr[i]:_post_ptr[i + 1]]
        self._vocab = np.zeros(0, dtype=np.int32)
        self._post_ptr = np.zeros(1, dtype=np.int64)
        self._post_rows = np.zeros(0, dtype=np.int32)
        self._pending: list[tuple[np.ndarray, float, float]] = []  # added since the last merge
        self._pending_rows: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (ptr, feats, values)

    def __len__(self) -> int:
        return len(self._row_of)

    def __contains__(self, key: object) -> bool:
        return key in self._row_of

    def add(self, key: int, prompt: str, answer: str) -> None:
        """Make ``prompt`` → ``answer`` searchable now; an existing ``key`` is replaced."""
        self.add_many([(key, prompt, answer)])

    def add_many(self, entries: Iterable[tuple[int, str, str]]) -> None:
        """Add several entries (bulk loads merge once, which is much faster)."""
        batch = list(entries)
        if not batch:
            return
        for key, _, _ in batch:
            self.remove(key)
        start = len(self._keys)
        alive = np.ones(len(batch), dtype=bool)
        for offset, (key, prompt, answer) in enumerate(batch):
            if key in self._row_of:  # the same key twice in one batch: the last one wins
                alive[self._row_of[key] - start] = False
            self._keys.append(key)
            self._prompts.append(prompt)
            self._answers.append(answer)
            self._row_of[key] = start + offset
            self._pending.append(_features(prompt))
        self._alive = np.concatenate([self._alive, alive])
        self._pending_rows = None
        if len(self._pending) >= MERGE_EVERY:
            self._merge()

    def remove(self, key: int) -> None:
        """Forget ``key`` (no error if absent)."""
        row = self._row_of.pop(key, None)
        if row is None:
            return
        self._alive[row] = False
        dead = len(self._keys) - len(self._row_of)
        if dead >= MERGE_EVERY and dead * 2 > len(self._keys):
            self._compact()

    def search(self, text: str, k: int = 5, min_score: float = 0.0) -> list[Hit]:
        """The ``k`` entries most similar to ``text`` with score ≥ ``min_score``, best first."""
        if not self._row_of or k <= 0:
            return []
        scores = self._scores(_Query.of(text))
        scores[~self._alive] = -1.0
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.lexsort((top, -scores[top]))]  # best first, ties by insertion order
        return [
            Hit(self._keys[i], self._prompts[i], self._answers[i], float(min(1.0, scores[i])))
            for i in top
            if scores[i] >= min_score and scores[i] >= 0.0
        ]

    def scores(self, query: sp.csr_matrix) -> np.ndarray:
        """Cosine score of one query (a row from ``embed``) against every row, dead rows included.

        Up to ``EXACT_ROWS`` merged rows every score is exact. Beyond, only rows sharing a
        distinctive feature (in at most 1 % of rows) with the query are candidates; the best
        ``RESCORE`` of those get their exact score and the rest 0. A row that shares no
        distinctive n-gram with a question is not a paraphrase of it, so hits above
        ``TAUGHT_THRESHOLD`` are unaffected; this keeps a search near 1 ms at 100,000 rows.
        """
        return self._scores(_Query.from_vector(query))

    def _scores(self, query: _Query) -> np.ndarray:
        result = np.zeros(len(self._keys), dtype=np.float32)
        n_main = len(self._row_ptr) - 1
        if n_main and len(query.ids):
            result[:n_main] = self._main_scores(query, n_main)
        if self._pending:
            if self._pending_rows is None:
                self._pending_rows = _stack(self._pending)
            ptr, feats, values = self._pending_rows
            result[n_main:] = query.overlap_scores(ptr, feats, np.arange(len(self._pending)), values)
        return result

    def _main_scores(self, query: _Query, n_main: int) -> np.ndarray:
        at = np.minimum(np.searchsorted(self._vocab, query.ids), max(0, len(self._vocab) - 1))
        present = self._vocab[at] == query.ids if len(self._vocab) else np.zeros(len(query.ids), dtype=bool)
        cols, is_char = at[present], query.ids[present] >= _N_FEATURES
        selective = n_main > EXACT_ROWS
        if selective:
            keep = self._post_ptr[cols + 1] - self._post_ptr[cols] <= max(1, n_main // 100)
            cols, is_char = cols[keep], is_char[keep]
        rows, owner = _gather(self._post_ptr, self._post_rows, cols)
        if not len(rows):
            return np.zeros(n_main, dtype=np.float32)
        if not selective:
            return query.combine(rows, is_char[owner], n_main, self._values)
        # a rough score from the distinctive features picks the rows worth an exact score
        block = is_char[owner].astype(np.intp)
        weights = self._values[rows, block] * np.where(block, query.char_value, query.word_value)
        scores = np.bincount(rows, weights=weights, minlength=n_main)
        candidates = np.flatnonzero(scores)
        if len(candidates) > RESCORE:
            candidates = candidates[np.argpartition(-scores[candidates], RESCORE - 1)[:RESCORE]]
        exact = np.zeros(n_main, dtype=np.float32)
        exact[candidates] = query.overlap_scores(self._row_ptr, self._row_feats, candidates, self._values)
        return exact

    # -- internals
    def _merge(self) -> None:
        if not self._pending:
            return
        ptr, feats, values = _stack(self._pending)
        self._pending, self._pending_rows = [], None
        self._set_rows(
            np.concatenate([self._row_ptr, self._row_ptr[-1] + ptr[1:]]),
            np.concatenate([self._row_feats, feats]),
            np.vstack([self._values, values]),
        )

    def _set_rows(self, ptr: np.ndarray, feats: np.ndarray, values: np.ndarray) -> None:
        """Store merged rows and build their posting lists (a CSR → CSC conversion in C)."""
        self._row_ptr, self._row_feats, self._values = ptr, feats, values
        n_rows = len(ptr) - 1
        import scipy.sparse as sp  # from MERGE_EVERY entries on: a few taught answers stay pending

        ones = np.ones(len(feats), dtype=np.int8)
        by_feature = sp.csr_matrix((ones, feats, ptr), shape=(n_rows, 2 * _N_FEATURES)).tocsc()
        full_ptr = by_feature.indptr
        self._vocab = np.flatnonzero(np.diff(full_ptr)).astype(np.int32)
        self._post_ptr = np.append(full_ptr[self._vocab], full_ptr[-1]).astype(np.int64)
        self._post_rows = by_feature.indices.astype(np.int32, copy=False)

    def _compact(self) -> None:
        """Drop dead rows so memory and search time follow the live size."""
        self._merge()
        keep = np.flatnonzero(self._alive)
        log.debug("compacting nearest index: %d of %d rows alive", len(keep), len(self._keys))
        feats, _ = _gather(self._row_ptr, self._row_feats, keep)
        lengths = np.diff(self._row_ptr)[keep]
        self._set_rows(np.concatenate(([0], np.cumsum(lengths))), feats, self._values[keep])
        self._keys = [self._keys[i] for i in keep]
        self._prompts = [self._prompts[i] for i in keep]
        self._answers = [self._answers[i] for i in keep]
        self._alive = np.ones(len(keep), dtype=bool)
        self._row_of = {key: row for row, key in enumerate(self._keys)}
