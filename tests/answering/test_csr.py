"""CsrRows: the weighted row sums one question needs, equal to scipy's, without importing scipy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from teachbot.answering.csr import CsrRows


@pytest.mark.parametrize("density", [0.0, 0.02, 0.3])
def test_weighted_sums_equal_scipys(density: float) -> None:
    rng = np.random.default_rng(7)
    matrix = sp.random(300, 50, density=density, format="csr", dtype=np.float32, random_state=rng)
    rows = CsrRows(matrix.data, matrix.indices, matrix.indptr, (300, 50))
    for picked in (np.array([], dtype=np.int64), np.array([0]), np.sort(rng.choice(300, 40, replace=False))):
        values = rng.random(len(picked)).astype(np.float32)
        expected = values @ matrix[picked].toarray() if len(picked) else np.zeros(50)
        got = rows.weighted_sum(picked, values)
        assert got.shape == (50,) and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert (rows.scipy() != matrix).nnz == 0
    assert rows.scipy() is rows.scipy()  # made once
    assert not len(rows.data) or np.shares_memory(rows.scipy().data, rows.data)  # sharing the arrays


def test_arrays_that_do_not_make_the_shape_are_refused() -> None:
    data, indices = np.ones(3, dtype=np.float32), np.array([0, 1, 2])
    CsrRows(data, indices, np.array([0, 1, 3]), (2, 3))
    for indptr, shape in ((np.array([0, 1, 3]), (3, 3)), (np.array([0, 1, 2]), (2, 3))):
        with pytest.raises(ValueError, match="shape"):
            CsrRows(data, indices, indptr, shape)
    with pytest.raises(ValueError, match="shape"):
        CsrRows(data, indices[:2], np.array([0, 1, 3]), (2, 3))
