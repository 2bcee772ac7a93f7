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
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import scipy.sparse as sp

__all__ = ["SvmSettings", "fit_one_vs_rest"]

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


def fit_one_vs_rest(
    x: sp.csr_matrix,
    labels: np.ndarray,
    sample_weight: np.ndarray,
    seed: int,
    weights: np.ndarray,
    bias: np.ndarray,
    settings: SvmSettings,
) -> None:
    """Fit into ``weights`` (features × labels) and ``bias`` the one-vs-rest SVMs of the labels present."""
    import scipy.sparse as sp  # with sklearn, on first training: answering never imports either

    present = np.unique(labels)
    groups = [present] if len(present) <= GROUP else np.array_split(present, -(-len(present) // GROUP))
    x64 = sp.csr_matrix(x, dtype=np.float64)  # liblinear wants float64: convert once (unless it is), not per call
    threads = max(1, min(settings.threads, len(groups), os.cpu_count() or 1))

    from sklearn.exceptions import ConvergenceWarning  # imported on first training: answering never needs it

    def fit(group: np.ndarray) -> None:
        _fit_group(x64, labels, group, len(groups) > 1, sample_weight, seed, settings, weights, bias)

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
    weights: np.ndarray,
    bias: np.ndarray,
) -> None:
    from sklearn.svm import LinearSVC

    y = np.where(np.isin(labels, group), labels, -1) if grouped else labels
    svm = LinearSVC(C=settings.c, tol=settings.tol, random_state=seed, max_iter=settings.max_iter)
    svm.fit(x, y, sample_weight=sample_weight)
    coef, intercept = svm.coef_, np.asarray(svm.intercept_, dtype=np.float32)
    del svm  # copied out below: keep one float64 copy of the weights alive, not two
    if len(svm_classes := np.unique(y)) == 2:  # a binary SVM has one weight vector, for the second label
        coef, intercept = np.vstack([-coef, coef]), np.concatenate([-intercept, intercept])
    for row in np.flatnonzero(np.isin(svm_classes, group)):  # row by row: no copy of the group's weights
        weights[:, svm_classes[row]] = coef[row]
        bias[svm_classes[row]] = intercept[row]
