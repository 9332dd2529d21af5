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


def _q_k_v():
    return np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0], [0.0]])


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    ((), {}, "give exactly one of eps and log_eps for the adversarial oracle"),
    ((0.1,), {"log_eps": -2.0}, "give exactly one of eps and log_eps for the adversarial oracle"),
    ((), {"log_eps": math.nan}, "log_eps must be a finite number or -inf, got nan"),
    ((), {"log_eps": math.inf}, "log_eps must be a finite number or -inf, got inf"),
    ((-0.1,), {}, "eps must be a finite number >= 0, got -0.1"),
    ((math.inf,), {}, "eps must be a finite number >= 0, got inf"),
    ((math.nan,), {}, "eps must be a finite number >= 0, got nan"),
])
def test_adversarial_refuses_bad_errors_with_one_clear_message(args, kwargs, message):
    with pytest.raises(ParameterError) as exc:
        adversarial(exact, *args, **kwargs)
    assert str(exc.value) == message


def test_adversarial_error_conversions_and_attributes():
    assert adversarial(exact, 0.25).log_eps == math.log(0.25)
    assert adversarial(exact, log_eps="-2.5").log_eps == -2.5  # a numeric string is a number
    Q, K, V = _q_k_v()
    for zero in (adversarial(exact, 0.0), adversarial(exact, log_eps=-math.inf)):
        assert zero.log_eps == -math.inf and zero.log_threshold is None
        out = zero(Q, K, V, scale=1.0)
        ref = exact(Q, K, V, scale=1.0)  # eps = 0 is the base answer itself, certified exact
        assert np.array_equal(out.output.log_abs, ref.log_abs) and np.isneginf(out.certificate.log_bound).all()
    adv = adversarial(exact, 0.25, log_threshold=math.log(0.5))
    assert adv.__name__ == "adversarial(exact)" and adv.log_threshold == math.log(0.5)


def test_adversarial_certificate_adds_eps_to_the_base_oracles_bound():
    from finegrained.attention.protocol import Certificate, OracleAnswer

    Q, K, V = _q_k_v()
    bare = adversarial(exact, 0.25, log_threshold=math.log(0.5))(Q, K, V, scale=1.0)
    assert bare.certificate.kind == "additive" and np.array_equal(bare.certificate.log_bound,
                                                                 np.full((2, 1), math.log(0.25)))
    assert "adversarial push by e^-1.38629" in bare.certificate.detail

    def certified(Q, K, V, *, scale=None):
        return OracleAnswer(exact(Q, K, V, scale=scale), Certificate("additive", math.log(0.1)))

    def uncertified(Q, K, V, *, scale=None):
        return OracleAnswer(exact(Q, K, V, scale=scale))

    ans = adversarial(certified, log_eps=math.log(0.25), log_threshold=math.log(0.5))(Q, K, V, scale=1.0)
    bound = np.exp(ans.certificate.log_bound)
    assert bound.shape == (2, 1) and (bound >= 0.35).all() and np.allclose(bound, 0.35, rtol=1e-12, atol=0)
    assert np.allclose(ans.output.to_float().ravel(), exact(Q, K, V, scale=1.0).to_float().ravel() + [-0.25, 0.25])
    plain = adversarial(uncertified, log_eps=math.log(0.25))(Q, K, V, scale=1.0)
    assert not plain.certificate.certified
    assert np.allclose(plain.output.to_float().ravel(), exact(Q, K, V, scale=1.0).to_float().ravel() - 0.25)


def test_push_with_known_answers_goes_against_them():
    u = LogArray.from_float(np.array([[3.0, 1.0], [1.0, 3.0], [3.0, 1.0]]))
    # row 0 is a NO row, row 1 a YES row, row 2 has no known answer: pushed towards theta = 2 from its side
    out = push_towards_threshold(u, math.log(0.5), math.log(2.0), truth=np.array([False, True])).to_float()
    assert out.tolist() == [[3.5, 1.5], [0.5, 2.5], [2.5, 1.5]]
    masked = push_towards_threshold(u, math.log(0.5), math.log(2.0), truth=np.array([False, True]),
                                    constrained=np.array([True, False])).to_float()
    assert masked.tolist() == [[3.5, 1.5], [1.5, 2.5], [2.5, 1.5]]
    with pytest.raises(ParameterError) as exc:
        push_towards_threshold(u, math.log(0.5), math.log(2.0), truth=np.ones(4, dtype=bool))
    assert str(exc.value) == "truth has 4 rows, the output only 3"
    below = LogArray.from_float(np.array([-1.0, 0.0, 2.0]))  # theta = 2: only the last entry goes down
    assert push_towards_threshold(below, math.log(0.5), math.log(2.0)).to_float().tolist() == [-0.5, 0.5, 1.5]


def test_unconstrained_rows_never_count_against_the_decisions():
    u = LogArray.from_float(np.array([3.0, 1.0, 1.0]))  # theta = 2; the last row is on the wrong side
    truth, mask = np.array([True, False, True]), np.array([True, True, False])
    assert not decisions_survive(u, truth, -math.inf, math.log(2.0))
    assert decisions_survive(u, truth, math.log(0.9), math.log(2.0), mask)
    assert not decisions_survive(u, truth, math.log(1.0), math.log(2.0), mask)  # 1 + 1 = theta flips a NO row
    assert analytic_log_slack(u, truth, math.log(2.0)) == -math.inf
    assert analytic_log_slack(u, truth, math.log(2.0), mask) == pytest.approx(0.0, abs=1e-15)
    assert analytic_log_slack(u, truth, math.log(2.0), np.zeros(3, bool)) == math.inf
    for start in (None, -30.0, 5.0):
        L = max_tolerated_log_eps(u, truth, math.log(2.0), constrained=mask, tol=1e-12, log_eps_start=start)
        assert -1e-11 < L < 0 and decisions_survive(u, truth, L, math.log(2.0), mask)


def test_adversary_on_an_uncertified_base_certifies_nothing():
    from finegrained.attention.protocol import Certificate, OracleAnswer

    Q, K, V = _q_k_v()

    def ones(Q, K, V, *, scale=None):  # a bare float array: a plug-in that proves nothing
        return np.ones((Q.shape[0], 1))

    def none_cert(Q, K, V, *, scale=None):
        return OracleAnswer(exact(Q, K, V, scale=scale), Certificate("none"))

    for base in (ones, none_cert):
        ans = adversarial(base, log_eps=-5.0, log_threshold=math.log(0.5))(Q, K, V, scale=1.0)
        assert ans.certificate.kind == "none" and not ans.bounds().certified, base.__name__
    # the bare array's push is still the answer (1 - e^-5 on both rows: both sit above 1/2)
    assert np.allclose(adversarial(ones, log_eps=-5.0, log_threshold=math.log(0.5))(Q, K, V, scale=1.0)
                       .output.to_float().ravel(), 1 - math.exp(-5.0))


@pytest.mark.parametrize("log_eps", [36.0, 40.0, 700.0])
def test_huge_push_keeps_the_true_value_inside_the_certified_interval(log_eps):
    # eps > 2^52 u: u - eps rounds to -eps, so the interval must be widened by that rounding, not just by eps
    Q, K, V = _q_k_v()
    truth = exact(Q, K, V, scale=1.0)
    b = adversarial(exact, log_eps=log_eps, log_threshold=math.log(0.5), truth=np.array([True, False]))(
        Q, K, V, scale=1.0).bounds()
    lo = np.where(b.lower.sign > 0, b.lower.log_abs, -np.inf)  # a non-positive lower bound always holds
    hi = b.upper
    assert (lo.ravel() <= truth.log_abs.ravel()).all()
    assert ((hi.sign > 0) & (hi.log_abs >= truth.log_abs)).all(), (hi.sign, hi.log_abs, truth.log_abs)


def test_a_cache_of_exact_keeps_the_certificate_and_any_other_bare_base_does_not():
    """``functools.wraps(exact)`` (the beta sweep's cache) is still exact's bare output; a lookalike is not."""
    import functools

    rng = np.random.default_rng(3)
    Q, K, V = rng.normal(size=(4, 3)), rng.normal(size=(5, 3)), rng.random((5, 1))

    @functools.wraps(exact)
    def cached(Q, K, V, *, scale=None):
        return exact(Q, K, V, scale=scale)

    def lookalike(Q, K, V, *, scale=None):
        return exact(Q, K, V, scale=scale)

    trusted = adversarial(cached, log_eps=-5.0, log_threshold=-1.0)(Q, K, V)
    untrusted = adversarial(lookalike, log_eps=-5.0, log_threshold=-1.0)(Q, K, V)
    assert trusted.certificate.kind == "additive" and np.allclose(trusted.certificate.log_bound, -5.0)
    assert not untrusted.certificate.certified


def test_decisions_survive_compares_rows_not_a_broadcast():
    truth = np.array([True, False, True])
    column = LogArray.from_float(np.array([[3.0], [1.0], [2.5]]))
    flat = LogArray.from_float(np.array([3.0, 1.0, 2.5]))
    # every row clears theta = 2 by more than eps = 0.1 (an (n, 1) output was compared as an n x n broadcast)
    assert decisions_survive(column, truth, math.log(0.1), math.log(2.0))
    assert decisions_survive(flat, truth, math.log(0.1), math.log(2.0))
    assert not decisions_survive(column, truth, math.log(0.6), math.log(2.0))  # row 2 pushed to 1.9 < 2
    with pytest.raises(ParameterError, match="constrained has 2 entries, truth 3"):
        decisions_survive(flat, truth, math.log(0.1), math.log(2.0), constrained=np.array([True, False]))
    with pytest.raises(ParameterError, match="truth has 1 rows, the output 3"):
        decisions_survive(flat, np.array([True]), math.log(0.1), math.log(2.0))
    # the same checks before the early return at eps = 0, and in the two functions built on it
    with pytest.raises(ParameterError, match="constrained has 2 entries, truth 3"):
        decisions_survive(flat, truth, -math.inf, math.log(2.0), constrained=np.array([True, False]))
    with pytest.raises(ParameterError, match="constrained has 1 entries, truth 3"):
        max_tolerated_log_eps(flat, truth, math.log(2.0), constrained=np.array([True]))
    with pytest.raises(ParameterError, match=r"one value per row, shape \(n,\) or \(n, 1\), got \(3, 2\)"):
        analytic_log_slack(LogArray.from_float(np.ones((3, 2))), truth, 0.0)
    # an (n, 1) column gives the same slack as its rows (it gave -inf: an n x n broadcast of the truths)
    assert analytic_log_slack(column, truth, math.log(2.0)) == analytic_log_slack(flat, truth, math.log(2.0))
    assert max_tolerated_log_eps(column, truth, math.log(2.0)) == max_tolerated_log_eps(flat, truth, math.log(2.0))


def test_thresholds_and_eps_of_the_row_functions_are_checked():
    u, truth = LogArray.from_float(np.array([3.0, 1.0])), np.array([True, False])
    with pytest.raises(ParameterError, match="log_eps must be a real number, got 'a'"):
        decisions_survive(u, truth, "a", -0.5)
    with pytest.raises(ParameterError, match="log_threshold must be a real number, got None"):
        decisions_survive(u, truth, -5.0, None)
    # a NaN threshold returned -inf ("the exact answer itself is wrong") instead of refusing
    with pytest.raises(ParameterError, match="log_threshold must be a finite real number, got nan"):
        max_tolerated_log_eps(u, truth, math.nan)
    with pytest.raises(ParameterError, match="log_threshold must be a real number, got 'x'"):
        analytic_log_slack(u, truth, "x")
