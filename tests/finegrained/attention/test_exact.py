"""The exact oracle against a dense reference and mpmath, at ordinary and extreme score ranges, with bounded memory.

The properties draw the matrices themselves (hypothesis.extra.numpy), with shapes that cross the query-block
boundary (blocks have at least ``MIN_BLOCK_ROWS`` = 32 rows; ``tile_bytes=8`` forces exactly 32) and the key-group
limit (``MAX_GROUPS`` support patterns), and score radii up to ~1e5, where a stored log carries ``|L| 2^-52`` of
rounding: there the oracle's own certificate, not a fixed tolerance, is what is checked against mpmath.
"""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from finegrained.attention import ORACLES, exact
from finegrained.attention.exact import MAX_GROUPS, MIN_BLOCK_ROWS, exact_oracle
from finegrained.attention.reference import reference
from instances.aattc import AAttCInstance
from instances.errors import NumericalError, ParameterError
from instances.logspace import LogArray


def dense(Q, K, V, scale):
    return AAttCInstance(Q, K, V, B=np.inf, log_eps_a=0.0, scale=scale).brute_force_solve()


def assert_close(out, ref, tol=1e-9):
    assert np.array_equal(out.sign, ref.sign)
    nz = ref.sign != 0
    assert np.allclose(out.log_abs[nz], ref.log_abs[nz], rtol=0, atol=tol)


#: Unit entries: mostly arbitrary floats, often one of a few values, so that rows repeat and scores tie.
_UNIT = st.one_of(st.floats(-1, 1, allow_subnormal=False), st.sampled_from([0.0, 1.0, -1.0, 0.5]))


@st.composite
def attention_inputs(draw, max_q=2 * MIN_BLOCK_ROWS + 6, max_k=12, max_d=4, max_dv=3, max_log10_radius=4.5):
    """(Q, K, V, scale): drawn matrices, queries scaled to a drawn radius 10^r, values with zeros and both signs."""
    # Half the draws straddle the block boundaries (32, 64, ... rows), half the radii sit in the rounding regime.
    n_q = draw(st.one_of(st.integers(1, 6), st.integers(min(MIN_BLOCK_ROWS - 1, max_q), max_q)))
    n_k = draw(st.integers(1, max_k))
    d = draw(st.integers(1, max_d))
    d_v = draw(st.integers(1, max_dv))
    radius = 10.0 ** draw(st.one_of(st.floats(-2, 1), st.floats(max_log10_radius - 2, max_log10_radius)))
    Q = draw(hnp.arrays(np.float64, (n_q, d), elements=_UNIT)) * radius
    K = draw(hnp.arrays(np.float64, (n_k, d), elements=_UNIT))
    V = draw(hnp.arrays(np.float64, (n_k, d_v), elements=st.one_of(st.just(0.0), _UNIT,
                                                                   st.floats(-1e6, 1e6, allow_subnormal=False))))
    return Q, K, V, 1.0


@settings(max_examples=40, deadline=None)
@given(attention_inputs(), st.sampled_from([8, 2**20]), st.booleans())
def test_error_is_within_the_certificate_against_mpmath(inputs, tile, dedupe):
    """|log T~ - log T| <= the oracle's proven bound, entry by entry, against a 60-digit mpmath reference."""
    Q, K, V, scale = inputs
    ans = exact_oracle(Q, K, V, scale=scale, tile_bytes=tile, dedupe=dedupe)
    out = ans.output
    ref = reference(Q, K, V, scale=scale, dps=60)
    assert out.shape == ref.shape == (Q.shape[0], V.shape[1])
    bound = (np.broadcast_to(np.exp(ans.certificate.log_bound), out.shape) if ans.certificate.kind == "log"
             else np.full(out.shape, np.inf))
    # 60 digits cannot resolve every cancellation (1 - 1 + 1e-158, or +-1 on heavy keys beside a light one):
    # rows the two disagree on are recomputed with enough digits to hold the whole range of the terms.
    with np.errstate(invalid="ignore"):
        disagree = (out.sign != ref.sign) | (np.abs(out.log_abs - ref.log_abs) > bound + 1e-40)
    for i in np.flatnonzero(disagree.any(axis=1)):
        row = reference(Q[i : i + 1], K, V, scale=scale, dps=_digits_for_every_term(Q[i : i + 1], K, V, scale))
        ref = LogArray(np.vstack([ref.sign[:i], row.sign, ref.sign[i + 1 :]]),
                       np.vstack([ref.log_abs[:i], row.log_abs, ref.log_abs[i + 1 :]]))
    assert np.array_equal(out.sign, ref.sign)
    nz = ref.sign != 0
    err = np.abs(out.log_abs[nz] - ref.log_abs[nz])
    assert (err <= bound[nz] + 1e-40).all(), (err.max(), bound[nz][np.argmax(err - bound[nz])])
    # Independently of the certificate: float64 accuracy relative to the largest score (|L| 2^-52 per log).
    smax = float(np.abs(Q).sum(axis=1).max() * np.abs(K).max(initial=0.0))
    cancel = _cancellation_nats(Q, K, V, scale)[nz]
    assert (err <= 1e-12 + 64 * 2.0**-52 * (smax + 50.0) * np.exp(np.minimum(cancel, 18.0))).all()


def _digits_for_every_term(Q, K, V, scale) -> int:
    """Decimal digits that hold the largest and smallest term of every sum exactly enough to see cancellation."""
    S = scale * (Q @ K.T)
    v = np.abs(V[V != 0])
    span = (float(S.max() - S.min()) + (float(np.log(v.max() / v.min())) if v.size else 0.0)) / math.log(10)
    return int(60 + span + 20)


def _cancellation_nats(Q, K, V, scale):
    """log((P + N)/|P - N|) per entry: how much the output's sign mix amplifies relative errors (0: no mix)."""
    S = scale * (Q @ K.T)
    S = S - S.max(axis=1, keepdims=True)
    W = np.exp(S)
    both = (W @ np.abs(V))
    net = np.abs(W @ V)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(net > 0, np.log(both) - np.log(net), 0.0)


@settings(max_examples=30, deadline=None)
@given(attention_inputs(max_q=3 * MIN_BLOCK_ROWS + 2, max_k=20, max_d=6, max_log10_radius=2.5))
def test_tiling_and_merging_change_nothing_but_rounding(inputs):
    """Blocks of 32 rows vs one block, merged vs unmerged keys: the same answer to float64 rounding."""
    Q, K, V, scale = inputs
    one = exact(Q, K, V, scale=scale, tile_bytes=2**30, dedupe=False)
    # float64 rounding, amplified where V's signs cancel (up to e^18: beyond, the oracle recomputes exactly)
    tol = 1e-9 * max(1.0, float(np.abs(Q).max())) * float(np.exp(np.minimum(_cancellation_nats(Q, K, V, scale),
                                                                            18.0)).max(initial=1.0))
    for tile, dedupe in ((8, False), (8, True), (8 * K.shape[0] * 40, True)):
        assert_close(exact(Q, K, V, scale=scale, tile_bytes=tile, dedupe=dedupe), one, tol=tol)
    assert_close(one, dense(Q, K, V, scale), tol=tol)


@settings(max_examples=20, deadline=None)
@given(st.integers(MAX_GROUPS - 2, MAX_GROUPS + 4), st.integers(1, 2 * MIN_BLOCK_ROWS + 3), st.data())
def test_more_support_patterns_than_key_groups(n_patterns, n_q, data):
    """Keys whose value rows have many different zero patterns: around MAX_GROUPS they stop being grouped."""
    d_v = 3
    patterns = [(p >> np.arange(2 * d_v + 1)) & 1 for p in range(1, 2 ** (2 * d_v + 1))][:n_patterns]
    n_k = len(patterns)
    mags = data.draw(hnp.arrays(np.float64, (n_k, d_v), elements=st.floats(0.1, 10)))
    V = np.array([[(m if p[c] else 0.0) - (m if p[d_v + c] else 0.0) for c, m in enumerate(row)]
                  for p, row in zip(patterns, mags)])
    K = data.draw(hnp.arrays(np.float64, (n_k, 2), elements=st.floats(-1, 1)))
    Q = data.draw(hnp.arrays(np.float64, (n_q, 2), elements=st.floats(-1, 1))) * 300.0
    ans = exact_oracle(Q, K, V, scale=1.0, tile_bytes=8)
    ref = reference(Q, K, V, scale=1.0, dps=_digits_for_every_term(Q, K, V, 1.0))  # float64 dense would cancel
    assert np.array_equal(ans.output.sign, ref.sign)
    nz = ref.sign != 0
    bound = (np.broadcast_to(np.exp(ans.certificate.log_bound), ref.shape)[nz] if ans.certificate.kind == "log"
             else 1e-8 * np.exp(np.minimum(_cancellation_nats(Q, K, V, 1.0)[nz], 18.0)))
    assert (np.abs(ans.output.log_abs[nz] - ref.log_abs[nz]) <= bound + 1e-40).all()


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
    assert ORACLES["exact"] is exact_oracle


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


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_deduplication_changes_nothing(data):
    # entries from a few values, so that many rows repeat, queries crossing the block boundary
    n_q, n_k = data.draw(st.integers(1, MIN_BLOCK_ROWS + 8)), data.draw(st.integers(1, 14))
    d, d_v = data.draw(st.integers(0, 3)), data.draw(st.integers(1, 3))
    Q = data.draw(hnp.arrays(np.float64, (n_q, d), elements=st.sampled_from([-80.0, -40.0, 0.0, 40.0, 80.0])))
    K = data.draw(hnp.arrays(np.float64, (n_k, d), elements=st.sampled_from([-1.0, 0.0, -0.0, 1.0])))
    V = data.draw(hnp.arrays(np.float64, (n_k, d_v), elements=st.floats(-3, 3, allow_subnormal=False)))
    a, b = exact(Q, K, V, scale=1.0, tile_bytes=8), exact(Q, K, V, scale=1.0, dedupe=False)
    assert np.array_equal(a.sign, b.sign)
    assert np.allclose(a.log_abs[a.sign != 0], b.log_abs[b.sign != 0], rtol=0, atol=1e-9)
    assert_close(a, dense(Q, K, V, 1.0))


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(0, 40), st.integers(0, 4)),
                  elements=st.sampled_from([-1.0, 0.0, -0.0, 1.0, 2.5])))
def test_distinct_rows_never_merges_unequal_rows(X):
    from finegrained.attention.exact import distinct_rows

    reps, inverse = distinct_rows(X)
    assert np.array_equal(X[reps][inverse], X)  # signed zeros compare equal to 0.0
    assert len({tuple(r) for r in X[reps].tolist()}) == reps.size == len({tuple(r) for r in (X + 0.0).tolist()})


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
    Q, K, V = np.array(Q), np.array(K), np.array(V)
    out = exact(Q, K, V, scale=scale, dedupe=dedupe)
    ref = reference(Q, K, V, scale=scale, dps=500)
    assert np.array_equal(out.sign, ref.sign)
    assert np.allclose(out.log_abs[ref.sign != 0], ref.log_abs[ref.sign != 0], rtol=0, atol=1e-8)


def test_values_spanning_the_float_range():
    Q, K = np.array([[1.0]]), np.array([[0.0], [2000.0], [1776.0]])
    V = np.array([[1e300], [1e-300], [-1e-250]])  # the tiny values carry the dominant keys
    out, ref = exact(Q, K, V, scale=1.0), reference(Q, K, V, scale=1.0, dps=80)
    assert np.array_equal(out.sign, ref.sign) and np.allclose(out.log_abs, ref.log_abs, rtol=0, atol=1e-9)
    with pytest.raises(NumericalError, match="magnitudes spanning"):
        exact(np.array([[1.0]]), np.array([[0.0], [1.0]]), np.array([[1e308], [5e-324]]), scale=1.0)


class _Clock:
    """A stand-in for ``time.perf_counter``: each measured run lasts the next of ``durations`` seconds, and
    runs start 1 s apart from t = 10 s (so a start time mistaken for a duration is far off)."""

    def __init__(self, *durations: float):
        self.durations, self.calls, self.now, self.started = list(durations), 0, 10.0, False

    def perf_counter(self) -> float:
        self.calls += 1
        if self.started:
            self.now += self.durations.pop(0)
        else:
            self.now += 1.0
        self.started = not self.started
        return self.now


def test_gemm_rate_is_multiply_adds_per_second_of_the_best_run_cached_per_bucket(monkeypatch):
    """gemm_rate's contract (it picks block_rows' block size): ``rows * inner' * cols / best seconds`` with
    ``inner'`` the inner dimension rounded up to a multiple of 64 in [64, 2048], measured once per (rows, inner')."""
    import importlib
    import types

    ex = importlib.import_module("finegrained.attention.exact")  # the package attribute `exact` is the function
    monkeypatch.setattr(ex, "_GEMM_RATES", {})  # fake measurements must not leak into other tests' block sizes

    def rate(*args, durations, **kwargs):
        clock = _Clock(*durations)
        monkeypatch.setattr(ex, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
        return ex.gemm_rate(*args, **kwargs), clock.calls

    # best of the default 2 runs, default 1024 columns; inner 1 is measured as 64
    assert rate(3, 1, durations=(0.5, 0.25)) == (3 * 64 * 1024 / 0.25, 4)
    assert rate(3, 64, durations=(9.0,)) == (3 * 64 * 1024 / 0.25, 0)  # same bucket: cached, not measured
    assert rate(5, 65, cols=8, repeats=3, durations=(0.5, 2.0, 0.125)) == (5 * 128 * 8 / 0.125, 6)
    assert rate(5, 128, durations=()) == (5 * 128 * 8 / 0.125, 0)
    assert rate(2, 5000, cols=4, repeats=1, durations=(0.5,)) == (2 * 2048 * 4 / 0.5, 2)
    assert rate(2, 2048, durations=()) == (2 * 2048 * 4 / 0.5, 0)
    assert rate(7, 129, cols=2, repeats=0, durations=(4.0,)) == (7 * 192 * 2 / 4.0, 2)  # at least one run
    assert rate(1, 1, cols=3, repeats=1, durations=(0.0,)) == (1 * 64 * 3 / 1e-9, 2)  # a zero time is clamped
    assert set(ex._GEMM_RATES) == {(3, 64), (5, 128), (2, 2048), (7, 192), (1, 64)}
    monkeypatch.undo()
    measured = ex.gemm_rate(3, 10, cols=8)  # a real measurement: a positive, finite rate
    assert math.isfinite(measured) and measured > 0
