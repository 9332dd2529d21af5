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
import sympy as sp

from instances.cnf import CNFFormula
from instances.errors import ReductionError
from instances.ov import OVInstance
from instances.solutions import OrthogonalPair

from .base import CertificateError, Reduction, expect
from .sizes import cached_sizes, symbol


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


@cached_sizes
def _split_sizes() -> dict:
    N, m = symbol("N"), symbol("m")
    return {"n_a": 2 ** sp.ceiling(N / 2), "n_b": 2 ** sp.floor(N / 2), "d": m}


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

    @property
    def sizes(self) -> dict:
        """``n_a = 2^ceil(N/2)``, ``n_b = 2^floor(N/2)``, ``d = m``."""
        return dict(_split_sizes())

    def forward(self, instance: CNFFormula) -> OVInstance:
        left, right = split_variables(expect(instance, CNFFormula, "the k-SAT -> OV input").num_vars)
        return OVInstance(_half_vectors(instance, left), _half_vectors(instance, right))

    def backward(self, instance: CNFFormula, target_solution: OrthogonalPair | None) -> list[int] | None:
        """The assignment ``alpha ∪ beta`` of the orthogonal pair ``(alpha, beta)``, or None.

        Raises
        ------
        ReductionError
            If ``target_solution`` is neither None nor an OrthogonalPair with indices in range.
        CertificateError
            If the assignment of the pair does not satisfy the formula, i.e. the pair is not orthogonal.
        """
        expect(instance, CNFFormula, "the k-SAT instance")
        if target_solution is None:
            return None
        expect(target_solution, OrthogonalPair, "the OV solution")
        left, right = split_variables(instance.num_vars)
        for name, code, half in (("i", target_solution.i, left), ("j", target_solution.j, right)):
            if not isinstance(code, (int, np.integer)) or isinstance(code, bool) or not 0 <= code < 2**half.size:
                raise ReductionError(f"the OV solution's index {name} = {code} is outside 0..{2**half.size - 1}")
        lits = []
        for variables, code in ((left, target_solution.i), (right, target_solution.j)):
            for bit, v in enumerate(variables):
                lits.append(int(v) if (code >> bit) & 1 else -int(v))
        if not instance.is_satisfied_by(lits):
            raise CertificateError(
                f"the OV solution (i={target_solution.i}, j={target_solution.j}) is not an orthogonal pair: "
                "its assignment leaves a clause unsatisfied"
            )
        return lits
