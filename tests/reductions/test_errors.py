"""Every backward map raises only ReductionError (bad input) or WrongAnswerError (a wrong target solution)."""

from __future__ import annotations

import numpy as np
import pytest

from instances.cnf import CNFFormula
from instances.errors import ReductionError, WrongAnswerError
from instances.gap_ann import GapANNInstance
from instances.logspace import LogArray
from instances.maxip import MaxIPAnswer, MaxIPInstance
from instances.ov import OVInstance
from instances.solutions import CertifiedOutput, GapANNAnswer, OrthogonalPair
from reductions import GapANNToAAttC, MaxIPToAttention, OVToAttention, OVToGapANN, OVToMaxIP, SatToOV

CNF = CNFFormula([[1, 2], [-1, 3], [-2]], num_vars=3)
OV = OVInstance([[1, 0], [1, 1]], [[1, 1], [0, 1], [1, 0]])
GAP = GapANNInstance([[1, 0, 1, 0], [0, 1, 1, 0]], [[1, 0, 1, 0], [0, 0, 1, 1]], t=1.0, eps=1.0)
MIP = MaxIPInstance([[3, -1], [0, 2]], [[1, 1], [-2, 5]], [2, 11])

REDUCTIONS = [(SatToOV(), CNF), (OVToGapANN(), OV), (GapANNToAAttC(), GAP), (GapANNToAAttC(mode="paper"), GAP),
              (OVToAttention(), OV), (OVToMaxIP(), OV), (MaxIPToAttention(), MIP)]


def _garbage():
    one = LogArray.from_float(np.ones((2, 1)))
    return [
        None, 0, 1.5, "yes", [True, False], (0, 1), object(), np.ones((2, 1)), np.ones((2, 0)),
        LogArray.from_float(np.ones(2)), LogArray.from_float(np.ones((2, 0))), LogArray.from_float(np.ones((0, 1))),
        LogArray.from_float(np.ones((9, 1))), one, CertifiedOutput(one), CertifiedOutput(one, one, one),
        GapANNAnswer([]), GapANNAnswer([True, True]), GapANNAnswer([True, False, True]),
        GapANNAnswer([False, False, True]), MaxIPAnswer([True]), MaxIPAnswer([True, True]),
        OrthogonalPair(0, 0), OrthogonalPair(1, 2), OrthogonalPair(-1, 0), OrthogonalPair(99, 0),
        OrthogonalPair(1.5, 0), OrthogonalPair(True, 0),
    ]


@pytest.mark.parametrize(("reduction", "instance"), REDUCTIONS, ids=lambda x: type(x).__name__)
def test_backward_raises_only_the_two_reduction_errors(reduction, instance):
    red = reduction.reduce(instance)
    outcomes = set()
    for solution in _garbage():
        for call in (lambda s=solution: red.extract(s), lambda s=solution: reduction.backward(instance, s)):
            try:
                call()
                outcomes.add("ok")
            except (ReductionError, WrongAnswerError) as exc:
                outcomes.add(type(exc).__mro__[0].__name__)
    assert "ReductionError" in outcomes  # garbage was refused, and nothing else escaped
    with pytest.raises(ReductionError):
        reduction.backward("not an instance", red.target)
    with pytest.raises(ReductionError):
        reduction.forward("not an instance")
