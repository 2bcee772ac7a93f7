"""The embedded local model: TF-IDF n-grams, sentence vectors and a linear SVM; answers as classes, no downloads.

Each distinct answer text is a class. Prompts become TF-IDF vectors of their word 1-2-grams and character
3-5-grams (``tfidf``) and, with a sentence encoder, vectors of meaning beside them (weight
``meaning_weight``; with many examples projected on their main ``PROJECTED_DIMS`` directions, which keeps
training time near TF-IDF's for a tenth of a point of accuracy). A one-vs-rest linear SVM scores every class
against an explicit reject class: the caller's out-of-scope examples plus a bundled list of ordinary
questions on unrelated topics (resources/background.txt, at a fifth of an example's weight; lines close to
a training prompt are left out). So even a small knowledge base knows when it does not know. Classes with
few examples also get an evidence term: how much closer the question is to the class's nearest example than
to the nearest reject example (weight 2, shrinking as 5 / examples beyond five), because an SVM trained on
two or three examples per class generalises far too eagerly. Scores turn into a probability with a fixed
temperature and a "none of these" logit, tuned on CLINC150's validation split (bench/intents.py --tune).
With too many classes for the SVM's weight matrix the scores come from the nearest training example instead.

A model trained with an encoder keeps the encoder's id and its training vectors, so loading it encodes
nothing; loading it with another encoder (or none) raises ``EncoderMismatch``. Saved models are a JSON file
plus a NumPy ``.npz`` (no pickle: loading never runs code).
"""

from __future__ import annotations

import functools
import json
import logging
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import numpy as np

from teachbot.answering.csr import CsrRows
from teachbot.answering.encoding import Encoder, release_model, uncached
from teachbot.answering.meaning import SAME_MEANING
from teachbot.answering.nearest import TAUGHT_THRESHOLD, NearestIndex, embed
from teachbot.answering.svm import LabelWeights, SvmSettings, fit_one_vs_rest
from teachbot.answering.text import learnable
from teachbot.answering.tfidf import CHUNK, WORD_WEIGHT, TfidfFeatures
from teachbot.errors import TeachbotError
from teachbot.memory import release_free_memory
from teachbot.paths import atomic_write

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_THRESHOLD", "EncoderMismatch", "LocalModel", "Prediction"]

#: Below this confidence the model says it does not know. On CLINC150 val the range 0.25-0.4 is
#: flat (92.5-93.0 % in scope, 56-62 % out-of-scope rejected; bench/intents.py --tune).
DEFAULT_THRESHOLD = 0.35
#: A negative example suppresses its answer for questions at least this similar to its prompt.
NEGATIVE_THRESHOLD = TAUGHT_THRESHOLD

_TEMPERATURE = 8.0  # SVM margins → logits; fitted on CLINC150 val (expected calibration error ≈ 0.04)
_NONE_LOGIT = -1.0  # the margin a class needs to beat "none of these"
_SVM = SvmSettings(c=1.0)  # CLINC150 val in scope: C 1.0 → 92.6 %, 2.0 → 92.9 %, 4.0 → 92.9 %
_MAX_WEIGHTS = 60_000_000  # classes × features above which the SVM's weights would not fit in memory
# Background and evidence settings, chosen on CLINC150 val with the starter set (bench/intents.py
# --starter): 0.2 / 2.0 answer 29 % of val's greeting/thanks/bye/bot questions and wrongly answer
# 2.2 % of the rest; weight 1.0 answered 17 % (0.4 % wrong), no background 52 % (94 % wrong).
_BACKGROUND = True  # learn the bundled background questions as "none of these"
_BACKGROUND_WEIGHT = 0.2  # each background question's weight in the SVM next to a taught example
_BACKGROUND_CLASH = 0.5  # a background question this similar (hashed cosine) to a prompt is left out
_KNN_WEIGHT = 2.0  # weight of the evidence term for classes with up to _KNN_EXAMPLES examples
_KNN_EXAMPLES = 5.0  # classes with more examples get a proportionally smaller evidence weight

# The meaning block (with an encoder), chosen on CLINC150 val (bench/intents.py --tune). SVM on TF-IDF plus
# vectors at weight w, in scope: w 0 → 93.3 %, 1 → 96.3 %, 2 → 96.7 %, 3 → 96.7 %. With few examples per
# class a larger weight helps: 3 / 10 examples per intent, w 3 → 73.1 / 87.5 % answered right, w 2 → 71.3 /
# 86.6 % (vectors alone in an SVM: 80.8 / 90.5 % top-1, TF-IDF alone 64.5 / 81.8 %); with all 100, w 2
# rejects more out-of-scope questions (72 % against 59 %) for the same in-scope accuracy. So the weight
# goes from 3 (up to 10 examples per class on average) down to 2 (100 and more).
MEANING_WEIGHT_FEW, MEANING_WEIGHT_MANY = 3.0, 2.0
#: With more training rows than this the SVM sees the vectors' main PROJECTED_DIMS directions only:
#: on CLINC150 (15,000 rows) 64 directions train in 11.6 s of CPU instead of 26.5 s, 96.5 % instead of 96.7 %.
PROJECT_ABOVE = 3000
PROJECTED_DIMS = 64
# tol 1e-2: the same accuracy as 1e-4 in half the time. At most 30 passes: CLINC150 val answers exactly as with
# 100 (95.90 % in scope, 81.0 % of out-of-scope rejected) and a fit takes 8 s instead of 11; 10 passes: 95.87 / 84.0
_MEANING_SVM = SvmSettings(c=1.0, tol=1e-2, max_iter=30, threads=2)
#: From this many rows on, a fit releases a lazily loaded encoder once its texts are encoded: the SVM that
#: follows is the process's busiest moment, and the bundled model's 130 MB are worth more than the 0.25 s
#: that loading it again costs the next text (a cached CLINC150 fit, 15,301 rows: peak 481 → 388-392 MB).
#: Smaller fits are quick and small; they keep it.
RELEASE_ENCODER_FROM = 5_000
# CLINC150 val, no out-of-scope examples given: temperature 5 has the lowest calibration error (0.010;
# 4: 0.026, 6: 0.011, 8: 0.021), and "none of these" at -1 keeps 95.6 % in scope while rejecting 72 %
# of out-of-scope questions at the default threshold (-0.5: 95.2 % / 77 %; -1.5: 95.6 % / 71 %).
_MEANING_TEMPERATURE = 5.0
_MEANING_NONE_LOGIT = -1.0
_MEANING_BACKGROUND_CLASH = 0.8  # a background question this close in meaning to a prompt is left out
# 4: the training rows stored transposed (features × rows, as they are held), no array compressed;
# 3: rows × features, integer arrays compressed; 2: the SVM's weights dense, every array compressed
_FORMAT = 4
_META, _ARRAYS = "model.json", "arrays.npz"


class EncoderMismatch(TeachbotError):
    """A stored model was trained with another sentence encoder than the one this bot runs with."""

    def __init__(self, trained: str, running: str | None) -> None:
        self.trained, self.running = trained, running
        now = f"the encoder {running}" if running else "no encoder (encoder=none)"
        super().__init__(
            f"it was trained with the sentence encoder {trained}, and the bot now runs with {now}; "
            "set `encoder` back, or train and activate a new version"
        )


@dataclass(frozen=True, slots=True)
class Prediction:
    """The model's answer (None: it does not know), its probability, and the example it rests on.

    ``meaning`` is the cosine of meaning between the question and the closest example of that answer (None
    without an encoder): how strongly the model's answer rests on meaning, to weigh a taught answer against.
    """

    answer: str | None
    confidence: float
    example_index: int | None = None
    matched_prompt: str | None = None
    meaning: float | None = None


@dataclass(frozen=True, slots=True)
class _Meaning:
    """What a model keeps of its encoder: its id, the training rows' vectors and the SVM's weights on them."""

    encoder_id: str
    weight: float  # the vectors' weight next to the TF-IDF blocks (see ``meaning_weight``)
    vectors: np.ndarray  # one unit row per training row (float32)
    negatives: np.ndarray  # one unit row per negative example
    projection: np.ndarray | None  # dim × PROJECTED_DIMS, or None: the SVM sees the vectors as they are
    weights: np.ndarray | None  # (projected) dims × labels, for inputs ``weight`` times the vectors

    def inputs(self, vectors: np.ndarray) -> np.ndarray:
        """What the SVM sees of some vectors."""
        seen = vectors @ self.projection if self.projection is not None else vectors
        return (self.weight * seen).astype(np.float32)


#: Every label's probability (the last: "none of these"), margin, each row's similarity and closeness in meaning.
_Scored = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]
#: Questions ``predict_many`` compares with the training rows at once (a chunk × rows float array each). On
#: CLINC150, 64 score as fast as 256 and the batch's arrays take 16 MB instead of 62.
PREDICT_CHUNK = 64


class LocalModel:
    """Classifies a question into one of the taught answers, or none; see the module docstring."""

    def __init__(
        self,
        *,
        features: TfidfFeatures,
        answers: list[str],
        examples_t: CsrRows,
        labels: np.ndarray,
        sources: np.ndarray,
        prompts: list[str],
        weights: CsrRows | None,
        bias: np.ndarray | None,
        negatives: list[tuple[str, str]],
        threshold: float = DEFAULT_THRESHOLD,
        meaning: _Meaning | None = None,
        encoder: Encoder | None = None,
        row_weights: np.ndarray | None = None,
    ) -> None:
        self.features = features
        self.answers = answers  # class i's answer; label len(answers) is the reject class
        self.prompts = prompts  # the training prompts as given (example_index points here)
        self.labels = labels  # class of each vector row (rows of dropped examples are absent)
        self.sources = sources  # each row's index into ``prompts``; -1 for out-of-scope rows
        self.negatives = negatives
        self.row_weights = row_weights  # each row's weight in the SVM (None: a model saved before they were kept)
        self.threshold = threshold
        self.meaning = meaning
        self.encoder = encoder  # encodes questions when the caller gives no vector
        self._examples_t = examples_t  # the training rows' TF-IDF, features × rows: a query touches its postings
        # features × labels (sparse: 88 % of CLINC150's are zero, an n-gram no support vector of the class has)
        self._weights, self._bias = weights, bias
        self._n_labels = len(answers) + 1
        self._class_of = {a: i for i, a in enumerate(answers)}
        counts = np.bincount(labels, minlength=self._n_labels)[: len(answers)]
        self._knn_weight = _KNN_WEIGHT * np.minimum(1.0, _KNN_EXAMPLES / np.maximum(counts, 1))
        self._by_label = np.argsort(labels, kind="stable")  # rows grouped by label, for per-label maxima
        self._present, self._label_starts = np.unique(labels[self._by_label], return_index=True)
        self._refusals = NearestIndex()
        self._refusals.add_many((n, p, a) for n, (p, a) in enumerate(negatives) if a in self._class_of)
        if meaning is not None and encoder is not None and encoder.model_id != meaning.encoder_id:
            raise EncoderMismatch(meaning.encoder_id, encoder.model_id)

    @property
    def encoder_id(self) -> str | None:
        """The id of the encoder this model was trained with (None: none)."""
        return self.meaning.encoder_id if self.meaning is not None else None

    # -- training
    @classmethod
    def fit(
        cls,
        prompts: Sequence[str],
        answers: Sequence[str],
        *,
        negatives: Sequence[tuple[str, str]] = (),
        out_of_scope: Sequence[str] = (),
        seed: int = 0,
        threshold: float = DEFAULT_THRESHOLD,
        encoder: Encoder | None = None,
        weights: Sequence[float] | None = None,
    ) -> LocalModel:
        """Learn prompt → answer; ``negatives`` are answers never to give, ``out_of_scope`` prompts to refuse.

        With an ``encoder`` (a ``CachedEncoder`` makes retraining encode only what is new) the model
        also learns from meaning, and answers only with that encoder. ``weights`` (default 1 each) say how
        much each example counts in the SVM: a taught correction more than an imported example."""
        if len(prompts) != len(answers) or (weights is not None and len(weights) != len(prompts)):
            raise TeachbotError(f"{len(prompts)} prompts but {len(answers)} answers and {len(weights or ())} weights")
        keep = learnable(prompts, answers, negatives)
        if not keep:
            raise TeachbotError("nothing to learn: no examples (or every one is marked as a wrong answer)")
        classes = sorted({answers[i] for i in keep})
        class_of = {a: i for i, a in enumerate(classes)}
        kept = [prompts[i] for i in keep]
        given = kept + list(out_of_scope)
        # with an encoder the background is filtered by meaning below (wording would cost seconds more)
        lines = list(background_questions()) if encoder is not None and _BACKGROUND else _background_lines(kept)
        meaning = None
        if encoder is not None:
            encoded = encoder.encode(given + lines + [p for p, _ in negatives])
            line_vectors = encoded[len(given) : len(given) + len(lines)]
            far = _far_in_meaning(line_vectors, encoded[: len(kept)])  # close ones belong to the user's answers
            lines = [line for line, keep_line in zip(lines, far, strict=True) if keep_line]
            rows = np.vstack([encoded[: len(given)], line_vectors[far]])
            projection = _principal_directions(rows) if len(rows) > PROJECT_ABOVE else None
            weight = meaning_weight(len(kept) / len(classes))
            negative_vectors = encoded[len(given) + len(far) :].copy()  # a view would keep all of ``encoded``
            meaning = _Meaning(encoder.model_id, weight, rows, negative_vectors, projection, None)
            del encoded, line_vectors  # copied into ``rows``: not held through the SVM's fit
            if len(rows) >= RELEASE_ENCODER_FROM:
                release_model(encoder)
        texts = given + lines
        out_of_scope = texts[len(kept) :]
        sample_weight = np.ones(len(texts))
        if weights is not None:
            sample_weight[: len(kept)] = [weights[i] for i in keep]
        sample_weight[len(given) :] = _BACKGROUND_WEIGHT
        labels = np.array([class_of[answers[i]] for i in keep] + [len(classes)] * len(out_of_scope), dtype=np.int64)
        sources = np.array(keep + [-1] * len(out_of_scope), dtype=np.int64)
        import scipy.sparse as sp  # fitting only: answering never needs scipy (see answering/csr.py)

        features, x = TfidfFeatures.fit_transform(texts)
        present = np.unique(labels)
        svm_weights = bias = None
        if len(present) >= 2 and (len(classes) + 1) * features.size <= _MAX_WEIGHTS:
            width = features.size + (meaning.inputs(meaning.vectors[:1]).shape[1] if meaning is not None else 0)
            learned = LabelWeights(features.size, width, len(classes) + 1, unseen_bias=-10.0)  # unseen: never chosen
            release_free_memory()  # encoding and n-grams churned through the heap: the SVM's peak comes next
            if meaning is None:
                fit_one_vs_rest(x, labels, sample_weight, seed, learned, _SVM)
            else:
                # float64 from the start: liblinear's type, so the SVM needs no converted copy of its own; two
                # CSR blocks join without scipy's detour through COO triplets (CLINC150: 9 MB less at the peak)
                vectors = sp.csr_matrix(meaning.inputs(meaning.vectors))
                both = sp.hstack([x, vectors], format="csr", dtype=np.float64)
                del vectors, x  # ``both`` holds the n-grams exactly (float32 in float64): taken back after the fit
                fit_one_vs_rest(both, labels, sample_weight, seed, learned, _MEANING_SVM)
                x = both[:, : features.size].astype(np.float32)
                del both
                meaning = replace(meaning, weights=learned.dense)
            svm_weights, bias = CsrRows.of(learned.sparse()), learned.bias
            del learned
        elif len(present) >= 2:
            log.info("%d classes × %d features: answering by nearest example", len(classes), features.size)
        release_free_memory()  # the SVM's copies of the training matrix are gone: give their memory back
        return cls(
            features=features,
            answers=classes,
            examples_t=CsrRows.of(x.T.tocsr()),
            labels=labels,
            sources=sources,
            prompts=list(prompts),
            weights=svm_weights,
            bias=bias,
            negatives=[(str(p), str(a)) for p, a in negatives],
            threshold=threshold,
            meaning=meaning,
            encoder=encoder,
            row_weights=sample_weight.astype(np.float32),
        )

    def extended(self, prompts: Sequence[str], answers: Sequence[str], weights: Sequence[float]) -> LocalModel | None:
        """This model having learned some more examples too: the vocabulary, the vectors' directions and every
        row stay; only the labels whose SVM the new rows fall inside the margin of (each new example's own
        label, and any other that scores it above -1) are fitted again, on every row. A label the new rows
        leave outside its margin has the same optimum with them as without (their loss and its gradient are
        zero). None when this model cannot be extended (no SVM, a model saved before its rows' weights were
        kept, or every new example is refused): fit from scratch then. See ``training/updates.py``."""
        if self._weights is None or self._bias is None or self.row_weights is None:
            return None
        if self.meaning is not None and (self.encoder is None or self.meaning.weights is None):
            return None
        keep = learnable(prompts, answers, self.negatives)
        if not keep:
            return None
        import scipy.sparse as sp  # fitting only: answering never needs scipy (see answering/csr.py)

        known = len(self.answers)
        classes = [*self.answers, *sorted({answers[i] for i in keep} - set(self.answers))]
        added = len(classes) - known  # new answers: labels before "none of these", which moves up
        class_of = {a: n for n, a in enumerate(classes)}
        new_labels = np.array([class_of[answers[i]] for i in keep], dtype=np.int64)
        labels = np.concatenate([np.where(self.labels == known, len(classes), self.labels), new_labels])
        texts = [prompts[i] for i in keep]
        new_rows = self.features.transform(texts).astype(np.float32)
        old = self._weights.scipy()
        zeros = sp.csr_matrix((old.shape[0], added), dtype=np.float32)
        svm = sp.hstack([old[:, :known], zeros, old[:, known:]], format="csr")
        bias = np.insert(self._bias, known, np.zeros(added, np.float32))
        scores = (new_rows @ svm).toarray() + bias
        meaning, new_vectors, dense = self.meaning, None, None
        blocks = [sp.vstack([self._examples_t.scipy().T.tocsr(), new_rows], format="csr")]
        if meaning is not None and meaning.weights is not None and self.encoder is not None:  # checked above
            new_vectors = self.encoder.encode(texts)
            new_inputs = meaning.inputs(new_vectors)
            dense = np.insert(meaning.weights, [known] * added, 0.0, axis=1)  # a new array: refitted in place
            scores += new_inputs @ dense
            blocks.append(sp.csr_matrix(np.vstack([meaning.inputs(meaning.vectors), new_inputs])))
        own = np.arange(len(classes) + 1)[None, :] == new_labels[:, None]
        inside = (np.where(own, scores, -scores) < 1.0).any(axis=0)
        inside[known : known + added] = True
        refit = np.flatnonzero(inside)
        row_weights = np.concatenate([self.row_weights, np.array([weights[i] for i in keep], dtype=np.float32)])
        x = blocks[0]
        both = sp.hstack(blocks, format="csr", dtype=np.float64)
        del blocks
        learned = LabelWeights(self.features.size, both.shape[1], len(classes) + 1, unseen_bias=-10.0)
        settings = _SVM if meaning is None else _MEANING_SVM
        fit_one_vs_rest(both, labels, row_weights.astype(np.float64), 0, learned, settings, only=refit)
        del both
        others = np.ones(len(classes) + 1, dtype=np.float32)
        others[refit] = 0.0
        svm = (svm @ sp.diags(others, format="csr") + learned.sparse()).tocsr()
        svm.eliminate_zeros()
        svm.sort_indices()
        bias[refit] = learned.bias[refit]
        if meaning is not None and new_vectors is not None and dense is not None:  # vectors grow after the fit
            dense[:, refit] = learned.dense[:, refit]
            meaning = replace(meaning, vectors=np.vstack([meaning.vectors, new_vectors]), weights=dense)
        log.info("extended by %d examples: %d of %d labels fitted again", len(keep), len(refit), len(classes) + 1)
        model = LocalModel(
            features=self.features,
            answers=classes,
            examples_t=CsrRows.of(x.T.tocsr()),
            labels=labels,
            sources=np.concatenate([self.sources, np.array(keep, dtype=np.int64) + len(self.prompts)]),
            prompts=[*self.prompts, *prompts],
            weights=CsrRows.of(svm.astype(np.float32)),
            bias=bias.astype(np.float32),
            negatives=self.negatives,
            threshold=self.threshold,
            meaning=meaning,
            encoder=self.encoder,
            row_weights=row_weights,
        )
        release_free_memory()
        return model

    # -- answering
    def predict(self, text: str, vector: np.ndarray | None = None) -> Prediction:
        """The best answer for ``text`` with its probability; ``answer`` is None below the threshold.

        ``vector`` is the question's vector from the model's encoder (encoded here when not given)."""
        return self._predicted(self._score(text, vector))

    def _predicted(self, scored: _Scored | None) -> Prediction:
        """The prediction ``_score``'s figures make (None when the question has no known n-gram)."""
        if scored is None:
            return Prediction(None, 0.0)
        probs, margins, sims, meaning = scored
        best = int(np.argmax(probs[: len(self.answers)])) if self.answers else 0
        confidence = float(probs[best])
        if best >= len(self.answers) or confidence < self.threshold or margins[best] == -np.inf:
            return Prediction(None, confidence)
        return self._prediction(best, confidence, sims, meaning)

    def ranked(self, text: str, vector: np.ndarray | None = None, k: int = 3) -> list[Prediction]:
        """The ``k`` likeliest answers for ``text``, best first, whatever the threshold (refused ones left
        out): the alternatives a trainer picks from when teaching interactively."""
        scored = self._score(text, vector)
        if scored is None or not self.answers:
            return []
        probs, margins, sims, meaning = scored
        order = np.argsort(-probs[: len(self.answers)], kind="stable")
        labels = [int(label) for label in order if margins[label] != -np.inf][:k]
        return [self._prediction(label, float(probs[label]), sims, meaning) for label in labels]

    def _score(self, text: str, vector: np.ndarray | None) -> _Scored | None:
        """Every label's probability (the last: "none of these"), margin, each row's similarity and
        closeness in meaning; None when the text has no known n-gram."""
        cols, vals = self.features.row(text)
        if not len(cols):
            return None
        if self.meaning is not None and vector is None:
            vector = self._encode([text])[0]
        meaning = self.meaning.vectors @ vector if self.meaning is not None and vector is not None else None
        wording = self._examples_t.weighted_sum(cols, vals)
        svm = self._weights.weighted_sum(cols, vals) if self._weights is not None else None
        return self._scored(text, vector, wording, meaning, svm)

    def _scored(
        self,
        text: str,
        vector: np.ndarray | None,
        wording: np.ndarray,
        meaning: np.ndarray | None,
        svm: np.ndarray | None,
    ) -> _Scored:
        """``_score`` from the question's TF-IDF products with every training row (``wording``) and with the
        SVM's weights (``svm``), and its cosines with every row (``meaning``): computed one question at a
        time, or for many at once by ``predict_many``."""
        sims = self._similarities(wording, meaning)
        margins = self._margins(svm, sims, vector)
        if self._weights is not None:
            # evidence: how much closer the question is to a label's examples than to "none of these"
            nearest = np.zeros(self._n_labels, dtype=np.float32)
            nearest[self._present] = np.maximum.reduceat(sims[self._by_label], self._label_starts)
            margins[: len(self.answers)] += self._knn_weight * (nearest[: len(self.answers)] - nearest[-1])
        for label in self._refused_labels(text, vector):
            margins[label] = -np.inf
        temperature, none_logit = (
            (_TEMPERATURE, _NONE_LOGIT) if self.meaning is None else (_MEANING_TEMPERATURE, _MEANING_NONE_LOGIT)
        )
        logits = temperature * np.append(margins, none_logit)
        logits -= logits.max()
        probs = np.exp(logits)
        probs /= probs.sum()
        return probs, margins, sims, meaning

    def _prediction(self, label: int, confidence: float, sims: np.ndarray, meaning: np.ndarray | None) -> Prediction:
        """Answer ``label`` with the training example it rests on (the closest of its examples)."""
        rows = np.flatnonzero(self.labels == label)
        row = int(rows[np.argmax(sims[rows])])
        index = int(self.sources[row])
        closeness = float(meaning[rows].max()) if meaning is not None else None
        return Prediction(self.answers[label], confidence, index, self.prompts[index], closeness)

    def predict_many(self, texts: Sequence[str], vectors: np.ndarray | None = None) -> list[Prediction]:
        """``predict`` for each text, in order: the texts are encoded in one batch and compared with the
        training rows and the SVM's weights by matrix products, ``PREDICT_CHUNK`` at a time (one at a time
        was 2.9 ms a question on CLINC150: most of scoring a held-out split or a test file)."""
        if len(texts) <= 1:
            return [self.predict(t, None if vectors is None else vectors[0]) for t in texts]
        if self.meaning is not None and vectors is None:
            vectors = self._encode(texts)
        out: list[Prediction] = []
        for start in range(0, len(texts), PREDICT_CHUNK):
            chunk = texts[start : start + PREDICT_CHUNK]
            rows = self.features.transform(chunk)
            wording = (rows @ self._examples_t.scipy()).toarray()
            svm = (rows @ self._weights.scipy()).toarray() if self._weights is not None else None
            given = vectors[start : start + len(chunk)] if vectors is not None else None
            meaning = given @ self.meaning.vectors.T if given is not None and self.meaning is not None else None
            for n, (text, known) in enumerate(zip(chunk, np.diff(rows.indptr) > 0, strict=True)):
                vector = given[n] if given is not None else None
                row_meaning = meaning[n] if meaning is not None else None
                row_svm = svm[n] if svm is not None else None
                scored = self._scored(text, vector, wording[n], row_meaning, row_svm) if known else None
                out.append(self._predicted(scored))
        return out

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if self.encoder is None:
            raise EncoderMismatch(self.encoder_id or "?", None)
        return (uncached(self.encoder) if len(texts) == 1 else self.encoder).encode(texts)

    def _similarities(self, wording: np.ndarray, meaning: np.ndarray | None) -> np.ndarray:
        """Cosine similarity of the query to every training row (blocks weigh as in training), from its TF-IDF
        products with the rows (``wording``) and its cosines of meaning with them."""
        if meaning is None:
            return wording / (1.0 + WORD_WEIGHT**2)
        weight = self.meaning.weight if self.meaning is not None else 0.0
        return (wording + weight**2 * meaning) / (1.0 + WORD_WEIGHT**2 + weight**2)

    def _margins(self, svm: np.ndarray | None, sims: np.ndarray, vector: np.ndarray | None) -> np.ndarray:
        """One score per label, on the SVM's margin scale (about +1 sure, -1 surely not); ``svm`` is the
        question's TF-IDF row times the SVM's weights."""
        if svm is not None and self._bias is not None:
            margins = svm + self._bias
            if self.meaning is not None and self.meaning.weights is not None and vector is not None:
                margins += self.meaning.inputs(vector) @ self.meaning.weights
            return margins
        best = np.full(self._n_labels, -np.inf)
        np.maximum.at(best, self.labels, sims)
        # similarity 1 → +1, 0.75 → 0, 0.5 → -1 (= "none of these"): near-copies only, like the overlay
        return np.where(np.isfinite(best), 4.0 * best - 3.0, -10.0)

    def _refused_labels(self, text: str, vector: np.ndarray | None) -> set[int]:
        if not len(self._refusals):
            return set()
        hits = self._refusals.search(text, k=10, min_score=NEGATIVE_THRESHOLD)
        refused = {self._class_of[h.answer] for h in hits}
        if self.meaning is not None and vector is not None and len(self.meaning.negatives):
            close = np.flatnonzero(self.meaning.negatives @ vector >= SAME_MEANING)
            refused |= {self._class_of[a] for n in close if (a := self.negatives[n][1]) in self._class_of}
        return refused

    # -- persistence
    def save(self, directory: Path) -> None:
        """Write the model into ``directory`` (created if needed); each file appears atomically."""
        directory.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": _FORMAT,
            "answers": self.answers,
            "prompts": self.prompts,
            "negatives": self.negatives,
            "threshold": self.threshold,
            "terms": self.features.terms[: self.features.n_words],
            "char_terms": self.features.terms[self.features.n_words :],
            "encoder": self.encoder_id,
            "meaning_weight": self.meaning.weight if self.meaning is not None else None,
        }
        arrays: dict[str, np.ndarray] = {
            "idf": self.features.idf,
            "labels": self.labels,
            "sources": self.sources,
            "xt_data": self._examples_t.data,
            "xt_indices": self._examples_t.indices,
            "xt_indptr": self._examples_t.indptr,
        }
        if self.row_weights is not None:
            arrays["row_weights"] = self.row_weights
        if self._weights is not None and self._bias is not None:
            arrays["weights_data"], arrays["weights_indices"] = self._weights.data, self._weights.indices
            arrays["weights_indptr"], arrays["bias"] = self._weights.indptr, self._bias
        if self.meaning is not None:
            arrays["vectors"] = self.meaning.vectors.astype(np.float16)  # half the size; cosines move by < 0.001
            arrays["negative_vectors"] = self.meaning.negatives.astype(np.float16)
            if self.meaning.projection is not None:
                arrays["projection"] = self.meaning.projection
            if self.meaning.weights is not None:
                arrays["meaning_weights"] = self.meaning.weights
        # uncompressed: inflating the integer arrays was a third of a CLINC150 version's loading time (the file
        # grows from 21.4 to 28.4 MB); floats barely compress anyway
        atomic_write(directory / _ARRAYS, lambda f: np.savez(f, allow_pickle=False, **arrays))
        atomic_write(directory / _META, lambda f: f.write(json.dumps(meta, ensure_ascii=False).encode()))

    @classmethod
    def load(cls, directory: Path, encoder: Encoder | None = None) -> LocalModel:
        """Read a model ``save`` wrote; any missing or damaged part raises ``TeachbotError``, a model
        trained with another encoder than ``encoder`` raises ``EncoderMismatch`` (before reading the arrays)."""
        try:
            meta = json.loads((directory / _META).read_text(encoding="utf-8"))
            if not isinstance(meta, dict) or meta.get("format") not in (1, 2, 3, _FORMAT):
                raise ValueError(f"unknown format {meta.get('format') if isinstance(meta, dict) else meta!r}")
            trained_with = meta.get("encoder")
            if trained_with is not None and (encoder is None or encoder.model_id != trained_with):
                raise EncoderMismatch(str(trained_with), encoder.model_id if encoder is not None else None)
            with np.load(directory / _ARRAYS, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            words, chars = list(meta["terms"]), list(meta["char_terms"])
            features = TfidfFeatures(words, chars, arrays["idf"])
            meaning = None
            if trained_with is not None:
                meaning = _Meaning(
                    str(trained_with),
                    float(meta["meaning_weight"]),
                    _unit_rows(arrays["vectors"], len(arrays["labels"])),
                    _unit_rows(arrays["negative_vectors"], len(meta["negatives"])),
                    arrays.get("projection"),
                    arrays.get("meaning_weights"),
                )
            model = cls(
                features=features,
                answers=[str(a) for a in meta["answers"]],
                examples_t=_stored_rows(arrays, features.size),
                labels=arrays["labels"],
                sources=arrays["sources"],
                prompts=[str(p) for p in meta["prompts"]],
                weights=_stored_weights(arrays, features.size),
                bias=arrays.get("bias"),
                negatives=[(str(p), str(a)) for p, a in meta["negatives"]],
                threshold=float(meta["threshold"]),
                meaning=meaning,
                encoder=encoder if meaning is not None else None,
                row_weights=arrays.get("row_weights"),
            )
        except (OSError, ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile, EOFError) as exc:
            raise TeachbotError(f"cannot load the local model from {directory}: {exc}") from None
        release_free_memory()  # decompressing and converting the arrays left copies behind
        return model


def _stored_weights(arrays: dict[str, np.ndarray], features: int) -> CsrRows | None:
    """The SVM's weights as saved: sparse parts (format 3 on) or one dense array (formats 1 and 2)."""
    if "weights_data" in arrays:
        parts = (arrays["weights_data"], arrays["weights_indices"], arrays["weights_indptr"])
        return CsrRows(*parts, (features, len(arrays["bias"])))
    if "weights" not in arrays:
        return None
    import scipy.sparse as sp  # versions saved before format 3 only

    return CsrRows.of(sp.csr_matrix(arrays["weights"]))


def _stored_rows(arrays: dict[str, np.ndarray], features: int) -> CsrRows:
    """The training rows' TF-IDF as held, features × rows: stored so (format 4) or as rows × features (1 to 3)."""
    rows = len(arrays["labels"])
    if "xt_data" in arrays:
        return CsrRows(arrays["xt_data"], arrays["xt_indices"], arrays["xt_indptr"], (features, rows))
    import scipy.sparse as sp  # versions saved before format 4 only

    stored = sp.csr_matrix((arrays["x_data"], arrays["x_indices"], arrays["x_indptr"]), shape=(rows, features))
    return CsrRows.of(stored.T.tocsr())


def meaning_weight(examples_per_class: float) -> float:
    """The vectors' weight for this much data: 3 up to 10 examples per class, down to 2 at 100 and more."""
    few = min(1.0, max(0.0, (100.0 - examples_per_class) / 90.0))
    return MEANING_WEIGHT_MANY + (MEANING_WEIGHT_FEW - MEANING_WEIGHT_MANY) * few


def _unit_rows(stored: np.ndarray, rows: int) -> np.ndarray:
    """Stored (half-precision) vectors back as float32 unit rows, checking their count."""
    if stored.ndim != 2 or len(stored) != rows:
        raise ValueError(f"{len(stored)} stored vectors for {rows} rows")
    vectors = stored.astype(np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors))[:, None]  # no squared copy: a third faster
    vectors /= np.maximum(norms, 1e-12)
    return vectors


def _principal_directions(vectors: np.ndarray) -> np.ndarray:
    """The ``PROJECTED_DIMS`` directions along which the training vectors vary most (dim × k)."""
    # the eigenvectors of the small dim × dim Gram matrix are the right singular vectors: a hundredth of
    # the time of an SVD of the n × dim matrix itself
    gram = (vectors.T @ vectors).astype(np.float64)
    _, eigenvectors = np.linalg.eigh(gram)  # ascending eigenvalues
    return np.ascontiguousarray(eigenvectors[:, ::-1][:, :PROJECTED_DIMS], dtype=np.float32)


@functools.cache
def background_questions() -> tuple[str, ...]:
    """The bundled questions on unrelated topics (resources/background.txt), one per line."""
    text = resources.files("teachbot.resources").joinpath("background.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def _background_lines(prompts: Sequence[str]) -> list[str]:
    """Background questions not close in wording to any training prompt (those belong to the user's answers)."""
    if not _BACKGROUND:
        return []
    lines = list(background_questions())
    vectors = embed(lines)
    closest = np.zeros(len(lines))
    for start in range(0, len(prompts), CHUNK):  # in chunks: lines × prompts is mostly non-zero
        sims = vectors @ embed(prompts[start : start + CHUNK]).T
        closest = np.maximum(closest, np.asarray(sims.max(axis=1).todense()).ravel())
    return [line for line, s in zip(lines, closest, strict=True) if s < _BACKGROUND_CLASH]


def _far_in_meaning(lines: np.ndarray, prompts: np.ndarray) -> np.ndarray:
    """Which background lines (vectors) are not close in meaning to any prompt (vectors)."""
    closest = np.full(len(lines), -1.0, dtype=np.float32)
    for start in range(0, len(prompts), CHUNK):
        closest = np.maximum(closest, (lines @ prompts[start : start + CHUNK].T).max(axis=1, initial=-1.0))
    return closest < _MEANING_BACKGROUND_CLASH
