"""Random small instances for :func:`reductions.check_reduction`, one generator per source problem.

Each generator takes a :class:`numpy.random.Generator` and draws instances small enough for brute force on both
sides, with the corner cases of its problem (empty clauses, zero dimension, rows outside the Gap-ANN promise,
ties at the Max-IP threshold).
"""

from __future__ import annotations

import numpy as np
import pytest

from instances.cnf import CNFFormula
from instances.gap_ann import GapANNInstance
from instances.maxip import MaxIPInstance
from instances.ov import OVInstance


def random_cnf(rng: np.random.Generator, max_vars: int = 7) -> CNFFormula:
    """Mixed-width clauses over 0..max_vars variables; duplicates, tautologies and empty clauses occur."""
    n = int(rng.integers(0, max_vars + 1))
    if n == 0:
        return CNFFormula([[]] * int(rng.integers(0, 2)), num_vars=0)
    clauses = []
    for _ in range(int(rng.integers(0, 14))):
        width = int(rng.choice([0, 1, 2, 3, 3, 3, 4], p=[0.02, 0.1, 0.2, 0.2, 0.2, 0.2, 0.08]))
        variables = rng.integers(1, n + 1, size=width)
        clauses.append([int(v) * int(rng.choice([-1, 1])) for v in variables])
    return CNFFormula(clauses, num_vars=n)


def random_ov(rng: np.random.Generator) -> OVInstance:
    """Up to 8 x 8 vectors of dimension 0..6 with density 0.2..0.7 (both YES and NO instances are common)."""
    m = int(rng.integers(0, 7))
    p = rng.uniform(0.2, 0.7)
    return OVInstance(rng.random((int(rng.integers(1, 9)), m)) < p, rng.random((int(rng.integers(1, 9)), m)) < p)


def balanced(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """``n`` random vectors with exactly ``d/2`` ones in dimension ``d``."""
    X = np.zeros((n, d), dtype=np.uint8)
    for i in range(n):
        X[i, rng.permutation(d)[: d // 2]] = 1
    return X


def random_gap_ann(rng: np.random.Generator) -> GapANNInstance:
    """Balanced Gap-ANN instances with integer and half-integer t; some rows fall outside the promise."""
    d = 2 * int(rng.integers(1, 9))
    A, B = balanced(rng, int(rng.integers(1, 8)), d), balanced(rng, int(rng.integers(1, 8)), d)
    t = float(rng.integers(1, d + 1)) - float(rng.choice([0.0, 0.5]))
    return GapANNInstance(A, B, t=t, eps=float(rng.uniform(0.05, 2.0)))


def random_maxip(rng: np.random.Generator) -> MaxIPInstance:
    """Integer entries up to W in [1, 50), thresholds at, just above or away from each row's maximum."""
    n_a, n_b, d = int(rng.integers(1, 8)), int(rng.integers(1, 8)), int(rng.integers(1, 4))
    W = int(rng.integers(1, 50))
    A, B = rng.integers(-W, W + 1, (n_a, d)), rng.integers(-W, W + 1, (n_b, d))
    best = (A @ B.T).max(axis=1)
    tau = np.where(rng.random(n_a) < 0.6, best + rng.integers(0, 2, n_a), rng.integers(-W * W, W * W + 1, n_a))
    return MaxIPInstance(A, B, tau)


@pytest.fixture(scope="session")
def generators() -> dict:
    """The generators by problem name."""
    return {"k-SAT": random_cnf, "OV": random_ov, "Gap-ANN": random_gap_ann, "Max-IP": random_maxip}
