"""Tests of the positive-random-feature (FAVOR+) baseline."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finegrained.attention.exact import exact
from finegrained.attention.protocol import UNCERTIFIED
from finegrained.attention.random_features import random_features, random_features_oracle
from instances.errors import NumericalError, ParameterError


def _inputs(seed: int, n: int = 64, d: int = 3, B: float = 0.5):
    rng = np.random.default_rng(seed)
    return tuple(rng.uniform(-B, B, size=(n, d)) for _ in range(3))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rank=st.integers(1, 64))
def test_seeded_determinism(seed: int, rank: int) -> None:
    Q, K, V = _inputs(seed % 1000, n=16)
    a = random_features(Q, K, V, rank=rank, seed=seed).to_float()
    b = random_features(Q, K, V, rank=rank, seed=seed).to_float()
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(a).all()
    # outputs are convex combinations of the rows of V
    assert (a <= V.max(axis=0) + 1e-12).all() and (a >= V.min(axis=0) - 1e-12).all()


def test_different_seeds_differ() -> None:
    Q, K, V = _inputs(0)
    a = random_features(Q, K, V, rank=32, seed=0).to_float()
    b = random_features(Q, K, V, rank=32, seed=1).to_float()
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("scale", [None, 1.0, -0.5])
def test_approximates_for_large_rank(scale: float | None) -> None:
    Q, K, V = _inputs(2)
    ref = exact(Q, K, V, scale=scale).to_float()
    errs = [np.abs(random_features(Q, K, V, rank=m, seed=0, scale=scale).to_float() - ref).max()
            for m in (16, 16384)]
    assert errs[1] < 0.01
    assert errs[1] < errs[0]


def test_blocking_does_not_change_the_result() -> None:
    Q, K, V = _inputs(4, n=100)
    a = random_features(Q, K, V, rank=50, seed=3).to_float()
    b = random_features(Q, K, V, rank=50, seed=3, block_bytes=8 * 50 * 7).to_float()
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_large_scores_stay_finite() -> None:
    # exponents around 400 would overflow without the max-shift
    rng = np.random.default_rng(0)
    Q, K = rng.uniform(-20, 20, size=(10, 2)), rng.uniform(-20, 20, size=(12, 2))
    out = random_features(Q, K, np.ones((12, 1)), rank=64, scale=1.0).to_float()
    np.testing.assert_allclose(out, 1.0)


def test_oracle_and_parameter_errors() -> None:
    Q, K, V = _inputs(5)
    answer = random_features_oracle(Q, K, V, rank=8, log_eps=-40.0)  # log_eps is accepted and ignored
    assert answer.certificate is UNCERTIFIED and not answer.certificate.certified
    np.testing.assert_array_equal(answer.output.to_float(), random_features(Q, K, V, rank=8).to_float())
    for bad in (0, -3, 2.5, True, "8", np.nan):
        with pytest.raises(ParameterError, match="rank"):
            random_features(Q, K, V, rank=bad)
    for bad in (0, -1, 2.5, np.nan):
        with pytest.raises(ParameterError, match="block_bytes"):
            random_features(Q, K, V, rank=8, block_bytes=bad)
    for bad in (-1, 1.5, "x", None):
        with pytest.raises(ParameterError, match="seed"):
            random_features(Q, K, V, rank=8, seed=bad)


@pytest.mark.parametrize("case", ["complex", "object", "string", "nan_scale", "nan_entry", "ragged", "1d"])
def test_bad_inputs_are_one_line_errors(case: str) -> None:
    Q, K, V = _inputs(6, n=8)
    bad = {"complex": dict(Q=Q + 1j), "object": dict(K=K.astype(object)), "string": dict(V=V.astype(str)),
           "nan_scale": dict(scale=np.nan), "nan_entry": dict(Q=np.where(Q > 0, np.nan, Q)),
           "ragged": dict(K=[[1.0, 2.0], [3.0]]), "1d": dict(V=V[:, 0])}[case]
    args = {"Q": Q, "K": K, "V": V, "scale": None} | bad
    with pytest.raises((ParameterError, NumericalError)) as info:
        random_features(args["Q"], args["K"], args["V"], rank=4, scale=args["scale"])
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------------------------------------------
# Exact and statistical checks (issue 18, mutation testing); every input is built inside its test
# ------------------------------------------------------------------------------------------------------------


def _favor_reference(Q, K, V, rank: int, seed: int, scale: float) -> np.ndarray:
    """The FAVOR+ estimator recomputed independently in mpmath: the same W (the documented seeded draw),
    phi(x) = exp(W x - ||x||^2 / 2) with x = sqrt|s| q and y = sign(s) sqrt|s| k, no shifts, no blocks."""
    import mpmath

    W = np.random.default_rng(seed).standard_normal((rank, Q.shape[1]))
    root = mpmath.sqrt(abs(mpmath.mpf(scale)))
    sign = 1 if scale >= 0 else -1
    with mpmath.workdps(30):
        def phi(x):
            x = [root * mpmath.mpf(float(v)) for v in x]
            half = sum(v * v for v in x) / 2
            return [mpmath.exp(sum(mpmath.mpf(float(wi)) * xi for wi, xi in zip(w, x)) - half) for w in W]

        pk = [phi([sign * v for v in k]) for k in K]
        out = np.empty((Q.shape[0], V.shape[1]))
        for i, q in enumerate(Q):
            pq = phi(q)
            weights = [sum(a * b for a, b in zip(pq, kk)) for kk in pk]
            den = sum(weights)
            for c in range(V.shape[1]):
                out[i, c] = float(sum(w * mpmath.mpf(float(V[j, c])) for j, w in enumerate(weights)) / den)
    return out


@pytest.mark.parametrize("scale", [0.5, -0.7])
def test_matches_the_estimator_recomputed_in_high_precision(scale: float) -> None:
    """Keys of growing norm in 3-row blocks (every block raises the running shift), queries of very different
    norms in one block: the shifts and the blocking change nothing but rounding."""
    rng = np.random.default_rng(11)
    K = rng.normal(size=(10, 2)) * np.linspace(0.2, 3.0, 10)[:, None]
    Q = rng.normal(size=(6, 2)) * np.array([0.1, 0.5, 1.0, 2.0, 4.0, 6.0])[:, None]
    V = rng.uniform(-1, 1, size=(10, 2))
    ref = _favor_reference(Q, K, V, 8, 3, scale)
    for block_bytes in (8 * 8 * 3, 2**20):
        out = random_features(Q, K, V, rank=8, seed=3, scale=scale, block_bytes=block_bytes).to_float()
        np.testing.assert_allclose(out, ref, rtol=1e-11, atol=1e-13)


def test_large_norms_are_shifted_not_underflowed() -> None:
    """||x||^2 / 2 ~ 800 for every key and ~1000 for one query in a block with small ones: unshifted (or
    block-shifted) features of that row would all underflow."""
    rng = np.random.default_rng(12)
    K = rng.normal(size=(5, 2))
    K = 40.0 * K / np.linalg.norm(K, axis=1, keepdims=True)
    Q = np.vstack([rng.normal(size=(3, 2)) * 0.1, [[45.0, 0.0]]])
    V = rng.uniform(-1, 1, size=(5, 1))
    out = random_features(Q, K, V, rank=16, seed=1, scale=1.0).to_float()
    np.testing.assert_allclose(out, _favor_reference(Q, K, V, 16, 1, 1.0), rtol=1e-9, atol=1e-12)


def test_blocks_have_the_documented_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """block = max(1, block_bytes // (8 rank)) rows, each key and query row featurised exactly once."""
    import importlib

    rf = importlib.import_module("finegrained.attention.random_features")
    sizes = []
    real = rf._log_features

    def spy(X, W):
        sizes.append(X.shape[0])
        return real(X, W)

    monkeypatch.setattr(rf, "_log_features", spy)
    Q, K, V = _inputs(7, n=17)
    random_features(Q, K, V, rank=10, seed=0, block_bytes=8 * 10 * 7)
    assert sizes == [7, 7, 3, 7, 7, 3]
    sizes.clear()
    random_features(Q[:3], K[:2], V[:2], rank=10, seed=0, block_bytes=8 * 10 * 2 - 1)  # 1.99 rows: one
    assert sizes == [1, 1, 1, 1, 1]


def test_a_vanished_row_sum_is_refused_with_its_message() -> None:
    """d = 1, rank 2: the query's mass sits on the feature of the largest w, the key's on the smallest; with
    |x| = |y| = 5000 their products underflow to exactly 0, which is refused, never returned as NaN."""
    W = np.random.default_rng(0).standard_normal((2, 1))
    assert abs(W[0, 0] - W[1, 0]) * 5000 > 800
    with pytest.raises(NumericalError) as info:
        random_features([[5000.0]], [[-5000.0]], [[1.0]], rank=2, seed=0, scale=1.0)
    assert str(info.value) == (
        "random_features: a row sum underflowed to 0 (query and key features share no support); "
        "the inputs are too large for positive random features")


def test_underflow_is_handled_whatever_the_callers_error_state() -> None:
    """Features e^{-1000} relative to their row's (or the keys') maximum underflow to 0 by design."""
    Q, K = np.array([[300.0, 0.0], [0.1, 0.2]]), np.array([[0.0, 45.0], [0.3, -0.1], [-20.0, 1.0]])
    V = np.array([[1.0], [2.0], [3.0]])
    with np.errstate(all="raise"):
        out = random_features(Q, K, V, rank=32, seed=2, scale=1.0).to_float()
    assert np.isfinite(out).all()


def test_whole_messages() -> None:
    Q, K, V = _inputs(5, n=4)
    cases = [(dict(rank=0), "rank must be a positive integer, got 0"),
             (dict(rank=4, block_bytes=0), "block_bytes must be a positive integer, got 0"),
             (dict(rank=4, seed=-1), "seed must be a non-negative integer, got -1")]
    for kwargs, message in cases:
        with pytest.raises(ParameterError) as info:
            random_features(Q, K, V, **kwargs)
        assert str(info.value) == message


def test_oracle_defaults_and_info() -> None:
    Q, K, V = _inputs(8, n=12)
    ans = random_features_oracle(Q, K, V)
    assert ans.certificate is UNCERTIFIED and ans.info == {"rank": 256, "seed": 0}
    np.testing.assert_array_equal(ans.output.to_float(), random_features(Q, K, V, rank=256, seed=0).to_float())
    ans = random_features_oracle(Q, K, V, scale=-0.8, rank=20, seed=4)
    assert ans.info == {"rank": 20, "seed": 4}
    np.testing.assert_array_equal(ans.output.to_float(),
                                  random_features(Q, K, V, rank=20, seed=4, scale=-0.8).to_float())
    assert not np.array_equal(ans.output.to_float(), random_features(Q, K, V, rank=20, seed=0, scale=-0.8).to_float())


def test_unbiased_features_concentrate_like_one_over_sqrt_rank() -> None:
    """phi(x).phi(y) / m is an unbiased estimate of exp(x.y): over 200 fixed seeds the mean of the kernel
    estimate is within 5 standard errors of exp(x.y) for pairs of different norms (a wrong ||x||^2 term
    biases it by a factor e^{+-||x||^2}), and the attention error shrinks about 4x from rank 64 to 1024."""
    rng = np.random.default_rng(13)
    unit = rng.normal(size=(9, 2))
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    Q = unit[:4] * np.array([0.1, 0.3, 0.5, 0.6])[:, None]
    K = unit[4:] * np.array([0.05, 0.2, 0.4, 0.5, 0.6])[:, None]
    V = np.eye(5)  # the output row is the estimated attention distribution itself
    truth = exact(Q, K, V, scale=1.0).to_float()
    kernel = np.exp(Q @ K.T)
    estimates = []
    for seed in range(200):
        W = np.random.default_rng(seed).standard_normal((64, 2))
        fq = np.exp(Q @ W.T - 0.5 * (Q * Q).sum(1)[:, None])
        fk = np.exp(K @ W.T - 0.5 * (K * K).sum(1)[:, None])
        estimates.append(fq @ fk.T / 64)
        if seed < 10:  # the library's output is the normalised version of exactly this estimate
            np.testing.assert_allclose(random_features(Q, K, V, rank=64, seed=seed, scale=1.0).to_float(),
                                       estimates[-1] / estimates[-1].sum(1, keepdims=True), rtol=1e-10,
                                       atol=1e-14)
    est = np.array(estimates)
    se = est.std(axis=0, ddof=1) / np.sqrt(len(est))
    assert (np.abs(est.mean(axis=0) - kernel) <= 5 * se).all()
    errs = {m: np.mean([np.abs(random_features(Q, K, V, rank=m, seed=s, scale=1.0).to_float() - truth).max()
                        for s in range(8)]) for m in (64, 1024)}
    assert 2.0 < errs[64] / errs[1024] < 8.0
