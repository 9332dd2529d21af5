"""LevAttention against closed forms and definitions recomputed here: Lewis weights of rank-one matrices, ranks at
numpy's tolerance, the heavy-entry acceptance window, empty and degenerate shapes, whole error messages.

Every input is built inside its test (mutation testing ties a mutant to the tests that call the mutated code).
"""

from __future__ import annotations

import re
import tracemalloc
import warnings

import numpy as np
import pytest

from finegrained.attention.exact import exact
from finegrained.attention.lev import (
    _BLOCK_ROWS,
    _noise_level,
    _rank_tol,
    _row_space,
    dense_scores,
    heavy_entries,
    heavy_entries_with_values,
    lev_attention,
    lev_attention_with_keys,
    lev_oracle,
    leverage_scores,
    lewis_weights,
    numerical_rank,
    sensitivity_factor,
    streaming_universal_set,
    universal_set,
)
from finegrained.attention.protocol import UNCERTIFIED
from instances.errors import NumericalError, ParameterError

U64 = float(np.finfo(np.float64).eps)


def brute_A(Q: np.ndarray, K: np.ndarray, p: float) -> np.ndarray:
    S = np.abs(Q @ K.T) ** p
    z = S.sum(axis=1, keepdims=True)
    return np.divide(S, z, out=np.zeros_like(S), where=z > 0)


def pairs_of(A: np.ndarray, eps: float) -> list[list[int]]:
    return [[int(i), int(j)] for i, j in zip(*np.nonzero(A >= eps), strict=True)]


def with_singular_values(n: int, d: int, s: list[float], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    U = np.linalg.qr(rng.normal(size=(n, len(s))))[0]
    V = np.linalg.qr(rng.normal(size=(d, len(s))))[0]
    return (U * np.array(s)) @ V.T


# ----------------------------------------------------------------------------------- Lewis weights, ranks


@pytest.mark.parametrize("p", [0.5, 1.0, 1.5, 3.0, 4.0, 6.0])
def test_lewis_weights_of_a_rank_one_matrix_are_the_normalised_powers(p: float) -> None:
    """K = a v^T: the fixed point is w_j = |a_j|^p / sum_l |a_l|^p (zero rows get 0), also with n < d."""
    a = np.array([1.0, 2.0, -3.0, 0.0, 0.5])
    want = np.abs(a) ** p / np.sum(np.abs(a) ** p)
    for v in ([1.0, 2.0], [1.0, 2.0, 0.0, -1.0, 3.0, 0.5, 7.0]):  # n > d and n < d
        w = lewis_weights(np.outer(a, v), p)
        np.testing.assert_allclose(w, want, rtol=1e-8, atol=0)
        assert w[3] == 0.0
    # a single row in dimension 3: its weight is the rank, 1
    np.testing.assert_allclose(lewis_weights(np.array([[1.0, -2.0, 0.5]]), p), [1.0], rtol=1e-12)


def test_lewis_weights_of_degenerate_shapes() -> None:
    assert lewis_weights(np.zeros((0, 3)), 1.0).shape == (0,)
    assert lewis_weights(np.zeros((3, 0)), 1.0).tolist() == [0.0] * 3
    assert lewis_weights(np.zeros((4, 2)), 3.0).tolist() == [0.0] * 4
    # one nonzero row among zero rows in dimension 1
    assert lewis_weights(np.array([[0.0], [2.0], [0.0]]), 1.0).tolist() == [0.0, 1.0, 0.0]
    # a nonzero key whose leverage underflows to 0 (1e-200 squared) gets weight 0, not a NaN
    K = np.array([[1.0, 0.0], [0.0, 1.0], [1e-200, 0.0]])
    for p in (1.0, 3.0):
        w = lewis_weights(K, p)
        np.testing.assert_allclose(w, [1.0, 1.0, 0.0], rtol=1e-12, atol=0)
        assert w[2] == 0.0


def test_lewis_weights_non_convergence_message_reports_the_distance_bound() -> None:
    """p = 1.5: rate L = 1/4, distance bound L/(1-L) * step = step / 3 (Cohen-Peng contraction)."""
    K = np.random.default_rng(9).standard_t(2, size=(60, 3))
    with pytest.raises(NumericalError) as info:
        lewis_weights(K, 1.5, max_iter=3, tol=1e-14)
    m = re.fullmatch(r"Lewis weights for p=1\.5 did not converge in 3 iterations: last log-step (\S+), "
                     r"distance bound (\S+) > tol=1e-14", str(info.value))
    assert m, str(info.value)
    step, bound = float(m.group(1)), float(m.group(2))
    assert bound == pytest.approx(step / 3, rel=1e-2) and step > 1e-6


@pytest.mark.parametrize("p,alpha,L", [(1.5, 1.0, 1 / 4), (3.0, 1.0, 1 / 2), (4.0, 2 / 3, 1 / 3),
                                        (6.0, 1 / 2, 1 / 2), (10.0, 1 / 3, 2 / 3)])
def test_lewis_weights_first_step_and_distance_bound(p: float, alpha: float, L: float) -> None:
    """alpha = 1 (p < 4) or 4/(p+2), rate L = |p/2 - 1| or (p-2)/(p+2), distance bound L/(1-L) * step.

    The keys have rank 2 in dimension 3 (third column = first + second), so x0 = log tau uses only the two
    directions above numpy's matrix_rank tolerance. A one-step run reports the first step, recomputed here with
    numpy's SVD and pinv.
    """
    K = np.random.default_rng(19).standard_t(2, size=(60, 3))
    K[:, 2] = K[:, 0] + K[:, 1]
    with pytest.raises(NumericalError) as info:
        lewis_weights(K, p, max_iter=1, tol=1e-14)
    m = re.fullmatch(rf"Lewis weights for p={p} did not converge in 1 iterations: last log-step (\S+), "
                     r"distance bound (\S+) > tol=1e-14", str(info.value))
    step, bound = float(m.group(1)), float(m.group(2))
    assert bound == pytest.approx(L / (1 - L) * step, rel=1e-2)
    Kb = K / 2.0 ** np.frexp(np.abs(K).max(axis=0))[1]  # the power-of-two column balancing
    U = np.linalg.svd(Kb, full_matrices=False)[0][:, :np.linalg.matrix_rank(Kb)]
    assert U.shape[1] == 2
    tau = np.sum(U**2, axis=1)
    B = Kb * (tau ** (0.5 - 1 / p))[:, None]
    quad = np.einsum("ij,jk,ik->i", Kb, np.linalg.pinv(B.T @ B, rcond=1e-12), Kb)
    assert step == pytest.approx(float(np.max(np.abs(alpha * (0.5 * p * np.log(quad) - np.log(tau))))), rel=6e-3)


def test_lewis_weights_default_iteration_limit_is_1000() -> None:
    K = np.random.default_rng(23).normal(size=(20, 3))
    with pytest.raises(NumericalError, match=r"did not converge in 1000 iterations.*tol=1e-300$"):
        lewis_weights(K, 1.0, tol=1e-300)
    with pytest.raises(NumericalError, match=r"did not converge in 1000 iterations.*tol=1e-300$"):
        universal_set(K, 0.5, 1.0, tol=1e-300)


def test_lewis_weights_memory_is_linear_in_n() -> None:
    """One thin SVD: no n x n factor (4000 x 4000 floats would be 128 MB)."""
    K = np.random.default_rng(27).normal(size=(4000, 2))
    lewis_weights(K[:100], 1.0)  # warm LAPACK workspaces and lazy imports
    tracemalloc.start()
    try:
        lewis_weights(K, 1.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8_000_000


def test_streaming_lewis_of_zero_and_empty_streams() -> None:
    """Streams with no live key (all-zero keys, d = 0, empty chunks) have an empty universal set for every p."""
    for p in (1.0, 3.0, 2.0):
        assert streaming_universal_set([np.zeros((3, 2)), np.zeros((2, 2))], 0.5, p).tolist() == []
        assert streaming_universal_set([np.zeros((3, 0))], 0.5, p).tolist() == []
        assert streaming_universal_set([np.zeros((0, 2))], 0.5, p).tolist() == []
        assert universal_set(np.zeros((3, 0)), 0.5, p).tolist() == []
        assert universal_set(np.zeros((3, 2)), 0.5, p).tolist() == []
    # one live key among zero chunks: it is the whole universal set
    K = [np.zeros((2, 2)), np.array([[0.0, 3.0]]), np.zeros((1, 2))]
    for p in (1.0, 3.0):
        assert streaming_universal_set(K, 1.0, p).tolist() == [2]


@pytest.mark.parametrize("p", [1.0, 3.0, 6.0])
def test_lewis_weights_stop_exactly_at_tol(p: float) -> None:
    """Converged weights satisfy the fixed point to the stated accuracy, and max_iter=1 suffices at p = 2."""
    K = np.random.default_rng(29).standard_t(2, size=(50, 3))
    w = lewis_weights(K, p, tol=1e-12)
    M = K.T @ (w[:, None] ** (1 - 2 / p) * K)
    image = np.einsum("ij,jk,ik->i", K, np.linalg.pinv(M), K) ** (p / 2)
    np.testing.assert_allclose(image, w, rtol=1e-9)
    np.testing.assert_allclose(lewis_weights(K, 2.0, max_iter=1), leverage_scores(K), rtol=1e-10)


@pytest.mark.parametrize("n,d", [(1000, 2), (2, 1000), (300, 5)])
def test_row_space_rank_uses_numpys_matrix_rank_tolerance(n: int, d: int) -> None:
    """The p != 2 rank is numpy.linalg.matrix_rank's: singular values above max(n, d) u s_max."""
    K = with_singular_values(n, d, [1.0, 1e-14] if min(n, d) == 2 else [3.0, 1.0, 1e-14, 1e-17], seed=n + d)
    assert _row_space(K).rank == np.linalg.matrix_rank(K) == (1 if min(n, d) == 2 else 2)
    assert _rank_tol(2.0, n, d) == max(n, d) * U64 * 2.0
    # a singular value exactly at the tolerance is zero (strict inequality, as in numpy)
    D = np.diag([1.0, 2.0 * U64])
    assert _row_space(D).rank == np.linalg.matrix_rank(D) == 1
    assert _row_space(np.diag([1.0, 4.0 * U64])).rank == 2
    # degenerate shapes
    assert _row_space(np.zeros((0, 3))).rank == 0 and _row_space(np.zeros((3, 0))).rank == 0
    assert _row_space(np.zeros((4, 2))).rank == 0 and _row_space(np.ones((1, 1))).rank == 1
    sp = _row_space(np.zeros((0, 3)))
    assert sp.s.tolist() == [0.0] * 3 and np.array_equal(sp.Vt, np.eye(3))
    assert _row_space(np.zeros((4, 2))).quad(np.ones((3, 2))).tolist() == [0.0] * 3


def test_row_space_quad_is_the_pinv_quadratic_form() -> None:
    rng = np.random.default_rng(31)
    for n, d, r in [(6, 4, 1), (6, 4, 2), (3, 7, 3), (2, 5, 1)]:
        K = rng.normal(size=(n, r)) @ rng.normal(size=(r, d))
        rows = rng.normal(size=(5, d))
        rows[:2] = K[:2]
        want = np.einsum("ij,jk,ik->i", rows, np.linalg.pinv(K.T @ K, rcond=1e-10), rows)
        sp = _row_space(K)
        assert sp.rank == r
        np.testing.assert_allclose(sp.quad(rows), want, rtol=1e-8)


def test_universal_set_for_p_above_2_uses_c_p_of_the_rank() -> None:
    """U = {j : c_p w_j >= eps e^-tol} with c_p = rank^(p/2 - 1): recomputed from the weights here."""
    rng = np.random.default_rng(37)
    K = rng.standard_t(2, size=(80, 3))
    for p in (3.0, 4.0, 6.0):
        w = lewis_weights(K, p)
        c = 3.0 ** (p / 2 - 1)
        assert sensitivity_factor(p, 3) == pytest.approx(c, rel=1e-15)
        for eps in (0.05, 0.2, 0.5):
            assert universal_set(K, eps, p).tolist() == np.flatnonzero(c * w >= eps * np.exp(-1e-10)).tolist()
    # rank 1 keys (every key a multiple of one vector): c_p = 1 and w_j = |a_j|^p / sum |a|^p
    a = np.array([1.0, 1.0, 1.0, 2.0])
    K1 = np.outer(a, [1.0, -1.0, 2.0])
    assert universal_set(K1, 0.5, 4.0).tolist() == [3]  # w = [1, 1, 1, 16] / 19
    assert universal_set(K1, 0.05, 4.0).tolist() == [0, 1, 2, 3]


def test_sensitivity_factor_closed_form_and_boundaries() -> None:
    assert sensitivity_factor(2.0, 7) == 1.0 and sensitivity_factor(1.0, 7) == 1.0
    assert sensitivity_factor(0.5, 0) == 1.0
    assert sensitivity_factor(3.0, 4) == 2.0  # 4^(1/2)
    assert sensitivity_factor(6.0, 3) == 9.0  # 3^2
    assert sensitivity_factor(4.0, 1) == 1.0 and sensitivity_factor(4.0, 0) == 1.0  # max(rank, 1)
    assert sensitivity_factor(2.0 + 1e-9, 5) == pytest.approx(5.0 ** 5e-10, rel=1e-15)


def test_lewis_sensitivity_bound_is_attained_for_p_above_2() -> None:
    """For orthogonal keys (w_j = 1), a query along k_j gives A = 1 = w_j; c_p w_j >= 1 for every p."""
    K = np.eye(3) * np.array([1.0, 5.0, 0.25])[:, None]
    for p in (3.0, 4.0):
        np.testing.assert_allclose(lewis_weights(K, p), [1.0, 1.0, 1.0], rtol=1e-12)
        assert universal_set(K, 1.0, p).tolist() == [0, 1, 2]


# ----------------------------------------------------------------------------------------- leverage, rank


def test_leverage_and_rank_of_exact_small_cases() -> None:
    assert numerical_rank(np.eye(3)) == 3 and numerical_rank(np.zeros((0, 3))) == 0
    assert numerical_rank(np.zeros((3, 0))) == 0 and numerical_rank(np.ones((1, 1))) == 1
    assert numerical_rank(np.zeros((2, 2))) == 0
    assert leverage_scores(np.zeros((3, 0))).tolist() == [0.0] * 3
    assert leverage_scores(np.eye(2)).tolist() == [1.0, 1.0]


@pytest.mark.parametrize("func", ["leverage_scores", "numerical_rank", "lewis_weights", "universal_set"])
def test_messages_name_the_key_matrix(func: str) -> None:
    bad = np.ones((2, 2)) + 1j
    f = {"leverage_scores": leverage_scores, "numerical_rank": numerical_rank,
         "lewis_weights": lambda K: lewis_weights(K, 1.0), "universal_set": lambda K: universal_set(K, 0.5)}[func]
    with pytest.raises(ParameterError) as info:
        f(bad)
    assert str(info.value) == "K must be a real numeric matrix, got dtype complex128"


# ------------------------------------------------------------------------------------------ heavy entries


@pytest.mark.parametrize("func", ["heavy_entries", "heavy_entries_with_values", "dense_scores"])
def test_heavy_and_dense_messages_are_whole(func: str) -> None:
    f = {"heavy_entries": lambda Q, K: heavy_entries(Q, K, 0.5),
         "heavy_entries_with_values": lambda Q, K: heavy_entries_with_values(Q, K, 0.5),
         "dense_scores": dense_scores}[func]
    good, bad = np.eye(2), np.eye(2).astype(object)
    with pytest.raises(ParameterError) as info:
        f(bad, good)
    assert str(info.value) == "Q must be a real numeric matrix, got dtype object"
    with pytest.raises(ParameterError) as info:
        f(good, bad)
    assert str(info.value) == "K must be a real numeric matrix, got dtype object"
    with pytest.raises(ParameterError) as info:
        f(np.ones((2, 3)), np.ones((4, 2)))
    assert str(info.value) == "Q has 3 columns but K has 2; they must share d"
    # a query row spanning more than the float range (after the keys' balancing) is refused, not flushed
    with pytest.raises(NumericalError) as info:
        f(np.array([[1e300, 1e-300]]), np.eye(2))
    assert str(info.value) == ("a row of Q (after the key balancing) spans more than the float64 range (a nonzero "
                               "entry is below 2^-1074 times the largest one after balancing); rescale the inputs")


def test_heavy_entries_of_empty_inputs_have_the_documented_shapes() -> None:
    K, Q = np.random.default_rng(41).normal(size=(5, 3)), np.random.default_rng(42).normal(size=(4, 3))
    for q, k in [(np.zeros((0, 3)), K), (Q, np.zeros((0, 3))), (np.zeros((4, 0)), np.zeros((5, 0))),
                 (np.zeros((0, 3)), np.zeros((0, 3)))]:
        for p in (2.0, 1.0):
            pairs, vals = heavy_entries_with_values(q, k, 0.1, p)
            assert pairs.shape == (0, 2) and pairs.dtype == np.int64
            assert vals.shape == (0,) and vals.dtype == np.float64
            assert heavy_entries(q, k, 0.1, p).shape == (0, 2)
    A = dense_scores(np.zeros((2, 0)), np.zeros((3, 0)))
    assert A.shape == (2, 3) and not A.any()


def test_heavy_entries_for_p_3_need_the_lewis_candidates() -> None:
    """A key of leverage 1/20 with a p = 3 weight of 1/5: tau-candidates (tau >= eps/2) would miss it.

    K = [e1; delta e1 +- e2 (m times)] with sum of the +-1 equal to 0: tau_0 = 1 / (1 + m delta^2) and, for the
    query e1, A_0 = 1 / (1 + m delta^3) (closed forms).
    """
    m, delta = 430, 0.21
    K = np.vstack([[1.0, 0.0], np.column_stack([np.full(m, delta), np.tile([1.0, -1.0], m // 2)])])
    tau = leverage_scores(K)
    assert tau[0] == pytest.approx(1 / (1 + m * delta**2), rel=1e-10) and tau[0] < 0.15 / 2
    Q = np.array([[1.0, 0.0], [0.3, 1.0]])
    A = brute_A(Q, K, 3.0)
    assert A[0, 0] == pytest.approx(1 / (1 + m * delta**3), rel=1e-12) and A[0, 0] > 0.15
    pairs, vals = heavy_entries_with_values(Q, K, 0.15, 3.0)
    assert pairs.tolist() == pairs_of(A, 0.15) and [0, 0] in pairs.tolist()
    np.testing.assert_allclose(vals, A[pairs[:, 0], pairs[:, 1]], rtol=1e-10)


def test_heavy_entries_cross_the_query_block() -> None:
    """More query rows than one block: the pairs keep their global row index."""
    n_q = _BLOCK_ROWS + 5
    rng = np.random.default_rng(43)
    K = rng.normal(size=(7, 2))
    Q = rng.normal(size=(n_q, 2))
    Q[-1] = K[3] @ np.linalg.pinv(K.T @ K)  # the maximising query of key 3, in the second block
    for p in (2.0, 1.0):
        pairs, vals = heavy_entries_with_values(Q, K, 0.3, p)
        A = brute_A(Q, K, p)
        assert pairs.tolist() == pairs_of(A, 0.3)
        assert pairs[:, 0].max() >= _BLOCK_ROWS
        np.testing.assert_allclose(vals, A[pairs[:, 0], pairs[:, 1]], rtol=1e-9)


def test_heavy_entries_p1_normaliser_spans_several_key_blocks() -> None:
    """p != 2: the normaliser is summed over key blocks of 2^24 / n_q keys; the last block's key is counted."""
    n_q = 4096  # key blocks of 4096 keys
    Q = np.ones((n_q, 1))
    K = np.vstack([np.ones((4096, 1)), [[5000.0]]])
    pairs, vals = heavy_entries_with_values(Q, K, 0.5, 1.0)
    assert pairs.tolist() == [[i, 4096] for i in range(n_q)]
    np.testing.assert_allclose(vals, 5000.0 / 9096.0, rtol=1e-12)


def test_heavy_entries_acceptance_window_is_the_normaliser_error_bound() -> None:
    """p = 2 rows whose ||R q|| is not recomputed get the threshold widened by exactly 2 log1p(rho).

    rho = 8 d u sum_c |q_c| ||K_:,c|| / ||K q|| (the error bound of the normaliser from R). The keys below give
    exact scores -+2^-36 for q = (1, -1), so A = (1/2, 1/2) exactly while rho is about 5e-4 (below the 1e-3 at which
    the normaliser would be summed exactly). An entry is reported iff A (1 + rho)^2 >= eps, up to rounding.
    """
    h = 2.0**-36
    K = np.array([[1.0, 1.0 + h], [1.0, 1.0 - h]])
    q = np.array([[1.0, -1.0]])
    rho = _noise_level(2) * float(np.abs(q[0]) @ np.linalg.norm(K, axis=0)) / float(np.linalg.norm(K @ q[0]))
    assert 1e-4 < rho < 1e-3
    assert heavy_entries(q, K, 0.5 * (1 + 1.5 * rho)).tolist() == [[0, 0], [0, 1]]  # inside the window
    assert heavy_entries(q, K, 0.5 * (1 + 2.5 * rho)).tolist() == []  # outside it
    _, vals = heavy_entries_with_values(q, K, 0.4)
    np.testing.assert_allclose(vals, [0.5, 0.5], rtol=1e-4)


def test_heavy_entries_pass_tol_to_the_lewis_iteration() -> None:
    """An unattainable tol is reported by the Lewis iteration (p != 2), not replaced by the default."""
    K = np.random.default_rng(47).normal(size=(20, 3))
    with pytest.raises(NumericalError, match=r"did not converge in 1000 iterations.*tol=1e-300$"):
        heavy_entries(np.eye(3), K, 0.1, 1.0, tol=1e-300)
    with pytest.raises(NumericalError, match=r"did not converge in 1000 iterations.*tol=1e-300$"):
        lev_attention(np.eye(3), K, K, eps=0.1, kind=1.0, tol=1e-300)
    with pytest.raises(NumericalError, match=r"did not converge in 1000 iterations.*tol=1e-300$"):
        lev_attention_with_keys(np.eye(3), K, K, eps=0.1, kind=1.0, tol=1e-300)


def test_zero_and_orthogonal_rows_raise_no_floating_point_warnings() -> None:
    """log 0 and -inf - -inf are expected for zero rows: the library masks them and warns about nothing."""
    rng = np.random.default_rng(53)
    K = np.hstack([rng.normal(size=(12, 2)), np.zeros((12, 1))])
    K[3] = 0.0
    Q = np.vstack([np.zeros(3), [0.0, 0.0, 1.0], rng.normal(size=(2, 3))])
    V = rng.normal(size=(12, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for p in (2.0, 1.0, 3.0):
            pairs = heavy_entries(Q, K, 0.2, p)
            assert pairs.tolist() == pairs_of(brute_A(Q, K, p), 0.2)
            A = dense_scores(Q, K, p)
            np.testing.assert_allclose(A, brute_A(Q, K, p), rtol=1e-12, atol=1e-15)
            out = lev_attention(Q, K, V, eps=0.01, kind=p).to_float()
            assert np.all(out[:2] == 0.0) and np.isfinite(out).all()
            assert streaming_universal_set([K[:5], K[5:]], 0.2, p).tolist() == universal_set(K, 0.2, p).tolist()
            lewis_weights(K, p)


# -------------------------------------------------------------------------------------------- attention


def test_lev_attention_power_is_renormalised_over_the_universal_set() -> None:
    """kind = p: rownormalise(|Q K_U^T|^p) V_U with U = universal_set(K, eps, p) (default tol)."""
    rng = np.random.default_rng(59)
    Q, K, V = rng.normal(size=(6, 3)), rng.standard_t(2, size=(40, 3)), rng.normal(size=(40, 2))
    Q[0] = 0.0
    for p in (1.0, 3.0):
        U = universal_set(K, 0.02, p)
        assert len(U) != len(universal_set(K, 0.02, 2.0))  # the p-set, not the leverage set
        want = brute_A(Q, K[U], p) @ V[U]
        out, got_U = lev_attention_with_keys(Q, K, V, eps=0.02, kind=p)
        assert got_U.tolist() == U.tolist()
        np.testing.assert_allclose(out.to_float(), want, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(lev_attention(Q, K, V, eps=0.02, kind=p).to_float(), want, rtol=1e-10,
                                   atol=1e-14)
        assert np.all(out.to_float()[0] == 0.0)


def test_lev_attention_power_with_one_key_and_orthogonal_queries() -> None:
    """One key (U = {0}): each query's output is V_0 unless its score is 0 (then the output is 0)."""
    K, V = np.array([[2.0, 0.0]]), np.array([[3.0, -1.0]])
    Q = np.array([[1.0, 5.0], [0.0, 1.0], [-0.5, 0.0]])
    for p in (1.0, 3.0):
        out = lev_attention(Q, K, V, eps=0.5, kind=p)
        np.testing.assert_allclose(out.to_float(), [[3.0, -1.0], [0.0, 0.0], [3.0, -1.0]], rtol=1e-15, atol=0)
        assert out.shape == (3, 2)


def test_lev_attention_softmax_uses_the_given_scale_and_keeps_tau_equal_to_eps() -> None:
    rng = np.random.default_rng(61)
    Q, V = rng.normal(size=(3, 2)), rng.normal(size=(2, 2))
    K = np.array([[1.5, 0.0], [0.0, -0.25]])  # tau = (1, 1) exactly
    assert leverage_scores(K).tolist() == [1.0, 1.0]
    out, U = lev_attention_with_keys(Q, K, V, eps=1.0, scale=0.7)
    assert U.tolist() == [0, 1]
    want = exact(Q, K, V, scale=0.7).to_float()
    assert not np.allclose(want, exact(Q, K, V).to_float())
    np.testing.assert_allclose(out.to_float(), want, rtol=1e-12)
    np.testing.assert_allclose(lev_attention(Q, K, V, eps=1.0, scale=0.7).to_float(), want, rtol=1e-12)
    ans = lev_oracle(Q, K, V, eps=1.0, scale=0.7)
    np.testing.assert_allclose(ans.output.to_float(), want, rtol=1e-12)
    assert ans.certificate == UNCERTIFIED and ans.info == {"eps": 1.0, "kept_keys": 2}


def test_lev_attention_power_with_an_empty_universal_set_is_a_zero_log_array() -> None:
    """Ten copies of one key share one unit of Lewis weight: none reaches eps = 0.5, U is empty, the output is 0."""
    K = np.tile([[1.0, 2.0]], (10, 1))
    Q, V = np.ones((3, 2)), np.arange(40.0).reshape(10, 4)
    for p in (1.0, 3.0):
        out, U = lev_attention_with_keys(Q, K, V, eps=0.5, kind=p)
        assert U.tolist() == []
        assert out.shape == (3, 4)
        assert out.sign.dtype == np.int8 and out.sign.tolist() == [[0] * 4] * 3
        assert out.log_abs.tolist() == [[-np.inf] * 4] * 3
        assert lev_attention(Q, K, V, eps=0.5, kind=p).to_float().tolist() == [[0.0] * 4] * 3


def test_lev_attention_power_for_a_huge_exponent_is_formed_in_log_space() -> None:
    """p = 1000: |score|^p overflows float64; the weights are exp(p log|s| - max), recomputed here."""
    K = np.array([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0], [1.0, 0.0, 2.0]])  # n = d = rank: every Lewis weight is 1
    Q = np.array([[1.0, 1.0, 1.0], [2.0, -1.0, 0.5], [0.0, 0.0, 0.0]])
    V = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    p = 1000.0
    with np.errstate(divide="ignore"):
        L = p * np.log(np.abs(Q @ K.T))
    W = np.exp(L[:2] - L[:2].max(axis=1, keepdims=True))
    want = np.vstack([(W / W.sum(axis=1, keepdims=True)) @ V, np.zeros((1, 2))])
    out, U = lev_attention_with_keys(Q, K, V, eps=0.5, kind=p)
    assert U.tolist() == [0, 1, 2]
    np.testing.assert_allclose(out.to_float(), want, rtol=1e-12, atol=0)
