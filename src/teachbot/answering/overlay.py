"""What was taught in one scope, found by meaning and by wording; and a version's examples for LLM prompts.

An ``Overlay`` holds taught answers (or refusals) under their example ids. Without an encoder it is the
hashed n-gram ``NearestIndex``: a taught example applies to near-copies of its question. With one, a
question also matches a taught example close in meaning (``SAME_MEANING``) when that example is clearly
closer than any taught example with another answer (``TAUGHT_MARGIN``), so a correction reaches paraphrases
without taking over a neighbouring topic; near-copies in wording still match unless their meaning is far
apart (``WORDING_FLOOR``), which keeps a language the encoder does not know learning by its characters.

Adding is instant: a prompt's vector is computed when the overlay is next searched (``settle``), on the
caller's worker thread, in one batch, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from teachbot.answering.encoding import Encoder
from teachbot.answering.meaning import SAME_MEANING, TAUGHT_MARGIN, VectorTable
from teachbot.answering.nearest import TAUGHT_THRESHOLD, Hit, NearestIndex

__all__ = ["WORDING_FLOOR", "Match", "Overlay"]

#: A near-copy in wording counts only if its meaning is at least this close (with an encoder): "reset my
#: password" and "reset the router" share most n-grams but not their meaning.
WORDING_FLOOR = 0.6


@dataclass(frozen=True, slots=True)
class Match:
    """A taught example that counts as the same question: ``score`` is its confidence (meaning when known)."""

    key: int
    prompt: str
    answer: str
    score: float
    wording: float  # hashed n-gram cosine (0 when it matched by meaning only and shares little wording)
    meaning: float | None  # cosine of meaning; None without an encoder


class Overlay:
    """Taught examples of one scope; not thread-safe (``Knowledge`` holds a lock)."""

    def __init__(self) -> None:
        self.words = NearestIndex()
        self._entries: dict[int, tuple[str, str]] = {}
        self._vectors: VectorTable | None = None
        self._pending: dict[int, str] = {}  # added since the last ``settle``: no vector yet

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, key: int, prompt: str, answer: str) -> None:
        self.words.add(key, prompt, answer)
        self._entries[key] = (prompt, answer)
        self._pending[key] = prompt

    def remove(self, key: int) -> None:
        self.words.remove(key)
        self._entries.pop(key, None)
        self._pending.pop(key, None)
        if self._vectors is not None:
            self._vectors.remove(key)

    def settle(self, encoder: Encoder | None) -> None:
        """Encode the prompts added since the last call (one batch; a cached encoder skips known ones)."""
        if encoder is None or not self._pending:
            return
        keys, prompts = list(self._pending), list(self._pending.values())
        vectors = encoder.encode(prompts)
        if self._vectors is None:
            self._vectors = VectorTable(vectors.shape[1])
        self._vectors.add_many(keys, vectors)
        self._pending.clear()

    def meaning_scores(self, vector: np.ndarray | None) -> dict[int, float]:
        """Cosine of meaning of ``vector`` with every example (empty without vectors)."""
        if vector is None or self._vectors is None:
            return {}
        keys, sims = self._vectors.scores(vector)
        return dict(zip(keys.tolist(), sims.tolist(), strict=True))

    def best(self, text: str, vector: np.ndarray | None, refused: Callable[[str], bool]) -> Match | None:
        """The taught example that counts as the same question as ``text``, if any; answers for which
        ``refused`` is true are passed over."""
        meaning = self.meaning_scores(vector)
        wording = self.words.search(text, k=3, min_score=TAUGHT_THRESHOLD)
        if not meaning:
            return next((_match(hit, None) for hit in wording if not refused(hit.answer)), None)
        by_meaning = self._by_meaning(meaning, refused)
        if by_meaning is not None:
            key, score = by_meaning
            prompt, answer = self._entries[key]
            close = next((hit.score for hit in wording if hit.key == key), 0.0)
            return Match(key, prompt, answer, score, close, score)
        for hit in wording:
            closeness = meaning.get(hit.key)
            if not refused(hit.answer) and (closeness is None or closeness >= WORDING_FLOOR):
                return _match(hit, closeness)
        return None

    def _by_meaning(self, meaning: dict[int, float], refused: Callable[[str], bool]) -> tuple[int, float] | None:
        """The closest example in meaning above ``SAME_MEANING`` that beats every other answer by the margin."""
        close = sorted(((s, k) for k, s in meaning.items() if s >= SAME_MEANING), reverse=True)
        for score, key in close:
            answer = self._entries[key][1]
            if refused(answer):
                continue
            rival = max((s for k, s in meaning.items() if self._entries[k][1] != answer), default=-1.0)
            return (key, score) if score - rival >= TAUGHT_MARGIN else None
        return None

    def refuses(self, text: str, vector: np.ndarray | None, answer: str, wording_threshold: float) -> bool:
        """Whether a refusal of ``answer`` applies to ``text``: same question in wording or in meaning."""
        if any(hit.answer == answer for hit in self.words.search(text, k=5, min_score=wording_threshold)):
            return True
        meaning = self.meaning_scores(vector)
        return any(s >= SAME_MEANING and self._entries[k][1] == answer for k, s in meaning.items())

    def search(
        self, text: str, vector: np.ndarray | None, *, k: int, min_meaning: float, min_wording: float
    ) -> list[Hit]:
        """Examples close to ``text`` (by meaning when known, else by wording), best first."""
        meaning = self.meaning_scores(vector)
        if not meaning:
            return self.words.search(text, k=k, min_score=min_wording)
        best = sorted(((s, key) for key, s in meaning.items() if s >= min_meaning), reverse=True)[:k]
        return [Hit(key, *self._entries[key], min(1.0, s)) for s, key in best]


def _match(hit: Hit, meaning: float | None) -> Match:
    return Match(hit.key, hit.prompt, hit.answer, hit.score, hit.score, meaning)


class Reference:
    """A version's training examples, to show an LLM the ones close to a question.

    Keys are example ids; starter and file examples (no id) get negative keys. With the version's own
    training vectors nothing is encoded; without them the examples go into a wording index.
    """

    def __init__(self, entries: list[tuple[int, str, str]], vectors: np.ndarray | None) -> None:
        self._entries = entries
        self._vectors = vectors
        self._words: NearestIndex | None = None
        if vectors is None:
            self._words = NearestIndex()
            self._words.add_many(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def search(
        self, text: str, vector: np.ndarray | None, *, k: int, min_meaning: float, min_wording: float
    ) -> list[Hit]:
        """Examples close to ``text``, best first: by meaning when the version has vectors, else by wording."""
        if self._words is not None or self._vectors is None or vector is None:
            return self._words.search(text, k=k, min_score=min_wording) if self._words is not None else []
        sims = self._vectors @ vector
        top = np.argsort(-sims, kind="stable")[:k]
        return [Hit(*self._entries[int(i)], float(min(1.0, sims[i]))) for i in top if sims[i] >= min_meaning]
