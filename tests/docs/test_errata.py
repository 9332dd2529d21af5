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
