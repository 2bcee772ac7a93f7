"""The embedded local model: TF-IDF n-grams and a linear SVM, answers as classes, no downloads.

Each distinct answer text is a class. Prompts become TF-IDF vectors of their word 1-2-grams
and character 3-5-grams (``text.ngrams``); a one-vs-rest linear SVM scores every class against an
explicit reject class: the caller's out-of-scope examples plus a bundled list of ordinary questions
on unrelated topics (resources/background.txt, at a fifth of an example's weight; lines close to a
training prompt are left out). So even a small knowledge base knows when it does not know.
Classes with few examples also get an evidence term: how much closer the question is to the
class's nearest example than to the nearest reject example (weight 2, shrinking as 5 / examples
beyond five), because an SVM trained on two or three examples per class generalises far too
eagerly. Scores turn into a probability with a fixed temperature and a "none of these" logit,
tuned on CLINC150's validation split (bench/intents.py). With too many classes for the SVM's
weight matrix the scores come from the nearest training example instead.

Saved models are a JSON file plus a NumPy ``.npz`` (no pickle: loading never runs code).
"""

from __future__ import annotations

import functools
import json
import logging
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

from teachbot.answering.nearest import TAUGHT_THRESHOLD, NearestIndex, embed
from teachbot.answering.text import ngrams, normalize_text
from teachbot.errors import TeachbotError
from teachbot.paths import atomic_write

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_THRESHOLD", "LocalModel", "Prediction"]

#: Below this confidence the model says it does not know. On CLINC150 val the range 0.25-0.4 is
#: flat (92.5-93.0 % in scope, 56-62 % out-of-scope rejected; bench/intents.py --tune).
DEFAULT_THRESHOLD = 0.35
#: A negative example suppresses its answer for questions at least this similar to its prompt.
NEGATIVE_THRESHOLD = TAUGHT_THRESHOLD

_TEMPERATURE = 8.0  # SVM margins → logits; fitted on CLINC150 val (expected calibration error ≈ 0.04)
_NONE_LOGIT = -1.0  # the margin a class needs to beat "none of these"
_WORD_WEIGHT = 1.0  # the word block's weight next to the char block
_C = 1.0  # the SVM's regularisation (CLINC150 val in scope: 1.0 → 92.6 %, 2.0 → 92.9 %, 4.0 → 92.9 %)
_SVM_GROUP = 40  # labels trained per liblinear call (memory: see _fit_svm)
_MAX_WEIGHTS = 60_000_000  # classes × features above which the SVM's weights would not fit in memory
# Background and evidence settings, chosen on CLINC150 val with the starter set (bench/intents.py
# --starter): 0.2 / 2.0 answer 29 % of val's greeting/thanks/bye/bot questions and wrongly answer
# 2.2 % of the rest; weight 1.0 answered 17 % (0.4 % wrong), no background 52 % (94 % wrong).
_BACKGROUND = True  # learn the bundled background questions as "none of these"
_BACKGROUND_WEIGHT = 0.2  # each background question's weight in the SVM next to a taught example
_BACKGROUND_CLASH = 0.5  # a background question this similar (hashed cosine) to a prompt is left out
_KNN_WEIGHT = 2.0  # weight of the evidence term for classes with up to _KNN_EXAMPLES examples
_KNN_EXAMPLES = 5.0  # classes with more examples get a proportionally smaller evidence weight
_CHUNK = 1000  # texts turned into n-grams (or compared with the background questions) at a time
_FORMAT = 1
_META, _ARRAYS = "model.json", "arrays.npz"


@dataclass(frozen=True, slots=True)
class Prediction:
    """The model's answer (None: it does not know), its probability, and the example it rests on."""

    answer: str | None
    confidence: float
    example_index: int | None = None
    matched_prompt: str | None = None


class _Features:
    """TF-IDF over a fixed vocabulary: sublinear tf, smooth idf, each block L2-normalised."""

    def __init__(self, words: list[str], chars: list[str], idf: np.ndarray) -> None:
        self.terms = words + chars
        self.n_words = len(words)
        self.word_ids = {t: i for i, t in enumerate(words)}
        self.char_ids = {t: i + len(words) for i, t in enumerate(chars)}
        self.idf = idf.astype(np.float32)

    @classmethod
    def fit(cls, texts: Sequence[str]) -> _Features:
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
        if len(texts) <= _CHUNK:
            return self._transform(texts)
        # in chunks: the n-gram strings of all texts at once would take far more memory than the matrix
        chunks = [self._transform(texts[i : i + _CHUNK]) for i in range(0, len(texts), _CHUNK)]
        return sp.csr_matrix(sp.vstack(chunks, format="csr"), dtype=np.float32)

    def _transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        grams = [ngrams(normalize_text(t)) for t in texts]
        blocks = []
        for part, vocab, weight in ((0, self.word_ids, _WORD_WEIGHT), (1, self.char_ids, 1.0)):
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
        for grams, vocab, weight in ((w, self.word_ids, _WORD_WEIGHT), (c, self.char_ids, 1.0)):
            ids = np.fromiter((i for g in grams if (i := vocab.get(g)) is not None), dtype=np.int64)
            if not len(ids):
                continue
            uniq, counts = np.unique(ids, return_counts=True)
            vals = (1.0 + np.log(counts)) * self.idf[uniq]
            parts.append((uniq, (weight * vals / np.linalg.norm(vals)).astype(np.float32)))
        if not parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


class LocalModel:
    """Classifies a question into one of the taught answers, or none; see the module docstring."""

    def __init__(
        self,
        *,
        features: _Features,
        answers: list[str],
        examples: sp.csr_matrix,
        labels: np.ndarray,
        sources: np.ndarray,
        prompts: list[str],
        weights: np.ndarray | None,
        bias: np.ndarray | None,
        negatives: list[tuple[str, str]],
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        self.features = features
        self.answers = answers  # class i's answer; label len(answers) is the reject class
        self.prompts = prompts  # the training prompts as given (example_index points here)
        self.labels = labels  # class of each vector row (rows of dropped examples are absent)
        self.sources = sources  # each row's index into ``prompts``; -1 for out-of-scope rows
        self.negatives = negatives
        self.threshold = threshold
        self._examples = examples
        self._examples_t = examples.T.tocsr()  # features × rows: a query only touches its postings
        self._weights, self._bias = weights, bias  # features × labels, labels
        self._n_labels = len(answers) + 1
        self._class_of = {a: i for i, a in enumerate(answers)}
        counts = np.bincount(labels, minlength=self._n_labels)[: len(answers)]
        self._knn_weight = _KNN_WEIGHT * np.minimum(1.0, _KNN_EXAMPLES / np.maximum(counts, 1))
        self._by_label = np.argsort(labels, kind="stable")  # rows grouped by label, for per-label maxima
        self._present, self._label_starts = np.unique(labels[self._by_label], return_index=True)
        self._refusals = NearestIndex()
        self._refusals.add_many((n, p, a) for n, (p, a) in enumerate(negatives) if a in self._class_of)

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
    ) -> LocalModel:
        """Learn prompt → answer; ``negatives`` are answers never to give, ``out_of_scope`` prompts to refuse."""
        if len(prompts) != len(answers):
            raise TeachbotError(f"{len(prompts)} prompts but {len(answers)} answers")
        refused = {(normalize_text(p), a) for p, a in negatives}
        pairs = enumerate(zip(prompts, answers, strict=True))
        keep = [i for i, (p, a) in pairs if (normalize_text(p), a) not in refused]
        if not keep:
            raise TeachbotError("nothing to learn: no examples (or every one is marked as a wrong answer)")
        classes = sorted({answers[i] for i in keep})
        class_of = {a: i for i, a in enumerate(classes)}
        background = _background_for([prompts[i] for i in keep])
        n_given = len(keep) + len(out_of_scope)
        out_of_scope = list(out_of_scope) + background
        texts = [prompts[i] for i in keep] + out_of_scope
        sample_weight = np.ones(len(texts))
        sample_weight[n_given:] = _BACKGROUND_WEIGHT
        labels = np.array([class_of[answers[i]] for i in keep] + [len(classes)] * len(out_of_scope), dtype=np.int64)
        sources = np.array(keep + [-1] * len(out_of_scope), dtype=np.int64)
        features = _Features.fit(texts)
        x = features.transform(texts)
        present = np.unique(labels)
        weights = bias = None
        if len(present) >= 2 and (len(classes) + 1) * features.size <= _MAX_WEIGHTS:
            weights = np.zeros((features.size, len(classes) + 1), dtype=np.float32)
            bias = np.full(len(classes) + 1, -10.0, dtype=np.float32)  # labels never seen: never chosen
            _fit_svm(x, labels, sample_weight, seed, weights, bias)
        elif len(present) >= 2:
            log.info("%d classes × %d features: answering by nearest example", len(classes), features.size)
        return cls(
            features=features,
            answers=classes,
            examples=x,
            labels=labels,
            sources=sources,
            prompts=list(prompts),
            weights=weights,
            bias=bias,
            negatives=[(str(p), str(a)) for p, a in negatives],
            threshold=threshold,
        )

    # -- answering
    def predict(self, text: str) -> Prediction:
        """The best answer for ``text`` with its probability; ``answer`` is None below the threshold."""
        cols, vals = self.features.row(text)
        if not len(cols):
            return Prediction(None, 0.0)
        sims = self._similarities(cols, vals)
        margins = self._margins(cols, vals, sims)
        if self._weights is not None:
            # evidence: how much closer the question is to a label's examples than to "none of these"
            nearest = np.zeros(self._n_labels, dtype=np.float32)
            nearest[self._present] = np.maximum.reduceat(sims[self._by_label], self._label_starts)
            margins[: len(self.answers)] += self._knn_weight * (nearest[: len(self.answers)] - nearest[-1])
        for label in self._refused_labels(text):
            margins[label] = -np.inf
        logits = _TEMPERATURE * np.append(margins, _NONE_LOGIT)
        logits -= logits.max()
        probs = np.exp(logits)
        probs /= probs.sum()
        best = int(np.argmax(probs[: len(self.answers)])) if self.answers else 0
        confidence = float(probs[best])
        if best >= len(self.answers) or confidence < self.threshold or margins[best] == -np.inf:
            return Prediction(None, confidence)
        rows = np.flatnonzero(self.labels == best)
        row = int(rows[np.argmax(sims[rows])])
        index = int(self.sources[row])
        return Prediction(self.answers[best], confidence, index, self.prompts[index])

    def predict_many(self, texts: Sequence[str]) -> list[Prediction]:
        """``predict`` for each text, in order."""
        return [self.predict(t) for t in texts]

    def _similarities(self, cols: np.ndarray, vals: np.ndarray) -> np.ndarray:
        """Cosine similarity of the query to every training row (blocks weigh as in training)."""
        sub = self._examples_t[cols]
        sims = np.asarray(sub.T @ vals).ravel()
        return sims / (1.0 + _WORD_WEIGHT**2)

    def _margins(self, cols: np.ndarray, vals: np.ndarray, sims: np.ndarray) -> np.ndarray:
        """One score per label, on the SVM's margin scale (about +1 sure, -1 surely not)."""
        if self._weights is not None and self._bias is not None:
            return vals @ self._weights[cols] + self._bias
        best = np.full(self._n_labels, -np.inf)
        np.maximum.at(best, self.labels, sims)
        # similarity 1 → +1, 0.75 → 0, 0.5 → -1 (= "none of these"): near-copies only, like the overlay
        return np.where(np.isfinite(best), 4.0 * best - 3.0, -10.0)

    def _refused_labels(self, text: str) -> set[int]:
        if not len(self._refusals):
            return set()
        hits = self._refusals.search(text, k=10, min_score=NEGATIVE_THRESHOLD)
        return {self._class_of[h.answer] for h in hits}

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
        }
        arrays: dict[str, np.ndarray] = {
            "idf": self.features.idf,
            "labels": self.labels,
            "sources": self.sources,
            "x_data": self._examples.data,
            "x_indices": self._examples.indices,
            "x_indptr": self._examples.indptr,
        }
        if self._weights is not None and self._bias is not None:
            arrays["weights"], arrays["bias"] = self._weights, self._bias
        atomic_write(directory / _ARRAYS, lambda f: np.savez_compressed(f, allow_pickle=False, **arrays))
        atomic_write(directory / _META, lambda f: f.write(json.dumps(meta, ensure_ascii=False).encode()))

    @classmethod
    def load(cls, directory: Path) -> LocalModel:
        """Read a model ``save`` wrote; any missing or damaged part raises ``TeachbotError``."""
        try:
            meta = json.loads((directory / _META).read_text(encoding="utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
                raise ValueError(f"unknown format {meta.get('format') if isinstance(meta, dict) else meta!r}")
            with np.load(directory / _ARRAYS, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            words, chars = list(meta["terms"]), list(meta["char_terms"])
            features = _Features(words, chars, arrays["idf"])
            shape = (len(arrays["labels"]), features.size)
            examples = sp.csr_matrix((arrays["x_data"], arrays["x_indices"], arrays["x_indptr"]), shape=shape)
            return cls(
                features=features,
                answers=[str(a) for a in meta["answers"]],
                examples=examples,
                labels=arrays["labels"],
                sources=arrays["sources"],
                prompts=[str(p) for p in meta["prompts"]],
                weights=arrays.get("weights"),
                bias=arrays.get("bias"),
                negatives=[(str(p), str(a)) for p, a in meta["negatives"]],
                threshold=float(meta["threshold"]),
            )
        except (OSError, ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile, EOFError) as exc:
            raise TeachbotError(f"cannot load the local model from {directory}: {exc}") from None


def _fit_svm(
    x: sp.csr_matrix, labels: np.ndarray, sample_weight: np.ndarray, seed: int, weights: np.ndarray, bias: np.ndarray
) -> None:
    """One-vs-rest linear SVMs into ``weights`` (features × labels) and ``bias``, for the labels present.

    With many labels they are trained in groups (each against everything else, as one-vs-rest
    does anyway): liblinear holds all of a fit's weight vectors twice in float64, which for
    CLINC150's 151 labels was the process's peak memory.
    """
    present = np.unique(labels)
    groups = [present] if len(present) <= _SVM_GROUP else np.array_split(present, -(-len(present) // _SVM_GROUP))
    for group in groups:
        y = np.where(np.isin(labels, group), labels, -1) if len(groups) > 1 else labels
        svm = LinearSVC(C=_C, random_state=seed, max_iter=2000)
        with warnings.catch_warnings():
            # many one-example classes are normal here; an unconverged SVM still ranks well
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", ConvergenceWarning)
            svm.fit(x, y, sample_weight=sample_weight)
        coef, intercept = svm.coef_, np.asarray(svm.intercept_, dtype=np.float32)
        del svm  # copied out below: keep one float64 copy of the weights alive, not two
        if len(svm_classes := np.unique(y)) == 2:  # a binary SVM has one weight vector, for the second label
            coef, intercept = np.vstack([-coef, coef]), np.concatenate([-intercept, intercept])
        mine = np.isin(svm_classes, group)
        weights[:, svm_classes[mine]] = coef[mine].T
        bias[svm_classes[mine]] = intercept[mine]
        del coef


@functools.cache
def background_questions() -> tuple[str, ...]:
    """The bundled questions on unrelated topics (resources/background.txt), one per line."""
    text = resources.files("teachbot.resources").joinpath("background.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def _background_for(prompts: Sequence[str]) -> list[str]:
    """Background questions not close to any training prompt (those belong to the user's answers)."""
    if not _BACKGROUND:
        return []
    lines = list(background_questions())
    vectors = embed(lines)
    closest = np.zeros(len(lines))
    for start in range(0, len(prompts), _CHUNK):  # in chunks: lines × prompts is mostly non-zero
        sims = vectors @ embed(prompts[start : start + _CHUNK]).T
        closest = np.maximum(closest, np.asarray(sims.max(axis=1).todense()).ravel())
    return [line for line, s in zip(lines, closest, strict=True) if s < _BACKGROUND_CLASH]
