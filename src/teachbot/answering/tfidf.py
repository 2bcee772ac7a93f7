"""TF-IDF vectors of word and character n-grams over a fixed vocabulary: the local model's view of wording.

Sublinear tf, smooth idf, each block (words, characters) L2-normalised, so a row has norm² 1 + WORD_WEIGHT².
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from teachbot.answering.text import ngrams, normalize_text

if TYPE_CHECKING:
    import scipy.sparse as sp

__all__ = ["CHUNK", "WORD_WEIGHT", "TfidfFeatures"]

WORD_WEIGHT = 1.0  # the word block's weight next to the char block
CHUNK = 1000  # texts turned into n-grams at a time
#: From this many texts on, a character n-gram must occur in two of them to become a feature.
RARE_CHARS_FROM = 50
#: ...and so must a word or word pair. On CLINC150 (15,000 texts) that drops 38 % of the features (mostly word
#: pairs seen once) and 25 MB of a fit's peak, with val answered as before (95.9 % in scope, out-of-scope
#: rejected 81 → 83 %); with 3 to 30 examples per intent, also as before. The starter set (22 examples and the
#: 238 background questions) answered 2.5 points fewer of its own intents with it, hence the larger size.
RARE_WORDS_FROM = 2000


class TfidfFeatures:
    """TF-IDF over a fixed vocabulary: sublinear tf, smooth idf, each block L2-normalised."""

    def __init__(self, words: list[str], chars: list[str], idf: np.ndarray) -> None:
        self.terms = words + chars
        self.n_words = len(words)
        self.word_ids = {t: i for i, t in enumerate(words)}
        self.char_ids = {t: i + len(words) for i, t in enumerate(chars)}
        self.idf = idf.astype(np.float32)

    @classmethod
    def fit_transform(cls, texts: Sequence[str]) -> tuple[TfidfFeatures, sp.csr_matrix]:
        """The vocabulary of ``texts`` and their rows, each text's n-grams computed once (they are most of
        the cost: fitting and then transforming made them twice), and numbered for all texts at once."""
        grams = [ngrams(normalize_text(text)) for text in texts]
        # per block (words, chars): every gram's provisional id (order of first sight), each text's ids, df
        seen = [_numbered([pair[part] for pair in grams]) for part in (0, 1)]
        (word_ids, *_, word_df), (char_ids, *_, char_df) = seen
        words = sorted(g for g, i in word_ids.items() if word_df[i] >= 2 or len(texts) < RARE_WORDS_FROM)
        chars = sorted(g for g, i in char_ids.items() if char_df[i] >= 2 or len(texts) < RARE_CHARS_FROM)
        df = np.array([word_df[word_ids[g]] for g in words] + [char_df[char_ids[g]] for g in chars], dtype=np.float64)
        features = cls(words, chars, np.log((1 + len(texts)) / (1 + df)) + 1.0)
        per_text = []
        for (ids, codes, lengths, _), vocab in zip(seen, (features.word_ids, features.char_ids), strict=True):
            final = np.full(len(ids), -1, dtype=np.int64)  # provisional id → feature (-1: dropped)
            final[[ids[g] for g in vocab]] = list(vocab.values())
            pieces = np.split(final[codes], np.cumsum(lengths)[:-1]) if len(lengths) else []
            per_text.append([a[a >= 0] for a in pieces])
        chunks = [
            features._matrix([block[start : start + CHUNK] for block in per_text])
            for start in range(0, max(1, len(grams)), CHUNK)
        ]
        x = chunks[0] if len(chunks) == 1 else _stacked(chunks)
        return features, x

    @property
    def size(self) -> int:
        return len(self.terms)

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """One row per text; built in bulk (one sparse construction per block and chunk) for speed."""
        if len(texts) <= CHUNK:
            return self._transform(texts)
        # in chunks: the n-gram strings of all texts at once would take far more memory than the matrix
        chunks = [self._transform(texts[i : i + CHUNK]) for i in range(0, len(texts), CHUNK)]
        return _stacked(chunks)

    def _transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        grams = [ngrams(normalize_text(t)) for t in texts]
        return self._matrix(
            [
                [
                    np.fromiter((i for g in both[part] if (i := vocab.get(g)) is not None), dtype=np.int32)
                    for both in grams
                ]
                for part, vocab in enumerate((self.word_ids, self.char_ids))
            ]
        )

    def _matrix(self, ids: list[list[np.ndarray]]) -> sp.csr_matrix:
        """Rows from each text's feature ids, per block (words, chars): sublinear tf × idf, blocks L2-normalised."""
        import scipy.sparse as sp  # many texts at once (fitting, a test file): one question takes ``row``

        blocks = []
        for per_text, weight in zip(ids, (WORD_WEIGHT, 1.0), strict=True):
            indptr = np.concatenate(([0], np.cumsum([len(i) for i in per_text])))
            cols = np.concatenate(per_text) if per_text else np.zeros(0, dtype=np.int32)
            counts = sp.csr_matrix(
                (np.ones(len(cols), dtype=np.float32), cols, indptr), shape=(len(per_text), self.size)
            )
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


def _stacked(chunks: list[sp.csr_matrix]) -> sp.csr_matrix:
    import scipy.sparse as sp

    return sp.csr_matrix(sp.vstack(chunks, format="csr"), dtype=np.float32)


def _numbered(texts: list[list[str]]) -> tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray]:
    """Every gram of the texts numbered in order of first sight; all the texts' ids end to end, how many each
    text has, and each id's document frequency. In one pass over all texts: numbering text by text was a third
    of a CLINC150 fit's n-gram time."""
    flat = [g for grams in texts for g in grams]
    ids = {g: n for n, g in enumerate(dict.fromkeys(flat))}
    codes = np.fromiter(map(ids.__getitem__, flat), dtype=np.int64, count=len(flat))
    del flat
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    # each (text, gram) pair counted once: sorted, then the first of each run (np.unique's hashing took 30x longer)
    width = max(1, len(ids))
    pairs = np.sort(np.repeat(np.arange(len(texts), dtype=np.int64), lengths) * width + codes)
    first = np.ones(len(pairs), dtype=bool)
    first[1:] = pairs[1:] != pairs[:-1]
    df = np.bincount(pairs[first] % width, minlength=len(ids))
    return ids, codes, lengths, df
