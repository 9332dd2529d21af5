"""The mpmath reference oracle, and its certification of the exact float64 oracle on small chains."""

from __future__ import annotations

import math
import warnings

import mpmath
import numpy as np
import pytest

from finegrained.attention import ORACLES, exact
from finegrained.attention.reference import log_relative_error, reference
from finegrained.validate import certify_exact, gap_ann_of_cnf
from instances import LogArray, random_ksat


def test_reference_follows_the_oracle_protocol_and_matches_exact():
    rng = np.random.default_rng(3)
    Q, K = rng.normal(size=(5, 4)), rng.normal(size=(7, 4))
    V = rng.normal(size=(7, 3))
    ref = reference(Q, K, V)  # default scale 1/d, like exact
    assert isinstance(ref, LogArray) and ref.shape == (5, 3)
    ans = ORACLES["reference"](Q, K, V)
    assert ans.certificate.kind == "log" and np.array_equal(ans.output.log_abs, ref.log_abs)
    # the certified log error bounds the distance to a 120-digit recomputation
    hi = reference(Q, K, V, dps=120)
    assert (np.abs(ans.output.log_abs - hi.log_abs) <= np.exp(ans.certificate.log_bound)).all()
    assert log_relative_error(exact(Q, K, V), ref).max() < 1e-12
    S = Q @ K.T / 4
    A = np.exp(S - S.max(axis=1, keepdims=True))
    assert np.allclose(ref.to_float(), (A @ V) / A.sum(axis=1, keepdims=True), rtol=1e-12)


def test_reference_handles_values_far_below_float64_and_precision_converges():
    Q = np.array([[0.0, 3000.0]])
    K = np.array([[1.0, 0.0], [0.0, 1.0]])
    V = np.array([[1.0], [0.0]])
    out, lo = reference(Q, K, V, scale=1.0, return_mp=True)
    _, hi = reference(Q, K, V, scale=1.0, dps=90, return_mp=True)
    assert out.sign[0, 0] == 1 and out.log_abs[0, 0] == pytest.approx(-3000.0, abs=1e-12)
    with mpmath.workdps(90):
        assert abs(lo[0, 0] / hi[0, 0] - 1) < mpmath.mpf(10) ** -45
    with pytest.raises(ValueError):
        reference(Q, K, V, dps=10)


def test_log_relative_error_flags_sign_changes():
    a = LogArray.from_float(np.array([1.0, -1.0, 0.0]))
    b = LogArray.from_float(np.array([math.e, 1.0, 0.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # two exact zeros (-inf - -inf) are silently 0, not a RuntimeWarning
        assert log_relative_error(a, b).tolist() == [1.0, math.inf, 0.0]


@pytest.mark.parametrize("mode", ["tight", "paper"])
def test_reference_certifies_the_exact_oracle_on_a_small_chain(mode):
    gap = gap_ann_of_cnf(random_ksat(6, 26, 3, seed=11))
    cert = certify_exact(gap, params=mode)
    assert cert["n_q"] == 16 and cert["max_log_rel_error"] < 1e-10
    assert cert["abs_error_vs_t_tilde"] < -15  # far inside the t~ the threshold test needs
    assert cert["decisions_certified"] and cert["max_log_rel_error"] < cert["min_margin"]
    if mode == "paper":
        # relative accuracy cannot reach the paper's absolute eps_a = n^-C_a, which is far below t~
        assert cert["abs_error_vs_eps_a"] > 0
