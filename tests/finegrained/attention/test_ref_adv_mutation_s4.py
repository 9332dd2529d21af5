"""reference and adversarial: the certificate's closed form, the work limit, whole messages (mutation triage s4).

The reference oracle's bound is recomputed here from an independent mpmath evaluation (at 80 digits) of the
attention and of its |V| companion; the adversarial oracle's output is checked against ``exact +- eps`` and its
certificate, name and detail field by field.
"""

from __future__ import annotations

import functools
import math

import mpmath
import numpy as np
import pytest

from finegrained.attention import exact
from finegrained.attention.adversarial import (
    adversarial,
    analytic_log_slack,
    decisions_survive,
    max_tolerated_log_eps,
    push_towards_threshold,
)
from finegrained.attention.protocol import LOG_TINY
from finegrained.attention.reference import DEFAULT_MAX_WORK, reference, reference_oracle
from instances.errors import ParameterError, ResourceLimitError
from instances.logspace import LogArray

Q = np.array([[0.5, -0.25], [0.125, 0.375], [-0.5, 0.5]])
K = np.array([[0.25, 0.5], [-0.375, 0.125], [0.5, -0.5], [0.25, 0.25]])
V = np.array([[1.0, 0.5], [-2.0, 0.25], [0.75, 1.0], [0.5, 0.125]])  # column 0 mixed, column 1 positive


def _mp_attention(V_: np.ndarray, scale: float) -> list[list]:
    with mpmath.workdps(80):
        out = []
        for q in Q.tolist():
            w = [mpmath.exp(mpmath.mpf(scale) * sum(mpmath.mpf(a) * mpmath.mpf(b) for a, b in zip(q, k)))
                 for k in K.tolist()]
            den = sum(w)
            out.append([sum(wj * mpmath.mpf(v[c]) for wj, v in zip(w, V_.tolist())) / den
                        for c in range(V_.shape[1])])
        return out


@pytest.mark.parametrize("dps", [15, 50])
def test_reference_oracle_bound_is_the_closed_form(dps: int) -> None:
    scale = 1.5
    ans = reference_oracle(Q, K, V, scale=scale, dps=dps)
    signed, absolute = _mp_attention(V, scale), _mp_attention(np.abs(V), scale)
    # the output itself, to within the working precision
    for i in range(3):
        for c in range(2):
            want = float(mpmath.log(abs(signed[i][c])))
            assert ans.output.sign[i, c] == (1 if signed[i][c] > 0 else -1)
            assert abs(ans.output.log_abs[i, c] - want) < 10.0 ** (2 - dps) + 1e-15
    smax = scale * 0.5 * 0.5 * 2  # |scale| max|Q| max|K| d: every |entry| of Q and K is at most 0.5
    unit = 10.0 ** (1 - dps)
    base = (4 * smax + 2 * 4 + 20) * unit
    want_bound = np.empty((3, 2))
    for i in range(3):
        for c in range(2):
            kappa = float(absolute[i][c] / abs(signed[i][c])) if c == 0 else 1.0
            rel = base * kappa
            want_bound[i, c] = math.log(2 * (rel + 2.0**-53 * abs(ans.output.log_abs[i, c])))
    assert ans.certificate.kind == "log"
    assert ans.certificate.detail == f"mpmath at {dps} digits"
    np.testing.assert_allclose(np.asarray(ans.certificate.log_bound, dtype=float), want_bound, rtol=0, atol=1e-9)


def test_reference_oracle_refuses_exact_cancellation_and_deep_cancellation() -> None:
    K2 = np.array([[0.5, 0.5], [0.5, 0.5]])
    V2 = np.array([[1.0], [-1.0]])  # equal weights: the output is exactly zero, the |V| output is not
    ans = reference_oracle(np.eye(2), K2, V2, scale=1.0)
    assert ans.certificate.kind == "none"
    assert ans.certificate.detail == "an output cancelled to exactly zero"
    assert (ans.output.sign == 0).all()
    # a cancellation by 10^-15 at 15 digits: kappa 1e15 makes rel >= 0.5
    V3 = np.array([[1.0], [-(1.0 - 2.0**-50)]])
    ans = reference_oracle(np.eye(2), K2, V3, scale=1.0, dps=15)
    assert ans.certificate.kind == "none"
    assert ans.certificate.detail == "cancellation beyond 15 digits"


def test_reference_work_limit_is_exact_and_counts_digits() -> None:
    Qw = np.ones((3, 2)) * 0.25  # n_q = 3 differs from d = 2
    Kw = np.ones((5, 2)) * 0.25
    Vw = np.ones((5, 4))
    work50 = 3 * 5 * (2 + 4)  # at 50 digits the digit factor is 1
    reference(Qw, Kw, Vw, scale=1.0, max_work=work50)
    with pytest.raises(ResourceLimitError) as err:
        reference(Qw, Kw, Vw, scale=1.0, max_work=work50 - 1)
    assert str(err.value) == (
        f"reference: 3 x 5 attention in dimension 2 is {work50:.3g} multiprecision operations, over the limit of "
        f"{work50 - 1:.3g} (minutes to hours); it certifies small instances (e.g. chains up to N = 10) — pass "
        "max_work to force it")
    work100 = work50 * 2.0**1.6
    reference(Qw, Kw, Vw, scale=1.0, dps=100, max_work=math.ceil(work100))
    with pytest.raises(ResourceLimitError):
        reference(Qw, Kw, Vw, scale=1.0, dps=100, max_work=math.floor(work100))
    assert DEFAULT_MAX_WORK == 2 * 10**7


# ------------------------------------------------------------------------------------------------- adversarial
def test_adversarial_on_exact_is_exact_plus_minus_eps_with_a_tight_certificate() -> None:
    Qa = np.array([[1.0, 0.0], [0.0, 1.0]])
    Va = np.array([[1.0], [0.0]])
    le = math.log(0.01)
    adv = adversarial(exact, 0.01, log_threshold=math.log(0.5))
    assert adv.__name__ == "adversarial(exact)"
    assert adv.log_eps == le
    ans = adv(Qa, Qa, Va, scale=1.0)
    e = math.e
    np.testing.assert_allclose(ans.output.to_float().ravel(), [e / (e + 1) - 0.01, 1 / (e + 1) + 0.01], rtol=1e-14)
    assert ans.certificate.kind == "additive"
    assert np.all(np.asarray(ans.certificate.log_bound) == le)
    assert ans.certificate.detail == f"adversarial push by e^{le:.6g} on the base oracle's certified answer"
    # a functools.wraps cache of exact is trusted too
    cached = functools.wraps(exact)(lambda Q, K, V, *, scale=None: exact(Q, K, V, scale=scale))
    ans2 = adversarial(cached, 0.01, log_threshold=math.log(0.5))(Qa, Qa, Va, scale=1.0)
    assert ans2.certificate.kind == "additive"
    np.testing.assert_array_equal(ans2.output.log_abs, ans.output.log_abs)


def test_adversarial_on_an_untrusted_bare_output_is_uncertified_and_names_its_base() -> None:
    class Plain:  # an instance has no __name__: the wrapper falls back to its generic names
        def __call__(self, Q, K, V, *, scale=None):
            return exact(Q, K, V, scale=scale).to_float()

    adv = adversarial(Plain(), log_eps=math.log(0.01))
    assert adv.__name__ == "adversarial(oracle)"
    Qa = np.eye(2)
    ans = adv(Qa, Qa, np.array([[1.0], [0.0]]), scale=1.0)
    assert ans.certificate.kind == "none"
    assert ans.float_log_tiny == LOG_TINY

    class Bad:
        def __call__(self, Q, K, V, *, scale=None):
            return "nope"

    with pytest.raises(ParameterError) as err:
        adversarial(Bad(), 0.1)(Qa, Qa, np.ones((2, 1)), scale=1.0)
    assert str(err.value) == ("oracle 'base' returned str; expected an OracleAnswer, a LogArray, a numpy array or a "
                              "torch tensor")

    def named(Q, K, V, *, scale=None):
        return "nope"

    with pytest.raises(ParameterError) as err:
        adversarial(named, 0.1)(Qa, Qa, np.ones((2, 1)), scale=1.0)
    assert str(err.value).startswith("oracle 'named' returned str;")
    assert adversarial(named, 0.1).__name__ == "adversarial(named)"


def test_adversarial_eps_messages() -> None:
    with pytest.raises(ParameterError) as err:
        adversarial(exact)
    assert str(err.value) == "give exactly one of eps and log_eps for the adversarial oracle"
    with pytest.raises(ParameterError) as err:
        adversarial(exact, log_eps=math.nan)
    assert str(err.value) == "log_eps must be a finite number or -inf, got nan"


def test_push_with_theta_zero_given_as_log_minus_inf_matches_none() -> None:
    u = LogArray.from_float(np.array([3.0, 0.0, -1.0]))
    a = push_towards_threshold(u, math.log(0.5), None).to_float().tolist()
    b = push_towards_threshold(u, math.log(0.5), -math.inf).to_float().tolist()
    assert a == [2.5, 0.5, -0.5]
    assert b == [2.5, 0.5, -0.5]


def test_decisions_survive_respects_the_mask_row_by_row() -> None:
    u = LogArray.from_float(np.array([3.0, 1.0]))
    thr = math.log(2.0)
    truth = np.array([True, True])  # row 1 is wrong
    assert not decisions_survive(u, truth, -math.inf, thr)
    assert not decisions_survive(u, truth, -math.inf, thr, np.array([True, True]))
    assert decisions_survive(u, truth, -math.inf, thr, np.array([True, False]))
    assert not decisions_survive(u, truth, -math.inf, thr, np.array([False, True]))


def test_max_tolerated_matches_the_closed_form_with_a_mask_and_a_start() -> None:
    u = LogArray.from_float(np.array([3.0, 1.0, 2.25, 1.9]))
    thr = math.log(2.0)
    truth = np.array([True, False, True, True])  # row 3 (1.9 < 2) is wrong but unconstrained
    mask = np.array([True, True, True, False])
    want = math.log(0.25)  # min(3 - 2, 2 - 1, 2.25 - 2)
    assert analytic_log_slack(u, truth, thr, mask) == pytest.approx(want, abs=1e-15)
    assert analytic_log_slack(u, truth, thr) == -math.inf
    for start in (None, -30.0, 0.5):
        got = max_tolerated_log_eps(u, truth, thr, constrained=mask, log_eps_start=start)
        assert want - 1e-9 <= got <= want
    assert max_tolerated_log_eps(u, truth, thr) == -math.inf
    assert max_tolerated_log_eps(u, truth, thr, constrained=np.zeros(4, dtype=bool)) == math.inf
    # unconstrained call on a consistent truth
    got = max_tolerated_log_eps(u, np.array([True, False, True, False]), thr)
    assert math.log(0.1) - 1e-9 <= got <= math.log(0.1) + 1e-12


def test_rows_without_a_known_answer_are_pushed_from_their_computed_side() -> None:
    u = LogArray.from_float(np.array([3.0, 3.0, 3.0, 1.0]))
    thr, le = math.log(2.0), math.log(0.5)
    # row 0 known YES (down), row 1 known NO (up), row 2 unconstrained (computed above: down), rows 3 past truth
    got = push_towards_threshold(u, le, thr, truth=np.array([True, False, True]),
                                 constrained=np.array([True, True, False])).to_float().tolist()
    assert got == [2.5, 3.5, 2.5, 1.5]
    got = push_towards_threshold(u, le, thr, truth=np.array([False])).to_float().tolist()
    assert got == [3.5, 2.5, 2.5, 1.5]


def test_adversarial_passes_the_constrained_mask_on() -> None:
    Qa = np.array([[1.0, 0.0], [0.0, 1.0]])
    Va = np.array([[1.0], [0.0]])  # exact output [e/(e+1), 1/(e+1)] = [0.731, 0.269]
    e = math.e
    adv = adversarial(exact, 0.01, log_threshold=math.log(0.5), truth=np.array([False, True]),
                      constrained=np.array([False, True]))
    got = adv(Qa, Qa, Va, scale=1.0).output.to_float().ravel()
    # row 0 is unconstrained: pushed down towards 0.5 from above, not up as its (ignored) truth False would say
    np.testing.assert_allclose(got, [e / (e + 1) - 0.01, 1 / (e + 1) - 0.01], rtol=1e-14)
