"""anytemp's certified bounds, statistics and info fields recomputed from the formulas their docstrings state.

The other anytemp tests check ``error <= bound``; a bound made larger (or a constant changed) passes them. Here
each term is rebuilt independently at small inputs, so a changed constant, sign or key fails. (``_bessel_i`` is
not tested here: its bound changed after the mutation freeze.)
"""

from __future__ import annotations

import importlib
import math
import warnings

import numpy as np
import pytest

from instances.errors import NumericalError, ParameterError, UncertifiedError

# the package re-exports the function anytemp under the module's name
at = importlib.import_module("finegrained.attention.anytemp")

U = 2.0**-53
TINY = 2.0**-1074


def _ref_quotient(num, den, err_num, err_den, delta, nu_cols, vmin, vmax, single_sign, v_log2):
    """certify_quotient's docstring, entry by entry in plain Python floats."""
    nq, dv = num.shape
    t_out = np.zeros((nq, dv))
    e_out = np.zeros((nq, dv))
    for i in range(nq):
        for c in range(dv):
            d_low = max(den[i] - err_den[i], math.exp(-2 * delta[i]))
            with np.errstate(over="ignore"):
                t = float(np.float64(num[i, c]) / np.float64(den[i])) if den[i] > 0 else math.inf
            if math.isfinite(t):
                a = min((err_num[i, c] + nu_cols[c] * err_den[i]) / den[i],
                        (err_num[i, c] + abs(t) * err_den[i]) / d_low)
            else:
                t = 0.0
                a = (abs(num[i, c]) + err_num[i, c]) / d_low
            weight = abs(t) + a if single_sign[c] else nu_cols[c]
            e = min(a + math.expm1(2 * delta[i]) * weight, vmax[c] - vmin[c])
            t = min(max(t, vmin[c]), vmax[c])
            log_t = math.log(abs(t)) if t != 0 else 0.0
            rnd = abs(t) * (U + math.expm1(2 * U * (abs(log_t) + abs(v_log2) * math.log(2.0) + 4)))
            t_out[i, c], e_out[i, c] = t, e + rnd
    return t_out, e_out


def test_certify_quotient_is_its_docstring_formula_without_warnings():
    rng = np.random.default_rng(3)
    nq, dv = 40, 3
    num = rng.normal(size=(nq, dv)) * 3
    den = rng.uniform(0.2, 5.0, nq)
    den[:4] = [0.0, -1.0, 1e-310, 3.0]  # den <= 0, den tiny (num/den overflows), den > 0
    num[3] = 0.0  # t = 0: log|t| is not taken
    err_num = rng.uniform(0, 0.3, (nq, dv))
    err_den = rng.uniform(0, 0.3, nq)
    err_den[5] = 4.0  # den - e_D < e^{-2 delta}: the floor is the lower bound
    delta = rng.uniform(0, 1e-3, nq)
    vmin, vmax = np.array([-1.0, 0.0, 0.5]), np.array([1.0, 2.0, 0.9])
    nu_cols = np.maximum(np.abs(vmin), np.abs(vmax))
    single_sign = (vmin >= 0) | (vmax <= 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the library silences its own overflow/division warnings
        t, e = at.certify_quotient(num, den, err_num, err_den, delta, nu_cols, vmin, vmax, single_sign, v_log2=3)
    rt, re = _ref_quotient(num, den, err_num, err_den, delta, nu_cols, vmin, vmax, single_sign, 3)
    np.testing.assert_allclose(t, rt, rtol=1e-14, atol=0)
    np.testing.assert_allclose(e, re, rtol=1e-12, atol=0)


def test_gamma_unscale_float_bounds_ladder_and_int_param():
    for m in (1, 18, 1000, 2**20):
        assert float(at._gamma(m)) == m * U / (1 - m * U)
    assert at._unscale(0.0, 5) == 0.0 and at._unscale(-1.0, 5) == 0.0
    assert at._unscale(0.5, 1) == pytest.approx(1.0, rel=1e-15, abs=0)
    assert at._unscale(0.75, -2) == pytest.approx(0.1875, rel=1e-15, abs=0)
    # exactly LOG_HUGE_BOUND is still reported, above it raises
    assert at._float_bounds(np.array([[709.0, 1.0]]))[0] == pytest.approx(math.exp(709.0), rel=1e-15, abs=0)
    with pytest.raises(NumericalError):
        at._float_bounds(np.array([[709.5]]))
    assert at._degree_ladder(6) == [0, 2, 4, 6]
    assert at._degree_ladder(7) == [0, 2, 4, 6, 7]
    with pytest.raises(ParameterError) as exc:
        at._int_param("x", 0, 1)
    assert str(exc.value) == "x must be >= 1, got 0"
    with pytest.raises(ParameterError) as exc:
        at._int_param("x", 9, 1, 8)
    assert str(exc.value) == "x must be in [1, 8], got 9"


def test_row_norms_are_the_stated_rounded_up_formula():
    A = np.array([[3.0, 4.0, 0.0], [1e-200, 1e-200, 0.0], [0.0, 0.0, 0.0], [-1e300, 1e300, 1.0]])
    got = at._row_norms(A)
    fac = 1 + 4 * (3 + 4) * U
    top = np.array([4.0, 1e-200, 0.0, 1e300])
    exact = np.array([5.0, math.sqrt(2) * 1e-200, 0.0, math.sqrt(2) * 1e300])
    np.testing.assert_allclose(got, exact * fac, rtol=1e-15, atol=0)
    assert got[0] == 4.0 * math.sqrt((3 / 4) ** 2 + 1.0) * fac and top[0] == 4.0
    assert np.all(got[[0, 1, 3]] > exact[[0, 1, 3]])  # rounded up
    assert at._row_norms(np.zeros((2, 0))).tolist() == [0.0, 0.0]


def _ref_rho(Q, K, W, use_q):
    """low_rank_rewrite's docstring: Cauchy-Schwarz residual plus the gamma rounding terms."""
    d = Q.shape[1]
    qn, kn = at._row_norms(Q), float(at._row_norms(K).max(initial=0.0))
    res = at._row_norms(Q - (Q @ W) @ W.T) * kn if use_q else qn * float(
        at._row_norms(K - (K @ W) @ W.T).max(initial=0.0))
    wf2 = float((W * W).sum()) * (1 + 1e-12)
    g1 = (d + W.shape[1] + 4) * U / (1 - (d + W.shape[1] + 4) * U)
    g2 = (d + 2) * U / (1 - (d + 2) * U)
    return (res + (2 * g1 * (wf2 + 1) + 3 * g2 * wf2) * qn * kn) * (1 + 1e-12)


def test_low_rank_rewrite_rho_is_its_formula_for_either_side_and_equal_ranks():
    rng = np.random.default_rng(5)
    Q = rng.normal(size=(7, 2)) @ rng.normal(size=(2, 4))  # rank 2 < rank K = 4: the row space of Q
    K = rng.normal(size=(9, 4))
    Q2, K2, rho = at.low_rank_rewrite(Q, K)
    W = np.linalg.svd(Q, full_matrices=False)[2][:2].T
    assert Q2.shape == (7, 2) and K2.shape == (9, 2)
    np.testing.assert_allclose(rho, _ref_rho(Q, K, W, True), rtol=1e-9)
    # rank Q = 4 > rank K = 1: the row space of K
    Qf, Kl = rng.normal(size=(6, 4)), np.outer(rng.normal(size=5), rng.normal(size=4))
    Q2, K2, rho = at.low_rank_rewrite(Qf, Kl)
    W = np.linalg.svd(Kl, full_matrices=False)[2][:1].T
    assert Q2.shape == (6, 1)
    np.testing.assert_allclose(rho, _ref_rho(Qf, Kl, W, False), rtol=1e-9)
    # equal ranks (both 2, different row spaces): the row space of Q is used
    Qe = rng.normal(size=(6, 2)) @ rng.normal(size=(2, 3))
    Ke = rng.normal(size=(8, 2)) @ rng.normal(size=(2, 3))
    Q2, K2, rho = at.low_rank_rewrite(Qe, Ke)
    W = np.linalg.svd(Qe, full_matrices=False)[2][:2].T
    np.testing.assert_allclose(np.abs(Q2), np.abs(Qe @ W), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rho, _ref_rho(Qe, Ke, W, True), rtol=1e-9)


def test_low_rank_rewrite_on_empty_sides_and_zero_columns():
    rng = np.random.default_rng(6)
    Q = rng.normal(size=(3, 2))
    Q2, K2, rho = at.low_rank_rewrite(Q, np.zeros((0, 2)))  # rank K = 0 < rank Q
    assert Q2.shape == (3, 0) and K2.shape == (0, 0)
    np.testing.assert_allclose(rho, _ref_rho(Q, np.zeros((0, 2)), np.zeros((2, 0)), False), rtol=1e-12)
    Q2, K2, rho = at.low_rank_rewrite(np.zeros((0, 2)), rng.normal(size=(4, 2)))
    assert Q2.shape == (0, 0) and K2.shape == (4, 0) and rho.shape == (0,)
    Q2, K2, rho = at.low_rank_rewrite(np.zeros((3, 0)), np.zeros((2, 0)))  # d = 0: nothing to project
    assert Q2.shape == (3, 0) and K2.shape == (2, 0) and rho.tolist() == [0.0, 0.0, 0.0]


def test_setup_fields_are_their_formulas():
    rng = np.random.default_rng(7)
    Q, K, V = rng.normal(size=(5, 2)), rng.normal(size=(6, 2)), rng.normal(size=(6, 1))
    st = at._setup(Q, K, V, 0.7, None, 16, 64, True)
    d = 2
    qa, ka = float(np.abs(Q * 0.7).max()), float(np.abs(K).max())
    qb, kb = float(np.abs(st.Qs).max()), float(np.abs(K).max()) * float(np.abs(st.Qs).max()) / qa
    assert st.score_tiny == (d + 4) * math.ldexp(ka + qa + qb + kb + 4.0, -1073)
    # Q = 0: no rebalancing, qa = qb = 0
    st0 = at._setup(np.zeros((3, 2)), K, V, 1.0, None, 16, 64, False)
    assert st0.score_tiny == (d + 4) * math.ldexp(ka + ka + 4.0, -1073)
    assert st0.r_dim == 2
    # rank 0 (Q = 0 with the rewrite): one-dimensional averaging tree on zero keys
    str0 = at._setup(np.zeros((3, 2)), K, V, 1.0, None, 16, 64, True)
    assert str0.r_dim == 1 and str0.Qs.shape == (3, 1) and str0.Kt.shape == (6, 1) and not str0.Kt.any()
    # a rank-2 rewrite of d = 3 whose perturbation exceeds 1e-7 is not taken
    Qh = (rng.normal(size=(5, 2)) @ rng.normal(size=(2, 3))) * 1e7
    Kh = rng.normal(size=(6, 3)) * 1e7
    sth = at._setup(Qh, Kh, V, 1e-6, None, 16, 64, True)
    assert sth.r_dim == 3 and not sth.rho.any()
    stl = at._setup(Qh * 1e-7, Kh * 1e-7, V, 1.0, None, 16, 64, True)
    assert stl.r_dim == 2 and 0 < float(stl.rho.max()) <= 1e-7


def test_setup_messages_are_whole():
    rng = np.random.default_rng(8)
    Q, K, V = rng.normal(size=(3, 2)), rng.normal(size=(4, 2)), rng.normal(size=(4, 1))
    with pytest.raises(ParameterError) as exc:
        at.anytemp(Q, K, V, eps=1e-3, leaf_size=0)
    assert str(exc.value) == "leaf_size must be in [1, 1048576], got 0"
    with pytest.raises(ParameterError) as exc:
        at.anytemp(Q, K, V, eps=1e-3, query_batch=0)
    assert str(exc.value) == "query_batch must be in [1, 16777216], got 0"
    Qb = np.full((1, 1), 1e8)
    Kb = np.full((1, 1), 1e8)
    S = 1e16
    with pytest.raises(NumericalError) as exc:
        at.anytemp(Qb, Kb, np.ones((1, 1)), eps=1e-3, scale=1.0)
    assert str(exc.value) == (
        f"scores s<q,k> reach {S:.3g}: float64 rounds them by up to {8 * 5 * U * S:.3g} nats, so exp(score) is not "
        "determined even to a factor e and anytemp can certify nothing; rescale Q, K or scale")


def test_build_tree_moments_boxes_and_depth_cap(monkeypatch):
    rng = np.random.default_rng(9)
    # d = 1, g = 20: 21 moments, chunk = 2^20 // (21 * 3) = 16644 keys, so the root spans two chunks
    n = 17000
    K = rng.uniform(-1, 1, (n, 1))
    V = rng.uniform(0, 1, (n, 1))
    tree = at.build_tree(K, V, 20, leaf_size=4096)
    u = (tree.keys[:, 0] - tree.centre[0, 0]) / tree.half[0, 0]
    pw = u[:, None] ** np.arange(21)[None, :]
    ref = np.stack([pw.T @ tree.values[:, 0], pw.sum(axis=0)], axis=1)
    np.testing.assert_allclose(tree.moments[0], ref, rtol=1e-9, atol=1e-9 * n)
    # a box side of width 0 (every key has x = 2): u = 0 on that side, no 0/0
    K2 = np.stack([np.full(40, 2.0), rng.uniform(-1, 1, 40)], axis=1)
    t2 = at.build_tree(K2, np.ones((40, 1)), 2, leaf_size=8)
    assert np.all(np.isfinite(t2.moments))
    assert t2.moments[0, 0, 1] == 40.0  # alpha = 0: the count
    # three keys, leaf size 1: depth 2, one empty leaf, whose box is zero
    t3 = at.build_tree(np.array([[1.0], [2.0], [3.0]]), np.ones((3, 1)), 2, leaf_size=1)
    assert t3.depth == 2
    empty = np.flatnonzero(t3.stop == t3.start)
    assert empty.size == 1 and t3.centre[empty[0], 0] == 0.0 and t3.half[empty[0], 0] == 0.0
    # the moment memory cap lowers the depth one level at a time
    m = 3  # d = 1, g = 2
    monkeypatch.setattr(at, "_MOMENT_BYTES", 2**3 * m * 2 * 8)
    t4 = at.build_tree(rng.uniform(size=(64, 1)), np.ones((64, 1)), 2, leaf_size=1)
    assert t4.depth == 3


def _dropped_tree():
    rng = np.random.default_rng(10)
    n = 50
    K = rng.uniform(-1, 1, (n, 2))
    V = np.concatenate([rng.uniform(0.1, 1, (n, 1)), np.zeros((n, 1))], axis=1)  # second column zero
    tree = at.build_tree(K, V, 4, leaf_size=8)
    Qb = np.array([[1.0, 0.5]])
    M = np.array([float((tree.keys @ Qb[0]).max())])
    return tree, Qb, M


def test_accumulate_error_terms_when_everything_is_dropped():
    tree, Qb, M = _dropped_tree()
    n, m_all = tree.keys.shape[0], tree.alphas.shape[0]
    nu, ss = np.array([1.0, 0.0]), np.array([True, True])
    # per-key budget e^5 (d_low >= 1): the root lies below it and is dropped
    acc = at._accumulate(tree, Qb, M, 5.0, nu, ss)
    assert acc["visited"].tolist() == [1] and acc["dropped"].tolist() == [1] and acc["den"].tolist() == [0.0]
    tc, r = at._box_scores(tree, Qb, np.array([0]), np.array([0]))
    e0 = n * math.exp(float(tc[0] - M[0] + r[0]))
    g = 18 * U / (1 - 18 * U)
    tiny = TINY * 8.0 * (n + 1 * (m_all + 8.0))
    err_den = e0 + g * ((0.0 + 2 * e0) * (1.0 / (1.0 - g))) + tiny
    assert acc["err_den"][0] == pytest.approx(err_den, rel=1e-14, abs=0)
    assert e0 >= 1.0
    # the zero column: only the absolute underflow terms, exactly (subnormal arithmetic)
    assert acc["err_num"][0, 1] == tiny + TINY * (0.0 + 2 * acc["err_den"][0])
    assert acc["err_num"][0, 1] > 0
    # scores far below M: every weight underflows to 0, every term but tiny vanishes
    acc2 = at._accumulate(tree, Qb, M + 2000.0, -30.0, nu, ss)
    assert acc2["err_den"][0] == tiny and acc2["err_num"][0, 0] == tiny and acc2["err_num"][0, 1] == tiny


def test_accumulate_leaf_only_error_terms():
    rng = np.random.default_rng(11)
    n = 12
    K, V = rng.uniform(-1, 1, (n, 2)), rng.uniform(-1, 1, (n, 2))
    V[:, 1] = np.abs(V[:, 1])
    tree = at.build_tree(K, V, 4, leaf_size=16)
    assert tree.depth == 0
    Qb = np.array([[0.8, -0.3]])
    x = tree.keys @ Qb[0]
    M = np.array([float(x.max())])
    nu = np.abs(tree.values).max(axis=0)
    ss = np.array([False, True])
    acc = at._accumulate(tree, Qb, M, -40.0, nu, ss)
    w = np.exp(x - M[0])
    gam = 2 * (16 + 8) * U
    den = float(w.sum())
    num = w @ tree.values
    assert acc["den"][0] == pytest.approx(den, rel=1e-14, abs=0)
    g = 18 * U / (1 - 18 * U)
    grow = 1.0 / (1.0 - g)
    m_all = tree.alphas.shape[0]
    tiny = TINY * 8.0 * (n + 1 * (m_all + 8.0))
    e_den0 = gam * den
    e_num0 = gam * (w @ np.abs(tree.values))
    err_den = e_den0 + g * (den + 2 * e_den0) * grow + tiny
    num_abs = np.array([nu[0] * (den + 2 * e_den0), abs(num[1]) + 2 * e_num0[1]]) * grow
    err_num = e_num0 + g * num_abs + tiny + TINY * (den + 2 * err_den)
    assert acc["err_den"][0] == pytest.approx(err_den, rel=1e-13, abs=0)
    np.testing.assert_allclose(acc["err_num"][0], err_num, rtol=1e-13)
    np.testing.assert_allclose(acc["num"][0], num, rtol=1e-13)


def test_tree_run_stats_and_bounds_are_their_formulas():
    rng = np.random.default_rng(12)
    Q = (rng.normal(size=(6, 2)) @ rng.normal(size=(2, 3)))
    K, V = rng.normal(size=(70, 3)), rng.normal(size=(70, 2)) * 3
    res = at.anytemp(Q, K, V, eps=1e-5, scale=1.0)
    st = at._setup(Q, K, V, 1.0, None, 16, 2048, True)
    assert res.method == "tree" and res.tree_dim == 2 and st.rho.max() > 0
    p = res.parts
    kmax = np.abs(st.Kt).max(axis=0)
    L = res.window
    log_eps_s = math.log(1e-5) - st.v_log2 * math.log(2)
    assert L == max(math.log(4 * 70) + math.log(float(st.nu_cols.max())) - log_eps_s, 0)
    delta_s = 4 * (2 + 4) * U * (np.abs(st.Qs) @ kmax + np.abs(p["M"]) + L + 1.0) + st.score_tiny
    np.testing.assert_allclose(p["delta_s"], delta_s, rtol=1e-15)
    np.testing.assert_allclose(p["delta"], delta_s + st.rho, rtol=1e-15)
    nu = float(st.nu_cols.max())
    s = res.stats
    unit = 2.0**st.v_log2
    assert s["rounding_bound"] == pytest.approx(nu * float(np.expm1(2 * delta_s).max()) * unit, rel=1e-12, abs=0)
    assert s["low_rank_bound"] == pytest.approx(nu * float(np.expm1(2 * st.rho).max()) * unit, rel=1e-12, abs=0)
    tree = at.build_tree(st.Kt, st.Vs, st.g, st.leaf_size)
    assert set(s) == {"n", "n_q", "d", "tree_depth", "leaf_size", "monomials", "visited_mean", "visited_max",
                      "accepted_mean", "dropped_mean", "crossing_mean", "crossing_max", "leaves_mean",
                      "degree_mean", "degree_max", "exact_keys_mean", "search_visits_mean", "rounding_bound",
                      "low_rank_bound"}
    acc = at._accumulate(tree, st.Qs, p["M"], -L, st.nu_cols, st.single_sign)
    assert (s["n"], s["n_q"], s["d"], s["tree_depth"], s["leaf_size"]) == (70, 6, 3, tree.depth, 16)
    assert s["visited_max"] == int(acc["visited"].max()) and s["monomials"] == math.comb(st.g + 2, 2)
    assert s["crossing_mean"] == float(acc["crossing"].mean())
    # M is the true maximum of the scores used, and branch and bound pruned some nodes
    np.testing.assert_allclose(p["M"], (st.Qs @ st.Kt.T).max(axis=1), rtol=1e-14)
    assert s["search_visits_mean"] < 2 ** (tree.depth + 1) - 1
    # the branch and bound ran with the stated rounding slack 4 (r + 4) u sum_l |q_l| max_j |k_jl| (+ 1e-300)
    slack = 4 * (2 + 4) * U * (np.abs(st.Qs) @ kmax) + 1e-300
    _, visits = at._max_scores(tree, st.Qs, slack)
    _, visits_wide = at._max_scores(tree, st.Qs, slack + 1.0)
    assert s["search_visits_mean"] == float(visits.mean()) < float(visits_wide.mean())


def test_run_zero_v_fallback_window_and_degree():
    rng = np.random.default_rng(13)
    Q, K = rng.normal(size=(3, 2)), rng.normal(size=(5, 2))
    r0 = at.anytemp(Q, K, np.zeros((5, 1)), eps=1e-3)
    assert (r0.error_bound, r0.window, r0.stats) == (0.0, 0.0, {"reason": "V = 0"})
    Qf, Kf, V = rng.normal(size=(8, 6)), rng.normal(size=(9, 6)), rng.normal(size=(9, 1))
    nu = float(np.abs(V).max())
    for eps in (1e-6, 4 * 9 * nu * math.exp(-0.5), 1e3):
        rf = at.anytemp(Qf, Kf, V, eps=eps)
        assert rf.method == "exact-fallback" and rf.degree == 6
        assert rf.window == pytest.approx(max(math.log(4 * 9) + math.log(nu) - math.log(eps), 0.0), abs=1e-12)


def test_oracle_info_detail_and_messages():
    rng = np.random.default_rng(14)
    Q, K, V = rng.normal(size=(4, 2)), rng.normal(size=(9, 2)), rng.uniform(0, 1, (9, 1))
    ans = at.anytemp_oracle(Q, K, V, log_eps=-20.0)
    assert ans.certificate.detail == ("finegrained.attention.anytemp: dropped mass, certified Chebyshev errors and "
                                      "float64 rounding, through certify_quotient")
    worst = float(ans.certificate.log_bound.max())
    assert ans.info == {"eps": math.exp(-20.0), "log_eps": -20.0, "request_met": worst <= -20.0, "window":
                        ans.info["window"], "method": "tree", "tree_dim": 2, "degree": 16, "log_error_bound": worst}
    z = at.anytemp_oracle(Q, K, np.zeros((9, 1)))
    assert z.info["log_error_bound"] is None
    # fallback (d = 6): a request below its bound is not retried; the detail names the exact oracle
    Qf, Kf = rng.normal(size=(8, 6)), rng.normal(size=(9, 6))
    f = at.anytemp_oracle(Qf, Kf, rng.uniform(1, 2, (9, 1)), log_eps=-60.0)
    assert f.info["method"] == "exact-fallback" and f.info["eps"] == math.exp(-60.0)
    assert not f.info["request_met"]
    assert f.certificate.detail == "exact fallback: |T~| (e^delta - 1) from the exact oracle's log certificate"
    with pytest.raises(UncertifiedError) as exc:
        at.anytemp_oracle(Q, K, V, log_eps=-math.inf)
    assert str(exc.value) == ("anytemp cannot certify the requested additive error 0: its bound includes float64 "
                              "rounding")


def test_oracle_does_not_retry_when_rounding_exceeds_the_request_and_defaults_to_1e6():
    rng = np.random.default_rng(16)
    # rank 2 up to noise below the SVD tolerance: the low-rank rewrite's rho dominates the rounding terms
    Q = (rng.normal(size=(4000, 2)) @ rng.normal(size=(2, 3))) * 100
    Q = Q + rng.normal(size=Q.shape) * 1e-14 * np.abs(Q).max()
    K, V = rng.normal(size=(40, 3)), rng.uniform(0.9, 1, (40, 1))
    r = at.anytemp(Q, K, V, eps=1e-6, scale=1.0)
    rb, lrb = r.stats["rounding_bound"], r.stats["low_rank_bound"]
    assert r.tree_dim == 2 and lrb > 4 * rb
    target = math.log(0.5 * (rb + lrb))
    a = at.anytemp_oracle(Q, K, V, log_eps=target, scale=1.0)
    # measured bound above the request, but rounding (rb + lrb >= e^target / 2) is the cause: no retry
    assert a.info["log_error_bound"] > target and not a.info["request_met"]
    assert a.info["eps"] == math.exp(target)
    assert at.anytemp_oracle(Q[:5], K, V, scale=1.0).info["eps"] == pytest.approx(1e-6, rel=1e-12, abs=0)


def test_low_rank_rewrite_svd_failure_is_one_numerical_error():
    with pytest.raises(NumericalError) as exc:
        at.low_rank_rewrite(np.full((3, 2), np.nan), np.ones((2, 2)))
    assert str(exc.value) == "the SVD of the low-rank rewrite did not converge (SVD did not converge)"


def test_accumulate_accepted_root_error_is_table_error_plus_rounding_at_the_smallest_fitting_degree():
    rng = np.random.default_rng(17)
    n = 32
    K = rng.uniform(-0.01, 0.01, (n, 1))
    V = rng.uniform(0.1, 1, (n, 1))
    tree = at.build_tree(K, V, 20, leaf_size=16)
    assert tree.depth == 1
    Qb = np.array([[1.0]])
    M = np.array([float((tree.keys @ Qb[0]).max())])
    log_eta = -30.0
    acc = at._accumulate(tree, Qb, M, log_eta, np.ones(1), np.array([True]))
    assert acc["visited"].tolist() == [1] and acc["accepted"].tolist() == [1]
    gdeg = int(acc["degree_sum"][0])
    radii, _, err, absum = at._cheb_table(20)
    tc, r = at._box_scores(tree, Qb, np.array([0]), np.array([0]))
    t, r = float(tc[0] - M[0]), float(r[0])
    i = int(np.searchsorted(radii, r * (1 + 1e-12)))
    ladder = at._degree_ladder(20)
    mono = {g: math.comb(g + 1, 1) for g in ladder}

    def lhs(g):
        return err[i, g] + 2 * U * (n + mono[g] + 2 * g + 20) * absum[i, g]

    room = math.exp(log_eta + math.log(max(n * math.exp(t - r), 1.0)) - t)
    assert lhs(gdeg) <= room
    assert all(not lhs(g) <= room for g in ladder if g < gdeg)  # the smallest fitting degree
    e0 = n * math.exp(t) * lhs(gdeg)
    g_r = 18 * U / (1 - 18 * U)
    tiny = TINY * 8.0 * (n + (tree.alphas.shape[0] + 8.0))
    ref = e0 + g_r * (abs(float(acc["den"][0])) + 2 * e0) / (1 - g_r) + tiny
    assert acc["err_den"][0] == pytest.approx(ref, rel=1e-12, abs=0)


@pytest.mark.parametrize(("R", "kmax", "k"),
                         [(1.0, 200, 143), (2.0**-8, 101, 70), (0.0, 3, 1), (2 ** (-31 / 4), 75, 72)])
def test_bessel_series_refuses_an_underflowing_first_term(R, kmax, k):
    # below ~2e-290 the stopping test's 1e-18 * total underflows to 0 and the loop never ended (2^(-31/4), k = 75
    # has a normal first term, 1e-307, and looped); a subnormal or zero one has no relative bound either
    with pytest.raises(NumericalError, match=rf"I_{k}\({R:g}\) underflows float64"):
        at._bessel_i(R, kmax)


def test_bessel_series_on_the_tables_last_column_is_normal():
    vals, rel = at._bessel_i(2.0**-8, 33)
    # the largest k the table uses (MAX_DEGREE + 1) at its smallest radius: a normal first term, so a bound
    assert vals[-1] > 2.2250738585072014e-308 and 0 < rel[-1] < 1e-13
