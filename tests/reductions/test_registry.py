from __future__ import annotations

import inspect

import pytest

from instances.cnf import CNFFormula
from instances.errors import ParameterError, ReductionError
from reductions import Chain, GapANNToAAttC, SatToOV, check_reduction, path, reduction_graph
from reductions.registry import FACTORIES


def test_graph_and_path():
    g = reduction_graph()
    assert set(g.nodes) >= {"k-SAT", "OV", "Gap-ANN", "AAttC"}
    assert all("lemma" in g.edges[e] and "blowup" in g.edges[e] for e in g.edges)
    chain = path("k-SAT", "AAttC", mode="paper")
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


def test_unknown_options_are_rejected_by_name():
    with pytest.raises(ParameterError, match="mood, safty") as info:
        path("k-SAT", "AAttC", safty=100, mood="paper")
    assert "k-SAT -> OV -> Gap-ANN -> AAttC" in str(info.value) and "safety" in str(info.value)
    # an option of a reduction off the path is unknown on this path
    with pytest.raises(ParameterError, match="unknown option.*mode.*accept no options"):
        path("k-SAT", "OV", mode="paper")
    with pytest.raises(ParameterError, match="unknown option.*mode.*accept factor"):
        path("k-SAT", "Attention", mode="tight")
    assert path("k-SAT", "Attention", factor=4.0).steps[-1].factor == 4.0


def test_factories_take_explicit_keywords_only():
    for (u, v), factory in FACTORIES.items():
        params = inspect.signature(factory).parameters.values()
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params), (u, v)
        r = factory()
        assert (r.source, r.target) == (u, v)


def test_option_values_are_checked_by_the_constructors():
    with pytest.raises(ParameterError, match="paper mode takes no safety factor"):
        path("k-SAT", "AAttC", mode="paper", safety=2.0)
    with pytest.raises(ParameterError, match="safety factor must be"):
        path("OV", "AAttC", safety=0.9)
    with pytest.raises(ParameterError, match="must exceed 3"):
        path("OV", "Attention", factor=1.0)


@pytest.mark.parametrize(("mode", "trials"), [("tight", 60), ("paper", 30)])
def test_whole_chain_by_check_reduction(mode, trials, generators):
    cx = check_reduction(path("k-SAT", "AAttC", mode=mode), generators["k-SAT"], trials=trials, seed=9)
    assert cx is None, str(cx)


def test_chain_reduce_records_every_step():
    f = CNFFormula([[1, 2], [-1], [-2, 3]], num_vars=3)
    red = path("k-SAT", "AAttC").reduce(f)
    assert [type(s.target).__name__ for s in red.steps] == ["OVInstance", "GapANNInstance", "AAttCInstance"]
    assert len(red.seconds) == 3 and all(s >= 0 for s in red.seconds)
    assert [s["n_a"] for s in red.sizes[1:3]] == [4, 4] and red.sizes[0] == {"N": 3, "m": 3}
    assert red.sizes[-1]["n_q"] == 4 + 2 and red.sizes[-1]["d"] == 2 * 6 * 3
    assert red.extract(red.target.brute_force_solve()) == [-1, 2, 3]
    with pytest.raises(ReductionError, match="cannot compose"):
        Chain([SatToOV(), SatToOV()])


def test_public_names_are_exported():
    import instances
    import reductions

    for name in reductions.__all__:
        assert getattr(reductions, name) is not None
    exported = {getattr(reductions, n) for n in reductions.__all__}
    assert {type(f()) for f in FACTORIES.values()} <= exported
    assert {"Reduced", "ChainReduced", "check_reduction", "Counterexample", "certified_threshold_test",
            "OVToAttention", "MaxIPToAttention", "OVToMaxIP"} <= set(reductions.__all__)
    assert {"MaxIPInstance", "ReductionError", "WrongAnswerError"} <= set(instances.__all__)
    assert all(hasattr(instances, n) for n in instances.__all__)
