"""TF-IDF vectors of word and character n-grams over a fixed vocabulary: the local model's view of wording.

Sublinear tf, smooth idf, each block (words, characters) L2-normalised, so a row has norm² 1 + WORD_WEIGHT².
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from teachbot.answering.text import ngrams, normalize_text

__all__ = ["CHUNK", "WORD_WEIGHT", "TfidfFeatures"]

WORD_WEIGHT = 1.0  # the word block's weight next to the char block
CHUNK = 1000  # texts turned into n-grams at a time


class TfidfFeatures:
    """TF-IDF over a fixed vocabulary: sublinear tf, smooth idf, each block L2-normalised."""

    def __init__(self, words: list[str], chars: list[str], idf: np.ndarray) -> None:
        self.terms = words + chars
        self.n_words = len(words)
        self.word_ids = {t: i for i, t in enumerate(words)}
        self.char_ids = {t: i + len(words) for i, t in enumerate(chars)}
        self.idf = idf.astype(np.float32)

    @classmethod
    def fit(cls, texts: Sequence[str]) -> TfidfFeatures:
        word_df: dict[str, int] = {}
        char_df: dict[str, int] = {}
        for text in texts:
            w, c = ngrams(normalize_text(text))
            for g in set(w):
                word_df[g] = word_df.get(g, 0) + 1
            for g in set(c):
                char_df[g] = char_df.get(g, 0) + 1
        words = sorted(word_df)
        chars = sorted(g for g, n in char_df.items() if n >= 2 or len(texts) < 50)
        df = np.array([word_df[g] for g in words] + [char_df[g] for g in chars], dtype=np.float64)
        return cls(words, chars, np.log((1 + len(texts)) / (1 + df)) + 1.0)

    @property
    def size(self) -> int:
        return len(self.terms)

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """One row per text; built in bulk (one sparse construction per block and chunk) for speed."""
        if len(texts) <= CHUNK:
            return self._transform(texts)
        # in chunks: the n-gram strings of all texts at once would take far more memory than the matrix
        chunks = [self._transform(texts[i : i + CHUNK]) for i in range(0, len(texts), CHUNK)]
        return sp.csr_matrix(sp.vstack(chunks, format="csr"), dtype=np.float32)

    def _transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        grams = [ngrams(normalize_text(t)) for t in texts]
        blocks = []
        for part, vocab, weight in ((0, self.word_ids, WORD_WEIGHT), (1, self.char_ids, 1.0)):
            per_text = [
                np.fromiter((i for g in both[part] if (i := vocab.get(g)) is not None), dtype=np.int32)
                for both in grams
            ]
            indptr = np.concatenate(([0], np.cumsum([len(ids) for ids in per_text])))
            cols = np.concatenate(per_text) if per_text else np.zeros(0, dtype=np.int32)
            counts = sp.csr_matrix((np.ones(len(cols), dtype=np.float32), cols, indptr), shape=(len(texts), self.size))
            counts.sum_duplicates()
            counts.data = (1.0 + np.log(counts.data)) * self.idf[counts.indices]
            norms = np.sqrt(np.asarray(counts.multiply(counts).sum(axis=1)).ravel())
            norms[norms == 0] = 1.0
            blocks.append(sp.diags((weight / norms).astype(np.float32)) @ counts)
        return sp.csr_matrix(blocks[0] + blocks[1], dtype=np.float32)

    def row(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Feature indices and values of one text: the fast path for a single question."""
        w, c = ngrams(normalize_text(text))
        parts = []
        for grams, vocab, weight in ((w, self.word_ids, WORD_WEIGHT), (c, self.char_ids, 1.0)):
            ids = np.fromiter((i for g in grams if (i := vocab.get(g)) is not None), dtype=np.int64)
            if not len(ids):
                continue
            uniq, counts = np.unique(ids, return_counts=True)
            vals = (1.0 + np.log(counts)) * self.idf[uniq]
            parts.append((uniq, (weight * vals / np.linalg.norm(vals)).astype(np.float32)))
        if not parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
