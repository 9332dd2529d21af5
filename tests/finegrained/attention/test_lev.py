"""Tests of LevAttention: universal sets, heavy entries, Lewis weights, streaming and restricted attention."""

from __future__ import annotations

import importlib
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finegrained.attention.exact import exact
from finegrained.attention.lev import (
    dense_scores,
    heavy_entries,
    heavy_entries_with_values,
    lev_attention,
    lev_attention_with_keys,
    lev_oracle,
    leverage_scores,
    lewis_weights,
    numerical_rank,
    sensitivity_factor,
    streaming_universal_set,
    universal_set,
)
from finegrained.attention.protocol import UNCERTIFIED
from instances.errors import NumericalError, ParameterError


def brute_heavy(Q: np.ndarray, K: np.ndarray, eps: float, p: float = 2.0) -> set[tuple[int, int]]:
    """All (i, j) with A_ij >= eps from the dense n_q x n matrix; all-zero rows have no entries."""
    S = np.abs(Q @ K.T) ** p
    z = S.sum(axis=1)
    A = np.divide(S, z[:, None], out=np.zeros_like(S), where=z[:, None] > 0)
    return {(int(i), int(j)) for i, j in zip(*np.nonzero(A >= eps), strict=True)}


def keys(kind: str, n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "gauss":
        return rng.normal(size=(n, d))
    if kind == "student":
        return rng.standard_t(1.5, size=(n, d))
    if kind == "cauchy_rows":  # Gaussian directions with Cauchy-distributed norms
        return rng.normal(size=(n, d)) * np.abs(rng.standard_cauchy(size=(n, 1)))
    if kind == "low_rank":
        return rng.normal(size=(n, 2)) @ rng.normal(size=(2, d))
    if kind == "huge_key":
        K = rng.normal(size=(n, d))
        K[n // 3] *= 1e8
        return K
    if kind == "duplicates":
        base = rng.normal(size=(5, d))
        return np.vstack([np.repeat(base[:3], 3, axis=0), base[3:], rng.normal(size=(n - 11, d))])
    if kind == "collinear":  # every key within 1e-9 of one line, plus one generic key
        u = rng.normal(size=d)
        K = rng.normal(size=(n, 1)) * u + 1e-9 * rng.normal(size=(n, d))
        K[0] = rng.normal(size=d)
        return K
    if kind == "zero_rows":
        K = rng.normal(size=(n, d))
        K[::7] = 0.0
        return K
    raise ValueError(kind)


KINDS = ["gauss", "student", "cauchy_rows", "low_rank", "huge_key", "duplicates", "collinear", "zero_rows"]


def maximising_queries(K: np.ndarray) -> np.ndarray:
    """For each key j, the query y with A_yj = tau_j (the Cauchy–Schwarz equality case)."""
    U, s, Vt = np.linalg.svd(K, full_matrices=False)
    r = numerical_rank(K)
    return (U[:, :r] / s[:r]) @ Vt[:r]


# ------------------------------------------------------------------------------------------- leverage


@pytest.mark.parametrize("kind", KINDS)
def test_leverage_scores_sum_to_rank_and_lie_in_unit_interval(kind: str) -> None:
    rng = np.random.default_rng(1)
    K = keys(kind, 300, 6, rng)
    tau = leverage_scores(K)
    assert np.all(tau >= 0) and np.all(tau <= 1 + 1e-12)
    assert tau.sum() == pytest.approx(numerical_rank(K), abs=1e-9)


def test_leverage_scores_rank_deficient_match_projection() -> None:
    rng = np.random.default_rng(2)
    K = rng.normal(size=(50, 3)) @ rng.normal(size=(3, 8))  # rank 3 in dimension 8
    tau = leverage_scores(K)
    assert numerical_rank(K) == 3
    assert tau.sum() == pytest.approx(3.0, abs=1e-10)
    basis = np.linalg.qr(K[:, :3] @ np.eye(3))[0]  # range(K) is spanned by any 3 generic columns
    assert np.allclose(tau, np.sum(basis**2, axis=1), atol=1e-10)


def test_leverage_scores_of_zero_and_empty_matrices() -> None:
    assert leverage_scores(np.zeros((4, 3))).tolist() == [0.0] * 4
    assert leverage_scores(np.zeros((0, 3))).shape == (0,)


def test_leverage_score_is_the_p2_sensitivity() -> None:
    """tau_j = sup_y <k_j,y>^2 / ||Ky||^2: attained by the maximising query, never exceeded by random ones."""
    rng = np.random.default_rng(3)
    K = keys("student", 80, 5, rng)
    tau = leverage_scores(K)
    Y = maximising_queries(K)
    attained = (np.einsum("jd,jd->j", Y, K)) ** 2 / np.sum((Y @ K.T) ** 2, axis=1)
    assert np.allclose(attained, tau, rtol=1e-9)
    A = (rng.normal(size=(2000, 5)) @ K.T) ** 2
    A /= A.sum(axis=1, keepdims=True)
    assert np.all(A <= tau + 1e-12)


# -------------------------------------------------------------------------------------- heavy entries


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("eps", [0.02, 0.1, 0.3])
def test_heavy_entries_recall_is_complete(kind: str, eps: float) -> None:
    rng = np.random.default_rng(4)
    n, d = 400, 6
    K = keys(kind, n, d, rng)
    Q = np.vstack([rng.normal(size=(150, d)), maximising_queries(K)[:: max(1, n // 100)]])
    pairs, vals = heavy_entries_with_values(Q, K, eps)
    found = {tuple(map(int, ij)) for ij in pairs}
    # Entries equal to eps within rounding may legitimately go either way.
    assert brute_heavy(Q, K, eps * (1 + 1e-9)) <= found <= brute_heavy(Q, K, eps * (1 - 1e-9))
    assert np.all(vals >= eps) and np.all(vals <= 1 + 1e-12)
    assert pairs.tolist() == sorted(pairs.tolist())
    U = universal_set(K, eps)
    assert len(U) <= numerical_rank(K) / eps
    assert set(pairs[:, 1].tolist()) <= set(U.tolist())


def test_heavy_entries_orthogonal_queries_have_no_entries_and_no_nan() -> None:
    rng = np.random.default_rng(5)
    K = np.hstack([rng.normal(size=(30, 3)), np.zeros((30, 2))])
    orthogonal = np.hstack([np.zeros((4, 3)), rng.normal(size=(4, 2))])
    Q = np.vstack([orthogonal, np.zeros((1, 5)), rng.normal(size=(3, 5))])
    pairs, vals = heavy_entries_with_values(Q, K, 0.05)
    assert np.isfinite(vals).all()
    assert not np.any(pairs[:, 0] < 5)
    assert {tuple(map(int, ij)) for ij in pairs} == brute_heavy(Q, K, 0.05)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 60),
    d=st.integers(1, 5),
    rank=st.integers(1, 5),
    eps=st.floats(0.01, 1.0),
    seed=st.integers(0, 2**32 - 1),
    tail=st.sampled_from([1.0, 2.0, 30.0]),
)
def test_property_universal_set_size_and_recall(n: int, d: int, rank: int, eps: float, seed: int,
                                                 tail: float) -> None:
    rng = np.random.default_rng(seed)
    K = rng.standard_t(tail, size=(n, min(rank, d))) @ rng.normal(size=(min(rank, d), d))
    Q = np.vstack([rng.normal(size=(20, d)), maximising_queries(K)])
    U = universal_set(K, eps)
    assert len(U) <= numerical_rank(K) / eps <= d / eps
    found = {tuple(map(int, ij)) for ij in heavy_entries(Q, K, eps)}
    assert brute_heavy(Q, K, eps * (1 + 1e-9)) <= found


def test_heavy_entries_rejects_bad_parameters() -> None:
    K = np.eye(3)
    with pytest.raises(ParameterError, match="eps must lie in"):
        heavy_entries(K, K, 0.0)
    with pytest.raises(ParameterError, match="share d"):
        heavy_entries(np.eye(2), K, 0.1)
    with pytest.raises(ParameterError, match="p must be"):
        universal_set(K, 0.1, p=-1)
    with pytest.raises(NumericalError, match="NaN"):
        leverage_scores(np.array([[np.nan, 1.0]]))


# -------------------------------------------------------------------------------------- Lewis weights


@pytest.mark.parametrize("kind", ["gauss", "student", "low_rank", "duplicates", "zero_rows"])
def test_lewis_weights_at_p2_are_leverage_scores(kind: str) -> None:
    K = keys(kind, 200, 5, np.random.default_rng(6))
    assert np.allclose(lewis_weights(K, 2.0), leverage_scores(K), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("p", [0.5, 1.0, 1.5, 3.0, 4.0, 6.0])
@pytest.mark.parametrize("kind", ["student", "low_rank", "zero_rows"])
def test_lewis_weights_fixed_point_and_sum(p: float, kind: str) -> None:
    K = keys(kind, 200, 5, np.random.default_rng(7))
    w = lewis_weights(K, p)
    live = w > 0
    Kl, wl = K[live], w[live]
    M = Kl.T @ (wl[:, None] ** (1 - 2 / p) * Kl)
    image = np.einsum("ij,jk,ik->i", Kl, np.linalg.pinv(M, rcond=1e-12), Kl) ** (p / 2)
    assert np.allclose(image, wl, rtol=1e-7)
    assert w.sum() == pytest.approx(numerical_rank(K), rel=1e-8)
    assert np.all(w[np.all(K == 0, axis=1)] == 0)


@pytest.mark.parametrize("p", [1.0, 3.0, 4.0])
def test_lewis_sensitivity_bound_and_recall(p: float) -> None:
    """sigma_j <= c_p w_j on random and adversarial queries, hence 100% recall from U."""
    rng = np.random.default_rng(8)
    K = keys("student", 300, 4, rng)
    w = lewis_weights(K, p)
    c = sensitivity_factor(p, numerical_rank(K))
    Q = np.vstack([rng.normal(size=(300, 4)), maximising_queries(K)])
    S = np.abs(Q @ K.T) ** p
    A = S / S.sum(axis=1, keepdims=True)
    assert np.all(A <= c * w * (1 + 1e-8))
    for eps in (0.05, 0.2):
        U = set(universal_set(K, eps, p).tolist())
        assert {j for _, j in brute_heavy(Q, K, eps, p)} <= U
        assert {tuple(map(int, ij)) for ij in heavy_entries(Q, K, eps, p)} == brute_heavy(Q, K, eps, p)


def test_lewis_weights_raise_when_not_converged() -> None:
    K = keys("student", 100, 4, np.random.default_rng(9))
    with pytest.raises(NumericalError, match="did not converge"):
        lewis_weights(K, 1.0, max_iter=2, tol=1e-14)
    with pytest.raises(ParameterError):
        lewis_weights(K, 1.0, max_iter=0)


# ------------------------------------------------------------------------------------------ streaming


def chunked(K: np.ndarray, size: int) -> list[np.ndarray]:
    return [K[s:s + size] for s in range(0, K.shape[0], size)]


@pytest.mark.parametrize("kind", ["gauss", "student", "low_rank", "huge_key", "duplicates", "zero_rows"])
@pytest.mark.parametrize("eps", [0.01, 0.1])
def test_streaming_equals_in_memory(kind: str, eps: float) -> None:
    K = keys(kind, 500, 6, np.random.default_rng(10))
    expected = universal_set(K, eps)
    assert np.array_equal(streaming_universal_set(chunked(K, 37), eps), expected)
    assert np.array_equal(streaming_universal_set(lambda: iter(chunked(K, 100)), eps), expected)


@pytest.mark.parametrize("p", [1.0, 3.0, 4.0])
def test_streaming_equals_in_memory_for_lewis(p: float) -> None:
    K = keys("student", 300, 4, np.random.default_rng(11))
    assert np.array_equal(streaming_universal_set(chunked(K, 50), 0.05, p), universal_set(K, 0.05, p))


def test_streaming_rejects_one_shot_iterators_and_changing_streams() -> None:
    K = np.eye(3)
    with pytest.raises(ParameterError, match="one-shot"):
        streaming_universal_set(iter([K]), 0.5)
    with pytest.raises(ParameterError, match="wrap one matrix"):
        streaming_universal_set(K, 0.5)
    calls = iter([[K], [K, K]])
    with pytest.raises(ParameterError, match="changed between passes"):
        streaming_universal_set(lambda: next(calls), 0.5)


def _stream(n: int, d: int = 8, chunk: int = 1000, seed: int = 12):
    def gen():
        rng = np.random.default_rng(seed)
        for s in range(0, n, chunk):
            yield rng.standard_t(1.5, size=(min(chunk, n - s), d))

    return gen


def _peak(n: int) -> int:
    tracemalloc.start()
    try:
        streaming_universal_set(_stream(n), 0.05)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_streaming_memory_is_independent_of_n() -> None:
    streaming_universal_set(_stream(2000), 0.05)  # warm lazy imports and LAPACK workspaces
    small, large = _peak(20_000), _peak(200_000)
    # K itself would take 200_000 * 8 * 8 = 12.8 MB; the stream must stay at a few chunks.
    assert large < 2_000_000
    assert large < 1.5 * small + 200_000


# ------------------------------------------------------------------------------------------ attention


def test_lev_attention_softmax_equals_exact_when_every_key_is_kept() -> None:
    rng = np.random.default_rng(13)
    Q, K, V = rng.normal(size=(5, 3)), rng.normal(size=(3, 3)), rng.normal(size=(3, 2))
    out, U = lev_attention_with_keys(Q, K, V, eps=0.5)  # 3 keys in dimension 3: every tau_j = 1
    assert U.tolist() == [0, 1, 2]
    assert np.allclose(out.to_float(), exact(Q, K, V).to_float(), rtol=1e-12)
    answer = lev_oracle(Q, K, V, eps=0.5, log_eps=-30.0)  # log_eps is accepted and ignored
    assert answer.certificate is UNCERTIFIED and not answer.certificate.certified
    assert np.allclose(answer.output.to_float(), out.to_float())
    assert np.allclose(lev_attention(Q, K, V, eps=0.5).to_float(), out.to_float())


def test_lev_attention_softmax_keeps_a_key_when_none_reaches_eps() -> None:
    rng = np.random.default_rng(14)
    Q, K, V = rng.normal(size=(2, 2)), rng.normal(size=(50, 2)), rng.normal(size=(50, 1))
    out, U = lev_attention_with_keys(Q, K, V, eps=1.0)
    # the one key kept is the one of largest leverage, and softmax over a single key returns its value row
    assert U.tolist() == [int(np.argmax(leverage_scores(K)))]
    np.testing.assert_allclose(out.to_float(), np.tile(V[U], (2, 1)), rtol=1e-15)
    # with a threshold some keys reach, the kept set is exactly {tau_j >= eps}
    out, U = lev_attention_with_keys(Q, K, V, eps=0.05)
    assert U.tolist() == np.flatnonzero(leverage_scores(K) >= 0.05).tolist() and len(U) > 1
    np.testing.assert_allclose(out.to_float(), exact(Q, K[U], V[U]).to_float(), rtol=1e-12)


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
def test_lev_attention_power_error_is_bounded_by_dropped_mass(p: float) -> None:
    rng = np.random.default_rng(15)
    Q, K, V = rng.normal(size=(40, 4)), keys("student", 300, 4, rng), rng.normal(size=(300, 2))
    eps = 0.02
    out, U = lev_attention_with_keys(Q, K, V, eps=eps, kind=p)
    S = np.abs(Q @ K.T) ** p
    A = S / S.sum(axis=1, keepdims=True)
    full = A @ V
    dropped = np.delete(A, U, axis=1).sum(axis=1)
    # Renormalising over U moves the output by at most 2 * dropped mass * max|V|.
    err = np.abs(out.to_float() - full).max(axis=1)
    assert np.all(err <= 2 * dropped * np.abs(V).max() + 1e-12)
    assert np.all(A[:, np.setdiff1d(np.arange(300), U)] < eps)


def test_lev_attention_rejects_unknown_kind() -> None:
    with pytest.raises(ParameterError, match="kind must be"):
        lev_attention(np.eye(2), np.eye(2), np.eye(2), eps=0.1, kind="relu")


# ------------------------------------------------------------- near-degenerate keys and extreme scales (issue 11)


def near_degenerate(n: int, d: int, dev: float, direction: str, rng: np.random.Generator):
    """n - 1 copies of one key and one key (at a random position) deviating from it by a relative ``dev`` in a
    new direction, and a unit query along that direction: its attention weight on the deviating key is 1."""
    k0 = rng.normal(size=d)
    if direction == "coordinate":  # the new direction is a coordinate the copies do not use
        k0[-1] = 0.0
        e = np.zeros(d)
        e[-1] = 1.0
    else:  # a generic direction orthogonal to k0 (the copies' scores along it are rounding noise)
        e = rng.normal(size=d)
        if direction == "mixed":
            k0[-1] = 0.0
            e[-1] = 10.0
        e -= (e @ k0) / (k0 @ k0) * k0
        e /= np.linalg.norm(e)
    K = np.tile(k0, (n, 1))
    j = int(rng.integers(n))
    K[j] = k0 + dev * np.linalg.norm(k0) * e
    return K, e[None, :], j


@pytest.mark.parametrize("n", [50, 1000, 6000])
@pytest.mark.parametrize("dev", [1e-12, 1e-11, 1e-10])
@pytest.mark.parametrize("direction", ["coordinate", "generic", "mixed"])
def test_near_degenerate_keys_keep_the_deviating_key(n: int, dev: float, direction: str) -> None:
    rng = np.random.default_rng(n + int(-np.log10(dev)))
    d = 4 if direction != "mixed" else 7
    K, q, j = near_degenerate(n, d, dev, direction, rng)
    A = dense_scores(q, K)
    assert A[0, j] > 0.99  # the reference sees the heavy entry
    # rank 2 in exact arithmetic; a third direction the SVD cannot separate may be kept (never one less)
    r = numerical_rank(K)
    assert r in (2, 3)
    tau = leverage_scores(K)
    assert tau[j] > 0.99 and tau.sum() == pytest.approx(r, abs=1e-6) and tau.max() <= 1 + 1e-12
    U = universal_set(K, 0.5)
    assert j in U.tolist() and len(U) <= r / 0.5
    assert j in streaming_universal_set(chunked(K, 777), 0.5).tolist()
    pairs, vals = heavy_entries_with_values(q, K, 0.5)
    assert pairs.tolist() == [[0, j]] and vals[0] > 0.99


def _integer_instance(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Small-integer entries: scaling them by 1e-320 or a power of two is exact, so A is known unscaled."""
    rng = np.random.default_rng(seed)
    K = rng.integers(-8, 9, size=(14, 4)).astype(float)
    K[:3] = K[0]  # ties at the maximum: three identical keys
    Q = np.vstack([rng.integers(-8, 9, size=(30, 4)).astype(float),
                   np.round(maximising_queries(K) * 64)])  # integers near the maximising queries
    return Q, K


@pytest.mark.parametrize("sq,sk", [(1e300, 1.0), (1.0, 1e300), (1e150, 1e150), (1e-320, 1.0), (1.0, 1e-320),
                                   (2.0**1000, 2.0**-1070), (1e-300, 1e300)])
@pytest.mark.parametrize("eps", [0.05, 0.3])
def test_heavy_entries_at_extreme_scales_match_the_unscaled_reference(sq: float, sk: float, eps: float) -> None:
    Q, K = _integer_instance(17)
    A = dense_scores(Q, K)
    pairs, vals = heavy_entries_with_values(Q * sq, K * sk, eps)
    found = {tuple(map(int, ij)) for ij in pairs}
    expected = {(int(i), int(j)) for i, j in zip(*np.nonzero(A >= eps * (1 + 1e-9)), strict=True)}
    allowed = {(int(i), int(j)) for i, j in zip(*np.nonzero(A >= eps * (1 - 1e-9)), strict=True)}
    assert expected and expected <= found <= allowed
    np.testing.assert_allclose(vals, A[pairs[:, 0], pairs[:, 1]], rtol=1e-9)
    assert np.array_equal(universal_set(K * sk, eps), universal_set(K, eps))
    np.testing.assert_allclose(dense_scores(Q * sq, K * sk), A, rtol=1e-9, atol=1e-12)


def test_inputs_beyond_the_float_range_raise_instead_of_dropping_entries() -> None:
    K = np.array([[1e300, 1.0], [1e-300, 0.0]])  # one column spans 2^1993: balancing would flush 1e-300
    with pytest.raises(NumericalError, match="float64 range"):
        heavy_entries(np.array([[1.0, -1e300]]), K, 0.5)
    with pytest.raises(NumericalError, match="float64 range"):
        universal_set(K, 0.5)


_BAD = [("K", "complex"), ("K", "object"), ("K", "string"), ("K", "nan"), ("K", "1d"), ("eps", np.nan),
        ("eps", "0.1"), ("eps", 1.5), ("eps", -0.1), ("p", np.nan), ("p", True), ("p", -2.0), ("tol", np.nan),
        ("tol", -1.0), ("max_iter", 2.5), ("max_iter", -1), ("max_iter", "3")]


@pytest.mark.parametrize("func,case", [(f, c) for f in ("universal_set", "heavy_entries", "lev_attention",
                                                        "streaming") for c in _BAD]
                         + [(f, ("Q", c)) for f in ("heavy_entries", "lev_attention")
                            for c in ("complex", "object", "string", "nan", "1d")])
def test_bad_inputs_are_one_line_errors(func: str, case: tuple) -> None:
    rng = np.random.default_rng(0)
    args = {"Q": rng.normal(size=(3, 2)), "K": rng.normal(size=(5, 2)), "eps": 0.1, "p": 1.0, "tol": 1e-10,
            "max_iter": 100}
    name, bad = case
    if name in ("Q", "K"):
        x = args[name]
        args[name] = {"complex": x + 1j, "object": x.astype(object), "string": x.astype(str),
                      "nan": np.where(x > 0, np.nan, x), "1d": x[:, 0]}[bad]
    else:
        args[name] = bad
    with pytest.raises((ParameterError, NumericalError)) as info:
        if func == "universal_set":
            universal_set(args["K"], args["eps"], args["p"], tol=args["tol"], max_iter=args["max_iter"])
        elif func == "heavy_entries":
            heavy_entries(args["Q"], args["K"], args["eps"], args["p"], tol=args["tol"])
            lewis_weights(args["K"], args["p"], tol=args["tol"], max_iter=args["max_iter"])
        elif func == "lev_attention":
            lev_attention(args["Q"], args["K"], args["K"], eps=args["eps"], kind=args["p"], tol=args["tol"])
            lewis_weights(args["K"], args["p"], tol=args["tol"], max_iter=args["max_iter"])
        else:
            streaming_universal_set([args["K"]], args["eps"], args["p"], tol=args["tol"],
                                    max_iter=args["max_iter"])
    assert "\n" not in str(info.value)


def test_lev_attention_takes_eps_by_keyword_only() -> None:
    with pytest.raises(TypeError):
        lev_attention(np.eye(2), np.eye(2), np.eye(2), 0.1)  # type: ignore[misc]


@pytest.mark.parametrize("p", [0.5, 1.0, 2.0, 3.0, 7.0])
def test_heavy_entries_report_entries_equal_to_eps_for_every_p(p):
    # A = (1/2, 1/2) for q = (1, 1) against the identity, at every p: both equal eps = 1/2 and both are reported
    # (for p != 2 the rounding of p log|s| - log z decided the tie before each entry was widened by its own)
    pairs = heavy_entries([[1.0, 1.0]], np.eye(2), 0.5, p=p)
    assert sorted(map(tuple, np.asarray(pairs).tolist())) == [(0, 0), (0, 1)]


def test_lewis_weights_at_a_tiny_p_refuse_cleanly():
    # w^(1/2 - 1/p) at p = 0.002 has exponent -499.5: the unshifted row factors overflowed and numpy's SVD raised
    # a raw LinAlgError; the shifted ones underflow for all but the largest rows, which is one NumericalError
    K = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [2.0, -1.0], [0.5, 3.0]])
    with pytest.raises(NumericalError, match="Lewis weight iteration for p=0.002 produced a zero or non-finite"):
        lewis_weights(K, 0.002)
    w = lewis_weights(K, 0.05)  # small but workable: the weights still sum to the rank
    assert w.sum() == pytest.approx(2.0, abs=1e-8) and (w > 0).all()


def _exact_weights(q, K, p):
    from fractions import Fraction

    import mpmath

    s = [abs(sum(Fraction(a) * Fraction(b) for a, b in zip(q, k))) for k in K]
    with mpmath.workdps(60):
        v = [mpmath.mpf(x.numerator) / x.denominator for x in s]
        z = sum(x**p for x in v)
        return [float(x**p / z) for x in v]


@pytest.mark.parametrize("p", [1.5, 2.0])
def test_heavy_entries_recompute_scores_below_float_resolution(p):
    # <q, k_0> = 2^-30 exactly but 0 in float64 (2^30 + 2^-30 - 2^30); row scores 1e-5 are near the noise of the
    # huge key's columns: every entry >= eps is reported, from exactly recomputed scores, none dropped
    a, b = 2.0**30, 2.0**-30
    Q = np.array([[1.0, 1.0, 1.0]])
    K = np.array([[a, b, -a], [1e-5, 0, 0], [0, 1e-5, 5e-6]])
    assert (Q @ K.T)[0, 0] == 0.0
    A = _exact_weights(Q[0], K, p)
    pairs, values = heavy_entries_with_values(Q, K, 0.9 * A[0], p=p)
    assert sorted(map(tuple, pairs.tolist())) == [(0, 0), (0, 1), (0, 2)]
    got = dict(zip(map(tuple, pairs.tolist()), values))
    for j in range(3):
        assert got[(0, j)] == pytest.approx(A[j], rel=1e-9)


def test_heavy_entries_refuse_when_too_many_scores_need_exact_arithmetic(monkeypatch):
    lev_module = importlib.import_module("finegrained.attention.lev")
    monkeypatch.setattr(lev_module, "_MAX_EXACT_PRODUCTS", 2)
    a, b = 2.0**30, 2.0**-30
    K = np.array([[a, b, -a], [1e-5, 0, 0], [0, 1e-5, 5e-6]])
    with pytest.raises(NumericalError, match="more than 2 exact products would be needed"):
        heavy_entries(np.array([[1.0, 1.0, 1.0]]), K, 1e-9, p=2.0)


@pytest.mark.parametrize("p", [1e308, 1e-308])
def test_extreme_p_is_one_numerical_error(p):
    # the contraction rate rounds to 1: rate / (1 - rate) was a raw ZeroDivisionError
    with pytest.raises(NumericalError, match="has contraction rate 1: no distance bound"):
        heavy_entries(np.ones((1, 2)), np.eye(2), 0.5, p)


def test_the_exact_arithmetic_budget_refuses_before_any_work(monkeypatch):
    # every query row orthogonal to a rank-1 K is below the QR noise: the budget is checked before the first
    # exact product, not after seconds of them
    lev_module = importlib.import_module("finegrained.attention.lev")
    calls = []
    monkeypatch.setattr(lev_module, "_exact_scores", lambda q, K: calls.append(1) or np.zeros(len(K)))
    rng = np.random.default_rng(0)
    c, v = rng.normal(size=2000), rng.normal(size=8)
    Q = rng.normal(size=(500, 8))
    Q -= np.outer(Q @ v / (v @ v), v)
    with pytest.raises(NumericalError, match="exact products would be needed"):
        heavy_entries(Q, np.outer(c, v), 0.01, 2.0)
    assert calls == []


def test_svd_of_a_wide_matrix_completes_its_singular_values():
    _, space = importlib.import_module("finegrained.attention.lev")._svd(np.ones((2, 4)))
    assert space.s.shape == (4,) and space.Vt.shape == (4, 4) and space.rank == 1
