"""Contracts of the reductions that the Karp-property tests do not pin down (found by mutation testing).

Each test here kills mutants that survived ``mutmut run`` (docs/testing.md): exact error messages naming the bad
input, the boundaries of Lemma 4.7's parameter checks, every derived field, the split-and-list vectors against
their definition, and the threshold test at its boundary.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instances.cnf import CNFFormula
from instances.errors import FinegrainedError, ParameterError
from instances.gap_ann import GapANNInstance
from instances.logspace import LogArray
from instances.ov import OVInstance
from instances.solutions import GapANNAnswer, OrthogonalPair
from reductions import GapANNToAAttC, OVToGapANN, SatToOV, lemma47_parameters, threshold_test
from reductions.gap_ann_to_attention import MAX_BETA_D
from reductions.sat_to_ov import split_variables

#: Balanced, 4-dimensional: distances are 0, 2 or 4, so with t = 3 and (1 + eps) t = 3.9 every row is in the promise.
BAL = GapANNInstance([[1, 0, 1, 0], [0, 1, 0, 1]], [[1, 1, 0, 0], [1, 0, 1, 0]], t=3.0, eps=0.3)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: SatToOV().forward("x"), "the k-SAT -> OV input must be a CNFFormula, got str"),
        (lambda: SatToOV().backward(None, None), "the k-SAT instance must be a CNFFormula, got NoneType"),
        (lambda: SatToOV().backward(CNFFormula([[1]], num_vars=1), (0, 0)),
         "the OV solution must be a OrthogonalPair, got tuple"),
        (lambda: OVToGapANN().forward([[1]]), "the OV -> Gap-ANN input must be a OVInstance, got list"),
        (lambda: OVToGapANN().backward(None, None), "the OV instance must be a OVInstance, got NoneType"),
        (lambda: OVToGapANN().backward(OVInstance([[1]], [[0]]), [True]),
         "the Gap-ANN answer must be a GapANNAnswer, got list"),
        (lambda: GapANNToAAttC().derive(OVInstance([[1]], [[0]])),
         "the Gap-ANN -> AAttC input must be a GapANNInstance, got OVInstance"),
    ],
)
def test_a_wrong_input_type_is_one_error_naming_it(call, message):
    with pytest.raises(FinegrainedError) as info:
        call()
    assert str(info.value) == message


def test_sat_to_ov_backward_names_the_index_out_of_range():
    f = CNFFormula([[1, 2], [-4]], num_vars=6)  # halves {1, 2, 3} and {4, 5, 6}: indices 0..7 (2^3 - 1, not 2*3 - 1)
    with pytest.raises(FinegrainedError, match=r"^the OV solution's index i = 8 is outside 0\.\.7$"):
        SatToOV().backward(f, OrthogonalPair(8, 0))
    with pytest.raises(FinegrainedError, match=r"^the OV solution's index j = 9 is outside 0\.\.7$"):
        SatToOV().backward(f, OrthogonalPair(0, 9))
    with pytest.raises(FinegrainedError, match="its assignment leaves a clause unsatisfied$"):
        SatToOV().backward(f, OrthogonalPair(0, 0))  # x1 = x2 = 0 falsifies (x1 v x2)


def test_ov_to_gap_ann_backward_names_a_wrong_answer():
    ov = OVInstance([[1, 1]], [[1, 0], [0, 1]])  # no orthogonal pair
    with pytest.raises(FinegrainedError, match="but none of them has an orthogonal partner: the answer it was given "
                                               "is wrong$"):
        OVToGapANN().backward(ov, GapANNAnswer(np.array([True])))


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 6).flatmap(lambda n: st.tuples(st.just(n), st.lists(
    st.lists(st.integers(1, max(n, 1)).flatmap(lambda v: st.sampled_from([v, -v])), max_size=4), max_size=8))))
def test_split_and_list_vectors_are_their_definition(spec):
    """a_alpha[c] = 1 iff alpha (bit k = value of the k-th variable of the half) satisfies no literal of clause c."""
    n, clauses = spec
    if n == 0:
        clauses = [c for c in clauses if not c]
    f = CNFFormula(clauses, num_vars=n)
    ov = SatToOV().forward(f)
    for X, half in ((ov.A, split_variables(n)[0]), (ov.B, split_variables(n)[1])):
        assert X.dtype == np.uint8 and X.shape == (2 ** half.size, len(clauses))
        for alpha in range(2 ** half.size):
            value = {int(v): (alpha >> k) & 1 for k, v in enumerate(half)}
            want = [int(not any(abs(x) in value and value[abs(x)] == (x > 0) for x in cl)) for cl in clauses]
            assert X[alpha].tolist() == want


def test_gadget_vectors_of_an_empty_dimension_are_zero_columns():
    g = OVToGapANN().forward(OVInstance(np.zeros((2, 0)), np.zeros((3, 0))))
    assert g.A.dtype == np.uint8 and g.A.shape == (2, 6) and g.B.shape == (3, 6)
    assert g.A.tolist() == [[1, 0, 0, 0, 1, 1]] * 2 and g.B.tolist() == [[1, 1, 0, 0, 0, 1]] * 3


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((1, 0, 4, 2.0, 0.5), {}, "need at least one key vector and n_a >= 0, got n_a=1, n=0"),
        ((-1, 3, 4, 2.0, 0.5), {}, "got n_a=-1, n=3"),
        ((1, 1, 0, 2.0, 0.5), {}, "even positive dimension, got d=0"),
        ((1, 1, 3, 2.0, 0.5), {}, "even positive dimension, got d=3"),
        ((1, 1, 4, 2.0, 0.0), {}, "t > 0 and eps > 0, got t=2.0, eps=0.0"),
        ((1, 1, 4, 0.0, 0.5), {}, "t > 0 and eps > 0"),
        ((1, 1, 4, 2.0, 0.5), {"beta": 0.0}, "beta must be positive and finite, got 0.0"),
        ((1, 1, 4, 2.0, 0.5), {"beta": -1.0}, "beta must be positive and finite"),
        ((1, 1, 4, 2.0, 0.5), {"beta": math.inf}, "beta must be positive and finite"),
        ((1, 1, 4, 2.0, 0.5), {"mode": "loose"}, "unknown parameter mode 'loose'; expected one of tight, paper"),
    ],
)
def test_lemma47_parameters_refuses_bad_inputs_with_one_clear_message(args, kwargs, match):
    with pytest.raises(FinegrainedError) as info:
        lemma47_parameters(*args, **kwargs)
    assert match in str(info.value)


def test_lemma47_parameters_accepts_its_boundaries():
    assert lemma47_parameters(0, 1, 2, 1.0, 1.0).n_a == 0  # no queries is a valid (empty) instance
    tiny = lemma47_parameters(1, 1, 2, 2.0, 100.0)  # beta_min = 8 ln 6 / 200 < 1 is still positive
    assert tiny.beta_min == pytest.approx(8 * math.log(6) / 200) and tiny.beta_min < 1
    edge = lemma47_parameters(1, 1, 2, 1.0, 1.0, beta=MAX_BETA_D / 4, check=False)  # beta d~ = MAX_BETA_D exactly
    assert edge.beta * edge.d_tilde == MAX_BETA_D
    with pytest.raises(ParameterError, match=r"near beta \* d~ \* 1e-16 = 0\.002 nats"):
        lemma47_parameters(1, 1, 2, 1.0, 1.0, beta=MAX_BETA_D / 2, check=False)  # 5e12 * 4 * 1e-16 = 2e-3
    with pytest.raises(ParameterError, match="so NO rows could pass the threshold test$"):
        lemma47_parameters(4, 4, 12, 5.0, 0.6, beta=10.0)
    paper2 = lemma47_parameters(2, 2, 12, 5.0, 0.6, mode="paper")  # log n = log max(n, 2) = log 2 at n = 2
    assert paper2.beta == pytest.approx(40 * 12 * math.log(2) / 3.0, rel=1e-12)


def test_every_derived_field_is_its_formula():
    n_a, n, d, t, eps = 3, 5, 8, 3.0, 0.5
    p = lemma47_parameters(n_a, n, d, t, eps, safety=1.5)
    beta_min = 4 * d * math.log(6 * n) / (eps * t)
    assert (p.mode, p.n_a, p.n, p.d, p.t, p.eps, p.d_tilde) == ("tight", 3, 5, 8, 3.0, 0.5, 16)
    assert isinstance(p.t, float) and isinstance(p.n_a, int)
    assert p.beta_min == pytest.approx(beta_min, rel=1e-12) and p.safety == pytest.approx(1.5, rel=1e-9)
    assert p.beta == pytest.approx(1.5 * beta_min, rel=1e-9) and p.B == pytest.approx(math.sqrt(p.beta))
    assert p.log_tau == p.beta / 2
    log_tt = p.beta / 4 * (1 - t / d) - math.log(6 * n) - p.beta / 2
    assert p.log_t_tilde == pytest.approx(log_tt, rel=1e-12) and p.log_eps_a == p.log_t_tilde
    assert p.log_threshold == pytest.approx(math.log(2) + log_tt, rel=1e-12)
    assert p.gap_exponent == pytest.approx(p.beta * eps * t / (4 * d)) and p.log_6n == pytest.approx(math.log(30))
    # the proof's per-row bounds at distance H
    h = np.array([0.0, 2.0, 5.0])
    assert np.allclose(p.case_2a_log_lower(h), p.beta / 4 * (1 - h / d) - math.log(2 * n) - p.log_tau, rtol=1e-12)
    assert np.allclose(p.case_2b_log_upper(h), p.beta / 4 * (1 - h / d) - p.log_tau, rtol=1e-12)
    assert p.case_2a_log_lower(3).shape == ()


def test_reduction_object_passes_its_settings_through():
    r = GapANNToAAttC(safety=2.0)
    p = r.derive(BAL)
    assert p.safety == pytest.approx(2.0, rel=1e-9) and r.parameters(BAL) == p.as_dict()
    assert GapANNToAAttC(safety=1.0).derive(BAL).safety == pytest.approx(1.0, rel=1e-9)
    assert GapANNToAAttC(safety=1.5).derive(BAL).safety == pytest.approx(1.5, rel=1e-9)
    assert GapANNToAAttC(mode="paper").derive(BAL).mode == "paper"
    assert GapANNToAAttC().check is True
    with pytest.raises(ParameterError, match="below beta_min"):
        GapANNToAAttC(beta=1.0).derive(BAL)  # check=True by default
    assert GapANNToAAttC(beta=1.0, check=False).derive(BAL).beta == 1.0
    with pytest.raises(ParameterError, match="paper mode takes no safety factor"):
        GapANNToAAttC(mode="paper", safety=2.0)


def test_forward_builds_the_lemmas_matrices():
    r = GapANNToAAttC()
    p = r.derive(BAL)
    inst = r.forward(BAL)
    n_a, n, d = BAL.n_a, BAL.n_b, BAL.dim
    assert inst.Q.shape == (n_a + n, 2 * d) and inst.K.shape == (2 * n, 2 * d) and inst.V.shape == (2 * n, 1)
    assert inst.V[:, 0].tolist() == [1.0] * n + [0.0] * n
    assert inst.log_eps_a == p.log_eps_a and inst.scale == 1 / (2 * d) and inst.B == math.sqrt(p.beta)
    with pytest.raises(FinegrainedError, match=r"^Lemma 4.7 needs balanced vectors \(exactly d/2 ones each, Remark "
                                               r"4.4\); apply instances.gap_ann.balance to A and B first$"):
        r.forward(GapANNInstance([[1, 1, 1, 0]], [[1, 1, 0, 0]], t=1.0, eps=1.0))


def test_threshold_test_at_its_boundary_and_on_negative_outputs():
    p = lemma47_parameters(*BAL.A.shape[:1], BAL.n_b, BAL.dim, BAL.t, BAL.eps)
    thr = p.log_threshold
    u = LogArray(np.array([1, 1, -1, 0], dtype=np.int8), np.array([thr, np.nextafter(thr, -np.inf), thr + 50, -np.inf]))
    yes, margin = threshold_test(p, u)
    assert yes.tolist() == [True, False, False, False]  # u = 2t~ exactly is YES; a negative u is never YES
    assert margin[0] == 0 and np.isneginf(margin[2]) and np.isneginf(margin[3])


def test_backward_accepts_exactly_n_a_rows_and_refuses_fewer():
    r = GapANNToAAttC()
    exact = r.forward(BAL).brute_force_solve()
    answer = r.backward(BAL, exact[: BAL.n_a])
    assert isinstance(answer, GapANNAnswer) and answer.yes.tolist() == (BAL.min_distances() < BAL.t).tolist()
    with pytest.raises(FinegrainedError, match="expected at least 2 rows"):
        r.backward(BAL, exact[:1])


def test_gap_instances_of_every_small_shape_round_trip():
    """Every balanced 4-dimensional A, B of one or two rows: forward, exact output, backward = brute force."""
    rows = [r for r in itertools.product([0, 1], repeat=4) if sum(r) == 2]
    r = GapANNToAAttC()
    for a, b in itertools.product(rows, repeat=2):
        g = GapANNInstance([a], [b], t=3.0, eps=0.3)
        got = r.backward(g, r.forward(g).brute_force_solve())
        assert got.yes.tolist() == (g.min_distances() < 3.0).tolist()


def test_every_refusal_of_the_lemma_4_7_reduction_is_its_whole_message():
    """Whole-message matches: a message wrapped, emptied or re-cased by a mutation fails them."""
    cases = [
        (lambda: GapANNToAAttC(mode="loose"), ParameterError,
         "unknown parameter mode 'loose'; expected one of tight, paper"),
        (lambda: GapANNToAAttC(mode="paper", safety=2.0), ParameterError,
         "paper mode takes no safety factor (got safety=2.0): its beta is fixed by Eqs. (7)-(9); use mode='tight' "
         "to scale beta_min"),
        (lambda: GapANNToAAttC(safety=0.5), ParameterError, "the safety factor must be a finite number >= 1, got 0.5"),
        (lambda: GapANNToAAttC().backward(BAL, np.zeros((BAL.n_a, 1))), FinegrainedError,
         "Lemma 4.7's backward map needs the attention output as a LogArray or CertifiedOutput, got ndarray"),
        (lambda: LogArray(np.array([0], dtype=np.int8), np.array([0.0])), FinegrainedError,
         "log-space array is inconsistent: sign 0 must pair with log|x| = -inf"),
        (lambda: LogArray(np.array([1], dtype=np.int8), np.array([-math.inf])), FinegrainedError,
         "log-space array is inconsistent: sign 0 must pair with log|x| = -inf"),
    ]
    for call, error, message in cases:
        with pytest.raises(error) as info:
            call()
        assert str(info.value) == message


# --- wave 2 of the mutation triage (issue 18, item 6): every input is built inside its test ---------------------


def test_case_bounds_compute_in_float64_whatever_the_distances_dtype():
    """The per-row bounds convert the distances to float64 first: float32 distances give the float64 value."""
    p = lemma47_parameters(3, 5, 14, 3.0, 0.5)
    h32 = np.array([1.0, 3.0, 6.0], dtype=np.float32)  # exact in float32; h / 14 is not
    h = h32.astype(np.float64)
    lower, upper = p.case_2a_log_lower(h32), p.case_2b_log_upper(h32)
    assert lower.dtype == np.float64 and upper.dtype == np.float64
    np.testing.assert_array_equal(lower, 0.25 * p.beta * (1 - h / 14) - math.log(10) - p.log_tau)
    np.testing.assert_array_equal(upper, 0.25 * p.beta * (1 - h / 14) - p.log_tau)


def test_chain_forward_is_the_last_instance_of_its_trace():
    """``Chain.forward`` returns the last problem's instance, not an intermediate one (two steps: k-SAT -> Gap-ANN)."""
    from reductions import path

    f = CNFFormula([[1, -2], [2, 3], [-1, -3]], num_vars=3)
    chain = path("k-SAT", "Gap-ANN")
    out = chain.forward(f)
    assert isinstance(out, GapANNInstance)
    expected = OVToGapANN().forward(SatToOV().forward(f))
    np.testing.assert_array_equal(out.A, expected.A)
    np.testing.assert_array_equal(out.B, expected.B)
    assert (out.t, out.eps) == (expected.t, expected.eps)


def test_a_running_time_with_an_infinite_exponent_is_refused_by_name():
    """``T(n) = 0`` passes the shape check but its exponent is zoo (k-SAT) or a limit sympy cannot take (OV)."""
    from reductions import path
    from reductions.sizes import implies

    tail = "not a finite expression in delta: give T(n) as n^a times factors polylogarithmic in n and polynomial in d"
    with pytest.raises(ParameterError) as info:
        implies(path("k-SAT", "AAttC").steps, "0")
    assert str(info.value) == f"the exponent of T(n) = 0 along this path is zoo, {tail}"
    with pytest.raises(ParameterError) as info:
        implies(path("OV", "AAttC").steps, "0")
    limit = "Limit(zoo/log(n_a), n_a, oo, dir='-')"
    assert str(info.value) == f"the exponent of T(n) = 0 along this path is {limit}, {tail}"
