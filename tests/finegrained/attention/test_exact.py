"""The exact oracle against a dense reference, at ordinary and extreme score ranges, with bounded memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finegrained.attention import ORACLES, exact
from instances.aattc import AAttCInstance
from instances.errors import NumericalError, ParameterError


def dense(Q, K, V, scale):
    return AAttCInstance(Q, K, V, B=np.inf, log_eps_a=0.0, scale=scale).brute_force_solve()


def assert_close(out, ref, tol=1e-9):
    assert np.array_equal(out.sign, ref.sign)
    nz = ref.sign != 0
    assert np.allclose(out.log_abs[nz], ref.log_abs[nz], rtol=0, atol=tol)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(0, 5), st.integers(0, 3),
       st.sampled_from([0.1, 1.0, 30.0, 3000.0]), st.integers(0, 2**32 - 1), st.sampled_from([8, 200, 10**6]))
def test_matches_dense_reference(n_q, n_k, d, d_v, spread, seed, tile):
    rng = np.random.default_rng(seed)
    Q, K = rng.normal(size=(n_q, d)) * spread, rng.normal(size=(n_k, d))
    V = rng.normal(size=(n_k, d_v)) * (rng.random((n_k, d_v)) < 0.6)
    out = exact(Q, K, V, scale=1.0, tile_bytes=tile)
    assert out.shape == (n_q, d_v)
    assert_close(out, dense(Q, K, V, 1.0), tol=1e-9 * max(1.0, spread))


def test_outputs_far_below_float_range():
    # scores differ by 1e4 between two keys: the light key's weight is exp(-1e4)
    Q = np.array([[1.0]])
    K = np.array([[1e4], [0.0]])
    V = np.array([[0.0], [1.0]])
    out = exact(Q, K, V, scale=1.0)
    assert out.sign[0, 0] == 1 and np.isclose(out.log_abs[0, 0], -1e4)
    with pytest.raises(NumericalError):
        out.to_float()


def test_wildly_different_value_magnitudes_use_the_exact_fallback():
    rng = np.random.default_rng(5)
    Q, K = rng.normal(size=(40, 3)) * 300, rng.normal(size=(30, 3))
    V = np.where(rng.random((30, 2)) < 0.5, 1e-250, 1.0) * rng.normal(size=(30, 2))
    assert_close(exact(Q, K, V, scale=1.0, tile_bytes=64), dense(Q, K, V, 1.0), tol=1e-7)


def test_default_scale_is_one_over_d():
    rng = np.random.default_rng(2)
    Q, K, V = rng.normal(size=(4, 6)), rng.normal(size=(5, 6)), rng.normal(size=(5, 2))
    assert_close(exact(Q, K, V), dense(Q, K, V, 1 / 6))


def test_errors():
    Q = np.ones((2, 3))
    with pytest.raises(ParameterError, match="share dimension"):
        exact(Q, np.ones((2, 4)), np.ones((2, 1)))
    with pytest.raises(ParameterError, match="one row per key"):
        exact(Q, np.ones((2, 3)), np.ones((3, 1)))
    with pytest.raises(ParameterError, match="at least one key"):
        exact(Q, np.ones((0, 3)), np.ones((0, 1)))
    with pytest.raises(NumericalError, match="NaN or infinite"):
        exact(Q * np.nan, np.ones((2, 3)), np.ones((2, 1)))
    with pytest.raises(NumericalError, match="overflow"):
        exact(Q * 1e200, np.ones((2, 3)) * 1e200, np.ones((2, 1)))
    assert ORACLES["exact"] is exact


def test_memory_stays_below_the_score_matrix():
    n, d = 3000, 8
    rng = np.random.default_rng(0)
    Q, K, V = rng.normal(size=(n, d)), rng.normal(size=(n, d)), rng.normal(size=(n, 1))
    tracemalloc.start()
    exact(Q, K, V, tile_bytes=2**20)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < n * n * 8 / 4  # the n x n score matrix would be 72 MB; the tiles take a few MB


@pytest.mark.parametrize(
    ("Q", "K", "V", "log_expected"),
    [
        # positive and negative parts cancel to 1e-20 of their size: recomputed in multiprecision
        ([[0.0]], [[0.0], [0.0], [0.0]], [[1.0], [-1.0], [1e-20]], np.log(1e-20 / 3)),
        ([[100.0]], [[10.0], [10.0], [-10.0]], [[1e-300], [-1e-300], [1.0]], -2000 - np.log(2)),
        # column sums that would overflow float64, and subnormal values
        ([[0.0]], [[0.0], [0.0], [0.0]], [[1.7e308], [1.7e308], [1.0]], np.log(1.7e308) + np.log(2 / 3)),
        ([[0.0]], [[0.0], [0.0], [0.0]], [[5e-324], [5e-324], [5e-324]], np.log(5e-324)),
    ],
)
def test_extreme_values_are_exact(Q, K, V, log_expected):
    out = exact(np.array(Q), np.array(K), np.array(V), scale=1.0)
    assert out.sign[0, 0] == 1 and np.isclose(out.log_abs[0, 0], log_expected, rtol=0, atol=1e-9)


def test_exact_cancellation_is_zero_and_scale_overflow_is_refused():
    out = exact(np.zeros((1, 1)), np.zeros((2, 1)), np.array([[1.0], [-1.0]]), scale=1.0)
    assert out.sign[0, 0] == 0 and np.isneginf(out.log_abs[0, 0])
    with pytest.raises(NumericalError, match="scale \\* Q overflows"):
        exact(np.array([[1e300]]), np.array([[1e-300], [0.0]]), np.ones((2, 1)), scale=1e10)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(0, 3), st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_deduplication_changes_nothing(n_q, n_k, d, d_v, seed):
    rng = np.random.default_rng(seed)
    # few distinct values, so that many rows repeat
    Q = rng.integers(-2, 3, (n_q, d)) * 40.0
    K = rng.integers(-1, 2, (n_k, d)).astype(float)
    V = rng.normal(size=(n_k, d_v))
    a, b = exact(Q, K, V, scale=1.0), exact(Q, K, V, scale=1.0, dedupe=False)
    assert np.array_equal(a.sign, b.sign)
    assert np.allclose(a.log_abs[a.sign != 0], b.log_abs[b.sign != 0], rtol=0, atol=1e-9)
    assert_close(a, dense(Q, K, V, 1.0))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 20), st.integers(0, 4), st.integers(0, 2**32 - 1))
def test_distinct_rows_never_merges_unequal_rows(n, d, seed):
    from finegrained.attention.exact import distinct_rows

    rng = np.random.default_rng(seed)
    X = rng.integers(-1, 2, (n, d)).astype(float)
    X[rng.random(n) < 0.2] = -0.0  # signed zeros compare equal to 0.0
    reps, inverse = distinct_rows(X)
    assert np.array_equal(X[reps][inverse], X)
    assert len({tuple(r) for r in X[reps].tolist()}) == reps.size == len({tuple(r) for r in X.tolist()})


@pytest.mark.parametrize("dedupe", [True, False])
@pytest.mark.parametrize(
    ("Q", "K", "V", "scale"),
    [
        # cancellation on top of large scores: the stored logs carry |L| * 2^-52 of error
        ([[1.0]], [[10000.0], [10000.0], [9983.0]], [[1.0], [-1.0], [1.0]], 1.0),
        # float result exactly zero although the true value is not
        ([[1.0]], [[0.0], [1.0]], [[1.0], [-1.0]], 1e-55),
        ([[1.0]], [[0.0], [-420.0], [0.0]], [[0.1], [0.1], [-0.1]], 1.0),
        # duplicate keys whose values cancel exactly
        ([[60.0, 90.0, -0.0]], [[2.0, 3.0, -0.0], [-2.0, 1.0, 1.0000000000000002], [2.0, 3.0, -0.0],
                                [-2.0, 1.0, 1.0000000000000002]], [[-0.2, 0.2], [0.1, -0.1], [-0.1, 0.1], [-0.2, 0.1]],
         -1.0),
    ],
)
def test_matches_high_precision_reference(Q, K, V, scale, dedupe):
    from finegrained.attention.reference import reference

    Q, K, V = np.array(Q), np.array(K), np.array(V)
    out = exact(Q, K, V, scale=scale, dedupe=dedupe)
    ref = reference(Q, K, V, scale=scale, dps=500)
    assert np.array_equal(out.sign, ref.sign)
    assert np.allclose(out.log_abs[ref.sign != 0], ref.log_abs[ref.sign != 0], rtol=0, atol=1e-8)


def test_values_spanning_the_float_range():
    from finegrained.attention.reference import reference

    Q, K = np.array([[1.0]]), np.array([[0.0], [2000.0], [1776.0]])
    V = np.array([[1e300], [1e-300], [-1e-250]])  # the tiny values carry the dominant keys
    out, ref = exact(Q, K, V, scale=1.0), reference(Q, K, V, scale=1.0, dps=80)
    assert np.array_equal(out.sign, ref.sign) and np.allclose(out.log_abs, ref.log_abs, rtol=0, atol=1e-9)
    with pytest.raises(NumericalError, match="magnitudes spanning"):
        exact(np.array([[1.0]]), np.array([[0.0], [1.0]]), np.array([[1e308], [5e-324]]), scale=1.0)
