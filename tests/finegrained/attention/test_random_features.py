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
