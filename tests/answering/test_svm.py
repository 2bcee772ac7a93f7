"""One-vs-rest SVMs in groups of labels, and what a model keeps of their weights."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from teachbot.answering.svm import LabelWeights, SvmSettings, fit_one_vs_rest


def test_label_weights_keep_the_nonzero_n_gram_weights_whatever_the_order() -> None:
    rng = np.random.default_rng(0)
    full = rng.normal(size=(4, 7))  # labels × (5 n-gram columns + 2 dense ones)
    full[:, :5][rng.random((4, 5)) < 0.6] = 0.0  # mostly zero, as n-gram weights are
    kept = [LabelWeights(5, 7, labels=5, unseen_bias=-10.0) for _ in range(2)]
    for label in (0, 1, 2, 3):
        kept[0](label, full[label], float(label))
    for label in (3, 1, 0, 2):  # another thread's order
        kept[1](label, full[label], float(label))
    for weights in kept:
        matrix = weights.sparse()
        assert matrix.shape == (5, 5) and matrix.nnz == np.count_nonzero(full[:, :5])
        np.testing.assert_array_equal(matrix.toarray()[:, :4], full[:, :5].T.astype(np.float32))
        assert not matrix.toarray()[:, 4].any()  # label 4 was never fitted
        np.testing.assert_array_equal(weights.dense[:, :4], full[:, 5:].T.astype(np.float32))
        np.testing.assert_array_equal(weights.bias, [0, 1, 2, 3, -10])
    assert (kept[0].sparse() != kept[1].sparse()).nnz == 0


def test_grouped_fit_gives_every_label_its_own_weights() -> None:
    """More labels than one liblinear call takes: each label's SVM still separates its own rows."""
    labels = np.repeat(np.arange(23), 4)  # 23 labels, more than two groups of 10
    x = sp.csr_matrix(np.eye(23)[labels] + 0.01 * np.random.default_rng(1).random((len(labels), 23)))
    kept = LabelWeights(23, 23, labels=24, unseen_bias=-10.0)
    fit_one_vs_rest(x, labels, np.ones(len(labels)), 0, kept, SvmSettings(threads=2))
    scores = x @ kept.sparse().toarray() + kept.bias
    assert (scores[:, :23].argmax(axis=1) == labels).all()
    assert kept.bias[23] == -10.0  # the label no row has
