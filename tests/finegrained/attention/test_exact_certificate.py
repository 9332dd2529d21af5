"""The exact oracle's "log" certificate is true: fuzzed against 100-digit mpmath (finegrained.attention.reference).

Inputs cross query-block boundaries (tiny tiles), form several key groups (V columns with different supports),
have key columns that are zero within a group (the column skip), huge and tiny scales, and mixed-sign V.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from finegrained.attention.exact import _exact, block_rows, exact_oracle, prepare
from finegrained.attention.reference import reference


def _instance(seed: int, n_q: int, n_k: int, d: int, d_v: int, scale: float, vmag: float, zero_half: bool):
    rng = np.random.default_rng(seed)
    Q = rng.normal(size=(n_q, d))
    K = rng.normal(size=(n_k, d))
    if zero_half:  # Lemma 4.7's shape: some keys are zero on half the coordinates, others on the other half
        half = max(1, d // 2)
        K[: n_k // 2, half:] = 0.0
        K[n_k // 2:, :half] = 0.0
    # Mixed signs, several support patterns, and magnitudes spread over many orders.
    V = rng.normal(size=(n_k, d_v)) * np.exp(rng.uniform(-1, 1, size=(n_k, d_v)) * np.log(vmag))
    V *= rng.random((n_k, d_v)) < 0.7
    if n_k > 1:
        Q[-1] = Q[0]  # repeated queries and keys exercise the merging
        K[-1] = K[0]
    return Q, K, V, scale


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 12), st.integers(1, 12), st.integers(1, 6), st.integers(1, 3),
       st.sampled_from([1e-12, 1e-3, 1.0, 30.0, 400.0, 2000.0]), st.sampled_from([1.0, 1e5, 1e150]),
       st.booleans(), st.sampled_from([8, 200, 10**6]))
def test_log_certificate_holds_against_multiprecision(seed, n_q, n_k, d, d_v, scale, vmag, zero_half, tile):
    Q, K, V, s = _instance(seed, n_q, n_k, d, d_v, scale, vmag, zero_half)
    ans = exact_oracle(Q, K, V, scale=s, tile_bytes=tile)
    ref = reference(Q, K, V, scale=s, dps=100)
    out = ans.output
    if ans.certificate.kind == "none":
        return  # honest: nothing claimed (only after catastrophic cancellation)
    assert ans.certificate.kind == "log"
    bound = np.broadcast_to(np.exp(ans.certificate.log_bound), out.shape)
    assert np.array_equal(out.sign, ref.sign)
    nz = ref.sign != 0
    measured = np.abs(out.log_abs[nz] - ref.log_abs[nz])
    assert (measured <= bound[nz]).all(), (measured.max(), bound[nz].min())


def test_certificate_on_block_boundaries_and_column_skips():
    # Many rows in blocks of 32 (the smallest block) and a group with skipped columns; scores near 10^3.
    rng = np.random.default_rng(7)
    Q = rng.normal(size=(70, 6)) * 30
    K = rng.normal(size=(9, 6))
    K[:5, 3:] = 0.0
    V = rng.normal(size=(9, 2))
    V[5:, 0] = 0.0
    prep = prepare(Q, K, V, scale=1.0)
    assert any(g.cols is not None for g in prep.groups)  # the skip is in play
    assert block_rows(prep, 8) < prep.n_q  # several blocks
    out, bound = _exact(Q, K, V, scale=1.0, tile_bytes=8, dedupe=True)
    ref = reference(Q, K, V, scale=1.0, dps=80)
    assert bound is not None and np.array_equal(out.sign, ref.sign)
    nz = ref.sign != 0
    assert (np.abs(out.log_abs[nz] - ref.log_abs[nz]) <= bound[nz]).all()


def test_column_skip_halves_the_work_on_lemma47_instances():
    import reductions
    from instances.generators import random_ksat

    inst = reductions.path("k-SAT", "AAttC").forward(random_ksat(10, 43, 3, seed=3))
    prep = prepare(inst.Q, inst.K, inst.V, scale=inst.scale)
    full = prep.n_q * prep.n_k * inst.Q.shape[1]
    assert prep.work() <= 0.55 * full
    # Blocking never changes the answer beyond rounding, and never a decision.
    a = exact_oracle(inst.Q, inst.K, inst.V, scale=inst.scale, tile_bytes=8).output
    b = exact_oracle(inst.Q, inst.K, inst.V, scale=inst.scale).output
    thr = inst.meta["lemma47"]["log_threshold"]
    assert np.array_equal(a.log_abs >= thr, b.log_abs >= thr)
    assert np.allclose(a.log_abs, b.log_abs, rtol=0, atol=1e-9)
