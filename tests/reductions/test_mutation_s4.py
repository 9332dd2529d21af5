"""Tests for the reductions/ mutation survivors of session 4 (issue 18, item 6).

Each test pins a behaviour that a surviving mutant changed and no earlier test checked. Inputs are built inside the
tests (not at import or in ``parametrize``), so that a mutated builder is the one that runs.
"""

from __future__ import annotations

import math
import time
from fractions import Fraction

import numpy as np
import pytest

from instances.errors import ParameterError, ReductionError
from instances.gap_ann import GapANNInstance, balance
from instances.logspace import LogArray
from instances.maxip import MaxIPAnswer, MaxIPInstance
from instances.ov import OVInstance
from instances.solutions import CertifiedOutput, GapANNAnswer
from reductions.base import Chain
from reductions.gap_ann_to_attention import GapANNToAAttC, certified_threshold_test, lemma47_parameters
from reductions.maxip_to_attention import MaxIPToAttention, score_error_bound
from reductions.ov_to_gap_ann import OVToGapANN
from reductions.sat_to_ov import SatToOV


def _column(offsets, base: float, signs=None) -> LogArray:
    """A LogArray column ``(len(offsets), 1)`` with ``log|x| = base + offset`` (sign +1 unless given)."""
    off = np.asarray(offsets, dtype=np.float64).reshape(-1, 1)
    sign = np.ones(off.shape, dtype=np.int8) if signs is None else np.asarray(signs, dtype=np.int8).reshape(-1, 1)
    return LogArray(sign, np.where(sign == 0, -np.inf, base + off))


def _gap_ann_instance() -> GapANNInstance:
    """Three balanced queries and two balanced keys in dimension 6 (t = 2, eps = 1): rows YES, outside, NO."""
    A = balance(np.array([[1, 0, 0], [0, 1, 1], [0, 1, 0]], dtype=np.uint8))
    B = balance(np.array([[1, 0, 0], [0, 0, 1]], dtype=np.uint8))
    return GapANNInstance(A, B, t=2.0, eps=1.0)


# --- GapANNToAAttC.decide_rows and extract ------------------------------------------------------------------


def test_decide_rows_is_the_certified_threshold_test_on_the_real_query_rows():
    red = GapANNToAAttC()
    inst = _gap_ann_instance()
    reduced = red.reduce(inst)
    p = reduced.parameters
    T = p.log_threshold
    n_rows = inst.n_a + inst.n_b  # the attention output has n_a + n rows; only the first n_a are decided
    # rows: interval above 2t~, interval below, interval across; the padding rows would all be YES
    value = _column([1.0, -1.0, 0.25, 5.0, 5.0], T)
    lower = _column([0.5, -1.5, -0.5, 4.0, 4.0], T)
    upper = _column([1.5, -0.5, 0.75, 6.0, 6.0], T)
    assert value.shape == (n_rows, 1)
    got = red.decide_rows(reduced, CertifiedOutput(value, lower, upper))
    assert isinstance(got, GapANNAnswer)
    assert got.certified is True
    assert got.yes.tolist() == [True, False, True]
    assert got.undecided.tolist() == [False, False, True]
    assert got.margin.tolist() == [(T + 1.0) - T, (T - 1.0) - T, (T + 0.25) - T]
    # the same answer as extract (the docstring's promise) and as the module function on the first n_a rows
    ext = red.extract(reduced, CertifiedOutput(value, lower, upper))
    ref = certified_threshold_test(p, CertifiedOutput(value, lower, upper)[:3, 0])
    for other in (ext, ref):
        assert other.yes.tolist() == got.yes.tolist()
        assert other.undecided.tolist() == got.undecided.tolist()
        assert other.margin.tolist() == got.margin.tolist()
    # a bare LogArray is the exact output: decided wherever it is off the threshold
    bare = red.decide_rows(reduced, value)
    assert bare.yes.tolist() == [True, False, True] and not bare.undecided.any()


def test_extract_returns_decided_answers_of_the_right_length_and_names_a_wrong_length():
    red = GapANNToAAttC()
    reduced = red.reduce(_gap_ann_instance())
    answer = GapANNAnswer(np.array([True, False, True]))
    assert red.extract(reduced, answer) is answer
    assert reduced.extract(answer) is answer
    with pytest.raises(ReductionError) as err:
        red.extract(reduced, GapANNAnswer(np.array([True, False])))
    assert str(err.value) == "2 row answers for 3 rows"
    with pytest.raises(ReductionError) as err:
        red.extract(reduced, GapANNAnswer(np.array([True, False, True, True])))
    assert str(err.value) == "4 row answers for 3 rows"


# --- the threshold test at its rounding allowance, exactly ----------------------------------------------------


def _params_with_exact_tie():
    """Lemma 4.7 parameters (explicit ``beta``) for which ``log 2t~ + eta`` and ``log 2t~ - eta`` are floats whose
    difference from ``log 2t~`` is exactly ``eta = log_rounding``.

    ``eta = 2^-49 S`` with ``S = |beta| + |log 2t~| + 10`` rounded; a difference of two floats near ``log 2t~`` is
    a multiple of ``ulp(log 2t~)``, so it can equal ``eta`` only when ``S`` has few significant bits. ``S`` grows
    with ``beta``; bisect ``beta`` to the point where ``S`` reaches 128 and take the first neighbour that gives the
    exact tie.
    """

    def params(beta):
        return lemma47_parameters(4, 4, 12, 5.0, 0.6, beta=float(beta))

    def s_of(beta):
        return params(beta).log_rounding / 2.0**-49

    lo, hi = 60.0, 120.0
    assert s_of(lo) < 128.0 <= s_of(hi)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if s_of(mid) < 128.0 else (lo, mid)
    beta = lo
    for _ in range(64):
        p = params(beta)
        T, eta = p.log_threshold, p.log_rounding
        if (T + eta) - T == eta and (T - eta) - T == -eta:
            return p
        beta = float(np.nextafter(beta, math.inf))
    raise AssertionError("no beta near S = 128 gives an exact tie")


def test_an_interval_touching_the_rounding_allowance_exactly_stays_undecided():
    p = _params_with_exact_tie()
    assert p.gap_condition_holds and p.accuracy_condition_holds
    T, eta = p.log_threshold, p.log_rounding
    # rows: lower bound exactly eta above log 2t~ (not decided YES: the test is lower > eta), upper bound exactly
    # eta below (not decided NO: the test is upper < -eta); then one ulp further out on each side, decided
    up, down = T + eta, T - eta
    assert up - T == eta and down - T == -eta
    up_1, down_1 = float(np.nextafter(up, math.inf)), float(np.nextafter(down, -math.inf))
    value = LogArray(np.ones(4, dtype=np.int8), np.array([up, down, up_1, down_1]))
    lower = LogArray(np.ones(4, dtype=np.int8), np.array([up, down - 1.0, up_1, down_1 - 1.0]))
    upper = LogArray(np.ones(4, dtype=np.int8), np.array([up + 1.0, down, up_1 + 1.0, down_1]))
    got = certified_threshold_test(p, CertifiedOutput(value, lower, upper))
    assert got.undecided.tolist() == [True, True, False, False]
    assert got.yes.tolist() == [True, False, True, False]  # the point answers on undecided rows, intervals elsewhere
    assert got.margin.tolist() == [eta, -eta, up_1 - T, down_1 - T]


def test_a_decided_no_row_whose_lower_bound_sits_exactly_at_the_allowance_is_no():
    # An inconsistent certificate (lower above upper) is accepted as given; the row is decided by its upper bound
    # below 2t~ - eta, and YES needs a lower bound strictly above 2t~ + eta, which a lower bound at exactly
    # eta above log 2t~ is not.
    p = _params_with_exact_tie()
    T, eta = p.log_threshold, p.log_rounding
    one = np.ones(1, dtype=np.int8)
    value = LogArray(one, np.array([T + eta]))
    lower = LogArray(one, np.array([T + eta]))
    upper = LogArray(one, np.array([T - 1.0]))
    got = certified_threshold_test(p, CertifiedOutput(value, lower, upper))
    assert got.undecided.tolist() == [False]
    assert got.yes.tolist() == [False]


# --- lemma47_parameters: the accuracy condition's refusal ------------------------------------------------------


def test_paper_mode_refuses_an_instance_whose_eps_a_exceeds_t_tilde_with_the_whole_message():
    # One key, d = 2, t = 1, eps = 1000: paper mode's beta = 40 d ln 2 / (eps t) is tiny, and
    # log eps_a - log t~ = ln 1.5 - (3/4) beta (1 + t/d) > 0 (ln max(n, 2) = ln 2 for n = 1).
    n, d, t, eps = 1, 2, 1.0, 1000.0
    beta = 40 * d * math.log(2) / (eps * t)
    log_eps_a = -(2 * math.log(2) + beta * (1 + t / d))
    log_t_tilde = -0.25 * beta * (1 + t / d) - math.log(6 * n)
    assert log_eps_a > log_t_tilde
    with pytest.raises(ParameterError) as err:
        lemma47_parameters(1, n, d, t, eps, mode="paper")
    assert str(err.value) == (
        f"eps_a = exp({log_eps_a:.6g}) exceeds t~ = exp({log_t_tilde:.6g}); the threshold test would not be sound"
    )
    p = lemma47_parameters(1, n, d, t, eps, mode="paper", check=False)
    assert not p.accuracy_condition_holds and p.gap_condition_holds
    assert p.log_eps_a == pytest.approx(log_eps_a, rel=1e-14)
    assert p.log_t_tilde == pytest.approx(log_t_tilde, rel=1e-14)


# --- MaxIPToAttention.backward: the wrong-instance refusal -------------------------------------------------------


def test_maxip_backward_refusals_are_their_whole_message():
    red = MaxIPToAttention()
    ov = OVInstance(np.array([[1, 0]], dtype=np.uint8), np.array([[0, 1]], dtype=np.uint8))
    out = LogArray(np.ones((1, 1), dtype=np.int8), np.zeros((1, 1)))
    with pytest.raises(ReductionError) as err:
        red.backward(ov, out)
    assert str(err.value) == "the Max-IP instance must be a MaxIPInstance, got OVInstance"
    inst = MaxIPInstance([[1, 0]], [[0, 1]], 0)
    with pytest.raises(ReductionError) as err:
        red.backward(inst, [[0.0]])
    assert str(err.value) == "the attention output must be a LogArray, got list"
    with pytest.raises(ReductionError) as err:
        red.backward(inst, LogArray(np.ones((2, 1), dtype=np.int8), np.zeros((2, 1))))
    assert str(err.value) == "attention output has shape (2, 1); expected (1, 1)"


# --- Chain.reduce: the per-step forward times -------------------------------------------------------------------


def test_chain_reduce_times_each_step_within_the_whole_call():
    from instances.cnf import CNFFormula

    chain = Chain([SatToOV(), OVToGapANN()])
    f = CNFFormula([[1, -2], [2, 3], [-1, -3]], num_vars=3)
    t0 = time.perf_counter()
    reduced = chain.reduce(f)
    total = time.perf_counter() - t0
    assert len(reduced.seconds) == 2 == len(reduced.steps)
    assert all(0.0 <= s for s in reduced.seconds)
    assert sum(reduced.seconds) <= total
    assert [type(x).__name__ for x in reduced.instances] == ["CNFFormula", "OVInstance", "GapANNInstance"]


# --- score_error_bound: the closed form gamma_{d+2} lambda max_i M_i, recomputed exactly -------------------------


def _score_bound_exact(d: int, lam: float, worst: int | Fraction) -> Fraction:
    """``gamma_k lambda W (1 + 4 k u)`` with ``k = d + 2``, ``u = 2^-53``, ``gamma_k = k u / (1 - k u)``, exactly."""
    u = Fraction(1, 2**53)
    k = d + 2
    return k * u / (1 - k * u) * Fraction(lam) * Fraction(worst) * (1 + 4 * k * u)


def _row_bound(a, B, tau: int) -> Fraction:
    """``M_i = max_j sum_l |a_l| |b_jl| + |1/2 - tau_i|`` in Python integers."""
    return max(sum(abs(int(x)) * abs(int(y)) for x, y in zip(a, b)) for b in B) + abs(Fraction(1, 2) - tau)


def test_score_error_bound_is_its_closed_form_row_by_row():
    d = 30  # k = 32: a change of gamma by a factor (1 -+ k u) moves the bound by 2 k u ~ 7e-15, far above rounding
    signs = np.where(np.arange(d) % 2 == 0, 1, -1)
    A = np.stack([signs * 3, np.zeros(d, dtype=np.int64), -np.ones(d, dtype=np.int64)])
    B = np.stack([np.ones(d, dtype=np.int64), signs * 2])
    tau = np.array([0, 200, -7])
    inst = MaxIPInstance(A, B, tau)
    # M_i = max_j sum_l |a_il| |b_jl| + |1/2 - tau_i|, from Python integers: row 0 has the largest |A||B| (180,
    # whose signed inner products are 0 and 180), row 1 the largest threshold term (a zero row: 0 + 199.5)
    M = [_row_bound(A[i], B, int(tau[i])) for i in range(3)]
    assert M == [Fraction(361, 2), Fraction(399, 2), Fraction(135, 2)]
    for lam in (2.0, 2 * math.log(8 * 3)):
        got = score_error_bound(inst, lam)
        want = _score_bound_exact(d, lam, max(M))
        assert abs(Fraction(got) - want) <= want * Fraction(2, 10**15), (lam, got, float(want))


def test_score_error_bound_of_small_and_empty_instances():
    # a zero row with tau = 0: M = 1/2, below 1 (no floor of 1 anywhere)
    want = _score_bound_exact(2, 2.0, Fraction(1, 2))
    got = score_error_bound(MaxIPInstance([[0, 0]], [[1, 1]], 0), 2.0)
    assert abs(Fraction(got) - want) <= want * Fraction(1, 10**15)
    # no keys: only the threshold terms |1/2 - tau_i| remain
    no_keys = MaxIPInstance(np.ones((2, 3), dtype=np.int64), np.zeros((0, 3), dtype=np.int64), [0, 2])
    want = _score_bound_exact(3, 2.0, Fraction(3, 2))
    assert abs(Fraction(score_error_bound(no_keys, 2.0)) - want) <= want * Fraction(1, 10**15)
    # no queries: nothing to bound
    assert score_error_bound(MaxIPInstance(np.zeros((0, 3), dtype=np.int64), np.ones((2, 3)), []), 2.0) == 0.0


# --- MaxIPToAttention.forward: the gadget's matrices, its float64 range check, its refusals ---------------------


def test_maxip_forward_builds_the_gadget_with_its_factor():
    from reductions.ov_to_attention import gadget_lambda

    r = MaxIPToAttention(factor=5.0)
    inst = MaxIPInstance([[1, -2], [0, 3]], [[3, 0], [0, 1]], [4, -1])
    att = r.forward(inst)
    lam = 2 * math.log(5 * 2)  # lambda = 2 ln(c n_b) with this reduction's c = 5, not the default 8
    assert att.meta == {"lambda": gadget_lambda(2, 5.0), "threshold": 0.5, "gadget": "max-ip"}
    assert att.meta["lambda"] == pytest.approx(lam, rel=1e-15)
    L = att.meta["lambda"]
    assert np.array_equal(att.Q, np.array([[L * 1, L * -2, L * -3.5], [0.0, L * 3, L * 1.5]]))
    assert np.array_equal(att.K, np.array([[3.0, 0.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0]]))
    assert np.array_equal(att.V, np.array([[0.0], [0.0], [1.0]]))  # the dummy key carries value 1, the rest 0
    assert att.B == L * 3.5 and att.scale == 1.0 and att.log_eps_a == math.log(0.25)
    # no queries: the entry bound is the keys' (here 2), not a failed reduction over an empty Q
    empty = r.forward(MaxIPInstance(np.zeros((0, 2), dtype=np.int64), [[1, 2]], []))
    assert empty.Q.shape == (0, 3) and empty.B == 2.0
    # ... and with 0/1 keys the floor of 1 (every |q| >= lambda / 2 > 1 otherwise)
    assert r.forward(MaxIPInstance(np.zeros((0, 2), dtype=np.int64), [[1, 0]], [])).B == 1.0
    small = MaxIPToAttention(factor=5.0).forward(MaxIPInstance([[0]], [[1]], 0))  # |q| = ln 5 ~ 1.61
    assert small.B == math.log(5.0) == float(np.abs(small.Q).max())


def test_maxip_forward_refusals_are_their_whole_message():
    r = MaxIPToAttention()
    with pytest.raises(ReductionError) as err:
        r.forward(OVInstance([[1]], [[0]]))
    assert str(err.value) == "the Max-IP -> Attention input must be a MaxIPInstance, got OVInstance"
    with pytest.raises(ReductionError) as err:
        r.forward(MaxIPInstance([[1, 2]], np.zeros((0, 2), dtype=np.int64), 0))
    assert str(err.value) == "Max-IP needs at least one vector in B"
    # entries too large for float64 (d = 3, one key): the numbers are the closed forms of score_error_bound
    d, u = 3, 2.0**-53
    inst = MaxIPInstance([[2**50, 0, 0]], [[1, 1, 1]], 0)
    lam = 2 * math.log(8)
    tol = 0.5 * math.log(8 / 3)
    err_bound = float(_score_bound_exact(d, lam, Fraction(2**50) + Fraction(1, 2)))
    with pytest.raises(ReductionError) as err:
        r.forward(inst)
    assert str(err.value) == (
        f"Max-IP entries too large for float64: the gadget's scores may be off by {err_bound:.3g} nats, more than "
        f"the {tol:.3g} it admits (sum |a||b| + |tau| must stay below about {tol / (lam * (d + 2) * u):.3g})"
    )


def test_maxip_forward_accepts_a_score_bound_exactly_at_its_tolerance():
    # The rule is gamma_{d+2} lambda max_i M_i <= ln(c/3)/2 (module docstring): equality is accepted. With one
    # coordinate, M = x + 1/2 for A = [[x]], B = [[1]] x n_b, tau = 0; look for an x whose computed bound equals the
    # tolerance to the last bit (the bound moves by about 1/x relative per unit of x, a few dozen ulps).
    from reductions.ov_to_attention import gadget_lambda

    r = MaxIPToAttention()
    tol, k, u = r.score_tolerance(), 3, 2.0**-53
    for n_b in range(1, 400):
        lam = gadget_lambda(n_b, r.factor)
        B = np.ones((n_b, 1), dtype=np.int64)
        x0 = int(tol / (k * u / (1 - k * u) * lam * (1 + 4 * k * u)) - 0.5)
        ties = [x for x in range(x0 - 3, x0 + 4) if score_error_bound(MaxIPInstance([[x]], B, 0), lam) == tol]
        if ties:
            break
    else:
        raise AssertionError("no instance with a score bound exactly at the tolerance")
    x = ties[0]
    att = r.forward(MaxIPInstance([[x]], B, 0))
    assert att.Q[0, 0] == lam * x
    assert score_error_bound(MaxIPInstance([[x + 1]], B, 0), lam) > tol
    with pytest.raises(ReductionError, match="too large for float64"):
        r.forward(MaxIPInstance([[x + 1]], B, 0))


# --- the registry: the graph's attributes, path's options and refusals ------------------------------------------


def test_reduction_graph_carries_every_definition_and_reduction_text():
    from reductions.registry import FACTORIES, PROBLEMS, reduction_graph

    g = reduction_graph()
    assert list(g.nodes) == ["k-SAT", "OV", "Gap-ANN", "AAttC", "Max-IP", "Attention"]
    for name in g.nodes:
        assert g.nodes[name] == {"definition": PROBLEMS[name]}
    assert set(g.edges) == set(FACTORIES)
    for (u, v), factory in FACTORIES.items():
        r = factory()
        assert (r.source, r.target) == (u, v)
        attrs = g.edges[u, v]
        assert attrs == {"factory": factory, "lemma": r.lemma, "blowup": r.blowup, "derived": r.derived}
        assert attrs["lemma"] and attrs["blowup"] and isinstance(attrs["derived"], str)  # derived may be ""


def test_path_hands_each_step_its_options_and_keeps_the_defaults():
    from reductions import path

    chain = path("k-SAT", "AAttC")
    last = chain.steps[-1]
    assert [type(s).__name__ for s in chain.steps] == ["SatToOV", "OVToGapANN", "GapANNToAAttC"]
    assert (last.mode, last.safety, last.beta, last.check) == ("tight", None, None, True)
    last = path("OV", "AAttC", mode="paper", check=False).steps[-1]
    assert (last.mode, last.safety, last.beta, last.check) == ("paper", None, None, False)
    last = path("Gap-ANN", "AAttC", safety=2.0, beta=7.5).steps[-1]
    assert (last.mode, last.safety, last.beta, last.check) == ("tight", 2.0, 7.5, True)
    for target, name in (("Attention", "OVToAttention"), ("Max-IP", "OVToMaxIP")):
        steps = path("OV", target).steps
        assert [type(s).__name__ for s in steps] == [name]
    assert path("OV", "Attention").steps[0].factor == 8.0
    assert path("OV", "Attention", factor=5.0).steps[0].factor == 5.0
    steps = path("Max-IP", "Attention", factor=6.0).steps
    assert [type(s).__name__ for s in steps] == ["MaxIPToAttention"] and steps[0].factor == 6.0
    assert path("Max-IP", "Attention").steps[0].factor == 8.0


def test_path_refusals_are_their_whole_message():
    from reductions import path

    cases = [
        (lambda: path("OV", "OV"), "source and target are both OV: there is nothing to reduce"),
        (lambda: path("k-SAT", "AAttC", foo=1, bar=2),
         "unknown option(s) bar, foo for the path k-SAT -> OV -> Gap-ANN -> AAttC; its reductions accept beta, "
         "check, mode, safety"),
        (lambda: path("k-SAT", "OV", factor=5.0),
         "unknown option(s) factor for the path k-SAT -> OV; its reductions accept no options"),
        (lambda: path("SAT", "OV"),
         "unknown problem 'SAT'; known problems: k-SAT, OV, Gap-ANN, AAttC, Max-IP, Attention"),
        (lambda: path("OV", "SAT"),
         "unknown problem 'SAT'; known problems: k-SAT, OV, Gap-ANN, AAttC, Max-IP, Attention"),
        (lambda: path("OV", "k-SAT"), "no chain of reductions leads from OV to k-SAT"),
    ]
    for call, message in cases:
        with pytest.raises(ParameterError) as err:
            call()
        assert str(err.value) == message


# --- Reduction.reduce keeps the parameters it derived -----------------------------------------------------------


def test_reduce_keeps_the_parameters_of_its_instance():
    from instances.cnf import CNFFormula
    from reductions.ov_to_attention import OVToAttention

    ov = OVInstance([[1, 0], [1, 1]], [[1, 1], [0, 1]])
    r = OVToAttention()
    reduced = r.reduce(ov)
    assert reduced.parameters == r.parameters(ov) and reduced.parameters
    assert reduced.source is ov and reduced.reduction is r
    assert SatToOV().reduce(CNFFormula([[1, -2]], num_vars=2)).parameters == {}
    assert OVToGapANN().reduce(ov).parameters == {}


# --- checking: every disagreement is its whole line --------------------------------------------------------------


def test_agree_answers_lines_for_every_problem():
    from instances.cnf import CNFFormula
    from instances.solutions import OrthogonalPair
    from reductions.checking import agree_answers

    f = CNFFormula([[1, 2], [-1]], num_vars=2)  # satisfiable only by x1 = 0, x2 = 1
    unsat = CNFFormula([[1], [-1]], num_vars=1)
    assert agree_answers(f, [-1, 2], [-1, 2]) is None
    assert agree_answers(unsat, None, None) is None
    assert agree_answers(f, [-1, 2], None) == "the reduction answered UNSAT, but the formula is satisfiable"
    assert agree_answers(unsat, None, [1]) == "the reduction answered SAT with [1], but the formula is unsatisfiable"
    assert agree_answers(f, [-1, 2], [1, 2]) == "the extracted assignment [1, 2] does not satisfy the formula"
    assert agree_answers(f, [-1, 2], [-1]).startswith("the extracted assignment [-1] is malformed: ")

    ov = OVInstance([[1, 0], [1, 1]], [[1, 1], [0, 1], [1, 0]])  # only (0, 1) is orthogonal
    pair = OrthogonalPair(0, 1)
    assert agree_answers(ov, pair, pair) is None
    assert agree_answers(ov, None, None) is None
    assert agree_answers(ov, pair, None) == f"the reduction found no pair, but {pair} is orthogonal"
    assert agree_answers(ov, pair, (0, 1)) == "the extracted answer is a tuple, not an OrthogonalPair or None"
    for bad in (OrthogonalPair(2, 0), OrthogonalPair(0, 3), OrthogonalPair(-1, 0), OrthogonalPair(0, -1)):
        assert agree_answers(ov, pair, bad) == f"the extracted pair {bad} is out of range for 2 x 3 vectors"
    for bad in (OrthogonalPair(1, 2), OrthogonalPair(1, 1)):  # <a_1, b_2> = 1, <a_1, b_1> = 1
        assert agree_answers(ov, pair, bad) == f"the extracted pair {bad} is not orthogonal"

    mx = MaxIPInstance([[1, 2], [0, 1]], [[1, 1], [2, 0]], [3, 2])  # row maxima 3 and 1: YES, NO
    right = MaxIPAnswer([True, False])
    assert agree_answers(mx, right, MaxIPAnswer([True, False])) is None
    assert agree_answers(mx, right, MaxIPAnswer([True, True])) == (
        "1 row(s) answered wrongly (first: row 1, max <a, b> = 1, tau = 2)")
    assert agree_answers(mx, right, MaxIPAnswer([False, True])) == (
        "2 row(s) answered wrongly (first: row 0, max <a, b> = 3, tau = 3)")
    assert agree_answers(mx, right, MaxIPAnswer([True])) == (
        f"the extracted answer is not a MaxIPAnswer with 2 rows: {MaxIPAnswer([True])!r}")
    assert agree_answers(mx, right, [True, False]) == (
        "the extracted answer is not a MaxIPAnswer with 2 rows: [True, False]")

    with pytest.raises(ParameterError) as err:
        agree_answers(3.5, None, None)
    assert str(err.value) == "no built-in comparison of answers for float; pass agree="


def test_agree_answers_on_gap_ann_rows():
    from instances.gap_ann import NO, OUTSIDE_PROMISE, YES
    from reductions.checking import agree_answers

    inst = _gap_ann_instance()
    status = inst.row_status()
    truth = status == YES
    assert status.tolist() == [YES, OUTSIDE_PROMISE, NO]  # min distances 0, 2 (inside (t, (1+eps) t)), 4
    promise = status != OUTSIDE_PROMISE
    first = int(np.flatnonzero(promise)[0])
    assert agree_answers(inst, None, GapANNAnswer(truth.copy())) is None
    flipped = truth.copy()
    flipped[promise] = ~flipped[promise]
    name = "YES" if status[first] == YES else "NO"
    assert agree_answers(inst, None, GapANNAnswer(flipped)) == (
        f"{int(promise.sum())} in-promise row(s) answered wrongly (first: row {first}, truth {name})")
    assert agree_answers(inst, None, GapANNAnswer(truth.copy(), certified=False)) == (
        "the extracted answer is marked uncertified although the target was solved exactly")
    undecided = np.zeros(inst.n_a, dtype=bool)
    undecided[first] = True
    assert agree_answers(inst, None, GapANNAnswer(truth.copy(), undecided=undecided)) == (
        f"1 in-promise row(s) undecided from an exact target solution (first: {first})")
    short = GapANNAnswer(truth[:-1].copy())
    assert agree_answers(inst, None, short) == (
        f"the extracted answer is not a GapANNAnswer with {inst.n_a} rows: {short!r}")
    assert agree_answers(inst, None, None) == f"the extracted answer is not a GapANNAnswer with {inst.n_a} rows: None"


def test_check_reduction_names_a_source_or_target_without_a_brute_force():
    from reductions.checking import check_reduction

    class Opaque:
        pass

    with pytest.raises(ParameterError) as err:
        check_reduction(SatToOV(), lambda rng: Opaque(), trials=1)
    assert str(err.value) == "the source instance (Opaque) has no brute_force_solve(); pass solve_source="

    class ToOpaque:
        def reduce(self, x):
            from reductions.base import Reduced

            return Reduced(self, x, Opaque())

    with pytest.raises(ParameterError) as err:
        check_reduction(ToOpaque(), lambda rng: OVInstance([[1]], [[0]]), trials=1)
    assert str(err.value) == "the target instance (Opaque) has no brute_force_solve(); pass solve_target="


def _tiny_ov(rng) -> OVInstance:
    return OVInstance([[1, 0]], [[0, 1], [1, 1]])  # (0, 0) is the one orthogonal pair


def test_check_reduction_runs_100_trials_by_default_with_seeds_of_its_seed_sequence():
    from reductions.checking import check_reduction
    from reductions.maxip_to_attention import OVToMaxIP

    seen = []

    def gen(rng):
        seen.append(int(rng.integers(2**62)))
        return _tiny_ov(rng)

    assert check_reduction(OVToMaxIP(), gen) is None
    assert len(seen) == 100
    seeds = np.random.SeedSequence(0).generate_state(100, dtype=np.uint64)
    assert seen == [int(np.random.default_rng(int(s)).integers(2**62)) for s in seeds]


def test_every_counterexample_carries_every_field():
    from instances.solutions import OrthogonalPair
    from reductions.base import Reduced
    from reductions.checking import check_reduction

    with pytest.raises(ParameterError) as err:
        check_reduction(object(), _tiny_ov)
    assert str(err.value) == "object has no reduce(); pass a Reduction or a Chain"
    seed0 = int(np.random.SeedSequence(5).generate_state(1, dtype=np.uint64)[0])

    class Raises:
        def __init__(self, where):
            self.where = where

        def reduce(self, x):
            if self.where == "reduce":
                raise ValueError("no")
            return Reduced(self, x, x)

        def extract(self, reduced, solution):
            if self.where == "extract":
                raise KeyError("bad")
            return None if self.where == "none" else OrthogonalPair(0, 1)  # both wrong: (0, 0) is the pair

    cx = check_reduction(Raises("reduce"), _tiny_ov, trials=1, seed=5)
    assert (cx.expected, cx.got, cx.seed, cx.trial, cx.target, cx.target_solution) == (
        _tiny_ov(None).brute_force_solve(), None, seed0, 0, None, None)
    assert cx.reason == "reduce raised ValueError: no" and str(cx) == f"trial 0 (seed {seed0}): {cx.reason}"
    assert np.array_equal(cx.instance.A, [[1, 0]])
    for where, reason, got in (("extract", "extract raised KeyError: 'bad'", None),
                               ("none", "the reduction found no pair, but OrthogonalPair(i=0, j=0) is orthogonal",
                                None),
                               ("pair", "the extracted pair OrthogonalPair(i=0, j=1) is not orthogonal",
                                OrthogonalPair(0, 1))):
        cx = check_reduction(Raises(where), _tiny_ov, trials=1, seed=5)
        expected = _tiny_ov(None).brute_force_solve()
        assert (cx.expected, cx.got, cx.seed, cx.trial, cx.reason) == (expected, got, seed0, 0, reason)
        assert np.array_equal(cx.target.A, [[1, 0]]) and cx.target_solution == expected
        assert np.array_equal(cx.instance.A, [[1, 0]]) and np.array_equal(cx.instance.B, [[0, 1], [1, 1]])


def test_a_size_mismatch_counterexample_and_the_given_solvers():
    import sympy

    from instances.cnf import CNFFormula
    from reductions.base import Reduced
    from reductions.checking import check_reduction
    from reductions.sizes import symbol

    class Misdeclared(SatToOV):
        @property
        def sizes(self):
            N, m = symbol("N"), symbol("m")
            return {"n_a": 2 ** sympy.floor(N / 2), "n_b": 2 ** sympy.ceiling(N / 2), "d": m}

    f = CNFFormula([[1, -2], [3]], num_vars=3)  # odd N: the halves have 2^2 and 2^1 assignments
    seed0 = int(np.random.SeedSequence(7).generate_state(1, dtype=np.uint64)[0])
    cx = check_reduction(Misdeclared(), lambda rng: f, trials=3, seed=7)
    assert cx.reason == f"{Misdeclared().name}: declared size n_a = 2**floor(N/2) = 2, measured 4"
    assert (cx.instance, cx.expected, cx.got, cx.seed, cx.trial, cx.target_solution) == (
        f, f.brute_force_solve(), None, seed0, 0, None)
    assert cx.target.A.shape == (4, 2) and cx.target.B.shape == (2, 2)

    # the given solvers are used, on the source and on the target: neither instance has a brute force here
    class Box:
        def __init__(self, v):
            self.v = v

    class Wrap:
        def reduce(self, x):
            return Reduced(self, x, Box(x.v + 1))

        def extract(self, reduced, solution):
            return solution - 1

    cx = check_reduction(Wrap(), lambda rng: Box(10), trials=2, solve_source=lambda b: b.v * 2,
                         solve_target=lambda b: b.v * 3, agree=lambda x, want, got: f"{x.v} {want} {got}")
    assert (cx.expected, cx.target_solution, cx.got, cx.reason, cx.target.v) == (20, 33, 32, "10 20 32", 11)


# --- sizes: measure, symbol and size_mismatches, field by field ---------------------------------------------------


def test_measure_names_every_size_of_every_problem():
    from instances.aattc import AAttCInstance
    from instances.cnf import CNFFormula
    from reductions.maxip_to_attention import MaxIPToAttention
    from reductions.sizes import measure

    assert measure(CNFFormula([[1, -2], [2], [3]], num_vars=4)) == {"N": 4, "m": 3}
    assert measure(OVInstance([[1, 0, 1]] * 2, [[0, 1, 1]] * 5)) == {"n_a": 2, "n_b": 5, "d": 3}
    assert measure(_gap_ann_instance()) == {"n_a": 3, "n_b": 2, "d": 6, "t": 2.0, "eps": 1.0}
    mx = MaxIPInstance([[1, -7], [3, 2]], [[-2, 5]], [4, -9])
    got = measure(mx)
    # W_a = max|A|, W_b = max|B|, T = max|1/2 - tau|
    assert got == {"n_a": 2, "n_b": 1, "d": 2, "W_a": 7.0, "W_b": 5.0, "T": 9.5}
    assert all(type(got[k]) is float for k in ("W_a", "W_b", "T"))
    assert measure(MaxIPInstance(np.zeros((0, 2), dtype=np.int64), [[0, 0]], []))["W_a"] == 0.0
    # attention instances: the sizes, plus what the gadget's meta carries
    att = GapANNToAAttC().forward(_gap_ann_instance())
    p = att.meta["lemma47"]
    assert measure(att) == {"n_q": 5, "n_k": 4, "d": 12, "d_v": 1, "B": float(att.B), "log_eps_a": p["log_eps_a"],
                            "beta": p["beta"], "log_t_tilde": p["log_t_tilde"]}
    att = MaxIPToAttention().forward(mx)
    assert measure(att) == {"n_q": 2, "n_k": 2, "d": 3, "d_v": 1, "B": float(att.B), "log_eps_a": math.log(0.25),
                            "lambda": att.meta["lambda"]}
    plain = AAttCInstance(np.zeros((1, 2)), np.zeros((3, 2)), np.zeros((3, 4)), B=1.0, log_eps_a=-2.0, scale=0.5)
    assert measure(plain) == {"n_q": 1, "n_k": 3, "d": 2, "d_v": 4, "B": 1.0, "log_eps_a": -2.0}
    with pytest.raises(ParameterError) as err:
        measure([1, 2])
    assert str(err.value) == "no size names for list"


def test_symbol_is_one_object_per_name_real_for_logarithms_positive_otherwise(monkeypatch):
    import reductions.sizes as sizes
    from reductions.sizes import symbol

    # the module builds its symbols at import; start from an empty table so that this test builds them
    monkeypatch.setattr(sizes, "_SYMBOLS", {})
    for name in ("log_eps_a", "log_t_tilde", "delta"):
        s = symbol(name)
        assert s is symbol(name) and s.name == name
        assert s.is_real and s.is_positive is None
    for name in ("N", "n_a", "beta", "t"):
        s = symbol(name)
        assert s is symbol(name) and s.name == name and s.is_positive
    assert sorted(sizes._SYMBOLS) == sorted(["log_eps_a", "log_t_tilde", "delta", "N", "n_a", "beta", "t"])


def test_size_mismatches_lines():
    import sympy

    from reductions.sizes import size_mismatches, symbol

    class Declares:
        def __init__(self, sizes):
            self.sizes = sizes

    ov = OVInstance([[1, 0, 1]] * 2, [[0, 1, 1]] * 5)
    gap = OVToGapANN().forward(ov)
    n_a, n_b, d = symbol("n_a"), symbol("n_b"), symbol("d")
    assert size_mismatches(Declares({}), ov, gap) == []
    assert size_mismatches(Declares({"n_a": n_a, "n_b": n_b, "d": 6 * d}), ov, gap) == []
    assert size_mismatches(Declares({"n_a": n_a + 1e-12}), ov, gap) == []  # within rel_tol = 1e-9
    lines = size_mismatches(Declares({"d": 5 * d, "n_b": n_b, "q": n_a, "n_a": sympy.log(d - 3)}), ov, gap)
    assert lines == [
        "declared size n_a = log(d - 3) cannot be evaluated: math domain error",
        "declared size d = 5*d = 15, measured 18",
        "declared size q is not measured on a GapANNInstance",
    ]
    assert size_mismatches(Declares({"d": 5 * d}), ov, gap, rel_tol=0.25) == []
    # sizes near 0 are compared with an absolute tolerance of rel_tol too
    from instances.cnf import CNFFormula

    no_clauses = CNFFormula([], num_vars=2)  # its OV vectors have dimension m = 0
    m = symbol("m")
    assert size_mismatches(Declares({"d": m + 1e-12}), no_clauses, SatToOV().forward(no_clauses)) == []
    assert size_mismatches(Declares({"d": m + 1e-8}), no_clauses, SatToOV().forward(no_clauses)) == [
        "declared size d = m + 1.0e-8 = 1e-08, measured 0"]
    # an unmeasured name does not stop the names after it (in sorted order) from being compared
    assert size_mismatches(Declares({"d": 5 * d, "a_q": n_a}), ov, gap) == [
        "declared size a_q is not measured on a GapANNInstance",
        "declared size d = 5*d = 15, measured 18",
    ]


# --- the constructors' option rules ---------------------------------------------------------------------------


def test_gap_ann_to_aattc_constructor_keeps_and_refuses_options_with_whole_messages():
    r = GapANNToAAttC()
    assert (r.mode, r.safety, r.beta, r.check) == ("tight", None, None, True)
    r = GapANNToAAttC("paper", None, 3.5, 0)
    assert (r.mode, r.safety, r.beta, r.check) == ("paper", None, 3.5, False) and r.check is False
    assert GapANNToAAttC(check="yes").check is True
    for ok in (1, 1.0, 1.5):  # the boundary safety = 1 is accepted
        assert GapANNToAAttC(safety=ok).safety == ok
    assert GapANNToAAttC(beta=1e-300).beta == 1e-300
    cases = [
        (dict(mode="fast"), "unknown parameter mode 'fast'; expected one of tight, paper"),
        (dict(mode="paper", safety=2.0), "paper mode takes no safety factor (got safety=2.0): its beta is fixed by "
                                         "Eqs. (7)-(9); use mode='tight' to scale beta_min"),
    ]
    for bad in (0.999, 0.0, -2.0, math.inf, math.nan, True, "2"):
        cases.append((dict(safety=bad), f"the safety factor must be a finite number >= 1, got {bad!r}"))
    for bad in (0.0, -1.0, math.inf, math.nan, True, "3"):
        cases.append((dict(beta=bad), f"beta must be positive and finite, got {bad!r}"))
    for kwargs, message in cases:
        with pytest.raises(ParameterError) as err:
            GapANNToAAttC(**kwargs)
        assert str(err.value) == message, kwargs


def test_gadget_reductions_keep_their_factor():
    from reductions.ov_to_attention import OVToAttention

    for cls in (MaxIPToAttention, OVToAttention):
        assert cls().factor == 8.0 and type(cls().factor) is float
        assert cls(5.0).factor == 5.0 and cls(factor=3.5).factor == 3.5
        for bad in (3.0, 2.0, -1.0):
            with pytest.raises(ParameterError) as err:
                cls(bad)
            assert str(err.value) == (
                "the gadget factor c of lambda = 2 ln(c n) must exceed 3 (NO rows then stay below 1/(c+1) < 1/4, "
                f"leaving room for eps_a = 1/4), got {bad}")


def test_expect_returns_its_value_or_names_every_accepted_type():
    from reductions.base import expect

    ov = OVInstance([[1]], [[0]])
    assert expect(ov, OVInstance, "x") is ov
    assert expect(ov, (MaxIPInstance, OVInstance), "x") is ov
    with pytest.raises(ReductionError) as err:
        expect(1.5, (OVInstance, MaxIPInstance), "the input")
    assert str(err.value) == "the input must be a OVInstance or MaxIPInstance, got float"
    with pytest.raises(ReductionError) as err:
        expect(None, LogArray, "the output")
    assert str(err.value) == "the output must be a LogArray, got NoneType"
