"""Every field of the gradients' certificates recomputed from the docstrings' formulas (finegrained.attention.grad).

The bounds of :func:`exact_grad`, :func:`anytemp_grad` and :func:`poly_grad` are rebuilt here from the steps their
docstrings state (exact_grad steps 1-4, the anytemp and poly certificate bullets, ``_assemble``'s triangle
inequality), with references computed independently (a full-matrix softmax instead of the tiled online sum,
``P_g(S)`` evaluated entrywise instead of the monomial factorisation), at shapes that cross the block boundaries
(block = 1, n_k not a multiple of the block, one block). Every stats key is checked, and every refusal is matched
as a whole message.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

import mpmath
import numpy as np
import pytest

from finegrained.attention import anytemp_grad, exact_grad, poly_grad
from finegrained.attention.anytemp import MAX_TREE_DIM, anytemp
from finegrained.attention.grad import _gamma
from finegrained.attention.poly import exp_polynomial
from instances.errors import NumericalError, ParameterError, ResourceLimitError

U = 2.0**-53
RTOL = 1e-9


def gam(m: int) -> float:
    """Higham's gamma_m = m u / (1 - m u), written independently of the module."""
    return m * U / (1 - m * U)


def _close(got: float, want: float, rtol: float = RTOL) -> bool:
    return abs(got - want) <= rtol * abs(want) + 1e-300


def _check_result(res, want_values: dict, want_bounds: dict, method: str, vtol: float = 1e-10):
    """Every field of a GradResult: arrays (float64, shapes, values), bounds, error_bound, method."""
    assert res.method == method
    for name in ("dQ", "dK", "dV"):
        got, want = getattr(res, name), want_values[name]
        assert isinstance(got, np.ndarray) and got.dtype == np.float64 and got.shape == want.shape, name
        assert np.allclose(got, want, rtol=vtol, atol=vtol * (1 + np.abs(want).max(initial=0.0))), name
    assert set(res.bounds) == {"dQ", "dK", "dV"}
    for name in ("dQ", "dK", "dV"):
        assert _close(res.bounds[name], want_bounds[name]), (name, res.bounds[name], want_bounds[name])
    assert res.error_bound == max(res.bounds.values())


# ------------------------------------------------------------------------------------------------------------
# independent references
# ------------------------------------------------------------------------------------------------------------


def _softmax_grad(P, Q, K, V, dO, s):
    """The backward formulas of the module docstring on a full matrix P."""
    out = P @ V
    delta = (dO * out).sum(axis=1)
    dP = dO @ V.T
    dS = P * (dP - delta[:, None])
    return {"dQ": s * dS @ K, "dK": s * dS.T @ Q, "dV": P.T @ dO}, out, delta


def _full_softmax(Q, K, s):
    S = s * (Q @ K.T)
    m = S.max(axis=1)
    ell = m + np.log(np.exp(S - m[:, None]).sum(axis=1))
    return np.exp(S - ell[:, None]), ell


def _exact_certificate(Q, K, V, dO, s, block):
    """exact_grad's docstring, steps 1-4, on a full-matrix reference (no tiling)."""
    n_q, d = Q.shape
    n_k, d_v = V.shape
    P, ell = _full_softmax(Q, K, s)
    vals, out, delta = _softmax_grad(P, Q, K, V, dO, s)
    n_b = math.ceil(n_k / block)
    qn = max(math.sqrt(float(q @ q)) for q in Q) if n_q else 0.0
    kn = max(math.sqrt(float(k @ k)) for k in K)
    R = abs(s) * qn * kn * (1 + 4 * U)  # |S| <= |s| max||q|| max||k||, inflated for its own rounding
    Lam = float(np.abs(ell).max()) if n_q else 0.0
    lam = gam(d + 2) * R + (n_b + 1) * (2 * R + 3) * U + gam(n_k + 2 * n_b) + 2 * U * (Lam + 1)
    tau = gam(d + 2) * R + lam + U * (R + Lam) + 2 * U
    eps_P = math.expm1(tau)
    eps_O = math.expm1(2 * tau) + gam(n_k + 2 * n_b + 2)
    vmax = float(np.abs(V).max())
    dO_l1 = np.abs(dO).sum(axis=1)  # ||dO_i||_1, per row
    Dl = dO_l1 * vmax * (eps_O + gam(d_v)) * (1 + eps_O)
    h = dO_l1 * vmax + np.abs(delta)
    kappa = (eps_P + gam(d_v + 3)) * (1 + eps_P) * h + (1 + eps_P) * Dl
    gq, gk = gam(n_k + n_b + 2), gam(n_q + n_b + 2)
    c_max = (P.sum(axis=0).max() if n_q else 0.0) * (1 + eps_P) * (1 + gk)
    worst_q = (kappa + gq * (1 + eps_P) * (h + kappa)).max(initial=0.0)
    worst_k = (kappa + gk * (1 + eps_P) * (h + kappa)).max(initial=0.0)
    infl = 1 + 8 * U
    bounds = {
        "dQ": abs(s) * np.abs(K).max() * worst_q * infl,
        "dK": abs(s) * (np.abs(Q).max() if n_q else 0.0) * c_max * worst_k * infl,
        "dV": (eps_P + gk) * (1 + eps_P) * c_max * (np.abs(dO).max() if n_q else 0.0) * infl,
    }
    stats = {"score_radius": R, "log_normaliser_error": lam, "relative_P_error": eps_P, "key_blocks": n_b}
    return vals, bounds, stats


def _delta_ref(dO, out, err_out):
    """delta = rowsum(dO o O); |err| <= sum |dO| err (1 + gamma) + gamma sum |dO| (|O| + err)."""
    d_v = dO.shape[1]
    delta = (dO * out).sum(axis=1)
    err = (np.abs(dO) * err_out).sum(axis=1) * (1 + gam(d_v)) + gam(d_v) * (np.abs(dO) * (np.abs(out) + err_out)).sum(1)
    return delta, err


def _assemble_ref(s, V, dO, row, row_err, delta, delta_err, col, col_err, d):
    """_assemble's docstring: triangle inequality on dQ = s (sum_l dO_l F_l - delta PK), dK = s (sum_l V_l G1_l - G2),
    plus gamma_{d_v+3} times the absolute sums, inflated by 1 + 8u. Loops over (i, a) instead of einsum."""
    n_q, d_v = dO.shape
    n_k = V.shape[0]
    g = gam(d_v + 3)
    dQ, eq = np.zeros((n_q, d)), np.zeros((n_q, d))
    for i in range(n_q):
        for a in range(d):
            F = np.array([row[i, d_v + d + c * d + a] for c in range(d_v)])
            eF = np.array([row_err[i, d_v + d + c * d + a] for c in range(d_v)])
            pk, epk = row[i, d_v + a], row_err[i, d_v + a]
            dQ[i, a] = s * (float(dO[i] @ F) - delta[i] * pk)
            absum = float(np.abs(dO[i]) @ (np.abs(F) + eF)) + (abs(delta[i]) + delta_err[i]) * (abs(pk) + epk)
            eq[i, a] = abs(s) * (float(np.abs(dO[i]) @ eF) + abs(delta[i]) * epk + delta_err[i] * (abs(pk) + epk)
                                 + g * absum)
    dK, ek = np.zeros((n_k, d)), np.zeros((n_k, d))
    for j in range(n_k):
        for a in range(d):
            G1 = np.array([col[j, d_v + c * d + a] for c in range(d_v)])
            eG1 = np.array([col_err[j, d_v + c * d + a] for c in range(d_v)])
            g2, eg2 = col[j, d_v + d_v * d + a], col_err[j, d_v + d_v * d + a]
            dK[j, a] = s * (float(V[j] @ G1) - g2)
            absum = float(np.abs(V[j]) @ (np.abs(G1) + eG1)) + abs(g2) + eg2
            ek[j, a] = abs(s) * (float(np.abs(V[j]) @ eG1) + eg2 + g * absum)
    infl = 1 + 8 * U
    bounds = {"dQ": float(eq.max(initial=0.0)) * infl, "dK": float(ek.max(initial=0.0)) * infl,
              "dV": float(col_err[:, :d_v].max(initial=0.0)) * infl}
    return {"dQ": dQ, "dK": dK, "dV": col[:, :d_v]}, bounds


def _row_x(V, K):
    """[V | K | V_l K_a] with the (c, a) block in row-major order, by explicit columns."""
    cols = [V[:, c] for c in range(V.shape[1])] + [K[:, a] for a in range(K.shape[1])]
    cols += [V[:, c] * K[:, a] for c in range(V.shape[1]) for a in range(K.shape[1])]
    return np.stack(cols, axis=1)


def _col_x(dO, Q, delta):
    cols = [dO[:, c] for c in range(dO.shape[1])]
    cols += [dO[:, c] * Q[:, a] for c in range(dO.shape[1]) for a in range(Q.shape[1])]
    cols += [delta * Q[:, a] for a in range(Q.shape[1])]
    return np.stack(cols, axis=1)


# ------------------------------------------------------------------------------------------------------------
# exact_grad
# ------------------------------------------------------------------------------------------------------------


def _exact_cases():
    """(Q, K, V, dO, scale, block): block 1, block not dividing n_k, n_q > block, one block, entries < 1 and > 1."""
    rng = np.random.default_rng(7)
    out = []
    for n_q, n_k, d, d_v, block, scale, top in [
        (5, 7, 2, 3, 3, 0.7, 0.4),     # n_k = 7 not a multiple of 3, several query blocks, all entries < 1
        (6, 5, 3, 2, 1, -1.3, 3.0),    # block = 1, negative scale, entries > 1
        (4, 9, 2, 1, 4, 1.0, 0.3),     # 9 keys in blocks of 4, d_v = 1
        (3, 4, 2, 2, 512, 0.5, 2.0),   # one block
        (1, 3, 1, 2, 2, 1.0, 0.2),     # n_q = 1: column sums below 1
        (1, 1, 2, 1, 1, 1.0, 0.5),     # one query, one key: |ell| < 1
        (7, 6, 2, 2, 6, 0.9, 0.6),     # block = n_k
    ]:
        Q, K = rng.uniform(-top, top, (n_q, d)), rng.uniform(-top, top, (n_k, d))
        V, dO = rng.uniform(-top, top, (n_k, d_v)), rng.uniform(-top, top, (n_q, d_v))
        out.append((Q, K, V, dO, scale, block))
    # R = 0 (zero queries): the u-sized terms of lam and tau dominate the certificate
    out.append((np.zeros((4, 2)), rng.uniform(-1, 1, (5, 2)), rng.uniform(-0.5, 0.5, (5, 2)),
                rng.uniform(-0.5, 0.5, (4, 2)), 1.0, 2))
    return out


def test_exact_grad_certificate_is_its_docstring_formula():
    """Steps 1-4 of exact_grad's docstring recomputed on a full-matrix softmax, at every block configuration;
    the values agree with the reference, every bound and stat with its formula, and the bound covers a
    60-digit evaluation (soundness)."""
    for Q, K, V, dO, s, block in _exact_cases():
        res = exact_grad(Q, K, V, dO, scale=s, block=block)
        vals, bounds, stats = _exact_certificate(Q, K, V, dO, s, block)
        _check_result(res, vals, bounds, "exact")
        assert set(res.stats) == set(stats)
        assert res.stats["key_blocks"] == stats["key_blocks"] == -(-K.shape[0] // block)
        assert isinstance(res.stats["key_blocks"], int)
        assert res.stats["score_radius"] == pytest.approx(stats["score_radius"], rel=1e-15, abs=0)
        for key in ("log_normaliser_error", "relative_P_error"):
            assert _close(res.stats[key], stats[key], 1e-12), (key, res.stats[key], stats[key])


@pytest.mark.parametrize("Q, K", [(np.zeros((1, 2)), np.array([[0.75, -0.5]])),
                                  (np.array([[0.75, -0.5]]), np.zeros((1, 2)))])
def test_exact_grad_degenerate_case_is_bit_exact(Q, K):
    """One query and one key with a zero side: S = 0, P = 1, ell = 0 and every intermediate of the certificate is
    exact, so the float64 evaluation of the docstring's formula (in its order) must agree to the last bit."""
    V, dO, s = np.array([[0.375]]), np.array([[-0.625]]), 1.25
    res = exact_grad(Q, K, V, dO, scale=s, block=1)
    n_b, d, d_v, n_k, n_q = 1, 2, 1, 1, 1
    lam = gam(d + 2) * 0.0 + (n_b + 1) * (2 * 0.0 + 3) * U + _gamma(n_k + 2 * n_b) + 2 * U * (0.0 + 1)
    tau = _gamma(d + 2) * 0.0 + lam + U * (0.0 + 0.0) + 2 * U
    eps_p, eps_o = math.expm1(tau), math.expm1(2 * tau) + _gamma(n_k + 2 * n_b + 2)
    h = 0.625 * 0.375 + 0.625 * 0.375
    dl = 0.625 * 0.375 * (eps_o + _gamma(d_v)) * (1 + eps_o)
    kappa = (eps_p + _gamma(d_v + 3)) * (1 + eps_p) * h + (1 + eps_p) * dl
    gq, gk = _gamma(n_k + n_b + 2), _gamma(n_q + n_b + 2)
    c_max = 1.0 * (1 + eps_p) * (1 + gk)
    infl = 1 + 8 * U
    assert res.stats == {"score_radius": 0.0, "log_normaliser_error": lam, "relative_P_error": eps_p, "key_blocks": 1}
    assert res.bounds == {
        "dQ": s * float(np.abs(K).max()) * (kappa + gq * (1 + eps_p) * (h + kappa)) * infl,
        "dK": s * float(np.abs(Q).max()) * c_max * (kappa + gk * (1 + eps_p) * (h + kappa)) * infl,
        "dV": (eps_p + gk) * (1 + eps_p) * c_max * 0.625 * infl,
    }
    assert np.array_equal(res.dV, [[-0.625]]) and np.array_equal(res.dQ, [[0.0, 0.0]])


@pytest.mark.parametrize("n_q", [1, 2**17])
@pytest.mark.parametrize("zero_side", ["Q", "K"])
def test_poly_grad_degenerate_case_is_bit_exact(zero_side, n_q):
    """n_q equal queries, one key, d = d_v = 1 and a zero side: R = 0, the polynomial is P_0 = 1 (eps_A = 0), every
    product and row sum is exact (column sums are n_q times a dyadic number), so the certificate of poly_grad's
    docstring, evaluated in float64 in its order (row bullet, delta, column bullet with theta, rho and c_j, then
    _assemble), agrees to the last bit; with n_q = 2^17 the gamma_{n_q + 1} of the sum of 1 / D^_i is visible."""
    q, k, v, o, s = (0.0, 0.75, 0.375, -0.625, 1.25) if zero_side == "Q" else (0.5, 0.0, 0.375, -0.625, 1.25)
    res = poly_grad(np.full((n_q, 1), q), np.array([[k]]), np.array([[v]]), np.full((n_q, 1), o), scale=s)
    approx = exp_polynomial(0.0, 1e-8)
    assert approx.degree == 0 and approx.bound == 0.0 and list(approx.coefficients) == [1.0]
    eps_a, gm = 0.0, _gamma(n_q + 1 + 1 + 0 + 16)
    eps_r = gm * approx.abs_sum * math.exp(0.0)
    X = [v, k, v * k]                                # X_row (the row sums are 1: row = X)
    row_err = [(2 * eps_a + 2 * eps_r / (1 - eps_a - eps_r)) * abs(x) * (1 + 2 * U) + U * abs(x) for x in X]
    delta = o * v
    d_err = abs(o) * row_err[0] * (1 + _gamma(1)) + _gamma(1) * (abs(o) * (abs(v) + row_err[0]))
    C = [n_q * x for x in (o, o * q, delta * q)]     # P^T X_col: one key, n_q equal rows
    theta = (1 + eps_a) / (1 - eps_a - eps_r) - 1 + 32 * U
    rho = gm * approx.abs_sum * (float(n_q) * (1 + _gamma(n_q + 1))) * (1 + 4 * U)
    c_hi = (float(n_q) + rho) / (1 - theta)
    col_err = [(theta * c_hi + rho) * abs(x) for x in (o, o * q, delta * q)]
    col_err[2] += c_hi * (abs(q) * d_err)
    g = _gamma(1 + 3)
    F, eF, PK, ePK = X[2], row_err[2], X[1], row_err[1]
    abs_q = abs(o) * (abs(F) + eF) + (abs(delta) + d_err) * (abs(PK) + ePK)
    err_q = abs(s) * (abs(o) * eF + abs(delta) * ePK + d_err * (abs(PK) + ePK) + g * abs_q)
    G1, eG1, G2, eG2 = C[1], col_err[1], C[2], col_err[2]
    abs_k = abs(v) * (abs(G1) + eG1) + abs(G2) + eG2
    err_k = abs(s) * (abs(v) * eG1 + eG2 + g * abs_k)
    infl = 1 + 8 * U
    assert res.bounds == {"dQ": err_q * infl, "dK": err_k * infl, "dV": col_err[0] * infl}
    assert res.stats == {"degree": 0, "rank": 1, "poly_error": 0.0, "rounding_error": eps_r, "radius": 0.0,
                         "method": approx.method}
    assert np.all(res.dQ == s * (o * F - delta * PK)) and res.dK[0, 0] == s * (v * G1 - G2) and res.dV[0, 0] == C[0]


def test_exact_grad_bound_is_sound_at_high_precision():
    """The bound (with its 1 + 8u inflation) is at least the largest error against a 60-digit evaluation."""
    for Q, K, V, dO, s, block in _exact_cases()[:3]:
        res = exact_grad(Q, K, V, dO, scale=s, block=block)
        with mpmath.workdps(60):
            Qm, Km, Vm, dOm = (mpmath.matrix(x.tolist()) for x in (Q, K, V, dO))
            Sm = (Qm * Km.T) * mpmath.mpf(s)
            Pm = mpmath.matrix(Sm.rows, Sm.cols)
            for i in range(Sm.rows):
                row = [mpmath.exp(Sm[i, j]) for j in range(Sm.cols)]
                tot = mpmath.fsum(row)
                for j in range(Sm.cols):
                    Pm[i, j] = row[j] / tot
            out = Pm * Vm
            dV = Pm.T * dOm
            err = max(abs(mpmath.mpf(float(res.dV[j, c])) - dV[j, c]) for j in range(dV.rows) for c in range(dV.cols))
            assert float(err) <= res.bounds["dV"]
            dP = dOm * Vm.T
            dS = mpmath.matrix(Sm.rows, Sm.cols)
            for i in range(Sm.rows):
                delta = mpmath.fsum(dOm[i, c] * out[i, c] for c in range(out.cols))
                for j in range(Sm.cols):
                    dS[i, j] = Pm[i, j] * (dP[i, j] - delta)
            for name, ref in (("dQ", dS * Km * s), ("dK", dS.T * Qm * s)):
                got = getattr(res, name)
                err = max(abs(mpmath.mpf(float(got[i, a])) - ref[i, a])
                          for i in range(ref.rows) for a in range(ref.cols))
                assert float(err) <= res.bounds[name], name


def test_exact_grad_accepts_block_one_and_refuses_zero():
    rng = np.random.default_rng(1)
    Q, K, V, dO = rng.normal(size=(3, 2)), rng.normal(size=(5, 2)), rng.normal(size=(5, 1)), rng.normal(size=(3, 1))
    one, big = exact_grad(Q, K, V, dO, block=1), exact_grad(Q, K, V, dO, block=99)
    assert one.stats["key_blocks"] == 5 and big.stats["key_blocks"] == 1
    for name in ("dQ", "dK", "dV"):
        assert np.allclose(getattr(one, name), getattr(big, name), rtol=1e-13, atol=1e-15)
    for bad in (0, -3):
        with pytest.raises(ParameterError) as e:
            exact_grad(Q, K, V, dO, block=bad)
        assert str(e.value) == f"block must be >= 1, got {bad}"


def test_exact_grad_without_queries_has_every_field():
    K, V = np.array([[1.0, 2.0], [0.5, -1.0]]), np.array([[1.0], [2.0]])
    res = exact_grad(np.zeros((0, 2)), K, V, np.zeros((0, 1)), scale=1.0, block=1)
    assert res.dQ.shape == (0, 2)
    assert np.array_equal(res.dK, np.zeros((2, 2))) and np.array_equal(res.dV, np.zeros((2, 1)))
    assert res.bounds == {"dQ": 0.0, "dK": 0.0, "dV": 0.0} and res.error_bound == 0.0 and res.method == "exact"
    lam = (2 + 1) * 3 * U + gam(2 + 4) + 2 * U
    assert res.stats["key_blocks"] == 2 and res.stats["score_radius"] == 0.0
    assert _close(res.stats["log_normaliser_error"], lam, 1e-12)
    assert _close(res.stats["relative_P_error"], math.expm1(lam + 2 * U), 1e-12)


# ------------------------------------------------------------------------------------------------------------
# shared pieces: input checks, gamma, overflow
# ------------------------------------------------------------------------------------------------------------


def test_gamma_is_highams_constant():
    for m in (1, 7, 10**6, 10**12):
        assert _gamma(m) == pytest.approx(m * U / (1 - m * U), rel=1e-15)
    assert _gamma(2**53 - 1) > 0 and math.isfinite(_gamma(2**53 - 1))
    assert _gamma(2**53) == math.inf and _gamma(2**54) == math.inf


@pytest.mark.parametrize("fn", [exact_grad, anytemp_grad, poly_grad])
def test_dO_refusals_are_whole_messages(fn):
    Q, K, V = np.full((3, 2), 0.5), np.full((4, 2), 0.25), np.ones((4, 1))
    with pytest.raises(ParameterError) as e:
        fn(Q, K, V, np.ones((2, 1)))
    assert str(e.value) == "dO must have the shape of the output, (3, 1); got (2, 1)"
    for bad in (np.nan, np.inf):
        dO = np.ones((3, 1))
        dO[1, 0] = bad
        with pytest.raises(NumericalError) as e:
            fn(Q, K, V, dO)
        assert str(e.value) == "dO contains NaN or infinite entries"


def test_dO_given_as_python_numbers_is_converted():
    """dO as Fractions or mpmath numbers (an object array) gives the float64 result."""
    rng = np.random.default_rng(2)
    Q, K, V = rng.uniform(-1, 1, (3, 2)), rng.uniform(-1, 1, (4, 2)), rng.uniform(-1, 1, (4, 2))
    dO = np.array([[0.5, -0.25], [1.0, 0.125], [-0.75, 2.0]])
    frac = [[Fraction(x) for x in row] for row in dO]
    mp = np.array([[mpmath.mpf(x) for x in row] for row in dO], dtype=object)
    for fn in (exact_grad, anytemp_grad, poly_grad):
        ref = fn(Q, K, V, dO, scale=0.5)
        for other in (frac, mp):
            got = fn(Q, K, V, other, scale=0.5)
            assert all(np.array_equal(getattr(got, n), getattr(ref, n)) for n in ("dQ", "dK", "dV"))
            assert got.bounds == ref.bounds


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_overflow_is_refused_with_a_clear_message():
    Q, K = np.array([[0.0]]), np.array([[0.0], [0.0]])
    V = np.array([[1e300], [-1e300]])
    with pytest.raises(NumericalError) as e:
        exact_grad(Q, K, V, np.array([[1e10]]))
    assert str(e.value) in {"dQ overflows float64; rescale dO or V", "dK overflows float64; rescale dO or V",
                            "dV overflows float64; rescale dO or V"}
    with pytest.raises(NumericalError) as e:
        # equal values and zero scores: dS = 0 exactly, but the bound |s| max|K| kappa overflows
        exact_grad(Q, np.array([[1e300], [1e300]]), np.array([[0.6e308], [0.6e308]]), np.array([[1.0]]))
    assert str(e.value) == "the error bound overflows float64; rescale dO or V"


# ------------------------------------------------------------------------------------------------------------
# anytemp_grad
# ------------------------------------------------------------------------------------------------------------


def _fwd(Qx, Kx, W, eps, s, opts):
    """One forward call with every value column scaled to max|W_c| in (1/2, 1] by a power of two (zero columns
    unscaled); the certificate per entry is (row bound + 2.3e-308 flush) times the column's scale."""
    scale = np.ones(W.shape[1])
    for c in range(W.shape[1]):
        top = float(np.abs(W[:, c]).max())
        if top > 0:
            scale[c] = 2.0 ** math.ceil(math.log2(top))
    r = anytemp(Qx, Kx, W / scale, eps=eps, scale=s, **opts)
    Y = r.output.sign * np.exp(r.output.log_abs)
    return Y * scale, (r.row_bounds[:, None] + 2.3e-308) * scale[None, :], r


def _anytemp_certificate(Q, K, V, dO, s, eps, opts, column_indicator=False):
    """anytemp_grad's docstring: the three forward calls and the certificate bullets, then _assemble (or, with
    ``column_indicator``, only the third call's indicator column and its certificate)."""
    n_q, d = Q.shape
    n_k, d_v = V.shape
    r1 = anytemp(Q, K, K, eps=eps, scale=s, **opts)
    PK = r1.output.sign * np.exp(r1.output.log_abs)
    c = s * (Q * PK).sum(axis=1)  # Gibbs shift
    X = _row_x(V, K)
    cr = X.shape[1]
    Q2 = np.hstack([Q, (c / s)[:, None]])
    K2 = np.vstack([np.hstack([K, np.zeros((n_k, 1))]), np.eye(1, d + 1, d)])
    W2 = np.zeros((n_k + 1, cr + 1))
    W2[:n_k, :cr], W2[n_k, cr] = X, 1.0
    Y, Ye, r2 = _fwd(Q2, K2, W2, eps, s, opts)
    beta, z = Ye[:, cr], Y[:, cr]
    row = Y[:, :cr] / (1 - z)[:, None]
    row_err = (Ye[:, :cr] + beta[:, None] * np.abs(X).max(axis=0)) / (1 - z - beta)[:, None] + 2 * U * np.abs(row)
    a = s * (c / s)
    ell = a + np.log(1 - z) - np.log(z)
    lam = (-np.log1p(-beta / z) - np.log1p(-beta / (1 - z)) + 2 * U * np.abs(a) + 4 * U * (np.abs(ell) + 2)
           + 2 * U * np.abs(ell))
    delta, delta_err = _delta_ref(dO, row[:, :d_v], row_err[:, :d_v])
    Xc = _col_x(dO, Q, delta)
    cc = Xc.shape[1]
    K3 = np.vstack([np.hstack([Q, -(ell / s)[:, None]]), np.zeros((1, d + 1))])
    W3 = np.zeros((n_q + 1, cc + 1))
    W3[:n_q, :cc], W3[n_q, cc] = Xc, 1.0
    Z, Ze, r3 = _fwd(np.hstack([K, np.ones((n_k, 1))]), K3, W3, eps / (n_q + 1), s, opts)
    beta3, w = Ze[:, cc], Z[:, cc]
    if column_indicator:
        return beta3, w
    E = 1 / (w - beta3) - 1  # column-sum bound
    xc = np.abs(Xc).max(axis=0)
    col = Z[:, :cc] / w[:, None]
    L = float(lam.max())
    col_err = ((Ze[:, :cc] + beta3[:, None] * E[:, None] * xc) / (w - beta3)[:, None] + math.expm1(L) * E[:, None] * xc
               + 2 * U * np.abs(col))
    col_err[:, cc - d:] += math.exp(L) * E[:, None] * (np.abs(Q) * delta_err[:, None]).max(axis=0)
    vals, bounds = _assemble_ref(s, V, dO, row, row_err, delta, delta_err, col, col_err, d)
    stats = {"forward_calls": 3, "forward_bounds": [r1.error_bound, r2.error_bound, r3.error_bound],
             "forward_methods": [r1.method, r2.method, r3.method], "log_normaliser_error": L,
             "value_columns": [d, cr + 1, cc + 1]}
    return vals, bounds, stats


def _anytemp_cases():
    rng = np.random.default_rng(11)
    out = []
    for n_q, n_k, d, d_v, B, s, eps, opts in [
        (5, 7, 2, 2, 3.0, 1.0, 1e-9, {}),
        (6, 4, 1, 3, 40.0, 0.5, 1e-7, {"leaf_size": 2}),
        (4, 6, 3, 1, 0.4, -0.8, 1e-9, {"degree": 3}),
        (3, 5, 2, 1, 2000.0, 1.0, 1e-10, {}),  # scores of 1e6: the u |a|, u |ell| terms of lam matter
    ]:
        Q, K = rng.uniform(-B, B, (n_q, d)), rng.uniform(-B, B, (n_k, d))
        V, dO = rng.uniform(-0.7, 0.7, (n_k, d_v)), rng.normal(size=(n_q, d_v))
        if d_v > 1:
            V[:, 1] = 0.0  # a zero value column (unscaled by the forward's column scaling)
        out.append((Q, K, V, dO, s, eps, opts))
    return out


def test_anytemp_grad_certificate_is_its_docstring_formula():
    for Q, K, V, dO, s, eps, opts in _anytemp_cases():
        res = anytemp_grad(Q, K, V, dO, scale=s, eps=eps, **opts)
        vals, bounds, stats = _anytemp_certificate(Q, K, V, dO, s, eps, opts)
        _check_result(res, vals, bounds, "anytemp", vtol=1e-9)
        assert set(res.stats) == set(stats)
        assert res.stats["forward_calls"] == 3 and res.stats["value_columns"] == stats["value_columns"]
        assert res.stats["forward_methods"] == stats["forward_methods"]
        pairs = zip(res.stats["forward_bounds"], stats["forward_bounds"], strict=True)
        assert all(_close(x, y, 1e-9) for x, y in pairs)
        assert _close(res.stats["log_normaliser_error"], stats["log_normaliser_error"], 1e-9)
        ref = _softmax_grad(_full_softmax(Q, K, s)[0], Q, K, V, dO, s)[0]
        for name in ("dQ", "dK", "dV"):  # sound against the float64 reference (plus its own tiny error)
            assert np.abs(getattr(res, name) - ref[name]).max() <= res.bounds[name] * (1 + 1e-6) + 1e-12, name


def test_anytemp_grad_hands_trivial_and_wide_inputs_to_exact_grad():
    rng = np.random.default_rng(4)
    d = MAX_TREE_DIM  # d + 1 > MAX_TREE_DIM
    Q, K, V, dO = rng.normal(size=(3, d)), rng.normal(size=(4, d)), rng.normal(size=(4, 2)), rng.normal(size=(3, 2))
    for args, scale, reason in [((Q, K, V, dO), 0.7, f"tree dimension d + 1 = {d + 1} > {MAX_TREE_DIM}"),
                                ((Q[:, :2], K[:, :2], V, dO), 0.0, "trivial"),
                                ((Q[:0, :2], K[:, :2], V, dO[:0]), 0.7, "trivial")]:
        res, ref = anytemp_grad(*args, scale=scale), exact_grad(*args, scale=scale)
        assert res.method == "anytemp" and res.stats == {"reason": reason, "forward_calls": 0}
        for name in ("dQ", "dK", "dV"):
            assert np.array_equal(getattr(res, name), getattr(ref, name))
        assert res.bounds == ref.bounds and res.error_bound == ref.error_bound
    one = anytemp_grad(Q[:1, :2], K[:, :2], V, dO[:1], scale=0.7)  # a single query runs the reduction
    assert one.stats["forward_calls"] == 3


def test_anytemp_grad_refusals_are_whole_messages():
    Q = np.full((3, 2), 0.5)
    for eps in (0.0, 1.0, 1.5, -1e-3, math.inf, math.nan):
        with pytest.raises(ParameterError) as e:
            anytemp_grad(Q, Q, Q, Q, eps=eps)
        assert str(e.value) == f"eps must lie in (0, 1), got {float(eps)}"


# ------------------------------------------------------------------------------------------------------------
# poly_grad
# ------------------------------------------------------------------------------------------------------------


def _radius(Q, K, s):
    if Q.size == 0:
        return 0.0
    d = Q.shape[1]
    entry = d * np.abs(Q).max() * np.abs(K).max()
    norms = math.sqrt(max(float(q @ q) for q in Q)) * math.sqrt(max(float(k @ k) for k in K))
    return abs(s) * min(entry, norms)


def _poly_certificate(Q, K, V, dO, s, eps):
    """poly_grad's docstring: A~ = P_g(s Q K^T) evaluated entrywise, the row and column bullets, _assemble."""
    n_q, d = Q.shape
    n_k, d_v = V.shape
    R = _radius(Q, K, s)
    approx = exp_polynomial(R, eps)
    g = approx.degree
    r = math.comb(g + d, d)
    eA = approx.bound
    gm = gam(n_q + n_k + r + 4 * g + 16)
    eR = gm * approx.abs_sum * math.exp(R)
    A = np.polynomial.polynomial.polyval(s * (Q @ K.T), approx.coefficients)
    den = A.sum(axis=1)
    X = _row_x(V, K)
    row = (A @ X) / den[:, None]
    row_err = (2 * eA + 2 * eR / (1 - eA - eR)) * np.abs(X).max(axis=0) * (1 + 2 * U) + U * np.abs(row)
    delta, delta_err = _delta_ref(dO, row[:, :d_v], row_err[:, :d_v])
    Xc = _col_x(dO, Q, delta)
    col = A.T @ (Xc / den[:, None])
    csum = A.T @ (1 / den)
    theta = (1 + eA) / (1 - eA - eR) - 1 + 32 * U  # (1 + eA)(1 + u) / (1 - eA - eR) - 1 rounded up
    rho = gm * approx.abs_sum * (1 / den).sum() * (1 + gam(n_q + 1)) * (1 + 4 * U)
    c_hi = (np.maximum(csum, 0) + rho) / (1 - theta)
    col_err = (theta * c_hi[:, None] + rho) * np.abs(Xc).max(axis=0, initial=0.0)
    col_err[:, -d:] += c_hi[:, None] * (np.abs(Q) * delta_err[:, None]).max(axis=0, initial=0.0)
    vals, bounds = _assemble_ref(s, V, dO, row, row_err, delta, delta_err, col, col_err, d)
    stats = {"degree": g, "rank": r, "poly_error": eA, "rounding_error": eR, "radius": R, "method": approx.method}
    return vals, bounds, stats


def _poly_cases():
    rng = np.random.default_rng(13)
    out = []
    for n_q, n_k, d, d_v, B, s, eps in [
        (5, 7, 2, 2, 0.8, 1.0, 1e-8),
        (7, 3, 1, 3, 1.2, 0.7, 1e-10),   # n_q > n_k
        (3, 6, 3, 1, 0.5, -1.0, 1e-6),   # n_k > n_q, negative scale
        (1, 4, 2, 1, 0.3, 1.0, 1e-12),
    ]:
        Q, K = rng.uniform(-B, B, (n_q, d)), rng.uniform(-B, B, (n_k, d))
        V, dO = rng.uniform(-0.8, 0.8, (n_k, d_v)), rng.uniform(-0.9, 0.9, (n_q, d_v))
        out.append((Q, K, V, dO, s, eps))
    # R = 11.9 and a coarse eps: eps_r ~ 1e-4 and eps_A ~ 1e-3, so the eps_A part of the eps_r term is visible
    out.append((np.array([[3.5], [-2.0]]), np.array([[3.4], [1.0], [-3.0]]), rng.uniform(-0.8, 0.8, (3, 2)),
                rng.uniform(-0.9, 0.9, (2, 2)), 1.0, 1e-3))
    return out


def test_poly_grad_certificate_is_its_docstring_formula():
    for Q, K, V, dO, s, eps in _poly_cases():
        res = poly_grad(Q, K, V, dO, scale=s, eps=eps)
        vals, bounds, stats = _poly_certificate(Q, K, V, dO, s, eps)
        _check_result(res, vals, bounds, "poly", vtol=1e-9)
        assert set(res.stats) == set(stats)
        for key in ("degree", "rank", "method"):
            assert res.stats[key] == stats[key], key
        for key in ("poly_error", "rounding_error", "radius"):
            assert _close(res.stats[key], stats[key], 1e-13), key


def test_poly_grad_spans_several_feature_blocks(monkeypatch):
    """With the feature block forced down to 2 rows (several blocks, n not a multiple of 2), the result is the
    one-block result."""
    import finegrained.attention.grad as grad

    Q, K, V, dO, s, eps = _poly_cases()[0]
    ref = poly_grad(Q, K, V, dO, scale=s, eps=eps)
    r = ref.stats["rank"]
    monkeypatch.setattr(grad, "_POLY_BLOCK_BYTES", 8 * r * 2)
    res = poly_grad(Q, K, V, dO, scale=s, eps=eps)
    for name in ("dQ", "dK", "dV"):
        assert np.allclose(getattr(res, name), getattr(ref, name), rtol=1e-12, atol=1e-14)
    assert _close(res.error_bound, ref.error_bound, 1e-12)
    monkeypatch.setattr(grad, "_POLY_BLOCK_BYTES", 1)  # below one row: still one row per block
    res = poly_grad(Q, K, V, dO, scale=s, eps=eps)
    assert np.allclose(res.dK, ref.dK, rtol=1e-12, atol=1e-14)


def test_poly_grad_without_queries():
    K, V = np.array([[0.5, -0.25], [0.125, 0.5], [0.0, 0.25]]), np.array([[1.0], [2.0], [-1.0]])
    res = poly_grad(np.zeros((0, 2)), K, V, np.zeros((0, 1)), scale=1.0)
    assert res.dQ.shape == (0, 2)
    assert np.array_equal(res.dK, np.zeros((3, 2))) and np.array_equal(res.dV, np.zeros((3, 1)))
    assert res.bounds == {"dQ": 0.0, "dK": 0.0, "dV": 0.0} and res.method == "poly"
    assert res.stats["radius"] == 0.0 and res.stats["degree"] == 0 and res.stats["rank"] == 1


def test_poly_grad_refusals_are_whole_messages():
    Q = np.full((3, 2), 0.5)
    for eps in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ParameterError) as e:
            poly_grad(Q, Q, Q, Q, eps=eps)
        assert str(e.value) == f"eps must lie in (0, 1), got {float(eps)}"
    assert poly_grad(Q, Q, Q, Q, B=0.5).method == "poly"  # |x| = B is allowed
    with pytest.raises(ParameterError) as e:
        poly_grad(Q, np.full((3, 2), 0.75), Q, Q, B=0.6)
    assert str(e.value) == "entries of Q and K must satisfy |x| <= B = 0.6, but one has |x| = 0.75"
    with pytest.raises(ParameterError) as e:
        poly_grad(np.full((3, 2), 0.75), Q, Q, Q, B=0.6)
    assert str(e.value) == "entries of Q and K must satisfy |x| <= B = 0.6, but one has |x| = 0.75"
    small = np.full((3, 2), 0.2)
    assert poly_grad(small, small, Q, Q, B=0.5).method == "poly"  # entries below 1 and below B pass


def _poly_limit(n_q, n_k):
    """poly_grad's refusal of scores past the rounding limit: 2R + log gamma_{n_q + n_k + 16} >= log(1/2)."""
    return 0.5 * (math.log(0.5) - math.log(gam(n_q + n_k + 16)))


def test_poly_grad_refuses_scores_past_the_rounding_limit_at_its_boundary():
    n_q, n_k = 2, 5
    lim = _poly_limit(n_q, n_k)
    # one nonzero entry per matrix makes R = |q| |k| exactly
    for R in (lim * (1 + 1e-12), lim * 1.5, lim * 3):
        Q, K = np.zeros((n_q, 1)), np.zeros((n_k, 1))
        Q[0, 0], K[0, 0] = R, 1.0
        with pytest.raises(NumericalError) as e:
            poly_grad(Q, K, np.ones((n_k, 1)), np.ones((n_q, 1)), scale=1.0)
        assert str(e.value) == (
            f"poly_grad: scores reach |s q.k| = {R:.4g}; the monomial basis cancels terms ~e^{R:.3g} and float64 "
            f"rounding voids any certificate (bounded entries need R below about {lim:.1f}); use anytemp_grad or "
            f"exact_grad")
    # just below the limit the pre-check passes: the refusal (if any) is the finer eps_A + eps_r one
    Q, K = np.zeros((n_q, 1)), np.zeros((n_k, 1))
    Q[0, 0], K[0, 0] = lim * (1 - 1e-9), 1.0
    with pytest.raises(NumericalError) as e:
        poly_grad(Q, K, np.ones((n_k, 1)), np.ones((n_q, 1)), scale=1.0)
    assert str(e.value).startswith(f"poly_grad: scores in [-{Q[0, 0]:.4g}, {Q[0, 0]:.4g}] make the rounding of the "
                                   "monomial basis (relative ")
    assert str(e.value).endswith(") void the certificate")


def test_poly_grad_refuses_rounding_that_voids_the_certificate():
    """At R = 16 (below the pre-check) eps_r = gamma_m S e^R exceeds 1/2: the message names the radius and eps_r."""
    n_q, n_k, R = 1, 2, 16.0
    assert R < _poly_limit(n_q, n_k)
    Q, K = np.array([[R]]), np.array([[1.0], [0.0]])
    approx = exp_polynomial(R, 1e-8)
    r = approx.degree + 1
    eps_r = gam(n_q + n_k + r + 4 * approx.degree + 16) * approx.abs_sum * math.exp(R)
    assert approx.bound + eps_r >= 0.5
    with pytest.raises(NumericalError) as e:
        poly_grad(Q, K, np.ones((2, 1)), np.ones((1, 1)), scale=1.0)
    assert str(e.value) == (f"poly_grad: scores in [-{R:.4g}, {R:.4g}] make the rounding of the monomial basis "
                            f"(relative {eps_r:.3g}) void the certificate")


def _poly_need(n_q, n_k, d, d_v, g):
    r = math.comb(g + d, d)
    c_row, c_col = d_v + d + d_v * d + 1, d_v + d_v * d + d + 1
    block = max(1, min(max(n_q, n_k, 1), 32 * 2**20 // (8 * r)))
    return r, 8 * (r * (c_row + c_col) + block * (r + c_row + c_col) + (n_q + n_k) * (c_row + c_col))


@pytest.mark.parametrize("n_q, n_k, d, d_v, top, eps", [
    (30000, 20000, 3, 2, 0.01, 1e-8),    # large n: the (n_q + n_k) term dominates
    (3, 200000, 2, 1, 0.01, 1e-8),       # n_k > n_q
    (1, 1, 3, 2, 0.6, 1e-15),            # a high degree: the rank term dominates
    (2, 3, 1, 1, 0.01, 1e-8),            # tiny plan
    (3, 20000, 3, 1, 0.6, 1e-15),        # rank 816: the feature block (32 MiB / 8r rows) is below n_k
])
def test_poly_grad_memory_refusal_is_its_formula(n_q, n_k, d, d_v, top, eps):
    Q, K = np.full((n_q, d), top), np.full((n_k, d), top)
    V, dO = np.ones((n_k, d_v)), np.ones((n_q, d_v))
    g = exp_polynomial(_radius(Q, K, 1.0), eps).degree
    r, need = _poly_need(n_q, n_k, d, d_v, g)
    with pytest.raises(ResourceLimitError) as e:
        poly_grad(Q, K, V, dO, scale=1.0, eps=eps, max_memory=need - 1)
    assert str(e.value) == (f"poly_grad needs about {need / 2**20:.1f} MiB (rank r = C({g} + {d}, {d}) = {r}) but "
                            f"max_memory is {(need - 1) / 2**20:.1f} MiB")
    if n_q * n_k < 10**4:
        assert poly_grad(Q, K, V, dO, scale=1.0, eps=eps, max_memory=need).method == "poly"  # need == max: runs


@pytest.mark.parametrize("d", [150, 360])
def test_poly_grad_memory_refusal_names_a_huge_rank_by_its_bits(d):
    """r = C(18 + 360, 360) ~ 2.6e30 > 1e30 is named by its bit length; r = C(18 + 150, 150) ~ 1e23 in full."""
    Q, K = np.zeros((1, d)), np.zeros((2, d))
    Q[0, 0] = K[0, 0] = math.sqrt(2.0)
    R = _radius(Q, K, 1.0)
    g = exp_polynomial(R, 1e-15).degree
    r, need = _poly_need(1, 2, d, 1, g)
    with pytest.raises(ResourceLimitError) as e:
        poly_grad(Q, K, np.ones((2, 1)), np.ones((1, 1)), scale=1.0, eps=1e-15, max_memory=10**6)
    rank = f"about 2^{r.bit_length()}" if r > 10**30 else str(r)
    assert (r > 10**30) == (d == 360)
    assert str(e.value) == (f"poly_grad needs about {need / 2**20:.1f} MiB (rank r = C({g} + {d}, {d}) = {rank}) but "
                            f"max_memory is {10**6 / 2**20:.1f} MiB")


def test_poly_grad_messages_name_their_numbers():
    """The refusal messages carry numbers, not placeholders (regression guard against a message dropped)."""
    Q = np.ones((3, 2))
    with pytest.raises(ResourceLimitError, match=re.escape("but max_memory is 0.0 MiB")):
        poly_grad(Q, Q, Q, Q, max_memory=1000)


def test_poly_grad_memory_refusal_when_the_need_passes_2_to_the_1000():
    """d = 3630 and degree 167 (eps = 1e-300 at R = 2) give 2^1000 <= need < 2^1001 bytes: printed as inf MiB
    (the byte count is not converted to a float), the rank by its bit length."""
    d = 3630
    Q, K = np.zeros((1, d)), np.zeros((2, d))
    Q[0, 0] = K[0, 0] = math.sqrt(2.0)
    g = exp_polynomial(_radius(Q, K, 1.0), 1e-300).degree
    r, need = _poly_need(1, 2, d, 1, g)
    assert 2**1000 <= need < 2**1001 and r > 10**30
    with pytest.raises(ResourceLimitError) as e:
        poly_grad(Q, K, np.ones((2, 1)), np.ones((1, 1)), scale=1.0, eps=1e-300, max_memory=2**40)
    assert str(e.value) == (f"poly_grad needs about inf MiB (rank r = C({g} + {d}, {d}) = about 2^{r.bit_length()}) "
                            f"but max_memory is {2**40 / 2**20:.1f} MiB")


def test_poly_grad_checks_eps_before_b_and_b_before_the_scores():
    """The refusals come in the documented order: eps, then B, then the score radius."""
    Q = np.full((3, 2), 0.5)
    for eps in (0.0, 1.0, 1.5):
        with pytest.raises(ParameterError) as e:
            poly_grad(Q, Q, Q, Q, eps=eps, B=0.1)  # B is violated too
        assert str(e.value) == f"eps must lie in (0, 1), got {eps}"
        with pytest.raises(ParameterError) as e:
            poly_grad(Q * 100, Q, Q, Q, eps=eps)  # and scores far past the rounding limit
        assert str(e.value) == f"eps must lie in (0, 1), got {eps}"
    with pytest.raises(ParameterError) as e:
        poly_grad(Q * 100, Q, Q, Q, B=10.0)
    assert str(e.value) == "entries of Q and K must satisfy |x| <= B = 10.0, but one has |x| = 50"


def test_poly_grad_between_half_and_one_and_a_half_of_rounding_is_refused():
    """R = 15.4: eps_A + eps_r is about 0.73, in [1/2, 3/2): still void, refused."""
    R = 15.4
    Q, K = np.array([[R]]), np.array([[1.0], [0.0]])
    approx = exp_polynomial(R, 1e-8)
    eps_r = gam(1 + 2 + approx.degree + 1 + 4 * approx.degree + 16) * approx.abs_sum * math.exp(R)
    assert 0.5 <= approx.bound + eps_r < 1.5
    with pytest.raises(NumericalError) as e:
        poly_grad(Q, K, np.ones((2, 1)), np.ones((1, 1)), scale=1.0)
    assert str(e.value) == (f"poly_grad: scores in [-{R:.4g}, {R:.4g}] make the rounding of the monomial basis "
                            f"(relative {eps_r:.3g}) void the certificate")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_poly_grad_overflow_of_a_product_is_refused():
    Q, K = np.array([[0.5], [0.25]]), np.array([[0.5], [-0.5]])
    with pytest.raises(NumericalError) as e:  # the row side: P V with V near the float64 limit
        poly_grad(Q, K, np.array([[1.5e308], [1.5e308]]), np.ones((2, 1)), scale=1.0)
    assert str(e.value) == "poly_grad: a computed row sum is not positive and finite; the computation lost precision"
    with pytest.raises(NumericalError) as e:  # the column side: P^T dO with dO near the limit (one key: P = 1)
        poly_grad(Q, K[:1], np.array([[1e-300]]), np.array([[1.5e308], [1.5e308]]), scale=1.0)
    assert str(e.value) == "poly_grad: the column-side products overflow float64"


@pytest.mark.parametrize("fn", [exact_grad, poly_grad])
def test_empty_feature_dimensions(fn):
    """d = 0 (every score 0: uniform attention) and d_v = 0 (no values): shapes, values and bounds."""
    dO = np.array([[1.0, -2.0], [0.5, 0.25], [3.0, 1.0]])
    res = fn(np.zeros((3, 0)), np.zeros((4, 0)), np.ones((4, 2)), dO, scale=1.0)
    assert res.dQ.shape == (3, 0) and res.dK.shape == (4, 0)
    assert np.allclose(res.dV, np.tile(dO.sum(axis=0) / 4, (4, 1)), rtol=1e-14)
    assert res.bounds["dQ"] == 0.0 and res.bounds["dK"] == 0.0 and 0 < res.bounds["dV"] < 1e-13
    res = fn(np.full((3, 2), 0.25), np.full((4, 2), -0.5), np.zeros((4, 0)), np.zeros((3, 0)), scale=1.0)
    assert res.dV.shape == (4, 0)
    assert np.array_equal(res.dQ, np.zeros((3, 2))) and np.array_equal(res.dK, np.zeros((4, 2)))
    assert res.bounds == {"dQ": 0.0, "dK": 0.0, "dV": 0.0}


def test_poly_grad_b_check_on_empty_inputs():
    assert poly_grad(np.zeros((2, 0)), np.zeros((2, 0)), np.ones((2, 1)), np.ones((2, 1)), B=0.5).method == "poly"


def test_poly_grad_b_check_without_queries():
    K = np.full((2, 2), 0.25)
    assert poly_grad(np.zeros((0, 2)), K, np.ones((2, 1)), np.zeros((0, 1)), B=0.5).method == "poly"


def test_anytemp_grad_refuses_a_forward_too_coarse_for_the_row_normalisers():
    """eps = 0.9 over 2000 keys: the indicator column z_i (about 1/n_k) is below the forward's row bound, while
    1 - z_i is not. The message names the worst bound and the smallest of z and 1 - z (recomputed here from the
    first two forward calls of the docstring)."""
    rng = np.random.default_rng(0)
    Q, K = rng.uniform(-0.3, 0.3, (4, 1)), rng.uniform(-0.3, 0.3, (2000, 1))
    V, dO, eps = np.ones((2000, 1)), np.ones((4, 1)), 0.9
    r1 = anytemp(Q, K, K, eps=eps, scale=1.0)
    t = (Q * (r1.output.sign * np.exp(r1.output.log_abs))).sum(axis=1)
    X = _row_x(V, K)
    W2 = np.zeros((2001, X.shape[1] + 1))
    W2[:2000, :-1], W2[2000, -1] = X, 1.0
    K2 = np.vstack([np.hstack([K, np.zeros((2000, 1))]), [[0.0, 1.0]]])
    Y, Ye, _ = _fwd(np.hstack([Q, t[:, None]]), K2, W2, eps, 1.0, {})
    beta, z = Ye[:, -1], Y[:, -1]
    assert (z - beta <= 0).any() and (1 - z - beta > 0).all()
    with pytest.raises(NumericalError) as e:
        anytemp_grad(Q, K, V, dO, scale=1.0, eps=eps)
    assert str(e.value) == (f"anytemp_grad: the forward certificate (max {beta.max():.3g}) is too coarse to recover "
                            f"the row normalisers (indicator column as low as {min(z.min(), (1 - z).min()):.3g}); "
                            f"lower eps")


def test_poly_grad_refuses_rounding_of_exactly_one_half():
    """At R = 15.204431890400116 with one query and 7 keys, eps_A + eps_r is exactly 1/2 in float64 (found by
    bisection): the certificate needs eps_A + eps_r < 1/2 strictly, so this is refused."""
    R, n_k = 15.204431890400116, 7
    Q, K = np.array([[R]]), np.zeros((n_k, 1))
    K[0, 0] = 1.0
    approx = exp_polynomial(R, 1e-8)
    eps_r = gam(1 + n_k + approx.degree + 1 + 4 * approx.degree + 16) * approx.abs_sum * math.exp(R)
    assert _radius(Q, K, 1.0) == R and approx.bound + eps_r == 0.5
    with pytest.raises(NumericalError) as e:
        poly_grad(Q, K, np.ones((n_k, 1)), np.ones((1, 1)), scale=1.0)
    assert str(e.value) == (f"poly_grad: scores in [-{R:.4g}, {R:.4g}] make the rounding of the monomial basis "
                            f"(relative {eps_r:.3g}) void the certificate")


def test_anytemp_grad_refuses_a_column_certificate_above_the_indicator():
    """Entries of 1e6 (scores of 1e12, whose rounding dominates the forward bounds) over 1000 queries and 2 keys:
    the row side passes (z ~ 1/3), but the column indicator w_j = 1 / (1 + E_j) ~ 1/1000 is below its bound."""
    rng = np.random.default_rng(0)
    B = 1e6
    Q, K = rng.uniform(-B, B, (1000, 1)), np.array([[0.9 * B], [0.95 * B]])
    V, dO = np.ones((2, 1)), np.ones((1000, 1))
    beta3, w = _anytemp_certificate(Q, K, V, dO, 1.0, 1e-9, {}, column_indicator=True)
    assert (w - beta3 <= 0).any()
    with pytest.raises(NumericalError) as e:
        anytemp_grad(Q, K, V, dO, scale=1.0)
    assert str(e.value) == (f"anytemp_grad: the column-side certificate (max {beta3.max():.3g}) exceeds the "
                            f"indicator column (min {w.min():.3g}); lower eps")


def test_poly_grad_refuses_theta_of_one_or_more():
    """eps_A between 1/3 and 1/2 passes the eps_A + eps_r < 1/2 check but makes theta >= 1, where
    c_j <= (c^_j + rho_j) / (1 - theta) bounds nothing (it once gave bounds of 0 for wrong dK and dV)."""
    rng = np.random.default_rng(0)
    Q, K, V, dO = (rng.uniform(-1, 1, s) for s in ((6, 2), (7, 2), (7, 2), (6, 2)))
    Q = Q * 0.36
    with pytest.raises(NumericalError) as e:
        poly_grad(Q, K, V, dO, eps=0.499)
    m = re.fullmatch(r"poly_grad: eps_A = (\S+) with rounding (\S+) gives theta = (\S+) >= 1, so the column sums "
                     r"are not bounded; ask for a smaller eps", str(e.value))
    assert m, str(e.value)
    eps_a, eps_r, theta = (float(x) for x in m.groups())
    assert 1 / 3 < eps_a < 0.5 and eps_r < 1e-12
    assert theta == pytest.approx((1 + eps_a) / (1 - eps_a - eps_r) - 1, rel=1e-2) and theta >= 1
    # below the limit the bounds are sound: every gradient within its bound of the exact one
    for eps in (0.3, 0.2, 1e-3):
        g, ref = poly_grad(Q, K, V, dO, eps=eps), exact_grad(Q, K, V, dO)
        for name in ("dQ", "dK", "dV"):
            err = float(np.abs(getattr(g, name) - getattr(ref, name)).max())
            assert err <= g.bounds[name] + ref.bounds[name], (eps, name, err, g.bounds)


def test_dO_that_is_not_a_real_matrix_is_one_parameter_error():
    """A complex dO would lose its imaginary part in the float64 conversion and come back certified."""
    Q, K, V = np.ones((2, 1)), np.ones((3, 1)), np.ones((3, 1))
    cases = [(np.ones((2, 1), dtype=complex), "dO must be a real numeric matrix, got dtype complex128"),
             (np.array([["1"], ["2"]]), "dO must be a real numeric matrix, got dtype <U1"),
             (np.array([[1j], [1]], dtype=object),
              "dO must be a real numeric matrix (float() argument must be a string or a real number, not 'complex')"),
             ([[10**400], [1]], "dO must be a real numeric matrix (int too large to convert to float)")]
    for dO, message in cases:
        for grad in (exact_grad, poly_grad):
            with pytest.raises(ParameterError) as e:
                grad(Q, K, V, dO)
            assert str(e.value) == message
