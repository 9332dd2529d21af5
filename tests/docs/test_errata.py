"""Numerical checks of the items of docs/errata.md, one test per item where it makes a claim."""

from __future__ import annotations

import math

import numpy as np

from instances.gap_ann import GapANNInstance
from reductions.gap_ann_to_attention import GapANNToAAttC, lemma47_parameters


def _instance(n_a=5, n=6, d=10, seed=0):
    rng = np.random.default_rng(seed)

    def bal(k):
        X = np.zeros((k, d), dtype=np.uint8)
        for i in range(k):
            X[i, rng.permutation(d)[: d // 2]] = 1
        return X

    return GapANNInstance(bal(n_a), bal(n), t=3.0, eps=1.0)


def test_e1_e9_shapes():
    g = _instance()
    inst = GapANNToAAttC().forward(g)
    assert inst.Q.shape == (5 + 6, 20) and inst.K.shape == (12, 20)


def test_e2_e3_blocks_and_row_sums():
    g = _instance()
    r = GapANNToAAttC()
    inst, p = r.forward(g), r.derive(g)
    S = inst.scale * inst.Q @ inst.K.T
    assert np.allclose(S[:, 6:], p.beta / 2) and np.allclose(S[5:, :6], 0.0)
    # with the corrected tau every log row sum lies strictly in (log n tau, log 2 n tau)
    top = S.max(axis=1, keepdims=True)
    log_d = top[:, 0] + np.log(np.exp(S - top).sum(axis=1))
    assert (log_d > math.log(6) + p.log_tau).all() and (log_d < math.log(12) + p.log_tau).all()
    # the paper's tau = e^beta would violate the lower bound n tau <= D
    assert (log_d < math.log(6) + p.beta).all()


def test_e4_t_tilde_formula_and_accuracy():
    p = lemma47_parameters(64, 64, 30, 11.0, 3 / 11, mode="paper")
    assert math.isclose(p.log_t_tilde, -math.log(6 * 64) - 0.25 * p.beta * (1 + 11 / 30))
    assert p.log_eps_a <= p.log_t_tilde


def test_e5_gap_condition_is_6n_and_paper_meets_it():
    for n in (1, 2, 3, 10, 1000):
        p = lemma47_parameters(n, n, 30, 11.0, 3 / 11, mode="paper")
        assert p.gap_exponent >= math.log(6 * n)
        assert math.isclose(p.beta_min * (3 / 11) * 11.0 / (4 * 30), math.log(6 * n))


def test_e8_n_one_paper_mode_uses_log_two():
    p = lemma47_parameters(1, 1, 30, 11.0, 3 / 11, mode="paper")
    assert math.isclose(p.gap_exponent, 10 * math.log(2))


def test_e4_paper_step_needs_only_n_at_least_2():
    # (1/6) n^{-1 - 0.75 Cb^2 - 0.25 Cb^2 C0/C} >= n^{-Ca}  <=>  n^{1 + 0.25 Cb^2 + 0.75 Cb^2 C0/C} >= 6
    for n in (2, 3, 5):
        for d, t, eps in ((30, 11.0, 3 / 11), (12, 5.0, 0.6), (600, 201.0, 3 / 201)):
            c, c0 = d / math.log(n), t / math.log(n)
            cb2 = 40 * c / (c0 * eps)
            assert (1 + 0.25 * cb2 + 0.75 * cb2 * c0 / c) * math.log(n) >= math.log(6)


def test_e5_general_gap_condition_and_4n_for_half_t_tilde():
    from finegrained.validate import validate_gap_ann
    from instances.worst_case import worst_case_gap_ann

    g = worst_case_gap_ann(8, 20, 5.0, 0.2, yes_rows=1, no_rows=2)
    base = lemma47_parameters(g.n_a, g.n_b, g.dim, g.t, g.eps)
    # beta at which e^G = 4n exactly: G = beta eps t / (4d) = ln(4n)
    beta_4n = 4 * g.dim * math.log(4 * g.n_b) / (g.eps * g.t)
    assert beta_4n < base.beta_min  # 4n is a weaker condition than 6n
    for factor, right in ((1 + 1e-6, True), (1 - 1e-3, False)):
        p = lemma47_parameters(g.n_a, g.n_b, g.dim, g.t, g.eps, beta=beta_4n * factor, check=False)
        rep = validate_gap_ann(g, beta=beta_4n * factor, oracle="adversarial", log_eps_adv=p.log_t_tilde - math.log(2))
        assert rep.summary["all_correct"] is right
    # the paper's eps_a is at most t~/2
    for n in (2, 10, 1000):
        q = lemma47_parameters(n, n, 30, 11.0, 3 / 11, mode="paper")
        assert q.log_eps_a <= q.log_t_tilde - math.log(2)
        assert q.log_eps_needed == q.log_eps_a


def test_e10_case_2b_exponent_uses_d_tilde():
    g = _instance()
    r = GapANNToAAttC()
    inst, p = r.forward(g), r.derive(g)
    H = (g.A[:, None, :] != g.B[None, :, :]).sum(axis=2)
    inner = g.A.astype(float) @ g.B.T.astype(float)
    assert np.allclose(p.beta * inner / g.dim, 0.5 * p.beta * (1 - H / g.dim))  # the paper's "/d": twice
    assert np.allclose(p.beta * inner / (2 * g.dim), 0.25 * p.beta * (1 - H / g.dim))  # "/d~": as used
    S = inst.scale * inst.Q[: g.n_a] @ inst.K[: g.n_b].T
    assert np.allclose(S, 0.25 * p.beta * (1 - H / g.dim))


def test_e11_instance_free_c_a_is_smaller_and_still_below_t_tilde():
    for n in (2, 64, 4096):
        for d, t in ((30, 11.0), (30, 29.0), (600, 201.0)):
            eps = 3 / t
            p = lemma47_parameters(n, n, d, t, eps, mode="paper")
            c, c0 = d / math.log(n), t / math.log(n)
            cb2 = 40 * c / (c0 * eps)
            log_eps_fixed = -(2 + 2 * cb2) * math.log(n)
            assert log_eps_fixed <= p.log_eps_a <= p.log_t_tilde


def test_chain_b_against_sqrt_log_n_on_default_example():
    from finegrained import run_chain
    from instances import CNFFormula, example_path

    r = run_chain(CNFFormula.read(example_path("random3sat-n20")), cdcl=False)
    p = r.parameters
    assert round(p["B"], 1) == 86.1
    assert round(p["sqrt_ln_n"], 2) == 2.76 and round(p["B_over_sqrt_ln_n"], 1) == 31.2
    m = r.stages[0]["num_clauses"]
    assert math.isclose(p["beta_min"], 8 * m * math.log(6 * 1024))
