from __future__ import annotations

import pytest

from instances.cnf import CNFFormula
from instances.errors import ParameterError
from reductions import GapANNToAAttC, path, reduction_graph


def test_graph_and_path():
    g = reduction_graph()
    assert set(g.nodes) >= {"k-SAT", "OV", "Gap-ANN", "AAttC"}
    assert all("lemma" in g.edges[e] and "blowup" in g.edges[e] for e in g.edges)
    chain = path("k-SAT", "AAttC", mode="paper", safety=2.0)
    assert chain.problems == ["k-SAT", "OV", "Gap-ANN", "AAttC"]
    last = chain.steps[-1]
    assert isinstance(last, GapANNToAAttC) and last.mode == "paper"
    assert path("OV", "Gap-ANN").problems == ["OV", "Gap-ANN"]


def test_path_errors():
    with pytest.raises(ParameterError, match="unknown problem"):
        path("3-COL", "AAttC")
    with pytest.raises(ParameterError, match="no chain"):
        path("AAttC", "k-SAT")


def test_composed_chain_backward_recomputes_trace():
    f = CNFFormula([[1, 2], [-1], [-2, 3]], num_vars=3)
    chain = path("k-SAT", "AAttC")
    trace = chain.forward_trace(f)
    out = trace[-1].brute_force_solve()
    assert chain.backward(f, out, trace) == chain.backward(f, out) == [-1, 2, 3]
