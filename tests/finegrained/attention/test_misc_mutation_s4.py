"""Session-4 mutation triage of finegrained.attention: exact's progress flag, the adversary's constrained mask,
MonomialIndex's messages and poly_plan's saturation of the rounding estimate at e^700.

Every input is built inside its test (mutmut ties a mutant only to the tests that call the mutated code).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from finegrained.attention.adversarial import decisions_survive
from finegrained.attention.exact import exact
from finegrained.attention.poly import MonomialIndex, poly_plan
from instances.errors import ParameterError
from instances.logspace import LogArray


def _exact(msg: str) -> str:
    return "^" + re.escape(msg) + "$"


def test_exact_forwards_progress_to_the_dask_backend_and_defaults_to_off(monkeypatch):
    import finegrained.attention.dask_backend as dask_backend

    seen = []

    def fake_exact_dask(Q, K, V, *, scale, client, tile_bytes, dedupe, progress):
        seen.append(progress)
        return "out", None, {"backend": "dask"}

    # the backend is looked up by module name at call time; a stand-in records what exact() passes it
    monkeypatch.setattr(dask_backend, "exact_dask", fake_exact_dask)
    Q = np.eye(2)
    assert exact(Q, Q, np.ones((2, 1)), backend="dask") == "out"
    assert exact(Q, Q, np.ones((2, 1)), backend="dask", progress=True) == "out"
    assert exact(Q, Q, np.ones((2, 1)), backend="dask", progress=False) == "out"
    assert seen == [False, True, False]  # the library never prints unless asked


def test_decisions_survive_masks_unconstrained_rows_and_refuses_a_mask_of_another_length():
    u = LogArray.from_float(np.array([3.0, 1.0, 2.5]))  # one output per row, as adversarial_threshold passes
    truth = np.array([True, False, True])
    log_t, log_e = math.log(2.0), math.log(0.1)
    assert decisions_survive(u, truth, log_e, log_t)  # every row clears theta = 2 by more than 0.1
    assert not decisions_survive(u, truth, math.log(0.6), log_t)  # 2.5 - 0.6 < 2
    # row 2 is unconstrained: its answer does not matter
    assert decisions_survive(u, truth, math.log(0.6), log_t, np.array([True, True, False]))
    assert not decisions_survive(u, truth, math.log(0.6), log_t, np.array([False, True, True]))
    # the mask must have one entry per truth row; a length-1 mask is not broadcast over the rows
    for bad in ([True], [True, False]):
        with pytest.raises(ValueError):
            decisions_survive(u, truth, log_e, log_t, np.array(bad))


def test_monomial_index_build_names_its_arguments():
    assert MonomialIndex.build(2, 0) is MonomialIndex.build(2, 0)  # cached
    with pytest.raises(ParameterError, match=_exact("g must be >= 0, got -1")):
        MonomialIndex.build(2, -1)
    with pytest.raises(ParameterError, match=_exact("g must be an integer, got 1.0")):
        MonomialIndex.build(2, 1.0)
    with pytest.raises(ParameterError, match=_exact("d must be >= 0, got -1")):
        MonomialIndex.build(-1, 2)


def _higham_gamma(m: int) -> float:
    mu = m * 2.0**-53
    return mu / (1 - mu)


def test_plan_rounding_estimate_is_inf_from_e700_on():
    # d = 1, B = 1, scale = R: the radius is R exactly and the rank is g + 1; with n = 1 the estimate is
    # gamma_{1 + r + 4g + 16} e^{2R}, reported as inf once its log reaches 700 (test_poly_exact: above 700)
    tie = 364.10009849237025
    below = math.nextafter(tie, 0.0)
    for R in (below, tie):
        p = poly_plan(1, 1, 1.0, 1e-3, d_v=1, scale=R)
        assert p.radius == R and p.degree == 1016 and p.rank == p.degree + 1
        log_round = math.log(_higham_gamma(1 + p.rank + 4 * p.degree + 16)) + 2 * R
        if R == tie:
            assert log_round == 700.0
            assert p.rounding_estimate == math.inf
        else:
            assert log_round < 700.0
            assert p.rounding_estimate == math.exp(log_round) and math.isfinite(p.rounding_estimate)


# ----------------------------------------------------------------------------------------------------- anytemp

U = 2.0**-53
TINY = 2.0**-1074


def test_anytemp_crossing_counts_straddling_nodes_of_every_level():
    from finegrained.attention.anytemp import anytemp

    # two keys 1000 apart, one per leaf (depth 1): per query the root straddles the cut M - L (its box reaches
    # the best score and far below), the key at score 0 is a single point above it and the key 1000 lower is
    # dropped. So: 3 visits, 1 drop, 1 exact leaf, no polynomial node, and exactly one crossing (the root)
    Q = np.array([[1.0], [0.5]])
    K = np.array([[0.0], [-1000.0]])
    V = np.array([[1.0], [2.0]])
    res = anytemp(Q, K, V, eps=1e-6, scale=1.0, leaf_size=1)
    s = res.stats
    assert (s["visited_mean"], s["dropped_mean"], s["leaves_mean"], s["accepted_mean"]) == (3.0, 1.0, 1.0, 0.0)
    assert s["crossing_mean"] == 1.0 and s["crossing_max"] == 1
    np.testing.assert_allclose(res.output.to_float(), [[1.0], [1.0]], rtol=1e-12)


def test_accumulate_row_sum_inflation_with_many_visits():
    import importlib

    at = importlib.import_module("finegrained.attention.anytemp")
    # 64 keys, one per leaf: depth 6, and a budget e^-300 that neither drops nor accepts any node, so every row
    # visits all 127 nodes and the row-sum rounding gamma_{2 * 127 + 16} is large enough (3e-14) that the
    # 1 / (1 - gamma) inflation of the stated formula shows far above the float rounding of its recomputation
    rng = np.random.default_rng(3)
    n = 64
    K, V = rng.uniform(-1, 1, (n, 2)), rng.uniform(-1, 1, (n, 2))
    V[:, 1] = np.abs(V[:, 1])
    tree = at.build_tree(K, V, 4, leaf_size=1)
    assert tree.depth == 6
    Qb = np.array([[0.7, -0.4], [0.1, 0.9]])
    x = Qb @ tree.keys.T
    M = x.max(axis=1)
    nu = np.abs(tree.values).max(axis=0)
    ss = np.array([False, True])
    acc = at._accumulate(tree, Qb, M, -300.0, nu, ss)
    assert acc["visited"].tolist() == [127, 127] and acc["leaves"].tolist() == [64, 64]
    assert acc["dropped"].tolist() == [0, 0] and acc["accepted"].tolist() == [0, 0]
    m_all = tree.alphas.shape[0]
    for i in range(2):
        w = np.exp(x[i] - M[i])
        den = math.fsum(w)
        num = np.array([math.fsum(w * tree.values[:, c]) for c in range(2)])
        gam = 2 * (1 + 8) * U  # per exact leaf of one key
        e_den0 = gam * den
        e_num0 = gam * (w @ np.abs(tree.values))
        m = 2 * 127 + 16
        g = m * U / (1 - m * U)
        grow = 1.0 / (1.0 - g)
        tiny = TINY * 8.0 * (n + 127 * (m_all + 8.0))
        err_den = e_den0 + g * (den + 2 * e_den0) * grow + tiny
        num_abs = np.array([nu[0] * (den + 2 * e_den0), abs(num[1]) + 2 * e_num0[1]]) * grow
        err_num = e_num0 + g * num_abs + tiny + TINY * (den + 2 * err_den)
        assert acc["den"][i] == pytest.approx(den, rel=1e-14, abs=0)
        np.testing.assert_allclose(acc["num"][i], num, rtol=1e-13, atol=1e-15)
        # the inflation changes these by about 2 gamma^2 / (gamma + 18 u) ~ 5e-14 relative, the
        # recomputation's order of summation by about 2e-15
        assert acc["err_den"][i] == pytest.approx(err_den, rel=1e-14, abs=0)
        np.testing.assert_allclose(acc["err_num"][i], err_num, rtol=1e-14, atol=0)


def test_accumulate_keeps_a_node_whose_top_equals_the_budget():
    import importlib

    at = importlib.import_module("finegrained.attention.anytemp")
    # keys at 0 and -10, q = 1, M = 1: the root box is [-10, 0], so t = -6, r = 5 and top = -1 exactly; the
    # live mass 2 e^{-11} is below 1, so d_low = 1 and the cut is log_eta itself. A node is dropped only when
    # its top is strictly below the cut
    tree = at.build_tree(np.array([[0.0], [-10.0]]), np.array([[1.0], [2.0]]), 4, leaf_size=1)
    Qb, M = np.array([[1.0]]), np.array([1.0])
    tc, r = at._box_scores(tree, Qb, np.array([0]), np.array([0]))
    assert (tc[0] - M[0], r[0], tc[0] - M[0] + r[0]) == (-6.0, 5.0, -1.0)
    nu, ss = np.array([2.0]), np.array([True])
    acc = at._accumulate(tree, Qb, M, -1.0, nu, ss)
    assert acc["dropped"][0] == 0 and acc["visited"][0] >= 1 and acc["crossing"][0] == 1
    below = at._accumulate(tree, Qb, M, math.nextafter(-1.0, 0.0), nu, ss)  # a cut just above the top
    assert below["dropped"][0] == 1 and below["visited"][0] == 1 and below["den"][0] == 0.0


def test_max_score_search_keeps_boxes_within_the_rounding_slack():
    from finegrained.attention.anytemp import anytemp

    # q = (4, 0): the best score 4 is key (1, 0); the box of the two keys at x = 1 - 2^-51 reaches 4 - 2^-49,
    # below the best by less than the slack 4 (r + 4) u (|q| . max|K|) = 96 u ~ 1.1e-14, so the branch and bound
    # must still open it: root, two children and all four leaves are visited
    delta = 2.0**-51
    K = np.array([[0.0, -3.0], [1.0, 0.0], [1 - delta, 2.9], [1 - delta, 3.0]])
    res = anytemp(np.array([[4.0, 0.0]]), K, np.ones((4, 1)), eps=1e-6, scale=1.0, leaf_size=1, low_rank=False)
    assert res.stats["tree_depth"] == 2
    assert res.stats["search_visits_mean"] == 7.0
    np.testing.assert_allclose(res.output.to_float(), [[1.0]], rtol=1e-12)


# -------------------------------------------------------------------------------------------------------- grad


def _grad_with_forced_indicator(monkeypatch, call: int, force):
    """anytemp_grad with forward call ``call`` (2: row side, 3: column side) returning an indicator column and
    certificate set by ``force(y, err)`` (in place): the refusals of a certificate that cannot bound it away
    from 0 (or from 1) are checked at their exact boundary, which real inputs reach only by a float tie."""
    import importlib

    grad = importlib.import_module("finegrained.attention.grad")
    real = grad._forward
    seen = []

    def forward(Qx, Kx, W, eps, s, options):
        Y, Y_err, res = real(Qx, Kx, W, eps, s, options)
        seen.append(1)
        if len(seen) == call - 1:
            k = W.shape[1] - 1  # the indicator column (the appended key's or query's value 1)
            force(Y[:, k], Y_err[:, k])
        return Y, Y_err, res

    monkeypatch.setattr(grad, "_forward", forward)
    rng = np.random.default_rng(1)
    Q, K = rng.normal(size=(3, 2)), rng.normal(size=(4, 2))
    return grad.anytemp_grad(Q, K, rng.normal(size=(4, 1)), rng.normal(size=(3, 1)), scale=1.0)


def test_anytemp_grad_refuses_certificates_that_reach_the_indicator(monkeypatch):
    from instances.errors import NumericalError

    res = _grad_with_forced_indicator(monkeypatch, 2, lambda y, e: None)  # untouched: certified
    assert np.isfinite(res.error_bound) and res.error_bound > 0

    def z_equals_beta(y, e):
        e[:] = y

    def one_minus_z_equals_beta(y, e):
        y[:] = 0.75
        e[:] = 0.25

    def w_equals_beta(y, e):
        e[:] = y

    row = r"^anytemp_grad: the forward certificate \(max .*\) is too coarse to recover the row normalisers"
    for force in (z_equals_beta, one_minus_z_equals_beta):
        with pytest.raises(NumericalError, match=row):
            _grad_with_forced_indicator(monkeypatch, 2, force)
    with pytest.raises(NumericalError, match=r"^anytemp_grad: the column-side certificate \(max .*\) exceeds the "
                                             r"indicator column \(min .*\); lower eps$"):
        _grad_with_forced_indicator(monkeypatch, 3, w_equals_beta)


# --------------------------------------------------------------------------------------------------------- lev


def test_heavy_entries_report_an_entry_equal_to_eps():
    from finegrained.attention.lev import heavy_entries

    # q = (1, 1) against the unit keys: A = (1/2, 1/2) exactly (|score|^1 / 2), and eps = 1/2 is met
    Q, K = np.array([[1.0, 1.0]]), np.eye(2)
    assert heavy_entries(Q, K, 0.5, p=1).tolist() == [[0, 0], [0, 1]]
    assert heavy_entries(Q, K, 0.5, p=2).tolist() == [[0, 0], [0, 1]]
    assert heavy_entries(Q, K, 0.5000001, p=1).tolist() == []


def test_null_row_threshold_is_4_d_u_times_the_score_noise():
    import importlib

    lev = importlib.import_module("finegrained.attention.lev")
    u = 2.0**-52  # the module's unit (numpy's machine epsilon)
    # d = 4, noise sqrt(sum_j (|q|.|k_j|)^2) = 1 and 3: null iff log ||K q|| <= log(4 d u noise)
    noise2 = np.array([1.0, 1.0, 1.0, 9.0, 9.0])
    log_norm = np.log(np.array([15 * u, 16 * u, 17 * u, 47 * u, 49 * u]))
    assert lev._null_rows(log_norm, noise2, 4).tolist() == [True, True, False, True, False]
    # d = 0 counts as 1
    assert lev._null_rows(np.log(np.array([3 * u, 5 * u])), np.ones(2), 0).tolist() == [True, False]


def test_lewis_weight_refusal_names_p(monkeypatch):
    import importlib

    from instances.errors import NumericalError

    lev = importlib.import_module("finegrained.attention.lev")
    # a row-space quadratic form that vanishes (log = -inf): the iteration cannot continue. Real inputs do not
    # reach it (a live row keeps a positive quadratic form), so the rounding failure is injected
    monkeypatch.setattr(lev, "_log_quad", lambda space, rows: np.full(rows.shape[0], -np.inf))
    with pytest.raises(NumericalError, match=_exact(
            "Lewis weight iteration for p=1.0 produced a zero or non-finite weight")):
        lev.lewis_weights(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), 1.0)


def test_oracle_retries_a_missed_request_once_with_a_quarter_of_the_budget(monkeypatch):
    import dataclasses
    import importlib

    at = importlib.import_module("finegrained.attention.anytemp")
    real = at._run
    targets = []

    def run(st, log_eps):
        targets.append(log_eps)
        res = real(st, log_eps)
        if len(targets) == 1:
            # the first run misses the request (the a priori floors held, the measured bound did not): injected,
            # since the floors make this rare on real inputs
            res = dataclasses.replace(res, log_bounds=np.full_like(res.log_bounds, log_eps + 1.0))
        return res

    monkeypatch.setattr(at, "_run", run)
    rng = np.random.default_rng(4)
    Q, K, V = rng.normal(size=(5, 2)), rng.normal(size=(7, 2)), rng.normal(size=(7, 1))
    ans = at.anytemp_oracle(Q, K, V, scale=0.5, log_eps=-12.0)
    assert targets == [-12.0, -12.0 - math.log(4.0)]
    assert ans.info["log_eps"] == -12.0 and ans.info["request_met"] is True
    assert ans.info["log_error_bound"] <= -12.0


# -------------------------------------------------------------------------------------------------------- poly


def test_poly_refuses_an_approximation_error_plus_rounding_of_exactly_one(monkeypatch):
    import dataclasses
    import importlib

    from instances.errors import NumericalError

    poly_mod = importlib.import_module("finegrained.attention.poly")
    real = poly_mod.exp_polynomial
    rng = np.random.default_rng(6)
    Q, K, V = rng.uniform(-1, 1, (3, 2)), rng.uniform(-1, 1, (4, 2)), rng.uniform(-1, 1, (4, 1))
    assert np.isfinite(poly_mod.poly(Q, K, V, eps=1e-3).error_bound)
    # eps_A + eps_round = 1 + 0 exactly: P may vanish, so no positivity and no certificate (injected: a real
    # polynomial has eps_A <= eps < 1, and the tie with its rounding term is a float coincidence)
    monkeypatch.setattr(poly_mod, "exp_polynomial",
                        lambda radius, eps: dataclasses.replace(real(radius, eps), bound=1.0, abs_sum=0.0))
    with pytest.raises(NumericalError, match=r"^poly: scores in \[-.*\] need cancellation of terms ~e\^.* in the "
                                             r"monomial basis; float64 rounding \(relative 0\) voids the certificate$"):
        poly_mod.poly(Q, K, V, eps=1e-3)


def test_smallest_degree_is_the_smallest_at_an_exact_tie(monkeypatch):
    import importlib

    poly_mod = importlib.import_module("finegrained.attention.poly")
    # The real bound rises to its peak near g = R/2 and falls after, so bound(lo) <= eps < bound(0) (the scan-down
    # branch) needs rounding; an injected bound that already meets eps = e^0 exactly at lo = ceil(R/2) - 2 = 2
    # checks that the degree returned is still the smallest one meeting it (ties included), not the next
    table = {0: 1.0, 1: 0.5, 2: 0.0}
    monkeypatch.setattr(poly_mod, "log_relative_error_bound", lambda R, g, m: table.get(g, -1.0 - g))
    assert poly_mod._smallest_degree(8.0, 0.0, "chebyshev") == 2
    assert poly_mod._smallest_degree(8.0, 0.5, "chebyshev") == 1
    assert poly_mod._smallest_degree(8.0, -0.5, "chebyshev") == 3


def test_rank_sketch_needs_a_singular_value_strictly_above_1e6_of_the_first(monkeypatch):
    import importlib

    at = importlib.import_module("finegrained.attention.anytemp")
    A = np.random.default_rng(8).normal(size=(6, 6))
    assert at._rank_surely_above(A, 4) and not at._rank_surely_above(A[:, :4] @ A[:4], 4)  # real sketches
    # the threshold itself, on injected singular values of the sketch: s[4] = 1e-6 s[0] exactly is not above it
    for s4, want in ((1e-6, False), (math.nextafter(1e-6, 1.0), True), (math.nextafter(1e-6, 0.0), False)):
        monkeypatch.setattr(np.linalg, "svd", lambda M, compute_uv=False, s4=s4: np.array([1.0, .5, .5, .5, s4, 0.0]))
        assert at._rank_surely_above(A, 4) is want


def test_forward_adds_the_flush_allowance_to_every_row_bound(monkeypatch):
    import importlib
    import types

    grad = importlib.import_module("finegrained.attention.grad")
    # an exact forward (row bounds 0) with one entry below the float64 range: the flushed entry reads 0 and the
    # bound of every entry is the flush allowance 2.3e-308 (the smallest normal float64, rounded up), scaled back
    # with its column's power of two
    out = LogArray(np.array([[1, 1], [1, 0]], dtype=np.int8), np.array([[-800.0, 0.0], [0.0, -np.inf]]))
    fake = types.SimpleNamespace(output=out, row_bounds=np.zeros(2))
    monkeypatch.setattr(grad, "anytemp", lambda *a, **k: fake)
    W = np.array([[3.0, 0.25], [1.0, 0.5]])  # column scales 4 and 0.5
    Y, Y_err, res = grad._forward(np.eye(2), np.eye(2), W, 1e-6, 1.0, {})
    assert res is fake
    np.testing.assert_array_equal(Y, [[0.0, 0.5], [4.0, 0.0]])
    np.testing.assert_array_equal(Y_err, [[2.3e-308 * 4, 2.3e-308 * 0.5]] * 2)


def test_qr_of_an_empty_block_is_the_identity_of_the_merge():
    import importlib

    lp = importlib.import_module("finegrained.attention.lev_parallel")
    empty = lp._qr_r(np.zeros((0, 3)))
    assert empty.shape == (0, 3) and empty.dtype == np.float64
    A = np.random.default_rng(9).normal(size=(5, 3))
    R = lp._qr_r(A)
    G, ratio = A.T @ A, np.array([0.5, 0.25, 0.0])
    for merged in (lp._merge((R, G, ratio), (empty, np.zeros((3, 3)), np.zeros(3))),
                   lp._merge((empty, np.zeros((3, 3)), np.zeros(3)), (R, G, ratio))):
        assert merged[0].shape == (3, 3)
        np.testing.assert_allclose(np.abs(merged[0]), np.abs(R), rtol=1e-12, atol=1e-12)  # R up to row signs
        np.testing.assert_array_equal(merged[1], G)
        np.testing.assert_array_equal(merged[2], ratio)


def test_poly_grad_column_bounds_carry_the_rounding_of_the_reciprocal_sum(monkeypatch):
    import importlib

    grad = importlib.import_module("finegrained.attention.grad")
    rng = np.random.default_rng(10)
    n_q, n_k = 7, 4  # gamma_{n_q + 1} = gamma_8: no other gamma of the call has index 8 (d_v + 3 = 4, ...)
    Q, K = rng.uniform(-0.5, 0.5, (n_q, 2)), rng.uniform(-0.5, 0.5, (n_k, 2))
    V, dO = rng.uniform(-1, 1, (n_k, 1)), rng.uniform(-1, 1, (n_q, 1))
    base = grad.poly_grad(Q, K, V, dO, scale=1.0)
    real = grad._gamma
    # sum_i 1/D~_i over n_q rows: n_q roundings of the reciprocals and n_q - 1 of the sum, covered by
    # gamma_{n_q + 1}; enlarging that one gamma (and only it) must enlarge
    # rho, hence the dK and dV bounds, and leave the row side (dQ) alone
    monkeypatch.setattr(grad, "_gamma", lambda m: 0.25 if m == n_q + 1 else real(m))
    big = grad.poly_grad(Q, K, V, dO, scale=1.0)
    np.testing.assert_array_equal(big.dK, base.dK)
    assert big.bounds["dQ"] == base.bounds["dQ"]
    for key in ("dK", "dV"):
        assert big.bounds[key] > base.bounds[key] * (1 + 1e-13)
