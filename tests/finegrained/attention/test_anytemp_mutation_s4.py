"""Tests closing gaps found by mutation testing of :mod:`finegrained.attention.anytemp` (session 4).

Each test pins a behaviour a surviving mutant changed: whole error messages for bad ``eps``, the ``rtol`` of
:func:`low_rank_rewrite`, the radius fix-up of the Chebyshev table lookup, and the oracle's retry with a quarter
of the budget when the measured bound misses the request for a reason the budget controls.
"""

from __future__ import annotations

import dataclasses
import importlib
import math

import numpy as np
import pytest

from instances.errors import ParameterError

at = importlib.import_module("finegrained.attention.anytemp")


def _small(seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(5, 2)), rng.normal(size=(7, 2)), rng.normal(size=(7, 1))


@pytest.mark.parametrize("eps, shown", [(0.0, "0.0"), (-1.0, "-1.0"), (math.inf, "inf"), (math.nan, "nan")])
def test_anytemp_refuses_a_non_positive_or_non_finite_eps_with_the_whole_message(eps, shown):
    Q, K, V = _small()
    with pytest.raises(ParameterError) as exc:
        at.anytemp(Q, K, V, eps=eps)
    assert str(exc.value) == f"eps must be a finite positive number, got {shown}"


@pytest.mark.parametrize("eps, shown", [("abc", "'abc'"), ([1], "[1]")])
def test_oracle_refuses_a_non_numeric_eps_with_the_whole_message(eps, shown):
    Q, K, V = _small()
    with pytest.raises(ParameterError) as exc:
        at.anytemp_oracle(Q, K, V, eps=eps)
    assert str(exc.value) == f"eps must be a finite positive number, got {shown}"


def test_low_rank_rewrite_honours_an_explicit_rtol():
    # Q has singular values 1 and 1e-6 exactly (orthogonal rows); K has full rank 2.
    Q = np.array([[1.0, 0.0], [0.0, 1e-6], [0.0, 0.0]])
    K = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, -2.0]])
    Q2, K2, rho = at.low_rank_rewrite(Q, K)
    assert Q2.shape == (3, 2) and K2.shape == (3, 2)  # default tolerance 3 * 2^-52 keeps 1e-6
    Q1, K1, rho1 = at.low_rank_rewrite(Q, K, rtol=1e-3)
    assert Q1.shape == (3, 1) and K1.shape == (3, 1)  # 1e-6 < 1e-3 * 1 is dropped
    # The dropped part q_1 = (0, 1e-6) changes scores by up to 1e-6 * max ||k_j|| = 1e-6 * sqrt(13).
    err = np.abs(Q @ K.T - Q1 @ K1.T).max(axis=1)
    assert err[1] == pytest.approx(1e-6 * 2.0, rel=1e-9)  # |q_1 . k_3| = 2e-6
    assert np.all(err <= rho1)
    assert rho1[1] >= 1e-6 * math.sqrt(13.0)
    assert rho1[0] < 1e-12 and rho1[2] < 1e-12  # only rounding: nothing of rows 0 and 2 is dropped


def test_accumulate_radius_just_above_a_table_radius_uses_the_next_radius():
    # Root box [-1, 1] (half-width exactly 1); query 1, so r = 1 and r_up = 1 + 1e-12 lies just above the table
    # radius R = 2^0: the lookup must move up to 2^(1/4), where the root pair is accepted at once (one visit).
    K = np.linspace(-1.0, 1.0, 64)[:, None]
    V = np.ones((64, 1))
    tree = at.build_tree(K, V, 20, leaf_size=16)
    assert tree.depth == 2 and tree.half[0, 0] == 1.0 and tree.centre[0, 0] == 0.0
    radii = at._cheb_table(20)[0]
    assert radii[-at._R_LO] == 1.0
    for q in (1.0, 1.0 + 1e-10, 1.0 - 1e-10, 1.01):
        c = at._accumulate(tree, np.array([[q]]), np.array([q]), -20.0, np.array([1.0]), np.array([True]))
        assert int(c["visited"][0]) == 1 and int(c["accepted"][0]) == 1, q
        assert int(c["leaves"][0]) == 0 and int(c["dropped"][0]) == 0
        # D = sum_j e^{q k_j - q}: the accepted root approximates it within its certificate
        D = float(np.exp(q * K[:, 0] - q).sum())
        assert abs(float(c["den"][0]) - D) <= float(c["err_den"][0]) + 1e-12 * D


def test_oracle_retries_once_with_a_quarter_of_the_budget_when_the_measured_bound_misses(monkeypatch):
    Q, K, V = _small(3)
    target = -20.0
    orig = at._run
    calls = []
    first = {}

    def run(st, log_eps):
        calls.append(log_eps)
        res = orig(st, log_eps)
        if len(calls) == 1:
            # Inject a measured bound above the request (rounding stays far below e^target / 2): the oracle must
            # retry with e^target / 4 and answer with the retry's certificate.
            first["res"] = res
            return dataclasses.replace(res, log_bounds=np.full_like(res.log_bounds, target + 1.0))
        return res

    monkeypatch.setattr(at, "_run", run)
    ans = at.anytemp_oracle(Q, K, V, log_eps=target)
    assert calls == [target, target - math.log(4.0)]
    assert first["res"].stats["rounding_bound"] + first["res"].stats["low_rank_bound"] < 0.5 * math.exp(target)
    assert ans.info["request_met"] is True and ans.info["log_eps"] == target
    assert ans.info["eps"] == pytest.approx(math.exp(target) / 4.0, rel=1e-12, abs=0)
    assert ans.certificate.worst_log_bound <= target - math.log(4.0)
    # Without the injected miss there is no retry.
    calls.clear()
    monkeypatch.setattr(at, "_run", orig)
    direct = at.anytemp_oracle(Q, K, V, log_eps=target)
    assert direct.info["eps"] == pytest.approx(math.exp(target), rel=1e-12, abs=0)


def test_accumulate_final_error_terms_recomputed_from_their_formula_on_a_single_leaf():
    # n <= leaf_size: depth 0, the root is the only leaf and every key is evaluated exactly. The final error terms
    # are the leaf rounding plus gamma_m (m = 2 visited + 16) times the absolute sums grown by 1 / (1 - gamma_m),
    # plus the absolute underflow terms; recomputed here in the same float64 operations, bit for bit.
    rng = np.random.default_rng(5)
    n = 12
    K = rng.normal(size=(n, 2))
    V = rng.uniform(0.5, 2.0, (n, 2))  # one-signed columns: |N'| bounds sum_j w_j |V_jc|
    tree = at.build_tree(K, V, 6, leaf_size=16)
    assert tree.depth == 0
    Qb = rng.normal(size=(1, 2))
    M = np.array([float((tree.keys @ Qb[0]).max())])
    c = at._accumulate(tree, Qb, M, -30.0, np.abs(V).max(axis=0), np.array([True, True]))
    assert int(c["visited"][0]) == 1 and int(c["leaves"][0]) == 1 and int(c["exact_keys"][0]) == n
    x = np.einsum("ld,d->l", tree.keys, Qb[0])
    w = np.exp(x - M[0])
    u = 2.0**-53
    gam_leaf = 2 * (16 + 8) * u
    den = w.sum()
    num = np.einsum("l,lc->c", w, tree.values)
    err_den = gam_leaf * den
    err_num = gam_leaf * np.einsum("l,lc->c", w, np.abs(tree.values))
    assert float(c["den"][0]) == den and np.array_equal(c["num"][0], num)
    mu = (2 * 1 + 16) * u
    g = mu / (1.0 - mu)
    grow = 1.0 / (1.0 - g)
    den_abs = (abs(den) + 2 * err_den) * grow
    num_abs = (np.abs(num) + 2 * err_num) * grow
    tiny = 2.0**-1074 * 8.0 * (n + 1 * (tree.alphas.shape[0] + 8.0))
    err_den_final = err_den + g * den_abs + tiny
    err_num_final = err_num + g * num_abs + tiny + 2.0**-1074 * (abs(den) + 2 * err_den_final)
    assert float(c["err_den"][0]) == err_den_final
    assert np.array_equal(c["err_num"][0], err_num_final)


@pytest.mark.parametrize("eps", [1e-3, 1e-6, 1e-10])
def test_stats_of_a_run_with_one_accepted_pair(eps):
    # One query against keys in [-1, 1]: the root pair is accepted at once, so the mean degree over accepted
    # pairs is the degree of that single pair (= degree_max), and the output is within its certificate.
    K = np.linspace(-1.0, 1.0, 64)[:, None]
    V = K + 2.0
    r = at.anytemp(np.array([[1.0]]), K, V, eps=eps, scale=1.0)
    s = r.stats
    assert r.method == "tree-1d"
    assert s["visited_mean"] == 1.0 and s["accepted_mean"] == 1.0 and s["leaves_mean"] == 0.0
    assert s["degree_max"] >= 1 and s["degree_mean"] == float(s["degree_max"])
    w = np.exp(K[:, 0] - 1.0)
    truth = float(w @ V[:, 0] / w.sum())
    assert abs(float(r.output.to_float()[0, 0]) - truth) <= r.error_bound + 1e-15 and r.error_bound <= eps


def test_leaf_evaluation_is_chunked_so_wide_values_do_not_blow_up_memory():
    # 1024 queries against one leaf of 64 keys with d_v = 500: evaluating every (query, leaf) pair at once would
    # pad 1024 x 64 x 500 floats (262 MB) per array; the chunks keep the padded arrays near 2^22 numbers (32 MB).
    # numpy reports its allocations to tracemalloc, so the peak is measured, not timed.
    import tracemalloc

    rng = np.random.default_rng(0)
    Q, K, V = rng.normal(size=(1024, 2)), rng.normal(size=(64, 2)), rng.normal(size=(64, 500))
    tracemalloc.start()
    try:
        r = at.anytemp(Q, K, V, eps=1e-6, leaf_size=64)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.stats["tree_depth"] == 0 and r.stats["leaves_mean"] == 1.0
    assert peak < 200 * 2**20, peak / 2**20


def test_certify_quotient_default_shift_is_zero():
    # Exact sums (no error terms, delta = 0): the bound is only the rounding of the division and of the log-space
    # conversion, |T^| (u + e^{2 u (|log|T^|| + |v_log2| ln 2 + 4)} - 1), with the default v_log2 = 0.
    args = (np.array([[3.0]]), np.array([2.0]), np.zeros((1, 1)), np.zeros(1), np.zeros(1), np.array([10.0]),
            np.array([-10.0]), np.array([10.0]), np.array([True]))
    t, e = at.certify_quotient(*args)
    assert t[0, 0] == 1.5
    u = 2.0**-53
    assert e[0, 0] == 1.5 * (u + np.expm1(2 * u * (abs(np.log(1.5)) + 4)))
    t3, e3 = at.certify_quotient(*args, v_log2=3)
    assert t3[0, 0] == 1.5
    assert e3[0, 0] == 1.5 * (u + np.expm1(2 * u * (abs(np.log(1.5)) + 3 * math.log(2.0) + 4))) > e[0, 0]


def test_build_tree_moments_are_one_row_per_internal_node_recomputed_from_their_definition():
    rng = np.random.default_rng(8)
    K = rng.uniform(-1.0, 1.0, (64, 2))
    V = rng.normal(size=(64, 2))
    tree = at.build_tree(K, V, 6, leaf_size=16)
    m = math.comb(6 + 2, 2)
    assert tree.depth == 2 and tree.alphas.shape == (m, 2)
    assert tree.moments.shape == (2**tree.depth - 1, m, V.shape[1] + 1)  # internal nodes only (heap layout)
    W = np.concatenate([tree.values, np.ones((64, 1))], axis=1)
    for node in range(2**tree.depth - 1):
        s, e = int(tree.start[node]), int(tree.stop[node])
        U = (tree.keys[s:e] - tree.centre[node]) / tree.half[node]
        F = np.prod(U[:, None, :] ** tree.alphas[None, :, :], axis=2)  # (keys, monomials)
        assert np.allclose(tree.moments[node], F.T @ W[s:e], rtol=1e-12, atol=1e-12)


def test_accumulate_counts_every_visited_pair_over_all_levels():
    # Query 100 against keys in [-1, 1], three levels: the radii 100 and 50 exceed the table (2^6), so nothing
    # is accepted; the low half is dropped at level 1, one quarter at level 2, and one leaf is evaluated.
    K = np.linspace(-1.0, 1.0, 64)[:, None]
    V = np.ones((64, 1))
    tree = at.build_tree(K, V, 20, leaf_size=16)
    q = 100.0
    c = at._accumulate(tree, np.array([[q]]), np.array([q]), -20.0, np.array([1.0]), np.array([True]))
    got = {k: int(c[k][0]) for k in ("visited", "accepted", "dropped", "leaves", "exact_keys")}
    assert got == {"visited": 1 + 2 + 2, "accepted": 0, "dropped": 2, "leaves": 1, "exact_keys": 16}
    D = float(np.exp(q * K[:, 0] - q).sum())
    assert abs(float(c["den"][0]) - D) <= float(c["err_den"][0])


def test_max_search_finds_a_maximum_that_beats_the_representatives_by_one_ulp():
    # 63 keys with x = 1 - 2^-52 and one key (1, -1) at the corner of every box containing it: for q = (1, 0) the
    # box bound of those boxes is exactly 1, only 2^-52 above the best representative score, so pruning is decided
    # by the rounding slack, which must be non-negative; M_1 must be the exact maximum 1.
    rng = np.random.default_rng(0)
    y = np.sort(rng.uniform(-0.9, 1.0, 63))
    K = np.concatenate([np.array([[1.0, -1.0]]), np.stack([np.full(63, 1 - 2.0**-52), y], axis=1)])
    Q = np.array([[1.0, 0.0], [0.0, 1.0]])
    r = at.anytemp(Q, K, np.ones((64, 1)), eps=1e-6, scale=1.0, leaf_size=4)
    assert r.method == "tree" and r.tree_dim == 2
    assert r.parts["M"].tolist() == (Q @ K.T).max(axis=1).tolist() == [1.0, float(y.max())]


def test_gamma_refuses_too_many_operations_with_the_whole_message():
    from instances.errors import NumericalError

    with pytest.raises(NumericalError) as exc:
        at._gamma(2.0**52)
    assert str(exc.value) == "too many float64 operations for the rounding analysis (m u >= 1/2)"


def test_exact_fallback_window_uses_the_value_scale_below_one():
    rng = np.random.default_rng(9)
    Q, K = rng.normal(size=(3, 6)), rng.normal(size=(10, 6))
    V = np.full((10, 1), 0.5)
    r = at.anytemp(Q, K, V, eps=1e-6, low_rank=False)
    assert r.method == "exact-fallback"
    assert r.window == pytest.approx(math.log(40) + math.log(0.5) - math.log(1e-6), rel=1e-12)
