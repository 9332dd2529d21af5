"""Seeded formula generators: uniform random k-SAT and planted-satisfiable k-SAT.

Every generator takes a :class:`numpy.random.Generator` (or an integer seed); the same seed gives the same
formula, byte for byte, on every platform.
"""

from __future__ import annotations

import numpy as np

from .cnf import CNFFormula
from .errors import ParameterError
from .io import check_memory_limit


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _check(num_vars: int, num_clauses: int, k: int) -> None:
    if k < 1:
        raise ParameterError(f"clause width k must be at least 1, got {k}")
    if num_vars < k:
        raise ParameterError(f"k={k} distinct variables per clause need num_vars >= k, got num_vars={num_vars}")
    if num_clauses < 0:
        raise ParameterError(f"num_clauses must be non-negative, got {num_clauses}")


#: Bytes of random keys (float64) plus their argsort (int64) per block of rows when drawing by permutation.
_BLOCK_BYTES = 2**25


def _by_permutation(num_vars: int, k: int) -> bool:
    """Whether clauses are drawn as the first k entries of a random permutation (else by redrawing repeats).

    Redrawing is used once ``k * k <= num_vars`` and ``num_vars > 64``: then a row has a repeated variable with
    probability at most 1/2 and each clause costs O(k) instead of O(num_vars log num_vars). Formulas on at most
    64 variables (every shipped example and benchmark) are drawn by permutation, as they always were.
    """
    return num_vars <= 64 or k * k > num_vars


def _random_clauses(num_vars: int, count: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` clauses of k distinct variables, each an ordered uniform k-subset, each literal negated w.p. 1/2."""
    if _by_permutation(num_vars, k):
        # k distinct variables per clause: the first k entries of a random permutation, row by row. Drawing the
        # keys block by block gives the same stream as one (count, num_vars) draw, in bounded memory.
        variables = np.empty((count, k), dtype=np.int64)
        rows = max(1, _BLOCK_BYTES // (16 * num_vars))
        for s in range(0, count, rows):
            keys = rng.random((min(rows, count - s), num_vars))
            variables[s : s + rows] = np.argsort(keys, axis=1, kind="stable")[:, :k] + 1
    else:
        variables = rng.integers(1, num_vars + 1, size=(count, k), dtype=np.int64)
        while True:
            srt = np.sort(variables, axis=1)
            bad = np.flatnonzero((srt[:, 1:] == srt[:, :-1]).any(axis=1))
            if bad.size == 0:
                break
            variables[bad] = rng.integers(1, num_vars + 1, size=(bad.size, k), dtype=np.int64)
    signs = np.where(rng.random((count, k)) < 0.5, -1, 1)
    return variables * signs


def estimate_memory(num_vars: int, num_clauses: int, k: int = 3, *, planted: bool = False) -> int:
    """Peak bytes of :func:`random_ksat` (or :func:`planted_ksat` with ``planted=True``), from the sizes alone.

    The clause arrays (int64 variables, signs and literals: 24 bytes per literal, twice for the planted
    generator's over-drawn batches), one block of permutation keys (:data:`_BLOCK_BYTES`), and the clauses as
    Python lists, of which :class:`~instances.cnf.CNFFormula` holds up to three copies while it is built
    (``56 + 40 k`` bytes per clause each: the list, its pointers and the int objects; measured peak about
    480 bytes per 3-clause, against 528 here).
    """
    arrays = 24 * num_clauses * k * (2 if planted else 1)
    block = _BLOCK_BYTES + 16 * num_vars if _by_permutation(num_vars, k) else 0
    lists = 3 * num_clauses * (56 + 40 * k)
    return int(arrays + block + lists + 16 * num_vars + 2**20)


def _check_memory(num_vars: int, num_clauses: int, k: int, planted: bool, max_memory: int | None) -> None:
    if max_memory is not None:
        check_memory_limit(estimate_memory(num_vars, num_clauses, k, planted=planted), max_memory,
                           f"{'planted' if planted else 'random'} {k}-SAT with {num_vars} variables and "
                           f"{num_clauses} clauses")


def random_ksat(
    num_vars: int,
    num_clauses: int,
    k: int = 3,
    seed: int | np.random.Generator | None = None,
    *,
    max_memory: int | None = None,
) -> CNFFormula:
    """Uniform random k-SAT: each clause has k distinct variables, each negated with probability 1/2.

    Near the clause ratio ``m/N ≈ 4.26`` random 3-SAT is satisfiable about half the time. With ``max_memory``
    (bytes), :func:`estimate_memory` is checked first and :class:`ResourceLimitError` raised before anything
    is allocated.

    Examples
    --------
    >>> f = random_ksat(5, 8, k=3, seed=1)
    >>> f.num_vars, f.num_clauses, all(len(set(map(abs, c))) == 3 for c in f.clauses)
    (5, 8, True)
    """
    _check(num_vars, num_clauses, k)
    _check_memory(num_vars, num_clauses, k, False, max_memory)
    lits = _random_clauses(num_vars, num_clauses, k, _rng(seed))
    return CNFFormula(lits.tolist(), num_vars=num_vars)


def planted_ksat(
    num_vars: int,
    num_clauses: int,
    k: int = 3,
    seed: int | np.random.Generator | None = None,
    *,
    max_memory: int | None = None,
) -> tuple[CNFFormula, list[int]]:
    """Planted-satisfiable k-SAT: random clauses kept only if a hidden assignment satisfies them.

    Returns the formula and the hidden assignment (DIMACS literals), which satisfies every clause. With
    ``max_memory``, :func:`estimate_memory` (``planted=True``) is checked before anything is allocated.
    """
    _check(num_vars, num_clauses, k)
    _check_memory(num_vars, num_clauses, k, True, max_memory)
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
