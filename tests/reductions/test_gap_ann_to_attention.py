"""Lemma 4.7: blocks of A, parameter derivation in both modes, the threshold test and Karp-style round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instances.errors import ParameterError, ReductionError
from instances.gap_ann import NO, YES, GapANNInstance, hamming_distances
from instances.logspace import LogArray, log_add
from instances.solutions import CertifiedOutput, GapANNAnswer
from reductions import check_reduction
from reductions.gap_ann_to_attention import GapANNToAAttC, Lemma47Parameters, lemma47_parameters, threshold_test


def balanced(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    X = np.zeros((n, d), dtype=np.uint8)
    for i in range(n):
        X[i, rng.permutation(d)[: d // 2]] = 1
    return X


def _balanced_rows(d: int, n: int):
    """n balanced rows of dimension d drawn as the sets of their d/2 one-positions (so hypothesis shrinks them)."""
    row = st.permutations(range(d)).map(lambda p: np.isin(np.arange(d), p[: d // 2]).astype(np.uint8))
    return st.lists(row, min_size=n, max_size=n).map(np.array)


@st.composite
def gap_instances(draw):
    d = 2 * draw(st.integers(1, 8))
    A = draw(_balanced_rows(d, draw(st.integers(1, 7))))
    B = draw(_balanced_rows(d, draw(st.integers(1, 7))))
    t = draw(st.integers(1, d)) - draw(st.sampled_from([0.0, 0.5]))
    eps = draw(st.floats(0.05, 2.0))
    return GapANNInstance(A, B, t=t, eps=eps)


def test_blocks_of_A_follow_from_Q_and_K():
    rng = np.random.default_rng(0)
    d, n_a, n = 8, 3, 4
    g = GapANNInstance(balanced(rng, n_a, d), balanced(rng, n, d), t=3.0, eps=0.5)
    inst = GapANNToAAttC().forward(g)
    beta = inst.meta["lemma47"]["beta"]
    S = inst.scale * (inst.Q @ inst.K.T)  # log A
    H = hamming_distances(g.A, g.B)
    assert np.allclose(S[:n_a, :n], 0.25 * beta * (1 - H / d))
    assert np.allclose(S[:, n:], beta / 2)  # the tau blocks: log tau = beta / 2, not beta
    assert np.allclose(S[n_a:, :n], 0.0)  # bottom-left: exp(0) = 1, not 0
    assert inst.scale == 1 / (2 * d) and inst.entries_bounded()
    assert inst.n_q == n_a + n and inst.n_k == 2 * n


@pytest.mark.parametrize("mode", ["tight", "paper"])
def test_karp_property(mode, generators):
    # in-promise rows decided correctly from the exact attention output; rows outside the promise are free
    cx = check_reduction(GapANNToAAttC(mode=mode), generators["Gap-ANN"], trials=150, seed=11)
    assert cx is None, str(cx)


def test_reduce_derives_once_and_extracts_with_margins(generators):
    g = generators["Gap-ANN"](np.random.default_rng(5))
    red = GapANNToAAttC().reduce(g)
    assert isinstance(red.parameters, Lemma47Parameters)
    answer = red.extract(red.target.brute_force_solve())
    assert isinstance(answer, GapANNAnswer) and answer.margin.shape == (g.n_a,) and answer.certified
    assert np.array_equal(answer.yes, red.reduction.backward(g, red.target.brute_force_solve()).yes)


@pytest.mark.parametrize("mode", ["tight", "paper"])
@settings(max_examples=80, deadline=None)
@given(g=gap_instances())
def test_proof_bounds_and_worst_perturbation(mode, g):
    r = GapANNToAAttC(mode=mode)
    assert check_reduction(r, lambda _rng: g, trials=1) is None
    inst = r.forward(g)
    exact = inst.brute_force_solve()
    status = g.row_status()
    promise = status != -1
    # the proof's per-row bounds hold for the exact values
    p = r.derive(g)
    u = exact[: g.n_a, 0]
    dist = g.min_distances()
    yes, no = status == YES, status == NO
    assert (u.log_abs[yes] > p.case_2a_log_lower(dist[yes]) - 1e-9).all()
    assert (u.log_abs[no] < p.case_2b_log_upper(dist[no]) + 1e-9).all()
    # ... and the answer survives the worst perturbation an eps_a-accurate oracle may make
    direction = np.where(yes, -1, 1)
    worst = u.add_scalar_error(p.log_eps_a, direction)
    worst_yes, _ = threshold_test(p, worst)
    assert np.array_equal(worst_yes[promise], yes[promise])


def test_paper_constants():
    n, d, t, eps = 1024, 510, 171.0, 3 / 171
    p = lemma47_parameters(n, n, d, t, eps, mode="paper")
    # beta = C_b^2 log n = 40 d log n / (eps t), and Eq. (13): beta eps t / (4d) = 10 log n
    assert math.isclose(p.beta, 40 * d * math.log(n) / (eps * t))
    assert math.isclose(p.gap_exponent, 10 * math.log(n))
    c_b2 = p.beta / math.log(n)
    assert math.isclose(p.log_eps_a, -(2 + c_b2 * (1 + t / d)) * math.log(n))
    assert p.accuracy_condition_holds and p.gap_condition_holds
    assert math.isclose(p.B, math.sqrt(p.beta))


def test_tight_constants():
    p = lemma47_parameters(8, 8, 12, 5.0, 0.6)
    assert math.isclose(p.beta_min, 4 * 12 * math.log(48) / (0.6 * 5))
    assert math.isclose(p.beta, 1.25 * p.beta_min) and math.isclose(p.log_eps_a, p.log_t_tilde)
    # safety = 1 sits on the boundary; rounding must never push beta below beta_min
    for n in range(1, 200):
        q = lemma47_parameters(n, n, 30, 11.0, 3 / 11, safety=1.0)
        assert q.gap_condition_holds and q.beta >= q.beta_min
    assert math.isclose(p.log_tau, p.beta / 2)
    assert math.isclose(p.log_t_tilde, 0.25 * p.beta * (1 - 5 / 12) - math.log(48) - p.beta / 2)


def test_n_equal_one_does_not_degenerate_in_paper_mode():
    p = lemma47_parameters(1, 1, 6, 3.0, 1 / 3, mode="paper")
    assert p.beta > 0 and p.gap_condition_holds


def test_parameter_errors():
    # options: ParameterError
    with pytest.raises(ParameterError, match="below beta_min"):
        lemma47_parameters(8, 8, 12, 5.0, 0.6, beta=1.0)
    assert not lemma47_parameters(8, 8, 12, 5.0, 0.6, beta=1.0, check=False).gap_condition_holds
    with pytest.raises(ParameterError, match="safety"):
        lemma47_parameters(8, 8, 12, 5.0, 0.6, safety=0.5)
    with pytest.raises(ParameterError, match="unknown parameter mode"):
        GapANNToAAttC(mode="loose")
    with pytest.raises(ParameterError, match="too large for float64"):
        lemma47_parameters(8, 8, 12, 5.0, 0.6, beta=1e300)
    # the instance: ReductionError
    with pytest.raises(ReductionError, match="even positive dimension"):
        lemma47_parameters(8, 8, 7, 5.0, 0.6)
    with pytest.raises(ReductionError, match="t > 0"):
        lemma47_parameters(8, 8, 12, 0.0, 0.6)
    with pytest.raises(ReductionError, match="outside the float64 range"):
        lemma47_parameters(8, 8, 12, 1e-300, 1e-300)
    with pytest.raises(ReductionError, match="too large for float64"):
        lemma47_parameters(8, 8, 12, 1e-6, 1e-6)  # derived beta ~ 1e14: the instance's fault, not an option's
    unbalanced = GapANNInstance(np.array([[1, 1]]), np.array([[1, 0]]), t=1.0, eps=1.0)
    with pytest.raises(ReductionError, match="balanced"):
        GapANNToAAttC().forward(unbalanced)
    with pytest.raises(ReductionError, match="GapANNInstance"):
        GapANNToAAttC().forward(np.eye(2))


def test_option_rules_live_in_the_constructor():
    with pytest.raises(ParameterError, match="paper mode takes no safety factor"):
        GapANNToAAttC(mode="paper", safety=2.0)
    for bad in (0.5, math.inf, math.nan, "2", True):
        with pytest.raises(ParameterError, match="safety factor"):
            GapANNToAAttC(safety=bad)
    for bad in (0.0, -1.0, math.inf, "1"):
        with pytest.raises(ParameterError, match="beta must be positive"):
            GapANNToAAttC(beta=bad)
    assert GapANNToAAttC(mode="paper").safety is None and GapANNToAAttC(safety=np.float64(2.0)).safety == 2.0


def test_extract_rejects_bad_target_solutions():
    rng = np.random.default_rng(2)
    g = GapANNInstance(balanced(rng, 3, 8), balanced(rng, 4, 8), t=3.0, eps=0.5)
    red = GapANNToAAttC().reduce(g)
    with pytest.raises(ReductionError, match="LogArray or CertifiedOutput"):
        red.extract(np.ones((7, 1)))
    with pytest.raises(ReductionError, match="expected at least 3 rows"):
        red.extract(LogArray.from_float(np.ones((2, 1))))
    with pytest.raises(ReductionError, match="expected at least 3 rows"):
        GapANNToAAttC().backward(g, CertifiedOutput(LogArray.from_float(np.ones(3))))


def test_below_threshold_beta_can_decide_wrongly():
    # the gap condition is not decoration: with a tiny beta a NO row is decoded as YES
    rng = np.random.default_rng(1)
    d = 12
    A = balanced(rng, 1, d)
    B = np.vstack([1 - A] * 30)  # every b at distance d from a_1: a NO row for t = 2
    g = GapANNInstance(A, B, t=2.0, eps=1.0)
    r = GapANNToAAttC(beta=0.5, check=False)
    yes = r.backward(g, r.forward(g).brute_force_solve()).yes
    assert g.row_status()[0] == NO and yes[0]


def test_threshold_test_in_log_space():
    p = lemma47_parameters(4, 4, 12, 5.0, 0.6, mode="paper")
    u = LogArray(np.array([1, 1, -1, 0], dtype=np.int8),
                 np.array([p.log_threshold + 1e-9, p.log_threshold - 1e-9, p.log_threshold + 5, -np.inf]))
    yes, margin = threshold_test(p, u)
    assert yes.tolist() == [True, False, False, False]
    assert margin[0] > 0 > margin[1]
    shifted = log_add(u, LogArray(np.zeros(4, dtype=np.int8), np.full(4, -np.inf)))
    assert np.array_equal(threshold_test(p, shifted)[0], yes)
