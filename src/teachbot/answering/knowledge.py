"""What the bot knows right now, per scope: the active trained model plus what was taught since.

Taught answers (accepted corrections) and taught refusals (answers marked bad) live in small
nearest-neighbour indexes that change at once, so teaching never waits for training. A server's
scope sees its own knowledge first, then the global knowledge; other servers' never.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from teachbot.answering.local_model import LocalModel, Prediction
from teachbot.answering.nearest import NearestIndex, embed
from teachbot.answering.protocols import GLOBAL_SCOPE, Answer, TaughtExample

log = logging.getLogger(__name__)

#: A taught example this similar to a question wins over the model whatever the model says.
SURE_OVERLAY = 0.9
#: How much closer than the model's own evidence a taught example must be to win (bench/teach.py).
OVERLAY_MARGIN = 0.15


@dataclass(frozen=True, slots=True)
class LoadedVersion:
    """A stored model version in memory: the active one of a scope, or a candidate being scored."""

    version: str
    model: LocalModel
    prompt_ids: tuple[int | None, ...]  # example id of each training prompt (None: starter / file)
    reference: NearestIndex | None = None  # the training examples, for showing an LLM (see ``build_reference``)


def build_reference(model: LocalModel, prompt_ids: tuple[int | None, ...]) -> NearestIndex:
    """Index a model's training examples so an LLM prompt can show the ones close to a question.

    Slow for large models (it embeds every prompt): call it off the event loop.
    """
    index = NearestIndex()
    entries = []
    for row, label in enumerate(model.labels):
        source = int(model.sources[row])
        if source < 0 or label >= len(model.answers):
            continue
        stored = prompt_ids[source] if source < len(prompt_ids) else None
        key = stored if stored is not None else -(source + 1)  # negative keys: starter or file examples
        entries.append((key, model.prompts[source], model.answers[int(label)]))
    index.add_many(entries)
    return index


def taught_wins(text: str, score: float, answer: str, prediction: Prediction) -> bool:
    """Whether a taught answer (``score`` against ``text``) should replace the model's ``prediction``.

    It wins when it is a near-copy of the question (score ≥ ``SURE_OVERLAY``), when the model has no
    answer or agrees, or when it is closer (by ``OVERLAY_MARGIN``) to the question than the training
    example the model's answer rests on. The last rule keeps a correction from stealing questions that
    merely share its wording (bench/teach.py: without it 2.4 points of unrelated accuracy were lost).
    """
    if score >= SURE_OVERLAY or prediction.answer in (None, answer) or prediction.matched_prompt is None:
        return True
    query, rival = embed([text, prediction.matched_prompt])
    return score > float((query @ rival.T).toarray()[0, 0]) + OVERLAY_MARGIN


class Knowledge:
    """Thread-safe store of per-scope models and taught overlays; ``answer`` is CPU work, call it off-loop."""

    def __init__(self, *, threshold: float, taught_threshold: float, fallback: str) -> None:
        self.threshold = threshold
        self.taught_threshold = taught_threshold
        self.fallback = fallback
        self._models: dict[str, LoadedVersion] = {}
        self._taught: dict[str, NearestIndex] = {}
        self._refused: dict[str, NearestIndex] = {}
        self._lock = threading.RLock()

    # -- changes
    def set_model(self, scope: str, active: LoadedVersion | None) -> None:
        with self._lock:
            if active is None:
                self._models.pop(scope, None)
            else:
                active.model.threshold = self.threshold  # the setting in force, not the one at training
                self._models[scope] = active

    def active(self, scope: str) -> LoadedVersion | None:
        """The version in memory for ``scope`` itself (not the global one it falls back to)."""
        return self._models.get(scope)

    def model_version(self, scope: str) -> str | None:
        active = self._models.get(scope) or self._models.get(GLOBAL_SCOPE)
        return active.version if active else None

    def has_model(self, scope: str) -> bool:
        return scope in self._models

    def teach(self, scope: str, example_id: int, prompt: str, answer: str, *, negative: bool = False) -> None:
        """Make a taught answer (or a refusal) take effect now."""
        indexes = self._refused if negative else self._taught
        with self._lock:
            indexes.setdefault(scope, NearestIndex()).add(example_id, prompt, answer)

    def forget(self, scope: str, example_id: int) -> None:
        with self._lock:
            for indexes in (self._taught, self._refused):
                if scope in indexes:
                    indexes[scope].remove(example_id)

    # -- retrieval for LLM prompts
    def retrieve(self, text: str, scope: str, k: int = 5, min_score: float = 0.2) -> list[TaughtExample]:
        """Taught answers and training examples close to ``text``, best first (taught ones win ties)."""
        scopes = self._scopes(scope)
        found: dict[tuple[str, str], TaughtExample] = {}
        with self._lock:
            sources = [(s, self._taught.get(s), 0.05) for s in scopes]
            active = next((self._models[s] for s in scopes if s in self._models), None)
            if active is not None and active.reference is not None:
                sources.append((scope, active.reference, 0.0))
            for source_scope, index, bonus in sources:
                if index is None or not len(index):
                    continue
                for hit in index.search(text, k=k, min_score=min_score):
                    pair = (hit.prompt, hit.answer)
                    if self._refused_here(scopes, hit.prompt, hit.answer):
                        continue
                    score = min(1.0, float(hit.score) + bonus)
                    if pair not in found or found[pair].score < score:
                        found[pair] = TaughtExample(hit.key, hit.prompt, hit.answer, score, source_scope)
        return sorted(found.values(), key=lambda e: -e.score)[:k]

    # -- answering
    def _scopes(self, scope: str) -> list[str]:
        return [scope] if scope == GLOBAL_SCOPE else [scope, GLOBAL_SCOPE]

    def _refused_here(self, scopes: list[str], text: str, answer: str) -> bool:
        for s in scopes:
            index = self._refused.get(s)
            if index is None or not len(index):
                continue
            for hit in index.search(text, k=5, min_score=self.taught_threshold):
                if hit.answer == answer:
                    return True
        return False

    def answer(self, text: str, scope: str = GLOBAL_SCOPE) -> Answer:
        """The best answer for ``text`` in ``scope``: taught first (unless the model clearly knows
        better, see ``taught_wins``), then the model, else the fallback."""
        scopes = self._scopes(scope)
        with self._lock:
            active = next((self._models[s] for s in scopes if s in self._models), None)
            prediction: Prediction | None = None
            for s in scopes:
                index = self._taught.get(s)
                if index is None or not len(index):
                    continue
                for hit in index.search(text, k=3, min_score=self.taught_threshold):
                    if self._refused_here(scopes, text, hit.answer):
                        continue
                    if prediction is None:
                        prediction = active.model.predict(text) if active else Prediction(None, 0.0)
                    if taught_wins(text, hit.score, hit.answer, prediction):
                        return Answer(
                            text=hit.answer,
                            confidence=float(hit.score),
                            model_version=f"{active.version if active else 'untrained'}+taught",
                            matched_prompt=hit.prompt,
                            matched_example_id=hit.key,
                        )
                    break
            if active is not None:
                prediction = prediction or active.model.predict(text)
                if (
                    prediction.answer is not None
                    and prediction.confidence >= self.threshold
                    and not self._refused_here(scopes, text, prediction.answer)
                ):
                    return self._from_prediction(active, prediction)
            version = active.version if active else "untrained"
            return Answer(text=self.fallback, confidence=0.0, model_version=version, is_fallback=True)

    @staticmethod
    def _from_prediction(active: LoadedVersion, prediction: Prediction) -> Answer:
        example_id = None
        if prediction.example_index is not None and prediction.example_index < len(active.prompt_ids):
            example_id = active.prompt_ids[prediction.example_index]
        return Answer(
            text=prediction.answer or "",
            confidence=float(prediction.confidence),
            model_version=active.version,
            matched_prompt=prediction.matched_prompt,
            matched_example_id=example_id,
        )
