from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finegrained.attention import ORACLES, OracleAnswer, exact, exact_oracle, reference
from finegrained.attention.anytemp import (
    _R_LO,
    MAX_TREE_DIM,
    _cheb_table,
    anytemp,
    anytemp_oracle,
    build_tree,
    low_rank_rewrite,
    monomial_exponents,
)
from instances.errors import ParameterError


def _err(res, Q, K, V, scale):
    """A lower bound on anytemp's true error per row: its distance to exact() minus exact()'s certified error.

    exact() is itself only accurate to its "log" certificate (about 1e-14 relative at scores near 10^3), and
    anytemp's bound can be smaller than that (n = 1: the output is V itself), so the raw difference would not do.
    """
    ans = exact_oracle(Q, K, V, scale=scale)
    ex = ans.output.to_float()
    ex_err = np.abs(ex) * np.expm1(np.exp(ans.certificate.log_bound))
    return (np.abs(res.output.to_float() - ex) - ex_err).max(axis=1)


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("B", [1.0, 10.0, 30.0, 1000.0])
def test_error_within_certified_bound(d, B):
    rng = np.random.default_rng(10 * d + int(B))
    n = 700
    Q, K, V = rng.uniform(-B, B, (n, d)), rng.uniform(-B, B, (n, d)), rng.uniform(-B, B, (n, 2))
    eps = 1e-6 * B
    res = anytemp(Q, K, V, eps=eps, scale=1.0)
    err = _err(res, Q, K, V, 1.0)
    assert np.all(err <= res.row_bounds)
    assert res.error_bound <= eps
    assert res.method == ("tree-1d" if d == 1 else "tree")


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 80), nq=st.integers(1, 20), d=st.integers(1, 3), log_b=st.floats(-1, 3),
       seed=st.integers(0, 2**32 - 1), leaf=st.sampled_from([1, 2, 16]))
def test_random_small_inputs(n, nq, d, log_b, seed, leaf):
    rng = np.random.default_rng(seed)
    B = 10.0**log_b
    Q, K, V = rng.uniform(-B, B, (nq, d)), rng.uniform(-B, B, (n, d)), rng.normal(size=(n, 1))
    res = anytemp(Q, K, V, eps=1e-5, scale=1.0, leaf_size=leaf)
    assert np.all(_err(res, Q, K, V, 1.0) <= res.row_bounds)
    assert res.error_bound <= 1e-5 * 1.01 + 1e-9


def test_adversarial_sphere_and_duplicates():
    rng = np.random.default_rng(3)
    K = rng.normal(size=(900, 2))
    K = 200 * K / np.linalg.norm(K, axis=1, keepdims=True)
    K[:100] = K[0]  # a heavy duplicate cluster
    Q, V = rng.uniform(-200, 200, (300, 2)), rng.uniform(-1, 1, (900, 1))
    res = anytemp(Q, K, V, eps=1e-7, scale=1.0)
    assert np.all(_err(res, Q, K, V, 1.0) <= res.row_bounds)
    assert res.stats["crossing_max"] >= 1


def test_degree_independent_of_B_and_window_formula():
    """The degree actually used never exceeds the table degree g, whatever B, and L = ln(4 n ||V|| / eps).

    At B = 1 one low-degree node suffices; at B = 1000 the scores span 10^6 and the window holds few keys. A
    degree that grew with B (the paper's O(log(n/eps)) or a B-dependent table) would exceed g = 16 here, and a
    wrong window formula would change L.
    """
    rng = np.random.default_rng(4)
    n, eps = 400, 1e-6
    for B in (1.0, 10.0, 1e3):
        Q, K, V = rng.uniform(-B, B, (200, 2)), rng.uniform(-B, B, (n, 2)), rng.uniform(-2, 2, (n, 1))
        res = anytemp(Q, K, V, eps=eps, scale=1.0)
        assert res.stats["monomials"] == 153  # C(16 + 2, 2): moments up to degree 16, not more
        assert 0 <= res.stats["degree_max"] <= 16
        assert res.window == pytest.approx(np.log(4 * n * np.abs(V).max() / eps), rel=1e-12)
        assert np.all(_err(res, Q, K, V, 1.0) <= res.row_bounds)
        if B == 10.0:
            assert res.stats["accepted_mean"] > 0 and res.stats["degree_max"] >= 2  # polynomials are really used


def test_low_rank_rewrite_and_fallback():
    rng = np.random.default_rng(5)
    Q = rng.normal(size=(120, 2)) @ rng.normal(size=(2, 8)) * 5
    K = rng.normal(size=(150, 8)) * 5
    V = rng.normal(size=(150, 1))
    Q2, K2, rho = low_rank_rewrite(Q, K)
    assert Q2.shape[1] == 2 and np.allclose(Q2 @ K2.T, Q @ K.T, atol=1e-9)
    assert np.all(np.abs(Q2 @ K2.T - Q @ K.T) <= rho[:, None] + 1e-9)
    res = anytemp(Q, K, V, eps=1e-6)
    assert res.tree_dim == 2 and np.all(_err(res, Q, K, V, 1 / 8) <= res.row_bounds)
    full = rng.normal(size=(40, MAX_TREE_DIM + 2))
    res = anytemp(full, full, V[:40], eps=1e-6)
    truth = reference(full, full, V[:40]).to_float()
    # The fallback is the exact oracle, whose float64 error is not 0: its certificate, made additive, is reported.
    assert res.method == "exact-fallback" and 0 < res.error_bound < 1e-10
    assert np.all(np.abs(res.output.to_float() - truth).max(axis=1) <= res.row_bounds)


def test_tree_moments_match_direct_sums():
    rng = np.random.default_rng(6)
    K, V = rng.uniform(-3, 3, (200, 2)), rng.normal(size=(200, 1))
    tree = build_tree(K, V, 4, leaf_size=8)
    node = 2  # second child of the root
    a, b = tree.start[node], tree.stop[node]
    U = (tree.keys[a:b] - tree.centre[node]) / tree.half[node]
    assert np.all(np.abs(U) <= 1 + 1e-12)
    alphas = monomial_exponents(2, 4)
    direct = np.prod(U[:, None, :] ** alphas[None], axis=2).T @ np.c_[tree.values[a:b], np.ones(b - a)]
    assert np.allclose(tree.moments[node], direct)
    assert len(alphas) == 15


def test_oracle_protocol_and_errors():
    assert ORACLES["anytemp"] is anytemp_oracle
    rng = np.random.default_rng(7)
    Q, K, V = rng.normal(size=(5, 2)), rng.normal(size=(6, 2)), rng.normal(size=(6, 3))
    ans = anytemp_oracle(Q, K, V)
    assert isinstance(ans, OracleAnswer) and ans.certificate.kind == "additive"
    out = ans.output
    assert out.shape == (5, 3) and np.shape(ans.certificate.log_bound) == (5, 3)
    err = np.abs(out.to_float() - exact(Q, K, V).to_float())
    assert np.all(err <= np.exp(ans.certificate.log_bound)) and np.exp(ans.certificate.worst_log_bound) <= 1e-6
    with pytest.raises(ParameterError):
        anytemp(Q, K, V, eps=0.0)
    with pytest.raises(ParameterError):
        anytemp(Q, K[:, :1], V, eps=1e-3)
    zero = anytemp(Q, K, np.zeros((6, 1)), eps=1e-3)
    assert np.all(zero.output.to_float() == 0)


@pytest.mark.parametrize("g", [0, 2, 6, 10, 16, 20])
def test_chebyshev_table_error_is_certified(g):
    """The stored polynomial p (float coefficients) is within the certified error of e^z on [-R, R]."""
    radii, coef, err, absum = _cheb_table(20)
    fact = np.array([float(np.prod(np.arange(1, j + 1))) for j in range(21)])
    for i in range(0, radii.size, 3):
        R = radii[i]
        if not np.isfinite(err[i, g]):
            assert R >= 2 * (g + 2)
            continue
        z = np.linspace(-R, R, 4001, dtype=np.longdouble)
        c = (coef[i, g, : g + 1] / fact[: g + 1]).astype(np.longdouble)
        p = np.polynomial.polynomial.polyval(z, c)
        emp = float(np.max(np.abs(np.exp(z) - p)))
        assert emp <= err[i, g] * (1 + 1e-6) + 1e-30
        assert absum[i, g] >= float(np.sum(np.abs(c) * np.longdouble(R) ** np.arange(g + 1))) * (1 - 1e-12)
    # the Chebyshev error is far below the Taylor remainder R^(g+1)/(g+1)! at the same radius and degree
    i1 = -_R_LO  # R = 1
    assert radii[i1] == 1.0 and err[i1, 10] < 1e-2 / np.prod(np.arange(1.0, 12.0))


@pytest.mark.parametrize("degree", [2, 6, 16])
def test_adaptive_degree_within_bound(degree):
    rng = np.random.default_rng(degree)
    n, B = 600, 10.0
    Q, K, V = rng.uniform(-B, B, (n, 2)), rng.uniform(-B, B, (n, 2)), rng.uniform(-1, 1, (n, 1))
    res = anytemp(Q, K, V, eps=1e-7, scale=1.0, degree=degree, leaf_size=4)
    assert np.all(_err(res, Q, K, V, 1.0) <= res.row_bounds)
    assert res.error_bound <= 1e-7 * 1.01
    assert res.degree == degree and 0 <= res.stats["degree_mean"] <= degree
    if degree == 16:
        low = anytemp(Q, K, V, eps=1e-7, scale=1.0, degree=2, leaf_size=4)
        assert res.stats["visited_mean"] < low.stats["visited_mean"]
