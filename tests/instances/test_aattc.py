"""AAttC instances: the entry bound check of entries_bounded."""

from __future__ import annotations

import numpy as np

from instances.aattc import AAttCInstance


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
