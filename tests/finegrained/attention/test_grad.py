"""Attention gradients (finegrained.attention.grad) against mpmath, finite differences and torch autograd."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from finegrained.attention import GradResult, anytemp_grad, exact_grad, poly_grad
from instances.errors import NumericalError, ParameterError, ResourceLimitError

N_CASES = 50
METHODS = {"exact": exact_grad, "anytemp": anytemp_grad, "poly": poly_grad}


def _case(method: str, i: int):
    """Random case ``i``: tiny n, d = 1..3, B log-uniform (up to 1000 for exact/anytemp, 1.5 for poly)."""
    rng = np.random.default_rng(1000 * len(method) + i)
    d = 1 + i % 3
    n_q, n_k, d_v = int(rng.integers(1, 9)), int(rng.integers(1, 9)), int(rng.integers(1, 3))
    top = 1.5 if method == "poly" else 1000.0
    B = float(np.exp(rng.uniform(np.log(0.3), np.log(top))))
    if method != "poly" and i % 5 == 0:
        B = 1000.0  # the top of the range, several times
    Q, K = rng.uniform(-B, B, (n_q, d)), rng.uniform(-B, B, (n_k, d))
    V, dO = rng.normal(size=(n_k, d_v)), rng.normal(size=(n_q, d_v))
    if i % 7 == 3:
        K[n_k // 2 :] = K[0]  # duplicated keys
    scale = 1.0 / d if i % 2 else float(rng.uniform(0.2, 1.5))
    return Q, K, V, dO, scale


def _mp(A):
    return [[mpmath.mpf(float(x)) for x in row] for row in np.atleast_2d(A)]


def _mp_forward(Q, K, V, s):
    """P and O = P V at the working precision; max-shifted so huge scores are fine."""
    S = [[s * mpmath.fsum(q * k for q, k in zip(qi, kj)) for kj in K] for qi in Q]
    P = []
    for row in S:
        m = max(row)
        e = [mpmath.exp(x - m) for x in row]
        tot = mpmath.fsum(e)
        P.append([x / tot for x in e])
    out = [[mpmath.fsum(P[i][j] * V[j][c] for j in range(len(K))) for c in range(len(V[0]))] for i in range(len(Q))]
    return P, out


def _mp_grad(Q, K, V, dO, s):
    """The backward formulas of the module docstring, at 60 digits."""
    with mpmath.workdps(60):
        Q, K, V, dO, s = _mp(Q), _mp(K), _mp(V), _mp(dO), mpmath.mpf(s)
        P, out = _mp_forward(Q, K, V, s)
        nq, nk, dv, d = len(Q), len(K), len(V[0]), len(Q[0])
        delta = [mpmath.fsum(dO[i][c] * out[i][c] for c in range(dv)) for i in range(nq)]
        dS = [[P[i][j] * (mpmath.fsum(dO[i][c] * V[j][c] for c in range(dv)) - delta[i]) for j in range(nk)]
              for i in range(nq)]
        dQ = [[s * mpmath.fsum(dS[i][j] * K[j][a] for j in range(nk)) for a in range(d)] for i in range(nq)]
        dK = [[s * mpmath.fsum(dS[i][j] * Q[i][a] for i in range(nq)) for a in range(d)] for j in range(nk)]
        dV = [[mpmath.fsum(P[i][j] * dO[i][c] for i in range(nq)) for c in range(dv)] for j in range(nk)]
    return {"dQ": dQ, "dK": dK, "dV": dV}


def _mp_loss(Q, K, V, dO, s):
    P, out = _mp_forward(Q, K, V, s)
    return mpmath.fsum(dO[i][c] * out[i][c] for i in range(len(Q)) for c in range(len(V[0])))


def _mp_err(ref, got) -> float:
    """max |got - ref| evaluated in multiprecision (so the reference's rounding to float64 does not count)."""
    with mpmath.workdps(60):
        return float(max((abs(mpmath.mpf(float(g)) - r) for rr, gr in zip(ref, got) for r, g in zip(rr, gr)),
                         default=mpmath.mpf(0)))


def _fd(Q, K, V, dO, s, which: str, R: np.ndarray):
    """Central difference of L = <dO, Att> along direction R in Q, K or V (100 digits, h = 1e-30)."""
    with mpmath.workdps(100):
        h = mpmath.mpf("1e-30")
        args = {"Q": _mp(Q), "K": _mp(K), "V": _mp(V)}
        Rm = _mp(R)

        def shifted(sign):
            a = dict(args)
            a[which] = [[x + sign * h * r for x, r in zip(row, rrow)] for row, rrow in zip(args[which], Rm)]
            return _mp_loss(a["Q"], a["K"], a["V"], _mp(dO), mpmath.mpf(s))

        return (shifted(1) - shifted(-1)) / (2 * h)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_matches_multiprecision_and_finite_differences(method):
    """>= 50 random cases: every entry within the certificate of a 60-digit evaluation of the backward formulas,
    and the directional derivative <G, R> within bound * sum|R| of a 100-digit central difference of L."""
    fn = METHODS[method]
    worst = 0.0
    for i in range(N_CASES):
        Q, K, V, dO, s = _case(method, i)
        res = fn(Q, K, V, dO, scale=s)
        assert isinstance(res, GradResult) and res.method == method
        ref = _mp_grad(Q, K, V, dO, s)
        rng = np.random.default_rng(i)
        for name, X in (("dQ", Q), ("dK", K), ("dV", V)):
            got = getattr(res, name)
            assert got.shape == X.shape and got.dtype == np.float64
            err = _mp_err(ref[name], got)
            assert err <= res.bounds[name] <= res.error_bound, (i, name, err, res.bounds)
            worst = max(worst, err / max(res.error_bound, 1e-300))
            R = rng.normal(size=X.shape)
            fd = _fd(Q, K, V, dO, s, name[1], R)
            with mpmath.workdps(60):
                dot = mpmath.fsum(mpmath.mpf(float(g)) * mpmath.mpf(float(r)) for g, r in zip(got.ravel(), R.ravel()))
                gap = float(abs(dot - fd))
            assert gap <= res.bounds[name] * np.abs(R).sum() + 1e-20, (i, name, gap)
    assert worst <= 1.0


def test_reference_is_not_vacuous():
    """The comparison above can fail: a gradient off by 1e-6 relative is caught by the exact bound."""
    Q, K, V, dO, s = _case("exact", 1)
    res = exact_grad(Q, K, V, dO, scale=s)
    ref = _mp_grad(Q, K, V, dO, s)
    assert _mp_err(ref["dQ"], res.dQ * (1 + 1e-6) + 1e-6) > res.bounds["dQ"]


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("B", [1.0, 30.0, 1000.0])
def test_anytemp_grad_larger_n_against_exact(d, B):
    rng = np.random.default_rng(d * 7 + int(B))
    n = 300
    Q, K = rng.uniform(-B, B, (n, d)), rng.uniform(-B, B, (n, d))
    V, dO = rng.normal(size=(n, 2)), rng.normal(size=(n, 2))
    res = anytemp_grad(Q, K, V, dO)
    ref = exact_grad(Q, K, V, dO)
    for name in ("dQ", "dK", "dV"):
        err = np.abs(getattr(res, name) - getattr(ref, name)).max()
        assert err <= res.bounds[name] + ref.bounds[name]
    assert res.stats["forward_calls"] == 3
    assert all(m.startswith("tree") for m in res.stats["forward_methods"])


def test_poly_grad_larger_n_and_rank():
    rng = np.random.default_rng(3)
    Q, K, V, dO = (rng.uniform(-1, 1, (500, 3)) for _ in range(4))
    res = poly_grad(Q, K, V, dO, eps=1e-10)
    ref = exact_grad(Q, K, V, dO)
    for name in ("dQ", "dK", "dV"):
        assert np.abs(getattr(res, name) - getattr(ref, name)).max() <= res.bounds[name] + ref.bounds[name]
    assert res.error_bound < 1e-6
    assert res.stats["rank"] == math.comb(res.stats["degree"] + 3, 3)


def test_exact_grad_tiling_is_irrelevant():
    rng = np.random.default_rng(5)
    Q, K, V, dO = rng.normal(size=(97, 2)), rng.normal(size=(61, 2)), rng.normal(size=(61, 3)), rng.normal(size=(97, 3))
    a, b = exact_grad(Q, K, V, dO, block=7), exact_grad(Q, K, V, dO, block=4096)
    for name in ("dQ", "dK", "dV"):
        assert np.abs(getattr(a, name) - getattr(b, name)).max() <= a.bounds[name] + b.bounds[name]


def test_torch_autograd():
    torch = pytest.importorskip("torch")
    for method, fn in METHODS.items():
        for i in range(N_CASES):
            Q, K, V, dO, s = _case(method, i)
            res = fn(Q, K, V, dO, scale=s)
            tq, tk, tv = (torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in (Q, K, V))
            out = torch.softmax(s * tq @ tk.T, dim=-1) @ tv
            (out * torch.tensor(dO, dtype=torch.float64)).sum().backward()
            for name, t in (("dQ", tq), ("dK", tk), ("dV", tv)):
                g = t.grad.numpy()
                # torch's own float64 error: scores of size R carry about R * 1e-16 absolute error.
                slack = 1e-13 * (1 + np.abs(g).max()) * (1 + abs(s) * np.abs(Q).max() * np.abs(K).max())
                assert np.abs(getattr(res, name) - g).max() <= res.bounds[name] + slack, (method, i, name)


def test_errors():
    Q = np.ones((3, 2))
    with pytest.raises(ParameterError):
        exact_grad(Q, Q, Q, np.ones((3, 1)))
    with pytest.raises(NumericalError):
        anytemp_grad(Q, Q, Q, np.full((3, 2), np.nan))
    with pytest.raises(ParameterError):
        exact_grad(Q, Q, Q, Q, block=0)
    with pytest.raises(NumericalError):
        poly_grad(Q * 100, Q * 100, Q, Q)
    with pytest.raises(ResourceLimitError):
        poly_grad(Q, Q, Q, Q, max_memory=1000)
    with pytest.raises(ParameterError):
        poly_grad(Q, Q, Q, Q, B=0.5)
    with pytest.raises(ParameterError):
        anytemp_grad(Q, Q, Q, Q, eps=2.0)


def test_anytemp_grad_beyond_tree_dimension_is_exact_grad():
    rng = np.random.default_rng(11)
    Q, K, V, dO = rng.normal(size=(20, 4)), rng.normal(size=(30, 4)), rng.normal(size=(30, 1)), rng.normal(size=(20, 1))
    res, ref = anytemp_grad(Q, K, V, dO), exact_grad(Q, K, V, dO)
    assert res.stats["forward_calls"] == 0 and "tree dimension" in res.stats["reason"]
    assert np.array_equal(res.dQ, ref.dQ) and res.error_bound == ref.error_bound
