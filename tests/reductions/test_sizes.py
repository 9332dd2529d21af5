"""Declared size maps: each reduction's against measured sizes, composed maps against real chains, and the bound."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

from instances.cnf import CNFFormula
from instances.errors import ParameterError
from reductions import path
from reductions.registry import FACTORIES
from reductions.sizes import PROBLEM_SIZES, compose, evaluate, implies, measure, report, size_mismatches, symbol


def test_every_registered_reduction_declares_sizes_in_its_problems_names():
    for (u, v), factory in FACTORIES.items():
        sizes = factory().sizes
        assert sizes, (u, v)
        assert set(sizes) <= set(PROBLEM_SIZES[v]), (u, v)
        free = set().union(*(sp.sympify(e).free_symbols for e in sizes.values()))
        assert free <= {symbol(k) for k in PROBLEM_SIZES[u]}, (u, v)


@pytest.mark.parametrize("mode", ["tight", "paper"])
def test_composed_map_equals_the_sizes_of_real_chains(mode):
    chain = path("k-SAT", "AAttC", mode=mode)
    stages = chain.sizes
    assert [s.problem for s in stages] == ["k-SAT", "OV", "Gap-ANN", "AAttC"]
    rng = np.random.default_rng(0)
    for N in range(1, 17):
        m = int(rng.integers(1, 3 * N + 2))
        f = CNFFormula([[int(v) * int(rng.choice([-1, 1])) for v in rng.integers(1, N + 1, 3)] for _ in range(m)],
                       num_vars=N)
        red = chain.reduce(f)
        for stage, instance in zip(stages, red.instances):
            predicted, measured = stage.at({"N": N, "m": m}), measure(instance)
            for name, value in predicted.items():
                assert math.isclose(value, measured[name], rel_tol=1e-9), (N, m, stage.problem, name)
                if isinstance(measured[name], int):
                    assert predicted[name] == measured[name] and isinstance(predicted[name], int)


def test_default_example_numbers_and_regime():
    aattc = path("k-SAT", "AAttC").sizes[-1]
    at = aattc.at({"N": 20, "m": 85})  # README: the shipped 20-variable example
    assert (at["n_q"], at["n_k"], at["d"]) == (2048, 2048, 1020)
    assert round(at["beta"], 1) == 7414.7 and round(at["log_t_tilde"], 1) == -2483.9
    assert round(at["B"], 1) == 86.1 and round(at["B"] / math.sqrt(math.log(2048)), 1) == 31.2
    # the symbolic map says why: B^2 = beta = 10 max(m, 1) ln(6 n_b) in tight mode, so B = Theta(sqrt(m log n))
    N, m = symbol("N"), symbol("m")
    beta = aattc.symbolic["beta"].subs({N: 20})
    assert sp.simplify(beta - 10 * sp.Max(1, m) * sp.log(6 * 2**10)) == 0


def test_size_mismatches_reports_a_wrong_measurement():
    chain = path("OV", "Gap-ANN")
    from instances.ov import OVInstance

    ov = OVInstance([[1, 0, 1]], [[0, 1, 0], [1, 1, 1]])
    g = chain.forward(ov)
    assert size_mismatches(chain.steps[0], ov, g) == []
    other = chain.forward(OVInstance([[1, 0]], [[0, 1]]))
    lines = size_mismatches(chain.steps[0], ov, other)
    assert any(line.startswith("declared size n_b") for line in lines) and any("size d" in x for x in lines)


def test_evaluate_keeps_integers_and_names_missing_symbols():
    out = evaluate({"n": 2 ** sp.ceiling(symbol("N") / 2), "x": sp.log(symbol("N"))}, {"N": 5})
    assert out["n"] == 8 and isinstance(out["n"], int) and math.isclose(out["x"], math.log(5))
    with pytest.raises(ParameterError, match="needs values for m"):
        evaluate({"d": symbol("m")}, {"N": 5})


@pytest.mark.parametrize(("source", "target", "time", "exponent"), [
    ("k-SAT", "AAttC", "n^(2-delta)", 1 - symbol("delta") / 2),
    ("k-SAT", "Attention", "n^(2-delta)*poly(d)", 1 - symbol("delta") / 2),
    ("k-SAT", "AAttC", "n^(3/2)", sp.Rational(3, 4)),
    ("OV", "Attention", "n^(2-delta)·poly(d)", 2 - symbol("delta")),
])
def test_conditional_bounds(source, target, time, exponent):
    d = implies(path(source, target).steps, time)
    assert sp.simplify(d.source_time - exponent) == 0
    assert d.steps and d.hypothesis.startswith("SETH" if source == "k-SAT" else "the OV hypothesis")
    assert d.as_dict()["source_time"] == str(d.source_time)
    if time == "n^(2-delta)":
        assert any("contradicting SETH" in line for line in d.steps)
        assert path(source, target).implies(time).source_time == d.source_time


def test_conditional_bound_errors():
    steps = path("k-SAT", "AAttC").steps
    with pytest.raises(ParameterError, match="cannot read"):
        implies(steps, "n^^")
    with pytest.raises(ParameterError, match="not q"):
        implies(steps, "n^q")
    with pytest.raises(ParameterError, match="no n_q"):
        implies(path("k-SAT", "Gap-ANN").steps, "n^2")
    with pytest.raises(ParameterError, match="at least one"):
        compose([])


def test_report_is_json_ready_and_states_the_regime():
    import json

    out = report(path("k-SAT", "AAttC").steps, at={"N": 20, "m": 85})
    assert [s["problem"] for s in out["stages"]] == ["k-SAT", "OV", "Gap-ANN", "AAttC"]
    assert out["stages"][-1]["value"]["n_q"] == 2048 and out["stages"][0]["symbolic"] == {"N": "N", "m": "m"}
    assert round(out["regime"]["B_over_sqrt_log_n"], 1) == 31.2 and round(out["regime"]["d_over_log_n"], 1) == 133.8
    json.dumps(out, allow_nan=False)
    assert "value" not in report(path("k-SAT", "AAttC").steps)["stages"][0]
