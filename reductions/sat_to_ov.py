"""k-SAT -> Orthogonal Vectors by split and list (Williams 2005).

Split the variables into ``L`` (the first ``ceil(N/2)``) and ``R`` (the rest). For an assignment ``alpha`` of
``L`` let ``a_alpha[c] = 1`` iff ``alpha`` satisfies no literal of clause ``c``; likewise ``b_beta`` for ``R``.
Then ``<a_alpha, b_beta> = 0`` iff every clause is satisfied by ``alpha`` or by ``beta``, i.e. iff
``alpha ∪ beta`` satisfies the formula. Sizes: ``n_a = 2^|L|``, ``n_b = 2^|R|``, dimension ``m`` (clauses).

The sparsification lemma of Impagliazzo, Paturi and Zane is what makes ``m = O(N)`` in the SETH argument; it
changes nothing about correctness and is not needed to run the chain, so it is not applied here.

Edge cases follow from the definition: an empty clause is satisfied by nothing, so its coordinate is 1 in every
vector (the instance has no orthogonal pair); a tautology is always satisfied by the half that holds its
variable; ``N = 0`` or ``N = 1`` gives halves with ``2^0 = 1`` (empty) assignment.
"""

from __future__ import annotations

import numpy as np

from instances.cnf import CNFFormula
from instances.ov import OVInstance
from instances.solutions import OrthogonalPair

from .base import Reduction


def split_variables(num_vars: int) -> tuple[np.ndarray, np.ndarray]:
    """Variables of the two halves: ``L = 1..ceil(N/2)``, ``R = ceil(N/2)+1..N``."""
    half = (num_vars + 1) // 2
    return np.arange(1, half + 1), np.arange(half + 1, num_vars + 1)


def _half_vectors(formula: CNFFormula, variables: np.ndarray) -> np.ndarray:
    """``X[alpha, c] = 1`` iff assignment ``alpha`` of ``variables`` satisfies no literal of clause ``c``.

    Bit ``i`` of ``alpha`` is the value of ``variables[i]``.
    """
    h, m = variables.size, formula.num_clauses
    pos = np.zeros((h, m), dtype=np.int32)  # pos[i, c]: occurrences of +variables[i] in clause c
    neg = np.zeros((h, m), dtype=np.int32)
    where = {int(v): i for i, v in enumerate(variables)}
    for c, clause in enumerate(formula.clauses):
        for lit in clause:
            i = where.get(abs(lit))
            if i is not None:
                (pos if lit > 0 else neg)[i, c] += 1
    alphas = np.arange(2**h, dtype=np.int64)
    bits = ((alphas[:, None] >> np.arange(h)) & 1).astype(np.int32)
    satisfied = bits @ pos + (1 - bits) @ neg
    return (satisfied == 0).astype(np.uint8)


class SatToOV(Reduction):
    """k-SAT -> OV by split and list.

    Examples
    --------
    >>> from instances.cnf import CNFFormula
    >>> f = CNFFormula([[1, 2], [-1, 3]], num_vars=3)
    >>> ov = SatToOV().forward(f)
    >>> ov.A.tolist()  # L = {1, 2}; row alpha has bit i = value of variable i+1
    [[1, 0], [0, 1], [0, 0], [0, 1]]
    >>> ov.B.tolist()  # R = {3}
    [[1, 1], [1, 0]]
    >>> SatToOV().backward(f, ov.brute_force_solve())
    [1, -2, 3]
    """

    source = "k-SAT"
    target = "OV"
    lemma = "Williams (2005), split and list"
    blowup = "n_a = 2^ceil(N/2), n_b = 2^floor(N/2) vectors of dimension m (number of clauses)"
    derived = "halves L = variables 1..ceil(N/2), R = the rest"

    def forward(self, instance: CNFFormula) -> OVInstance:
        left, right = split_variables(instance.num_vars)
        return OVInstance(_half_vectors(instance, left), _half_vectors(instance, right))

    def backward(self, instance: CNFFormula, target_solution: OrthogonalPair | None) -> list[int] | None:
        """The assignment ``alpha ∪ beta`` of the orthogonal pair ``(alpha, beta)``, or None."""
        if target_solution is None:
            return None
        left, right = split_variables(instance.num_vars)
        lits = []
        for variables, code in ((left, target_solution.i), (right, target_solution.j)):
            for bit, v in enumerate(variables):
                lits.append(int(v) if (code >> bit) & 1 else -int(v))
        return lits
