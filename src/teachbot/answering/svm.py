"""One-vs-rest linear SVMs trained in groups of labels, on up to two threads.

liblinear holds all of a fit's weight vectors twice in float64 and copies the training matrix into its
own rows, so many labels are trained in groups (each group against everything else, as one-vs-rest does
anyway) and at most ``SvmSettings.threads`` groups at a time: liblinear runs without the GIL, so two threads
use two cores.

On two threads a fit is not exactly repeatable: scikit-learn's liblinear draws its coordinate order from one
process-wide random generator, which concurrent calls share, so the same data and seed give slightly
different weights run to run (CLINC150 halves: 2 of 7,500 answers differ). The sentence vectors are
bit-identical whatever the batches, so this is the only source of run-to-run differences in a fit.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import scipy.sparse as sp

__all__ = ["LabelSink", "LabelWeights", "SvmSettings", "fit_one_vs_rest"]

#: Labels trained per liblinear call. Each call holds the weights of its labels twice in float64 (liblinear's
#: and scikit-learn's copy) beside its copy of the training matrix, so smaller groups lower the fit's peak for the
#: same time (CLINC150, cached, two threads: 40 labels 380 MB, 20 369 MB, 10 363 MB; 7.1 s each).
GROUP = 10


@dataclass(frozen=True, slots=True)
class SvmSettings:
    c: float = 1.0
    tol: float = 1e-4
    max_iter: int = 2000
    threads: int = 1  # liblinear calls at a time, each with its own copy of the training matrix


#: Receives one label's weight vector (float64, over the columns of the training matrix; valid during the call
#: only) and its bias. Called from the fitting threads, once per label, never twice for the same label.
LabelSink = Callable[[int, np.ndarray, float], None]


class LabelWeights:
    """A ``LabelSink`` keeping what a model needs of each label's weights: the first ``sparse_width`` columns as
    their nonzero entries (the TF-IDF n-grams, 88 % zero on CLINC150), the others dense (the sentence vector's
    dimensions), and the bias. A dense features × labels matrix (CLINC150: 19 MB) is never held."""

    def __init__(self, sparse_width: int, width: int, labels: int, unseen_bias: float) -> None:
        self.sparse_width, self.labels = sparse_width, labels
        self.dense = np.zeros((width - sparse_width, labels), dtype=np.float32)
        self.bias = np.full(labels, unseen_bias, dtype=np.float32)  # for labels no SVM was fitted for
        self._entries: list[tuple[int, np.ndarray, np.ndarray]] = []  # label, features, weights
        self._lock = threading.Lock()

    def __call__(self, label: int, weights: np.ndarray, bias: float) -> None:
        head = weights[: self.sparse_width]
        nonzero = np.flatnonzero(head)
        entry = (label, nonzero.astype(np.int32), head[nonzero].astype(np.float32))
        with self._lock:
            self._entries.append(entry)
        self.dense[:, label] = weights[self.sparse_width :]
        self.bias[label] = bias

    def sparse(self) -> sp.csr_matrix:
        """The kept entries as a features × labels matrix (the same whatever order the labels came in)."""
        import scipy.sparse as sp

        entries = sorted(self._entries, key=lambda entry: entry[0])
        rows = np.concatenate([features for _, features, _ in entries] or [np.zeros(0, np.int32)])
        cols = np.concatenate([np.full(len(f), label, np.int32) for label, f, _ in entries] or [np.zeros(0, np.int32)])
        values = np.concatenate([w for _, _, w in entries] or [np.zeros(0, np.float32)])
        matrix = sp.csr_matrix((values, (rows, cols)), shape=(self.sparse_width, self.labels), dtype=np.float32)
        matrix.sort_indices()
        return matrix


def fit_one_vs_rest(
    x: sp.csr_matrix,
    labels: np.ndarray,
    sample_weight: np.ndarray,
    seed: int,
    keep: LabelSink,
    settings: SvmSettings,
    only: np.ndarray | None = None,
) -> None:
    """Fit the one-vs-rest SVMs of the labels present (or of the labels ``only``, each still against every
    other row) and hand each label's weights to ``keep``: the caller stores them as it needs (mostly zero:
    sparse), so no dense labels × features matrix is ever built."""
    import scipy.sparse as sp  # with sklearn, on first training: answering never imports either

    present = np.unique(labels) if only is None else np.intersect1d(only, labels)
    if not len(present):
        return
    groups = [present] if len(present) <= GROUP else np.array_split(present, -(-len(present) // GROUP))
    grouped = len(groups) > 1 or only is not None
    x64 = sp.csr_matrix(x, dtype=np.float64)  # liblinear wants float64: convert once (unless it is), not per call
    threads = max(1, min(settings.threads, len(groups), os.cpu_count() or 1))

    from sklearn.exceptions import ConvergenceWarning  # imported on first training: answering never needs it

    def fit(group: np.ndarray) -> None:
        _fit_group(x64, labels, group, grouped, sample_weight, seed, settings, keep)

    # warning filters are global to the process: set them here, once, not in each worker thread
    with warnings.catch_warnings():
        # many one-example classes are normal here; an unconverged SVM still ranks well
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        if threads == 1:
            for group in groups:
                fit(group)
            return
        with ThreadPoolExecutor(threads, thread_name_prefix="svm") as pool:
            for done in [pool.submit(fit, group) for group in groups]:
                done.result()


def _fit_group(
    x: sp.csr_matrix,
    labels: np.ndarray,
    group: np.ndarray,
    grouped: bool,
    sample_weight: np.ndarray,
    seed: int,
    settings: SvmSettings,
    keep: LabelSink,
) -> None:
    from sklearn.svm import LinearSVC

    y = np.where(np.isin(labels, group), labels, -1) if grouped else labels
    svm = LinearSVC(C=settings.c, tol=settings.tol, random_state=seed, max_iter=settings.max_iter)
    svm.fit(x, y, sample_weight=sample_weight)
    coef, intercept = svm.coef_, np.asarray(svm.intercept_, dtype=np.float64)
    del svm
    if len(svm_classes := np.unique(y)) == 2:  # a binary SVM has one weight vector, for the second label
        coef, intercept = np.vstack([-coef, coef]), np.concatenate([-intercept, intercept])
    for row in np.flatnonzero(np.isin(svm_classes, group)):
        keep(int(svm_classes[row]), coef[row], float(intercept[row]))
