"""Seeded formula generators: uniform random k-SAT and planted-satisfiable k-SAT.

Every generator takes a :class:`numpy.random.Generator` (or an integer seed); the same seed gives the same
formula, byte for byte, on every platform.
"""

from __future__ import annotations

import numpy as np

from .cnf import CNFFormula
from .errors import ParameterError


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _check(num_vars: int, num_clauses: int, k: int) -> None:
    if k < 1:
        raise ParameterError(f"clause width k must be at least 1, got {k}")
    if num_vars < k:
        raise ParameterError(f"k={k} distinct variables per clause need num_vars >= k, got num_vars={num_vars}")
    if num_clauses < 0:
        raise ParameterError(f"num_clauses must be non-negative, got {num_clauses}")


def _random_clauses(num_vars: int, count: int, k: int, rng: np.random.Generator) -> np.ndarray:
    # k distinct variables per clause: the first k entries of a random permutation, row by row.
    keys = rng.random((count, num_vars))
    variables = np.argsort(keys, axis=1, kind="stable")[:, :k] + 1
    signs = np.where(rng.random((count, k)) < 0.5, -1, 1)
    return variables * signs


def random_ksat(
    num_vars: int, num_clauses: int, k: int = 3, seed: int | np.random.Generator | None = None
) -> CNFFormula:
    """Uniform random k-SAT: each clause has k distinct variables, each negated with probability 1/2.

    Near the clause ratio ``m/N ≈ 4.26`` random 3-SAT is satisfiable about half the time.

    Examples
    --------
    >>> f = random_ksat(5, 8, k=3, seed=1)
    >>> f.num_vars, f.num_clauses, all(len(set(map(abs, c))) == 3 for c in f.clauses)
    (5, 8, True)
    """
    _check(num_vars, num_clauses, k)
    lits = _random_clauses(num_vars, num_clauses, k, _rng(seed))
    return CNFFormula(lits.tolist(), num_vars=num_vars)


def planted_ksat(
    num_vars: int, num_clauses: int, k: int = 3, seed: int | np.random.Generator | None = None
) -> tuple[CNFFormula, list[int]]:
    """Planted-satisfiable k-SAT: random clauses kept only if a hidden assignment satisfies them.

    Returns the formula and the hidden assignment (DIMACS literals), which satisfies every clause.
    """
    _check(num_vars, num_clauses, k)
    rng = _rng(seed)
    hidden = rng.random(num_vars) < 0.5  # hidden[v-1] is the value of variable v
    kept: list[np.ndarray] = []
    have = 0
    while have < num_clauses:
        batch = _random_clauses(num_vars, max(16, 2 * (num_clauses - have)), k, rng)
        vals = hidden[np.abs(batch) - 1]
        ok = ((batch > 0) == vals).any(axis=1)
        kept.append(batch[ok])
        have += int(ok.sum())
    lits = np.concatenate(kept)[:num_clauses] if kept else np.zeros((0, k), dtype=np.int64)
    assignment = [v if hidden[v - 1] else -v for v in range(1, num_vars + 1)]
    return CNFFormula(lits.tolist(), num_vars=num_vars), assignment
