"""What the bot knows right now, per scope: the active trained model plus what was taught since.

Taught answers (accepted corrections) and taught refusals (answers marked bad) live in small overlays
(``answering/overlay.py``) that change at once, so teaching never waits for training. With a sentence
encoder a taught answer reaches questions that mean the same, not only those worded the same. A server's
scope sees its own knowledge first, then the global knowledge; other servers' never.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from teachbot.answering.encoding import CachedEncoder, Encoder, uncached
from teachbot.answering.local_model import LocalModel, Prediction
from teachbot.answering.meaning import RETRIEVE_MEANING
from teachbot.answering.nearest import similarity
from teachbot.answering.overlay import Match, Overlay, Reference
from teachbot.answering.protocols import GLOBAL_SCOPE, Answer, TaughtExample

log = logging.getLogger(__name__)

RECENT_ANSWERS = 4096  # answers the serving path remembers until the knowledge changes
#: A taught example this similar to a question wins over the model whatever the model says (wording; meaning).
SURE_OVERLAY = 0.9
SURE_MEANING = 0.95
#: How much closer than the model's own evidence a taught example must be to win (bench/teach.py):
#: in hashed n-gram cosine without an encoder, in cosine of meaning with one.
OVERLAY_MARGIN = 0.15
#: With CONFIDENT_MEANING below, as bench/teach.py chooses them on CLINC150 train (cross-fitted halves: the
#: most other ways of asking reached while the rest loses at most 0.1 point): 0.05 / 0.75 reach 6.7 % there
#: for a 0.08-point loss, the earlier 0.1 / 0.85 5.5 % for 0.02. On test: (b) 15.5 → 20.0-21.1 %, the rest
#: 0.09 → 0.11-0.16 points lower (two runs).
MEANING_OVERLAY_MARGIN = 0.05
#: A model at least this sure of another answer (its confidence is calibrated) gives way only to a taught
#: example at least CONFIDENT_MEANING close: a correction about "directions to Phoenix" must not take
#: "things to do in Phoenix", whose wording the model knows but whose city it never saw.
CONFIDENT = 0.9
CONFIDENT_MEANING = 0.75
#: Without an encoder, worked examples for an LLM must share at least this much wording with the question.
RETRIEVE_WORDING = 0.2
#: Taught answers rank this much above training examples of the same closeness when retrieved.
TAUGHT_BONUS = 0.05
#: Answers less likely than this are not offered as candidates (the model's long tail reads as noise).
CANDIDATE_FLOOR = 0.01
#: The end of a taught answer's ``model_version``.
TAUGHT_MARK = "+taught"


@dataclass(frozen=True, slots=True)
class Candidate:
    """An answer that may be the right one for a question, and how sure the bot is of it (``taught``: a
    taught answer, whose confidence is its closeness to the question; else the model's probability)."""

    answer: str
    confidence: float
    taught: bool = False


@dataclass(frozen=True, slots=True)
class LoadedVersion:
    """A stored model version in memory: the active one of a scope, or a candidate being scored."""

    version: str
    model: LocalModel
    prompt_ids: tuple[int | None, ...]  # example id of each training prompt (None: starter / file)
    reference: Reference | None = None  # the training examples, for showing an LLM (see ``build_reference``)
    _learned: frozenset[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_learned", frozenset(i for i in self.prompt_ids if i is not None))

    def learned(self, example_id: int) -> bool:
        """Whether this version was trained on the stored example ``example_id`` (a taught one, say)."""
        return example_id in self._learned


def build_reference(model: LocalModel, prompt_ids: tuple[int | None, ...]) -> Reference:
    """Index a model's training examples so an LLM prompt can show the ones close to a question.

    With the model's stored vectors this only slices arrays; without, it embeds every prompt (slow for
    large models): call it off the event loop."""
    entries, rows = [], []
    for row, label in enumerate(model.labels):
        source = int(model.sources[row])
        if source < 0 or label >= len(model.answers):
            continue
        stored = prompt_ids[source] if source < len(prompt_ids) else None
        key = stored if stored is not None else -(source + 1)  # negative keys: starter or file examples
        entries.append((key, model.prompts[source], model.answers[int(label)]))
        rows.append(row)
    vectors = model.meaning.vectors[rows] if model.meaning is not None else None
    return Reference(entries, vectors)


def taught_wins(
    text: str, match: Match, prediction: Prediction, rival_meaning: float | None = None, *, learned: bool = False
) -> bool:
    """Whether a taught answer (``match`` for ``text``) should replace the model's ``prediction``.

    It wins when the model has no answer or agrees, when it is a near-copy of the question, or when it is
    closer (by a margin) to the question than the training example the model's answer rests on: in meaning
    when both closenesses are known (``rival_meaning`` defaults to the prediction's; a sure model needs a
    close paraphrase, ``CONFIDENT_MEANING``), else in wording. The
    last rule keeps a correction from stealing questions that merely resemble it (bench/teach.py: without it
    2.4 points of unrelated accuracy were lost).

    Once the model has been trained on the taught example (``learned``), it weighed that example against
    everything else it knows, so only a near-copy overrides it: the overlay bridges a correction until the
    next training run (CLINC150 train halves cross-fitted, about 260 taught, two runs: the rest lost 0.34 and
    0.36 point instead of 0.41 and 0.45, for 0 and 1 fewer of about 175 other questions of the taught intents)."""
    if prediction.answer in (None, match.answer) or prediction.matched_prompt is None:
        return True
    if learned:
        return (match.meaning or 0.0) >= SURE_MEANING or match.wording >= SURE_OVERLAY
    rival = rival_meaning if rival_meaning is not None else prediction.meaning
    if match.meaning is not None and rival is not None:
        if match.meaning >= SURE_MEANING:
            return True
        if prediction.confidence >= CONFIDENT and match.meaning < CONFIDENT_MEANING:
            return False
        return match.meaning > rival + MEANING_OVERLAY_MARGIN
    if match.wording >= SURE_OVERLAY:
        return True
    return match.wording > similarity(text, prediction.matched_prompt) + OVERLAY_MARGIN


class Knowledge:
    """Thread-safe store of per-scope models and taught overlays; ``answer`` is CPU work, call it off-loop.

    ``encoder`` (a cached one in the app, so taught prompts are encoded once across restarts) gives
    meaning; None keeps to wording. Questions are encoded without the cache."""

    def __init__(
        self, *, threshold: float, taught_threshold: float, fallback: str, encoder: Encoder | None = None
    ) -> None:
        self.threshold = threshold
        self.taught_threshold = taught_threshold
        self.fallback = fallback
        self.encoder = encoder
        self._models: dict[str, LoadedVersion] = {}
        self._taught: dict[str, Overlay] = {}
        self._refused: dict[str, Overlay] = {}
        self._lock = threading.RLock()
        self._recent: dict[tuple[str, str], Answer] = {}  # (text, scope) → answer; emptied by any change

    # -- changes
    def set_model(self, scope: str, active: LoadedVersion | None) -> None:
        with self._lock:
            if active is None:
                self._models.pop(scope, None)
            else:
                active.model.threshold = self.threshold  # the setting in force, not the one at training
                self._models[scope] = active
            self._recent.clear()

    def active(self, scope: str) -> LoadedVersion | None:
        """The version in memory for ``scope`` itself (not the global one it falls back to)."""
        return self._models.get(scope)

    def model_version(self, scope: str) -> str | None:
        active = self._models.get(scope) or self._models.get(GLOBAL_SCOPE)
        return active.version if active else None

    def has_model(self, scope: str) -> bool:
        return scope in self._models

    def teach(self, scope: str, example_id: int, prompt: str, answer: str, *, negative: bool = False) -> None:
        """Make a taught answer (or a refusal) take effect now; instant (its vector is computed by the next
        question, off the event loop)."""
        overlays = self._refused if negative else self._taught
        with self._lock:
            overlays.setdefault(scope, Overlay()).add(example_id, prompt, answer)
            self._recent.clear()

    def forget(self, scope: str, example_id: int) -> None:
        with self._lock:
            for overlays in (self._taught, self._refused):
                if scope in overlays:
                    overlays[scope].remove(example_id)
            self._recent.clear()

    def settle(self) -> None:
        """Encode what was taught since the last question (blocking: call it off the event loop)."""
        with self._lock:
            for overlays in (self._taught, self._refused):
                for overlay in overlays.values():
                    overlay.settle(self.encoder)

    # -- retrieval for LLM prompts
    def retrieve(self, text: str, scope: str, k: int = 5) -> list[TaughtExample]:
        """Taught answers and training examples close to ``text``, best first (taught ones win ties).

        With an encoder only examples close in meaning (``RETRIEVE_MEANING``) come back; without one,
        those sharing some wording (``RETRIEVE_WORDING``)."""
        scopes = self._scopes(scope)
        vector = self._legible(text, self._encode_question(text))
        found: dict[tuple[str, str], TaughtExample] = {}
        self.settle()
        with self._lock:
            sources: list[tuple[str, Overlay | Reference | None, float]] = [
                (s, self._taught.get(s), TAUGHT_BONUS) for s in scopes
            ]
            active = self._active(scope)
            if active is not None and active.reference is not None:
                sources.append((scope, active.reference, 0.0))
            for source_scope, index, bonus in sources:
                if index is None or not len(index):
                    continue
                hits = index.search(text, vector, k=k, min_meaning=RETRIEVE_MEANING, min_wording=RETRIEVE_WORDING)
                for hit in hits:
                    pair = (hit.prompt, hit.answer)
                    if self._refused_here(scopes, hit.prompt, None, hit.answer):
                        continue
                    score = min(1.0, float(hit.score) + bonus)
                    if pair not in found or found[pair].score < score:
                        found[pair] = TaughtExample(hit.key, hit.prompt, hit.answer, score, source_scope)
        return sorted(found.values(), key=lambda e: -e.score)[:k]

    # -- answering
    def _scopes(self, scope: str) -> list[str]:
        return [scope] if scope == GLOBAL_SCOPE else [scope, GLOBAL_SCOPE]

    def _refused_here(self, scopes: list[str], text: str, vector: np.ndarray | None, answer: str) -> bool:
        return any(
            (overlay := self._refused.get(s)) is not None
            and len(overlay)
            and overlay.refuses(text, vector, answer, self.taught_threshold)
            for s in scopes
        )

    def _encode_question(self, text: str) -> np.ndarray | None:
        """The question's vector: a prompt already encoded (a training or taught example asked word for word)
        comes from the cache without the model; any other question is encoded, not kept on disk."""
        if self.encoder is None:
            return None
        known = self.encoder.known(text) if isinstance(self.encoder, CachedEncoder) else None
        return known if known is not None else uncached(self.encoder).encode([text])[0]

    def _legible(self, text: str, vector: np.ndarray | None) -> np.ndarray | None:
        """``vector`` for the overlays, or None (wording only) when the encoder cannot read ``text``: in a
        script it never learned every vector looks alike and a cut-off of meaning would match anything."""
        if vector is None or self.encoder is None or self.encoder.reads(text):
            return vector
        return None

    def answer(self, text: str, scope: str = GLOBAL_SCOPE) -> Answer:
        """The best answer for ``text`` in ``scope``: taught first (unless the model clearly knows
        better, see ``taught_wins``), then the model, else the fallback."""
        return self.answer_many([text], scope)[0]

    def answer_many(self, texts: Sequence[str], scope: str = GLOBAL_SCOPE) -> list[Answer]:
        """``answer`` for each text, the questions encoded in one batch and the model's predictions made in one
        (for tests of many questions: every answer needs the model's prediction)."""
        encoded: np.ndarray | None = None
        if self.encoder is not None:
            single = self._encode_question(texts[0]) if len(texts) == 1 else None  # from the cache when it can
            encoded = single[None, :] if single is not None else self.encoder.encode(texts)
        vectors: Sequence[np.ndarray | None] = list(encoded) if encoded is not None else [None] * len(texts)
        self.settle()
        with self._lock:
            active = self._active(scope)
            predictions: Sequence[Prediction | None] = [None] * len(texts)
            if active is not None:
                predictions = active.model.predict_many(texts, encoded if active.model.meaning is not None else None)
            return [
                self._answer(text, scope, vector, prediction)
                for text, vector, prediction in zip(texts, vectors, predictions, strict=True)
            ]

    def answer_each(self, questions: Sequence[tuple[str, str]]) -> list[Answer]:
        """``answer`` for each (text, scope), as one by one: the questions that were never encoded go to the
        encoder in one call, and the lock is taken once (``answering/batching.py`` gathers them).

        This is how a bot serves, and people ask the same things again ("hi", "thanks", the FAQ): an answer
        given since the knowledge last changed (a model activated, an answer taught or forgotten) is given
        again without encoding or scoring. Under 400 messages/s of everyday questions this was a third of
        the bot's time holding Python's lock."""
        with self._lock:
            answers: list[Answer | None] = [self._recent.get(question) for question in questions]
        todo = [n for n, answer in enumerate(answers) if answer is None]
        if todo:
            vectors = self._encode_questions([questions[n][0] for n in todo])
            with self._lock:
                self.settle()  # under the same hold: what is remembered was answered with everything taught
                for n, vector in zip(todo, vectors, strict=True):
                    text, scope = questions[n]
                    answers[n] = given = self._answer(text, scope, vector)
                    if len(self._recent) >= RECENT_ANSWERS:
                        self._recent.pop(next(iter(self._recent)))  # the oldest first
                    self._recent[questions[n]] = given
        return [answer for answer in answers if answer is not None]

    def _encode_questions(self, texts: Sequence[str]) -> list[np.ndarray | None]:
        """``_encode_question`` for each text, the unknown ones in one encoder call (it skips repeats)."""
        if self.encoder is None:
            return [None] * len(texts)
        if len(texts) == 1:
            return [self._encode_question(texts[0])]
        cache = self.encoder if isinstance(self.encoder, CachedEncoder) else None
        vectors: list[np.ndarray | None] = [cache.known(text) if cache is not None else None for text in texts]
        unknown = [row for row, vector in enumerate(vectors) if vector is None]
        if unknown:
            encoded = uncached(self.encoder).encode([texts[row] for row in unknown])
            for row, vector in zip(unknown, encoded, strict=True):
                vectors[row] = vector
        return vectors

    def _active(self, scope: str) -> LoadedVersion | None:
        """The model that answers in ``scope``: its own, else the global one."""
        return next((self._models[s] for s in self._scopes(scope) if s in self._models), None)

    def _answer(self, text: str, scope: str, vector: np.ndarray | None, prediction: Prediction | None = None) -> Answer:
        """``prediction``: the active model's for ``text``, when the caller already has it."""
        scopes = self._scopes(scope)
        active = self._active(scope)
        meaning = self._legible(text, vector)  # the model has learned its own weight for the vector
        for s in scopes:
            overlay = self._taught.get(s)
            if overlay is None or not len(overlay):
                continue
            match = overlay.best(text, meaning, lambda answer: self._refused_here(scopes, text, meaning, answer))
            if match is None:
                continue
            if prediction is None:
                prediction = self._predict(active, text, vector) if active else Prediction(None, 0.0)
            learned = active is not None and active.learned(match.key)
            rival = None if learned else self._rival_meaning(match, prediction, meaning)  # unused once learned
            if taught_wins(text, match, prediction, rival, learned=learned):
                return Answer(
                    text=match.answer,
                    confidence=float(match.score),
                    model_version=f"{active.version if active else 'untrained'}{TAUGHT_MARK}",
                    matched_prompt=match.prompt,
                    matched_example_id=match.key,
                )
        if active is not None:
            prediction = prediction or self._predict(active, text, vector)
            if (
                prediction.answer is not None
                and prediction.confidence >= self.threshold
                and not self._refused_here(scopes, text, meaning, prediction.answer)
            ):
                return self._from_prediction(active, prediction)
        version = active.version if active else "untrained"
        return Answer(text=self.fallback, confidence=0.0, model_version=version, is_fallback=True)

    def candidates(
        self, text: str, scope: str = GLOBAL_SCOPE, k: int = 3, *, floor: float = CANDIDATE_FLOOR
    ) -> list[Candidate]:
        """The ``k`` answers likeliest right for ``text``: the one ``answer`` gives first (unless the
        fallback), then the closest taught answer and the model's likeliest answers by confidence, whatever
        the threshold (down to ``floor``), refused answers left out. For offering a trainer answers to pick
        from (interactive teaching)."""
        vector = self._encode_question(text)
        self.settle()
        found: dict[str, Candidate] = {}
        with self._lock:
            given = self._answer(text, scope, vector)
            if not given.is_fallback:
                found[given.text] = Candidate(given.text, given.confidence, given.model_version.endswith(TAUGHT_MARK))
            scopes = self._scopes(scope)
            others: list[Candidate] = []
            for s in scopes:
                overlay = self._taught.get(s)
                if overlay is None or not len(overlay):
                    continue
                match = overlay.best(text, vector, lambda answer: self._refused_here(scopes, text, vector, answer))
                if match is not None:
                    others.append(Candidate(match.answer, float(match.score), taught=True))
            active = self._active(scope)
            if active is not None:
                model_vector = vector if active.model.meaning is not None else None
                for prediction in active.model.ranked(text, model_vector, k + len(others) + 1):
                    answer = prediction.answer
                    if answer is not None and not self._refused_here(scopes, text, vector, answer):
                        others.append(Candidate(answer, prediction.confidence))
        for candidate in sorted(others, key=lambda c: -c.confidence):
            if candidate.confidence >= floor and candidate.answer not in found:
                found[candidate.answer] = candidate
        return list(found.values())[:k]

    @staticmethod
    def _predict(active: LoadedVersion, text: str, vector: np.ndarray | None) -> Prediction:
        return active.model.predict(text, vector if active.model.meaning is not None else None)

    def _rival_meaning(self, match: Match, prediction: Prediction, vector: np.ndarray | None) -> float | None:
        """How close in meaning the model's own example is, when the model cannot say (a version trained
        without the encoder): one more encoding, only when a taught answer and the model disagree."""
        if match.meaning is None or prediction.meaning is not None or vector is None or self.encoder is None:
            return None
        if prediction.answer in (None, match.answer) or prediction.matched_prompt is None:
            return None
        return float(self.encoder.encode([prediction.matched_prompt])[0] @ vector)

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
