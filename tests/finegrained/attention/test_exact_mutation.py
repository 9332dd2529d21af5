"""The exact oracle's preparation and helpers, checked field by field against independent recomputations.

These pin the parts of :mod:`finegrained.attention.exact` whose mistakes change no answer beyond rounding on the
inputs of ``test_exact.py`` (how keys are grouped, which columns a group skips, the block height, the column
scales), and the small helpers with closed forms (Higham's ``gamma``, the stacked log-sum-exp). Every input is
built inside its test, so that mutation testing associates the builders with these tests.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from finegrained.attention.exact import (
    BLOCK_ROW_CANDIDATES,
    MAX_GROUPS,
    MIN_BLOCK_ROWS,
    _gamma,
    _key_groups,
    _lse_stack,
    _scaled_columns,
    block_rows,
    distinct_rows,
    prepare,
)
from instances.errors import NumericalError
from instances.logspace import LOG_HUGE, LOG_TINY


def _patterns(W):
    """Support pattern (tuple of bools over the 2 d_v value columns) of every row of ``W``."""
    return [tuple(bool(x) for x in row[:-1] > 0) for row in W]


def _check_grouping(W, order, slices):
    """``order``/``slices`` partition the rows of ``W`` by support pattern (or all in one group past MAX_GROUPS)."""
    n = W.shape[0]
    pats = _patterns(W)
    distinct = sorted(set(pats))
    assert sorted(order.tolist()) == list(range(n))
    edges = [s.start for s in slices] + [slices[-1].stop]
    assert edges[0] == 0 and edges[-1] == n and all(a < b for a, b in zip(edges, edges[1:]))
    if len(distinct) > MAX_GROUPS:
        assert order.tolist() == list(range(n)) and slices == [slice(0, n)]
        return
    assert len(slices) == len(distinct)
    seen = []
    for s in slices:
        rows = order[s]
        assert rows.tolist() == sorted(rows.tolist())  # stable: original order inside a group
        group_pats = {pats[i] for i in rows}
        assert len(group_pats) == 1
        seen.append(group_pats.pop())
    assert len(set(seen)) == len(seen)


@pytest.mark.parametrize("d_v", [1, 2, 3, 31, 32, 40])
def test_key_groups_partition_keys_by_their_support_pattern(d_v):
    """One group per support pattern of the 2 d_v value columns (the count column is ignored), in stable order;
    both code paths (bit codes up to 62 columns, packed bits beyond) and the fallback past MAX_GROUPS."""
    rng = np.random.default_rng(d_v)
    for n_patterns in (1, 2, MAX_GROUPS - 1, MAX_GROUPS, MAX_GROUPS + 1, MAX_GROUPS + 3):
        base = rng.random((n_patterns, 2 * d_v)) < 0.5
        base[:, -1] = False  # pattern differences must come from the other columns too
        for i in range(n_patterns):  # make the patterns pairwise distinct, differing in the first columns too
            base[i, : min(2 * d_v, 4)] = [(i >> b) & 1 for b in range(min(2 * d_v, 4))]
            if 2 * d_v > 4:
                base[i, 4:] = rng.random(2 * d_v - 4) < 0.5
        pats = {tuple(r) for r in base}
        rows = rng.integers(0, n_patterns, 3 * n_patterns + 5)
        W = np.concatenate([base[rows] * rng.uniform(0.5, 2.0, (rows.size, 2 * d_v)),
                            rng.integers(1, 4, (rows.size, 1)).astype(float)], axis=1)
        order, slices = _key_groups(W)
        _check_grouping(W, order, slices)
        used = {tuple(bool(x) for x in r[:-1] > 0) for r in W}
        assert len(slices) == (1 if len(used) > MAX_GROUPS else len(used))
        assert len(used) <= len(pats)


def test_key_groups_on_one_key_and_on_patterns_that_differ_only_in_the_last_value_column():
    """A single key is one group; keys differing only in the last value column (the one before the counts) and
    only in the first one are separated."""
    order, slices = _key_groups(np.array([[1.0, 0.0, 1.0]]))
    assert order.tolist() == [0] and slices == [slice(0, 1)]
    W = np.array([[1.0, 0.0, 0.0, 1.0], [1.0, 0.0, 2.0, 1.0], [0.0, 0.0, 2.0, 1.0], [1.0, 0.0, 0.0, 3.0]])
    order, slices = _key_groups(W)
    _check_grouping(W, order, slices)
    assert len(slices) == 3
    # 62 pattern columns (d_v = 31), the widest bit code: patterns differing only in column 0, under a high column
    wide = np.zeros((3, 63))
    wide[:, 61] = wide[:, 60] = wide[:, -1] = 1.0
    wide[1, 0] = 1.0
    wide[2, 1] = 1.0
    order, slices = _key_groups(wide)
    _check_grouping(wide, order, slices)
    assert len(slices) == 3


@pytest.mark.parametrize("dedupe", [False, True])
def test_prepare_fields_against_independent_recomputation(dedupe):
    """Every field of :class:`Prepared` and of its :class:`KeyGroup` s, with repeated keys and queries, zero
    coordinates in some keys (column skips) and value columns of both signs, zeros and different magnitudes."""
    rng = np.random.default_rng(7)
    d, d_v = 5, 3
    K = rng.normal(size=(9, d))
    K[:4, 3:] = 0.0  # keys zero on two coordinates
    K[6] = K[1]  # a repeated key
    V = rng.normal(size=(9, d_v)) * np.array([1.0, 1e3, 1e-3])
    V[:4, 0] = np.abs(V[:4, 0])
    V[4:, 0] = 0.0
    V[:, 2] = np.abs(V[:, 2])
    Q = rng.normal(size=(7, d))
    Q[5] = Q[0]  # a repeated query
    scale = 0.375
    prep = prepare(Q, K, V, scale=scale, dedupe=dedupe)
    # queries
    q_reps = distinct_rows(Q)[0] if dedupe else np.arange(Q.shape[0])
    assert np.array_equal(prep.Q, Q[q_reps])
    assert np.array_equal(prep.Qs, Q[q_reps] * scale)
    assert prep.scale == scale and prep.d_v == d_v and prep.c == 2 * d_v and prep.n_q == q_reps.size
    if dedupe:
        assert prep.q_inverse is not None and np.array_equal(prep.Q[prep.q_inverse], Q)
    else:
        assert prep.q_inverse is None
    assert prep.K_all is not None and np.array_equal(prep.K_all, K) and np.array_equal(prep.V_all, V)
    # column scales: the geometric middle of each column's non-zero magnitudes
    A = np.abs(V)
    mid = [(np.log(A[A[:, j] > 0, j]).max() + np.log(A[A[:, j] > 0, j]).min()) / 2 for j in range(d_v)]
    assert np.allclose(prep.log_col_scale, np.r_[mid, mid, 0.0], rtol=0, atol=1e-12)
    # keys: merged and grouped
    n_distinct = 8 if dedupe else 9
    assert prep.n_k == n_distinct and prep.KT.shape == (d, n_distinct) and prep.KT.flags.c_contiguous
    Vs = V / np.exp(mid)
    W_full = np.concatenate([np.maximum(Vs, 0), np.maximum(-Vs, 0), np.ones((9, 1))], axis=1)
    got_keys, got_W = [], []
    for g in prep.groups:
        assert g.c == 2 * d_v and g.size == g.W.shape[0] and g.KT.flags.c_contiguous and g.W.flags.c_contiguous
        full_keys = prep.KT.T[sum(len(x) for x in got_keys): sum(len(x) for x in got_keys) + g.size]
        nz = np.flatnonzero((full_keys != 0).any(axis=0))
        if nz.size == d:
            assert g.cols is None and np.array_equal(g.KT, full_keys.T)
        else:
            assert np.array_equal(g.cols, nz) and np.array_equal(g.KT, full_keys[:, nz].T)
        with np.errstate(divide="ignore"):
            assert np.array_equal(g.log_wmax, np.log(g.W.max(axis=0)))
        assert len({tuple(r[:-1] > 0) for r in g.W}) == 1
        got_keys.append(full_keys)
        got_W.append(g.W)
    assert sum(g.size for g in prep.groups) == n_distinct
    assert len({tuple(g.W[0, :-1] > 0) for g in prep.groups}) == len(prep.groups)
    keys = np.concatenate(got_keys)
    Wm = np.concatenate(got_W)
    if dedupe:  # each prepared key's W row is the sum of the W rows of the original keys equal to it
        for key, w in zip(keys, Wm):
            same = (K == key).all(axis=1)
            assert np.allclose(w, W_full[same].sum(axis=0), rtol=1e-15, atol=0) and w[-1] == same.sum()
    else:  # the keys and their W rows, permuted by the grouping only
        perm = [next(i for i in range(9) if (K[i] == key).all() and np.allclose(W_full[i], w, rtol=1e-15, atol=0))
                for key, w in zip(keys, Wm)]
        assert sorted(perm) == list(range(9))
    assert prep.work() == sum(prep.n_q * g.KT.shape[0] * g.size for g in prep.groups)
    assert prep.work() < prep.n_q * d * n_distinct  # the zero coordinates are skipped


def test_block_rows_takes_the_largest_fitting_block_on_small_calls():
    """Below CALIBRATE_WORK: ``min(n_q, max(MIN_BLOCK_ROWS, tile_bytes // (8 * widest group)))``."""
    rng = np.random.default_rng(3)
    K = rng.normal(size=(10, 3))
    V = np.abs(rng.normal(size=(10, 1))) + 0.1  # one pattern: a single group of 10 keys
    for n_q in (1, 31, 32, 33, 100, 3000):
        prep = prepare(rng.normal(size=(n_q, 3)), K, V, scale=1.0, dedupe=False)
        widest = max(g.size for g in prep.groups)
        assert widest == 10
        for tile in (1, 8, 8 * 10 * 32 - 1, 8 * 10 * 32, 8 * 10 * 33, 8 * 10 * 100, 8 * 10 * 5000):
            expect = min(n_q, max(MIN_BLOCK_ROWS, tile // (8 * widest)))
            assert block_rows(prep, tile) == expect
    assert BLOCK_ROW_CANDIDATES[0] >= MIN_BLOCK_ROWS


def test_block_rows_counts_the_widest_group():
    """The tile is sized by the largest key group, not the first or the total."""
    K = np.arange(1.0, 13.0).reshape(12, 1)
    V = np.zeros((12, 1))
    V[:3, 0] = 1.0  # group of 3 keys with a positive value, 9 keys with value 0
    prep = prepare(np.ones((500, 1)), K, V, scale=1.0, dedupe=False)
    assert sorted(g.size for g in prep.groups) == [3, 9]
    assert block_rows(prep, 8 * 9 * 40) == 40
    assert block_rows(prep, 8 * 9 * 40 + 8 * 9 - 1) == 40


def test_scaled_columns_closed_form_and_refusal():
    """Each non-zero column divided by ``exp((log max + log min)/2)`` of its non-zero magnitudes; zero columns kept;
    a column spanning more than the float range allows (with ``n`` rows) is refused with its numbers."""
    V = np.array([[4.0, 0.0, -1e-300], [-0.25, 0.0, 0.0], [1.0, 0.0, 1e300]])
    Vs, log_scale = _scaled_columns(V)
    assert np.allclose(log_scale, [0.0, 0.0, 0.0], atol=1e-9)
    V = np.array([[8.0, 0.0, 3.0], [-2.0, 0.0, 3.0]])
    Vs, log_scale = _scaled_columns(V)
    assert np.allclose(log_scale, [math.log(4.0), 0.0, math.log(3.0)], rtol=0, atol=1e-15)
    assert np.allclose(Vs, [[2.0, 0.0, 1.0], [-0.5, 0.0, 1.0]], rtol=1e-15, atol=0)
    Vs, log_scale = _scaled_columns(np.zeros((0, 2)))
    assert Vs.shape == (0, 2) and log_scale.tolist() == [0.0, 0.0]
    limit = min(-LOG_TINY, LOG_HUGE) - math.log(2) - 2
    with pytest.raises(NumericalError) as err:
        _scaled_columns(np.array([[5e-324], [1e300]]))
    span = math.log(1e300) - math.log(5e-324)
    expect = (f"a column of V has non-zero magnitudes spanning e^{span:.0f}; the exact oracle handles "
              f"at most e^{2 * limit:.0f} here (use finegrained.attention.reference)")
    assert str(err.value) == expect


def test_gamma_is_highams_bound():
    u = 2.0**-53
    for m in (0, 1, 2, 10, 10**6, 2**51):
        assert _gamma(m) == m * u / (1 - m * u)
    assert _gamma(2**52 - 1) < math.inf
    assert _gamma(2**52) == math.inf and _gamma(2**53) == math.inf


def test_lse_stack_matches_a_direct_log_sum_exp():
    a = np.array([[0.0, -np.inf, 1000.0], [-np.inf, -5.0, -1e4]])
    b = np.array([[0.0, -np.inf, 999.0], [-np.inf, -7.0, -1e4]])
    c = np.array([[math.log(2.0), -np.inf, -np.inf], [-np.inf, -np.inf, 3.0]])
    assert _lse_stack([a]) is a
    got = _lse_stack([a, b, c])
    expect = np.array([[math.log(4.0), -np.inf, 1000.0 + math.log1p(math.exp(-1.0))],
                       [-np.inf, -5.0 + math.log1p(math.exp(-2.0)), 3.0]])
    assert np.array_equal(np.isneginf(got), np.isneginf(expect))
    fin = np.isfinite(expect)
    assert np.allclose(got[fin], expect[fin], rtol=1e-15, atol=1e-15)


def test_exact_oracle_answer_fields_and_backend_refusals():
    """The answer's certificate kind, per-entry log bound, detail and info; the two refusals of ``_run`` word for
    word; an uncertifiable bound gives a ``"none"`` certificate with its detail."""
    from finegrained.attention.exact import _exact, answer_with_bound, exact, exact_oracle
    from instances.errors import ParameterError
    from instances.logspace import LogArray

    rng = np.random.default_rng(11)
    Q, K, V = rng.normal(size=(5, 3)), rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    ans = exact_oracle(Q, K, V, scale=0.5, log_eps=-3.0)
    out, bound = _exact(Q, K, V, scale=0.5, tile_bytes=2**20, dedupe=True)
    assert ans.info == {"backend": "local", "workers": 1}
    assert ans.certificate.kind == "log"
    assert ans.certificate.detail == ("a priori float64 error analysis of the tiled log-sum-exp "
                                      "(finegrained.attention.exact._error_nats)")
    assert np.array_equal(ans.certificate.log_bound, np.log(bound))
    assert bound.shape == (5, 2) and (bound > 0).all() and (bound < 1e-10).all()
    assert np.array_equal(ans.output.sign, out.sign) and np.array_equal(ans.output.log_abs, out.log_abs)
    plain = exact(Q, K, V, scale=0.5)
    assert np.array_equal(plain.log_abs, out.log_abs)
    with pytest.raises(ParameterError) as err:
        exact(Q, K, V, client="tcp://x:1")
    assert str(err.value) == "client= is for backend='dask'"
    with pytest.raises(ParameterError) as err:
        exact_oracle(Q, K, V, backend="gpu")
    assert str(err.value) == "unknown backend 'gpu'; expected one of local, dask"
    lone = LogArray(np.ones((1, 1), dtype=np.int8), np.zeros((1, 1)))
    for bad in (None, np.array([[np.inf]])):
        none = answer_with_bound(lone, bad, {"k": 1})
        assert none.certificate.kind == "none" and none.info == {"k": 1}
        assert none.certificate.detail == "cancellation beyond what the float analysis bounds"
    zero = answer_with_bound(lone, np.array([[0.0]]))
    assert zero.certificate.kind == "log" and np.isneginf(zero.certificate.log_bound).all() and zero.info == {}


@pytest.mark.parametrize("shape", [(0, 3), (1, 3), (5, 0), (40, 3), (200, 6)])
def test_distinct_rows_keeps_the_first_occurrence_of_each_row(shape):
    """Without hash collisions (random real entries), the representatives are exactly the first occurrences, in
    index order, and ``inverse`` maps every row to the position of its own first occurrence; int64 outputs."""
    rng = np.random.default_rng(shape[0] + 10 * shape[1])
    n, d = shape
    pool = rng.normal(size=(max(n // 3, 1), d))
    X = pool[rng.integers(0, pool.shape[0], n)]
    reps, inverse = distinct_rows(X)
    assert reps.dtype == np.int64 and inverse.dtype == np.int64 and inverse.shape == (n,) and reps.ndim == 1
    first = {}
    for i, row in enumerate(map(tuple, X)):
        first.setdefault(row, i)
    expect = sorted(first.values())
    assert reps.tolist() == expect
    assert inverse.tolist() == [expect.index(first[tuple(row)]) for row in X]
    assert np.array_equal(X[reps][inverse], X)


def test_distinct_rows_separates_rows_with_equal_projections():
    """Rows whose weighted sums collide are verified entry by entry and never merged."""
    weights = np.random.default_rng(20230226).uniform(1.0, 2.0, 2)
    a = np.array([weights[1], 0.0])
    b = np.array([0.0, weights[0]])  # a @ w == b @ w exactly
    X = np.array([a, b, a, b, a])
    reps, inverse = distinct_rows(X)
    assert np.array_equal(X[reps][inverse], X)
    assert all((X[reps[inverse[i]]] == X[i]).all() for i in range(5))
    # w1 * w0 == w0 * w1 exactly: one bucket headed by a, so each b keeps its own row (the projection is fixed)
    assert reps.tolist() == [0, 1, 3] and inverse.tolist() == [0, 1, 0, 2, 0]


def _bound_by_hand(Q, K, V, scale):
    """The a priori bound of ``_error_nats`` (its docstring), recomputed entry by entry with Python floats."""
    u = 2.0**-53
    n_k, d = K.shape
    smax = float(np.abs(Q * scale).max()) * float(np.abs(K).max()) * max(d, 1)
    delta = _gamma(d + 1) * smax + 4 * u * smax + math.log1p(_gamma(2 * n_k + d + 16)) + 2.0**-60
    out = np.zeros((Q.shape[0], V.shape[1]))
    for i, q in enumerate(Q):
        s = [scale * float(q @ k) for k in K]
        m = max(s)
        den = sum(math.exp(x - m) for x in s)
        log_den = m + math.log(den)
        for j in range(V.shape[1]):
            P = sum(math.exp(x - m) * max(v, 0.0) for x, v in zip(s, V[:, j]))
            N = sum(math.exp(x - m) * max(-v, 0.0) for x, v in zip(s, V[:, j]))
            if P == N == 0:  # an exactly-zero output (a zero column of V) is exact
                continue
            top = m + math.log(max(P, N))
            log_mag = abs(top) + abs(log_den)
            delta_part = delta + u * (log_mag + smax + 2000.0)
            rho = math.expm1(delta_part)
            kappa = 1.0 if P == 0 or N == 0 else (P + N) / abs(P - N)
            rel = rho * kappa
            out[i, j] = 2 * (-math.log1p(-rel) + delta_part)
    return out


@pytest.mark.parametrize("scale", [1.0, 0.25, 30.0])
def test_error_bound_is_the_documented_closed_form(scale):
    """The exact oracle's per-entry bound (no cancellation fix-up: kappa stays far below e^18) equals the bound of
    ``_error_nats``' docstring recomputed by hand: score error, exp/subtraction, the sums, the stored logs, the
    kappa amplification where V has both signs, the factor 2."""
    rng = np.random.default_rng(int(scale * 4))
    Q, K = rng.normal(size=(3, 4)), rng.normal(size=(6, 4))
    V = np.c_[np.abs(rng.normal(size=6)) + 0.5, -np.abs(rng.normal(size=6)) - 0.5, rng.normal(size=6),
              np.zeros(6)]
    V[:, 2] = np.where(np.arange(6) < 3, 2.0 + np.arange(6), -(1.0 + np.arange(6)))
    from finegrained.attention.exact import _exact

    _, bound = _exact(Q, K, V, scale=scale, tile_bytes=2**20, dedupe=False)
    expect = _bound_by_hand(Q, K, V, scale)
    assert np.allclose(bound, expect, rtol=1e-6, atol=0)


def test_block_rows_picks_the_fastest_fitting_block_ties_to_the_larger(monkeypatch):
    """Above CALIBRATE_WORK: the candidates whose tile fits are measured (with the widest inner dimension of the
    groups); the largest one within 10 % of the best rate wins, capped at n_q; a single fitting candidate (or
    none: MIN_BLOCK_ROWS) is taken unmeasured."""
    import importlib

    ex = importlib.import_module("finegrained.attention.exact")
    K = np.zeros((10, 6))
    K[:5, :2] = 1.0 + np.arange(10).reshape(5, 2)  # group 1: 5 keys on 2 coordinates
    K[5:, :] = 2.0 + np.arange(30).reshape(5, 6)  # group 2: 5 keys on all 6 coordinates
    V = np.r_[np.ones((5, 1)), -np.ones((5, 1))]
    prep = prepare(np.ones((5000, 6)), K, V, scale=1e-3, dedupe=False)
    assert sorted(g.KT.shape[0] for g in prep.groups) == [2, 6]
    calls = []
    table = {64: 1.0, 128: 5.0, 256: 4.6, 512: 4.4, 1024: 1.0}

    def fake_rate(rows, inner):
        calls.append((rows, inner))
        return table[rows]

    monkeypatch.setattr(ex, "gemm_rate", fake_rate)
    monkeypatch.setattr(ex, "CALIBRATE_WORK", 0)
    assert block_rows(prep, 8 * 5 * 1024) == 256  # 4.6 >= 0.9 * 5 > 4.4: the largest within 10 %
    assert calls == [(r, 6) for r in BLOCK_ROW_CANDIDATES]
    calls.clear()
    assert block_rows(prep, 8 * 5 * 300) == 256  # 512 and 1024 do not fit a 300-row tile
    assert calls == [(64, 6), (128, 6), (256, 6)]
    table[256] = 4.5  # exactly 0.9 * best: still a tie
    assert block_rows(prep, 8 * 5 * 300) == 256
    calls.clear()
    assert block_rows(prep, 8 * 5 * 64) == 64 and calls == []  # one candidate fits: no measurement
    assert block_rows(prep, 8 * 5 * 10) == MIN_BLOCK_ROWS and calls == []  # none fits: the minimum
    small = prepare(np.ones((100, 6)), K, V, scale=1e-3, dedupe=False)
    assert block_rows(small, 8 * 5 * 1024) == 100  # capped at n_q
    monkeypatch.setattr(ex, "CALIBRATE_WORK", prep.work() + 1)
    calls.clear()
    assert block_rows(prep, 8 * 5 * 1024) == 1024 and calls == []  # below the threshold: unmeasured
    monkeypatch.setattr(ex, "CALIBRATE_WORK", prep.work())
    assert block_rows(prep, 8 * 5 * 1024) == 256 and calls  # at the threshold: measured


def test_default_arguments_are_the_documented_ones():
    """``exact`` and ``exact_oracle`` merge identical keys by default (``dedupe=True``) and default to 1/d: on
    repeated keys the default call is bit-identical to the explicit one, and merging changes the last bits."""
    from finegrained.attention.exact import exact, exact_oracle

    rng = np.random.default_rng(5)
    base_K = rng.normal(size=(3, 4))
    K = base_K[rng.integers(0, 3, 40)]
    V = rng.normal(size=(40, 3)) * rng.uniform(0.1, 10.0, (40, 1))
    Q = rng.normal(size=(6, 4)) * 3.0
    default = exact(Q, K, V)
    merged = exact(Q, K, V, scale=0.25, dedupe=True)
    unmerged = exact(Q, K, V, scale=0.25, dedupe=False)
    assert np.array_equal(default.log_abs, merged.log_abs) and np.array_equal(default.sign, merged.sign)
    assert not np.array_equal(unmerged.log_abs, merged.log_abs)  # the inputs tell the two apart
    ans = exact_oracle(Q, K, V)
    assert np.array_equal(ans.output.log_abs, merged.log_abs)
    assert ans.info == {"backend": "local", "workers": 1}
