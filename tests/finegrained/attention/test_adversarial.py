"""The adversarial oracle: exact ±eps pushes towards the threshold, and the chain survives eps = eps_a."""

from __future__ import annotations

import math

import numpy as np
import pytest

from finegrained.attention import ORACLES, exact
from finegrained.attention.adversarial import (
    adversarial,
    analytic_log_slack,
    decisions_survive,
    max_tolerated_log_eps,
    push_towards_threshold,
)
from finegrained.validate import validate_cnf
from instances import LogArray, ParameterError, planted_ksat, random_ksat


def test_push_moves_each_entry_by_eps_towards_the_threshold():
    u = LogArray.from_float(np.array([5.0, 2.0, 1.0, 0.0, -1.0]))
    out = push_towards_threshold(u, math.log(0.25), math.log(2.0)).to_float()
    assert np.allclose(out, [4.75, 1.75, 1.25, 0.25, -0.75], rtol=1e-15)  # at/above 2 down, below up
    towards_zero = push_towards_threshold(u, math.log(0.25)).to_float()
    assert np.allclose(towards_zero, [4.75, 1.75, 0.75, 0.25, -0.75], rtol=1e-15)
    assert push_towards_threshold(u, -math.inf, 0.0) is u


def test_push_is_exact_far_below_float64():
    u = LogArray(np.array([1, 1], dtype=np.int8), np.array([-20000.0, -20003.0]))
    out = push_towards_threshold(u, -20005.0, -20001.0)
    expected = [-20000.0 + math.log1p(-math.exp(-5.0)), -20003.0 + math.log1p(math.exp(-2.0))]
    assert np.allclose(out.log_abs, expected, rtol=0, atol=1e-9) and out.sign.tolist() == [1, 1]


def test_adversarial_oracle_protocol_and_argument_checks():
    Q = np.array([[1.0, 0.0], [0.0, 1.0]])
    V = np.array([[1.0], [0.0]])
    adv = adversarial(exact, log_eps=math.log(0.01), log_threshold=math.log(0.5))
    diff = adv(Q, Q, V, scale=1.0).output.to_float() - exact(Q, Q, V, scale=1.0).to_float()
    assert np.allclose(diff.ravel(), [-0.01, 0.01])
    assert "adversarial" not in ORACLES
    with pytest.raises(ParameterError):
        adversarial(exact)
    with pytest.raises(ParameterError):
        adversarial(exact, 0.1, log_eps=-2.0)
    with pytest.raises(ParameterError):
        adversarial(exact, -0.1)


def test_bisection_matches_closed_form_and_is_sharp():
    rng = np.random.default_rng(7)
    log_u = rng.uniform(-3010.0, -2990.0, size=40)
    u = LogArray(np.ones(40, dtype=np.int8), log_u)
    theta = -3000.0
    truth = log_u >= theta
    L = max_tolerated_log_eps(u, truth, theta, tol=1e-10)
    assert L == pytest.approx(analytic_log_slack(u, truth, theta), abs=1e-8)
    assert decisions_survive(u, truth, L, theta)
    assert not decisions_survive(u, truth, L + 1e-6, theta)
    # a row already on the wrong side tolerates nothing; no constrained row tolerates everything
    assert max_tolerated_log_eps(u, ~truth, theta) == -math.inf
    assert max_tolerated_log_eps(u, truth, theta, constrained=np.zeros(40, bool)) == math.inf


def _formulas(count: int, seed: int):
    """A seeded mix of k in {2, 3, 4}, N <= 12, random near the threshold ratio and planted."""
    rng = np.random.default_rng(seed)
    ratio = {2: 1.0, 3: 4.26, 4: 9.9}
    for i in range(count):
        k = int(rng.integers(2, 5))
        n = int(rng.integers(k, 13))
        m = max(1, round(ratio[k] * n * rng.uniform(0.8, 2.0)))
        if i % 5 == 4:
            yield planted_ksat(n, m, k, seed=rng)[0]
        else:
            yield random_ksat(n, m, k, seed=rng)


@pytest.mark.parametrize("mode", ["tight", "paper"])
def test_chain_is_correct_against_the_adversary_at_eps_a(mode):
    answers = []
    for f in _formulas(200, seed=2024):
        rep = validate_cnf(f, params=mode, oracle="adversarial")
        s = rep.summary
        assert s["all_correct"] and not s["rows_outside_bound"], f.clauses
        assert s["slack_vs_eps_a"] >= 0
        sat = bool(rep.rows["decision"].any())
        assert sat == (f.brute_force_solve() is not None)
        answers.append(sat)
    assert 40 <= sum(answers) <= 160  # both answers are well represented


@pytest.mark.parametrize("mode", ["tight", "paper"])
def test_adversary_at_eps_a_on_planted_gap_ann_instances(mode):
    from finegrained.validate import validate_gap_ann
    from instances.gap_ann_builders import planted

    for seed in range(12):
        n, d = (64, 32) if seed % 2 else (128, 64)
        t = 6.0 if d == 32 else 14.0
        built = planted(n, d, t, 0.5, planted=seed + 1, seed=seed, n_b=n + 7 * (seed % 3))
        rep = validate_gap_ann(built.instance, params=mode, oracle="adversarial")
        s = rep.summary
        assert s["all_correct"] and not s["rows_outside_bound"] and s["slack_vs_eps_a"] >= 0
        assert np.array_equal(np.flatnonzero(rep.rows["decision"]), np.sort(built.planted_rows))
