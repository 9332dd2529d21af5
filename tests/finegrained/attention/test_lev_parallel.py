"""The Dask universal set equals the in-memory one (finegrained.attention.lev_parallel)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("dask.array")  # the parallel extra; installed by the test extra

import dask.array as da  # noqa: E402

from finegrained.attention.lev import leverage_scores, streaming_universal_set, universal_set  # noqa: E402
from finegrained.attention.lev_parallel import parallel_universal_set  # noqa: E402
from instances.errors import NumericalError, ParameterError  # noqa: E402


def _families(rng: np.random.Generator, n: int, d: int) -> dict[str, np.ndarray]:
    g = rng.normal(size=(n, d))
    low = rng.normal(size=(n, 2)) @ rng.normal(size=(2, d))
    near = low + 1e-9 * rng.normal(size=(n, d))
    heavy = rng.standard_t(1.5, size=(n, d))
    dup = np.repeat(rng.normal(size=(n // 8, d)), 8, axis=0)
    dup[-1] += 1e-6 * rng.normal(size=d)  # one key deviates slightly from its copies
    spiky = g.copy()
    spiky[rng.choice(n, 5, replace=False)] *= 1e4
    return {
        "gaussian": g,
        "low_rank": low,
        "near_degenerate": near,
        "heavy_tailed": heavy,
        "duplicated_rows": dup,
        "spiky_outliers": spiky,
        "scaled_columns": g * np.logspace(-150, 150, d)[None, :],
        "zero_rows": np.where(rng.random((n, 1)) < 0.3, 0.0, g),
        "one_hot": np.eye(d)[rng.integers(0, d, n)] * rng.uniform(1, 2, (n, 1)),
        "integer_grid": rng.integers(-3, 4, size=(n, d)).astype(float),
        "cauchy_rows": g / np.abs(rng.standard_cauchy((n, 1))),
        "single_direction": np.outer(rng.normal(size=n), rng.normal(size=d)),
    }


def _far_from_threshold(tau: np.ndarray, eps: float) -> bool:
    return not np.any(np.abs(tau - eps) <= 1e-9 * max(eps, 1.0))


@pytest.mark.parametrize("d", [3, 8])
def test_same_set_as_in_memory_on_key_families(d):
    rng = np.random.default_rng(d)
    n = 1500
    compared = set()
    for name, K in _families(rng, n, d).items():
        tau = leverage_scores(K)
        for eps in (0.2, 0.004):
            if not _far_from_threshold(tau, eps):  # a tau within rounding of eps may go either way in any code
                continue
            compared.add(name)
            want = universal_set(K, eps)
            got = parallel_universal_set(K, eps, chunk_rows=257)
            assert np.array_equal(got, want), (name, eps, len(got), len(want))
            assert np.array_equal(got, streaming_universal_set([K[:600], K[600:]], eps)), (name, eps)
            assert len(got) <= d / eps + 1e-9
    assert len(compared) >= 10, compared


def test_chunk_layouts_and_inputs():
    rng = np.random.default_rng(7)
    K = rng.standard_t(2, size=(2000, 4))
    want = universal_set(K, 0.01)
    assert want.size > 0
    for chunk_rows in (7, 64, 2000, 10**6):
        assert np.array_equal(parallel_universal_set(K, 0.01, chunk_rows=chunk_rows), want)
    assert np.array_equal(parallel_universal_set(da.from_array(K, chunks=(333, 2)), 0.01), want)
    assert np.array_equal(parallel_universal_set([K[:5], K[5:1500], K[1500:]], 0.01), want)
    assert np.array_equal(parallel_universal_set(K, 0.01, scheduler="synchronous"), want)


def test_distributed_client():
    distributed = pytest.importorskip("distributed")
    rng = np.random.default_rng(3)
    K = rng.normal(size=(1500, 3)) * rng.exponential(size=(1500, 1)) ** 3
    with distributed.Client(processes=False, n_workers=2, threads_per_worker=1, dashboard_address=None) as client:
        got = parallel_universal_set(K, 0.01, chunk_rows=200, client=client)
    assert np.array_equal(got, universal_set(K, 0.01))


def test_errors():
    with pytest.raises(ParameterError):
        parallel_universal_set(np.ones(3), 0.1)
    with pytest.raises(ParameterError):
        parallel_universal_set(np.ones((3, 2)), 0.0)
    with pytest.raises(ParameterError):
        parallel_universal_set(np.ones((3, 2)), 0.1, chunk_rows=0)
    with pytest.raises(NumericalError):
        parallel_universal_set(np.array([[1.0, np.nan]]), 0.1)
    assert parallel_universal_set(np.zeros((0, 2)), 0.1).size == 0
    assert parallel_universal_set(np.zeros((5, 2)), 0.1).size == 0


def test_empty_chunks_are_skipped_by_the_tree():
    # A list of chunks may hold empty ones (zero rows add nothing to K^T K): the set is unchanged.
    rng = np.random.default_rng(11)
    K = rng.standard_t(2, size=(900, 3))
    want = universal_set(K, 0.02)
    assert want.size > 0
    empty = np.zeros((0, 3))
    for chunks in ([empty, K], [K[:400], empty, K[400:]], [K, empty], [empty, K[:1], empty, K[1:], empty]):
        assert np.array_equal(parallel_universal_set(chunks, 0.02, scheduler="synchronous"), want)


def test_missing_dask_is_one_clear_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "dask", None)  # import dask now raises ImportError
    monkeypatch.setitem(sys.modules, "dask.array", None)
    with pytest.raises(ParameterError) as info:
        parallel_universal_set(np.ones((3, 2)), 0.1)
    assert str(info.value) == "parallel_universal_set needs Dask: pip install 'finegrained[parallel]'"


def _message(call) -> str:
    with pytest.raises((ParameterError, NumericalError)) as info:
        call()
    return str(info.value)


def test_refusals_are_one_exact_message():
    ones = np.ones((3, 2))
    assert _message(lambda: parallel_universal_set(np.ones(3), 0.1)) == \
        "K must be a 2-D matrix, got an array of shape (3,)"
    assert _message(lambda: parallel_universal_set(da.ones(3, chunks=2), 0.1)) == \
        "K must be a 2-D array, got 1 dimensions"
    assert _message(lambda: parallel_universal_set(da.ones((2, 2, 2), chunks=1), 0.1)) == \
        "K must be a 2-D array, got 3 dimensions"
    assert _message(lambda: parallel_universal_set(ones, 0.1, chunk_rows=0)) == "chunk_rows must be >= 1, got 0"
    assert _message(lambda: parallel_universal_set(np.array([[1.0, np.inf]]), 0.1)) == \
        "K contains NaN or infinite entries"
    for eps in (0.0, 1.5, np.nan):  # the same eps refusal as the in-memory universal set
        assert _message(lambda e=eps: parallel_universal_set(ones, e)) == _message(lambda e=eps: universal_set(ones, e))


def test_every_return_path_gives_int64_indices_and_boundaries_are_accepted():
    rng = np.random.default_rng(5)
    col = rng.standard_t(2, size=(60, 1))  # d = 1: tau_j = k_j^2 / sum k^2
    cases = [(np.zeros((0, 2)), 0.1), (np.zeros((4, 0)), 0.1), (np.zeros((5, 2)), 0.1), (col, 0.01),
             (rng.normal(size=(9, 3)), 1.0)]
    for K, eps in cases:
        got = parallel_universal_set(K, eps, chunk_rows=1, scheduler="synchronous")
        assert got.dtype == np.int64 and got.ndim == 1, (K.shape, got.dtype)
        assert np.array_equal(got, universal_set(K, eps)), K.shape
    tau = col[:, 0] ** 2 / np.sum(col**2)
    assert np.array_equal(parallel_universal_set(col, 0.01, chunk_rows=1), np.flatnonzero(tau >= 0.01))
    assert parallel_universal_set(col, 0.01).size > 0


def test_a_score_equal_to_eps_is_kept():
    # Orthogonal keys: every tau is exactly 1 (the in-memory scores say so), so eps = 1 keeps them all (>=, not >).
    K = np.diag([3.0, 0.5, 4.0])
    assert leverage_scores(K).tolist() == [1.0, 1.0, 1.0]
    for chunk_rows in (1, 2, 3):
        assert parallel_universal_set(K, 1.0, chunk_rows=chunk_rows).tolist() == [0, 1, 2]


def test_a_column_beyond_the_float_range_is_refused_like_in_memory():
    # Balancing divides column 0 by 2^997: 1e-300 then flushes to 0, which must raise, not silently drop the key.
    K = np.array([[1e300, 1.0], [1e-300, 2.0], [3.0, 1.0]])
    message = ("a column of K spans more than the float64 range (a nonzero entry is below 2^-1074 times the largest "
               "one after balancing); rescale the inputs")
    for chunk_rows in (1, 3):
        assert _message(lambda c=chunk_rows: parallel_universal_set(K, 0.1, chunk_rows=c)) == message
    assert _message(lambda: universal_set(K, 0.1)) == message


def test_a_dask_array_with_empty_row_chunks():
    # dask's own column max raised on a 0-row chunk; such chunks hold no keys and are dropped
    K = np.random.default_rng(0).normal(size=(5, 3))
    for chunks in (((2, 0, 3), (3,)), ((0, 5), (3,)), ((5, 0), (3,)), ((1, 0, 0, 4), (1, 2))):
        got = parallel_universal_set(da.from_array(K, chunks=chunks), 0.3, scheduler="synchronous")
        assert got.tolist() == universal_set(K, 0.3).tolist()
    empty = parallel_universal_set(da.from_array(np.zeros((0, 3)), chunks=((0,), (3,))), 0.3, scheduler="synchronous")
    assert empty.tolist() == [] and empty.dtype == np.int64
