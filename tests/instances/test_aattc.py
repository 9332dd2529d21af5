"""AAttC instances: the entry bound check of entries_bounded."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from instances.aattc import AAttCInstance
from instances.errors import NumericalError, ParameterError


def _inst(Q, K, V, B):
    return AAttCInstance(np.asarray(Q, float), np.asarray(K, float), np.asarray(V, float), B=B, log_eps_a=0.0,
                         scale=1.0)


def test_entries_bounded_is_tight_up_to_rounding():
    assert _inst([[0.5, -2.0]], [[1.0, 2.0]], [[-2.0]], 2.0).entries_bounded()  # max |entry| = B exactly
    assert _inst([[0.5, -2.0]], [[1.0, 2.0]], [[-2.0]], 2.0 / (1 + 1e-13)).entries_bounded()  # B rounded down
    assert not _inst([[0.5, -2.0]], [[1.0, 2.0]], [[-2.0]], 2.0 / (1 + 1e-9)).entries_bounded()
    assert not _inst([[0.1]], [[0.1]], [[3.0]], 2.0).entries_bounded()  # V alone too large (1.5 B)
    assert not _inst([[0.1]], [[-3.5]], [[0.1]], 2.0).entries_bounded()  # K alone too large


def test_entries_bounded_for_small_bounds_and_empty_matrices():
    assert _inst([[0.1]], [[0.2]], [[-0.3]], 0.5).entries_bounded()  # the empty max starts at 0, not 1
    assert _inst([[0.0]], [[0.0]], [[0.0]], 0.0).entries_bounded()  # all-zero entries meet B = 0
    assert _inst(np.zeros((0, 2)), np.zeros((1, 2)), np.zeros((1, 1)), 0.0).entries_bounded()


def test_inputs_become_float64_and_bad_inputs_get_whole_messages():
    inst = AAttCInstance([[1, 2]], [[3, 4], [5, 6]], [[1, 0, 2], [0, 1, 3]], B=6, log_eps_a=-1.0, scale=0.5)
    assert all(m.dtype == np.float64 for m in (inst.Q, inst.K, inst.V))  # integer input is converted
    assert (inst.n_q, inst.n_k, inst.dim) == (1, 2, 2)  # d_v = 3 differs from n_k = 2: a valid shape
    cases = [
        (([1.0, 2.0], [[1.0, 2.0]], [[1.0]]), ParameterError, "Q must be 2-D, got shape (2,)"),
        (([[1.0]], [[np.nan]], [[1.0]]), NumericalError, "K contains NaN or infinite entries"),
        (([[1.0]], [[1.0]], [[np.inf]]), NumericalError, "V contains NaN or infinite entries"),
        (([[1.0, 2.0]], [[1.0]], [[1.0]]), ParameterError, "inconsistent shapes Q(1, 2), K(1, 1), V(1, 1)"),
        (([[1.0]], [[1.0]], [[1.0], [2.0]]), ParameterError, "inconsistent shapes Q(1, 1), K(1, 1), V(2, 1)"),
    ]
    for (Q, K, V), exc, message in cases:
        with pytest.raises(exc) as info:
            AAttCInstance(Q, K, V, B=1.0, log_eps_a=0.0, scale=1.0)
        assert str(info.value) == message


def _mp_attention(Q, K, V, scale):
    """D^{-1} exp(scale Q K^T) V at 60 digits."""
    out = []
    with mpmath.workdps(60):  # not mp.dps = 60: a global setting would leak into other tests
        for q in Q:
            w = [mpmath.exp(mpmath.mpf(scale) * mpmath.fsum(mpmath.mpf(a) * mpmath.mpf(b) for a, b in zip(q, k)))
                 for k in K]
            den = mpmath.fsum(w)
            out.append([mpmath.fsum(wj * mpmath.mpf(v[c]) for wj, v in zip(w, V)) / den for c in range(len(V[0]))])
    return out


def test_dense_reference_matches_60_digit_attention_with_signs_and_exact_zeros():
    rng = np.random.default_rng(11)
    Q, K = rng.normal(size=(4, 3)) * 3, rng.normal(size=(5, 3)) * 3
    V = rng.normal(size=(5, 4))
    V[:, 1] = 0.0  # an all-zero column: exact zeros out
    V[:, 2] = np.abs(V[:, 2])  # all positive
    V[:, 3] = -np.abs(V[:, 3])  # all negative
    inst = AAttCInstance(Q, K, V, B=10.0, log_eps_a=-30.0, scale=0.7)
    out = inst.brute_force_solve()
    want = _mp_attention(Q, K, V, 0.7)
    for i in range(4):
        for c in range(4):
            w = want[i][c]
            if w == 0:
                assert out.sign[i, c] == 0 and out.log_abs[i, c] == -np.inf
            else:
                assert out.sign[i, c] == (1 if w > 0 else -1)
                assert abs(out.log_abs[i, c] - float(mpmath.log(abs(w)))) < 1e-12
    assert out.sign[:, 1].tolist() == [0] * 4 and (out.sign[:, 2] == 1).all() and (out.sign[:, 3] == -1).all()


def test_dense_reference_survives_scores_beyond_exp_range_and_cancels_exactly():
    """Scores of +-1000 overflow exp in float64; the log-space reference is still exact. Equal keys with values
    +1 and -1 cancel to an exact zero."""
    inst = AAttCInstance([[1000.0], [-1000.0]], [[1.0], [0.0]], [[2.0, 1.0], [-3.0, -1.0]], B=1000.0,
                         log_eps_a=-50.0, scale=1.0)
    out = inst.brute_force_solve()
    want = _mp_attention([[1000.0], [-1000.0]], [[1.0], [0.0]], [[2.0, 1.0], [-3.0, -1.0]], 1.0)
    assert out.sign.tolist() == [[1, 1], [-1, -1]]
    for i in range(2):
        for c in range(2):
            assert abs(out.log_abs[i, c] - float(mpmath.log(abs(want[i][c])))) < 1e-12
    zero = AAttCInstance([[1.0]], [[2.0], [2.0]], [[1.0], [-1.0]], B=2.0, log_eps_a=-50.0, scale=1.0)
    z = zero.brute_force_solve()
    assert z.sign.tolist() == [[0]] and z.log_abs.tolist() == [[-np.inf]]


def test_dense_reference_refuses_too_many_scores_with_one_message():
    inst = AAttCInstance(np.zeros((4097, 0)), np.zeros((4097, 0)), np.zeros((4097, 1)), B=0.0, log_eps_a=0.0,
                         scale=1.0)
    with pytest.raises(ParameterError) as info:
        inst.brute_force_solve()
    assert str(info.value) == "dense AAttC solve limited to 16777216 scores, instance has 16785409"


def test_brute_force_refuses_an_instance_without_keys():
    # 0/0 has no value; exact refuses the same input
    inst = AAttCInstance(np.ones((2, 1)), np.zeros((0, 1)), np.zeros((0, 1)), B=1.0, log_eps_a=0.0, scale=1.0)
    with pytest.raises(ParameterError, match="attention needs at least one key; this instance has none"):
        inst.brute_force_solve()
