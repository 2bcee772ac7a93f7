"""A fit-free nearest-neighbour index over taught examples: what is taught applies at once.

Vectors come from hashing (word 1-2-grams + character 3-5-grams inside word boundaries), so the
index needs no training and no vocabulary: ``add`` makes an example searchable immediately, for
corrections that must not wait for a training run and for picking examples to show an LLM.

Entries live in a column-friendly sparse matrix (CSC, rows = entries) so a search only touches
the posting lists of the query's features; new entries collect in a small batch that is merged
in every ``MERGE_EVERY`` additions. Removal leaves a tombstone; the matrix is compacted when half
of it is dead.
"""

from __future__ import annotations

import itertools
import logging
import re
import unicodedata
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

log = logging.getLogger(__name__)

__all__ = ["MAX_TEXT_CHARS", "TAUGHT_THRESHOLD", "Hit", "NearestIndex", "normalize_text"]

#: Longer inputs are cut to this many characters before matching: a question is never longer,
#: and it bounds the time one message can cost.
MAX_TEXT_CHARS = 4000

#: Cosine score at or above which a taught example counts as "the same question". Measured on
#: CLINC150 test against train: 70 % of questions have a same-intent example scoring ≥ 0.55, while
#: only 0.009 % of different-intent pairs do (0.05 % at 0.45, 0.003 % at 0.6); the overlay rule in
#: ``local_model.answer_with_overlay`` guards the remaining borderline cases.
TAUGHT_THRESHOLD = 0.55

#: Up to this many merged rows a search scores every row exactly (see ``NearestIndex.scores``).
EXACT_ROWS = 20_000
#: Beyond ``EXACT_ROWS``, how many candidate rows get an exact score.
RESCORE = 256

#: New entries are merged into the main matrix in batches of this size.
MERGE_EVERY = 1024

_N_FEATURES = 2**20
_MASK = _N_FEATURES - 1
_CHAR_SIZES = (3, 4, 5)
_APOSTROPHES = re.compile(r"(?<=\w)['’](?=\w)")
_SPACES = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Fold a text to the form both models compare: NFKC, lower case, punctuation as spaces.

    Apostrophes inside words are dropped ("what's" → "whats") so contractions stay one token;
    every other punctuation or symbol character becomes a space; runs of space collapse.
    """
    text = unicodedata.normalize("NFKC", text[: MAX_TEXT_CHARS * 2]).lower()
    text = _APOSTROPHES.sub("", text)
    text = "".join(" " if unicodedata.category(ch)[0] in "PSC" else ch for ch in text)
    return _SPACES.sub(" ", text).strip()[:MAX_TEXT_CHARS]


def ngrams(normal: str) -> tuple[list[str], list[str]]:
    """Word 1-2-grams and character 3-5-grams (inside " word " boundaries) of a normalised text.

    Both models build on these: word grams carry meaning, character grams survive typos and
    inflections ("booking" / "booked").
    """
    words = normal.split()
    word_grams = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
    char_grams: list[str] = []
    for word in words:
        padded = f" {word} "
        for n in _CHAR_SIZES:
            char_grams.extend(padded[i : i + n] for i in range(max(1, len(padded) - n + 1)))
    return word_grams, char_grams


def _hashed(grams: list[str], offset: int) -> np.ndarray:
    return (
        np.unique(np.fromiter((zlib.crc32(g.encode()) & _MASK for g in grams), dtype=np.int64, count=len(grams)))
        + offset
    )


def embed_one(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Feature indices and weights of one text: binary word and char blocks, each half the norm."""
    words, chars = ngrams(normalize_text(text))
    blocks = [(b, 1.0 / np.sqrt(len(b))) for b in (_hashed(words, 0), _hashed(chars, _N_FEATURES)) if len(b)]
    if not blocks:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    share = 1.0 / np.sqrt(len(blocks))
    cols = np.concatenate([b for b, _ in blocks])
    vals = np.concatenate([np.full(len(b), w * share, dtype=np.float32) for b, w in blocks])
    return cols, vals


def embed(texts: Iterable[str]) -> sp.csr_matrix:
    """Hashed, L2-normalised vectors (one row per text); stateless, so no fitting is needed."""
    rows = [embed_one(t) for t in texts]
    indptr = np.cumsum([0] + [len(c) for c, _ in rows])
    cols = np.concatenate([c for c, _ in rows]) if rows else np.zeros(0, dtype=np.int64)
    vals = np.concatenate([v for _, v in rows]) if rows else np.zeros(0, dtype=np.float32)
    return sp.csr_matrix((vals, cols, indptr), shape=(len(rows), 2 * _N_FEATURES), dtype=np.float32)


def _dot_rows(rows: sp.csr_matrix, query: sp.csr_matrix) -> np.ndarray:
    """``rows @ query.T`` without materialising anything of the feature space's size."""
    cols, vals = query.indices, query.data
    if not len(cols) or not rows.nnz:
        return np.zeros(rows.shape[0], dtype=np.float32)
    order = np.argsort(cols)
    cols, vals = cols[order], vals[order]
    at = np.minimum(np.searchsorted(cols, rows.indices), len(cols) - 1)
    products = np.where(cols[at] == rows.indices, rows.data * vals[at], 0.0)
    row_of = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
    return np.bincount(row_of, weights=products, minlength=rows.shape[0]).astype(np.float32)


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: the entry's key, its prompt and answer, and a cosine score in [0, 1]."""

    key: int
    prompt: str
    answer: str
    score: float


class NearestIndex:
    """Incremental cosine-similarity index; not thread-safe (callers hold a lock)."""

    def __init__(self) -> None:
        self._keys: list[int] = []
        self._prompts: list[str] = []
        self._answers: list[str] = []
        self._alive = np.zeros(0, dtype=bool)
        self._row_of: dict[int, int] = {}
        self._rows = sp.csr_matrix((0, 2 * _N_FEATURES), dtype=np.float32)
        self._postings = sp.csr_matrix((2 * _N_FEATURES, 0), dtype=np.float32)  # feature → rows
        self._df = np.zeros(2 * _N_FEATURES, dtype=np.int32)
        self._pending: list[sp.csr_matrix] = []
        self._pending_matrix: sp.csr_matrix | None = None

    def __len__(self) -> int:
        return len(self._row_of)

    def __contains__(self, key: object) -> bool:
        return key in self._row_of

    def add(self, key: int, prompt: str, answer: str) -> None:
        """Make ``prompt`` → ``answer`` searchable now; an existing ``key`` is replaced."""
        self.add_many([(key, prompt, answer)])

    def add_many(self, entries: Iterable[tuple[int, str, str]]) -> None:
        """Add several entries with one vectorisation (much faster for bulk loads)."""
        batch = list(entries)
        if not batch:
            return
        for key, _, _ in batch:
            self.remove(key)
        vectors = embed(p for _, p, _ in batch)
        start = len(self._keys)
        for offset, (key, prompt, answer) in enumerate(batch):
            if key in self._row_of:  # the same key twice in one batch: the last one wins
                self._kill(self._row_of[key])
            self._keys.append(key)
            self._prompts.append(prompt)
            self._answers.append(answer)
            self._row_of[key] = start + offset
        self._alive = np.concatenate([self._alive, np.ones(len(batch), dtype=bool)])
        self._pending.append(vectors)
        self._pending_matrix = None
        if sum(m.shape[0] for m in self._pending) >= MERGE_EVERY:
            self._merge()

    def remove(self, key: int) -> None:
        """Forget ``key`` (no error if absent)."""
        row = self._row_of.pop(key, None)
        if row is None:
            return
        self._kill(row)
        dead = len(self._keys) - len(self._row_of)
        if dead >= MERGE_EVERY and dead * 2 > len(self._keys):
            self._compact()

    def search(self, text: str, k: int = 5, min_score: float = 0.0) -> list[Hit]:
        """The ``k`` entries most similar to ``text`` with score ≥ ``min_score``, best first."""
        if not self._row_of or k <= 0:
            return []
        scores = self.scores(embed([text]))
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
        """Cosine score of one embedded query against every row (dead rows included).

        Up to ``EXACT_ROWS`` merged rows every score is exact. Beyond, only rows sharing a
        distinctive feature (in at most 1 % of rows) with the query are candidates; the best
        ``RESCORE`` of those get their exact score and the rest 0. A row that shares no
        distinctive n-gram with a question is not a paraphrase of it, so hits above
        ``TAUGHT_THRESHOLD`` are unaffected; this keeps a search near 1 ms at 100,000 rows.
        """
        result = np.zeros(len(self._keys), dtype=np.float32)
        n_main = self._rows.shape[0]
        if n_main and query.nnz:
            result[:n_main] = self._main_scores(query, n_main)
        if self._pending:
            if self._pending_matrix is None:
                self._pending_matrix = sp.vstack(self._pending, format="csr")
            result[n_main:] = _dot_rows(self._pending_matrix, query)
        return result

    def _main_scores(self, query: sp.csr_matrix, n_main: int) -> np.ndarray:
        cols, part_vals = query.indices, query.data
        selective = n_main > EXACT_ROWS
        if selective:
            keep = self._df[cols] <= max(1, n_main // 100)
            cols, part_vals = cols[keep], part_vals[keep]
        postings = self._postings
        starts = postings.indptr[cols]
        lengths = postings.indptr[cols + 1] - starts
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(n_main, dtype=np.float32)
        shift = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
        at = shift + np.arange(total)
        weights = postings.data[at] * np.repeat(part_vals, lengths)
        scores = np.bincount(postings.indices[at], weights=weights, minlength=n_main).astype(np.float32)
        if not selective:
            return scores
        candidates = np.flatnonzero(scores)
        if len(candidates) > RESCORE:
            candidates = candidates[np.argpartition(-scores[candidates], RESCORE - 1)[:RESCORE]]
        exact = np.zeros(n_main, dtype=np.float32)
        exact[candidates] = _dot_rows(self._rows[candidates], query)
        return exact

    # -- internals
    def _kill(self, row: int) -> None:
        self._alive[row] = False

    def _merge(self) -> None:
        if self._pending:
            self._set_rows(sp.vstack([self._rows, *self._pending], format="csr"))
        self._pending, self._pending_matrix = [], None

    def _set_rows(self, rows: sp.csr_matrix) -> None:
        self._rows = rows
        self._postings = rows.T.tocsr()
        self._df = np.diff(self._postings.indptr).astype(np.int32)

    def _compact(self) -> None:
        """Drop dead rows so memory and search time follow the live size."""
        self._merge()
        keep = np.flatnonzero(self._alive)
        log.debug("compacting nearest index: %d of %d rows alive", len(keep), len(self._keys))
        self._set_rows(self._rows[keep])
        self._keys = [self._keys[i] for i in keep]
        self._prompts = [self._prompts[i] for i in keep]
        self._answers = [self._answers[i] for i in keep]
        self._alive = np.ones(len(keep), dtype=bool)
        self._row_of = {key: row for row, key in enumerate(self._keys)}
