"""Lemma 4.7: blocks of A, parameter derivation in both modes, the threshold test and Karp-style round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instances.errors import ParameterError
from instances.gap_ann import NO, YES, GapANNInstance, hamming_distances
from instances.logspace import LogArray, log_add
from reductions.gap_ann_to_attention import GapANNToAAttC, lemma47_parameters, threshold_test


def balanced(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    X = np.zeros((n, d), dtype=np.uint8)
    for i in range(n):
        X[i, rng.permutation(d)[: d // 2]] = 1
    return X


@st.composite
def gap_instances(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    d = 2 * draw(st.integers(1, 8))
    A, B = balanced(rng, draw(st.integers(1, 7)), d), balanced(rng, draw(st.integers(1, 7)), d)
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
@settings(max_examples=80, deadline=None)
@given(g=gap_instances())
def test_karp_property(mode, g):
    r = GapANNToAAttC(mode=mode)
    inst = r.forward(g)
    exact = inst.brute_force_solve()
    answer = r.backward(g, exact).yes
    status = g.row_status()
    promise = status != -1
    assert np.array_equal(answer[promise], (status == YES)[promise])
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
    with pytest.raises(ParameterError, match="below beta_min"):
        lemma47_parameters(8, 8, 12, 5.0, 0.6, beta=1.0)
    assert not lemma47_parameters(8, 8, 12, 5.0, 0.6, beta=1.0, check=False).gap_condition_holds
    with pytest.raises(ParameterError, match="even positive dimension"):
        lemma47_parameters(8, 8, 7, 5.0, 0.6)
    with pytest.raises(ParameterError, match="safety"):
        lemma47_parameters(8, 8, 12, 5.0, 0.6, safety=0.5)
    with pytest.raises(ParameterError, match="unknown parameter mode"):
        GapANNToAAttC(mode="loose")
    with pytest.raises(ParameterError, match="t > 0"):
        lemma47_parameters(8, 8, 12, 0.0, 0.6)
    with pytest.raises(ParameterError, match="outside the float64 range"):
        lemma47_parameters(8, 8, 12, 1e-300, 1e-300)
    with pytest.raises(ParameterError, match="too large for float64"):
        lemma47_parameters(8, 8, 12, 5.0, 0.6, beta=1e300)
    unbalanced = GapANNInstance(np.array([[1, 1]]), np.array([[1, 0]]), t=1.0, eps=1.0)
    with pytest.raises(ParameterError, match="balanced"):
        GapANNToAAttC().forward(unbalanced)


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
