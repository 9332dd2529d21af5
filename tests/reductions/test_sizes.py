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


# --- whole-value checks (mutation triage, issue 18) -------------------------------------------------------------

class _Step:
    """A declared size map without a reduction behind it, to drive compose/report/implies on chosen maps."""

    def __init__(self, source, target, sizes):
        self.source, self.target, self.sizes = source, target, sizes


def test_cached_sizes_builds_once_per_option_and_keeps_64():
    from reductions.sizes import cached_sizes

    calls = []

    @cached_sizes
    def build(x):
        calls.append(x)
        return {"n": symbol("n_a") * x}

    assert build(2) is build(2) and calls == [2]
    for x in range(3, 67):  # 64 more options: 2 is the least recently used one of 65
        build(x)
    assert len(calls) == 65
    build(66)
    assert len(calls) == 65  # still cached
    build(2)
    assert len(calls) == 66 and calls[-1] == 2  # evicted: the cache is bounded at 64 entries


def test_exact_number_is_the_rational_of_the_decimal_repr():
    from reductions.sizes import exact_number

    assert exact_number(1.25) == sp.Rational(5, 4) and exact_number(0.1) == sp.Rational(1, 10)
    assert exact_number(8) == 8 and isinstance(exact_number(8), sp.Rational)


def test_evaluate_is_correctly_rounded_at_float_and_integer_inputs():
    import mpmath

    t, n = symbol("t"), symbol("N")
    # float inputs are the exact binary value (not 1/10 for 0.1), carried at 30 digits and rounded once
    with mpmath.workdps(60):
        for x in (0.1, 0.44637452013158363, 1.9734310768123782):
            got = evaluate({"a": 7 * sp.log(t) / 3, "b": t**3 / 7, "c": 3 * t}, {"t": x})
            xm = mpmath.mpf(x)
            assert got == {"a": float(7 * mpmath.log(xm) / 3), "b": float(xm**3 / 7), "c": float(3 * xm)}
        assert evaluate({"c": 3 * t}, {"t": 0.1})["c"] == 0.1 * 3 != 0.3
        for v in (24, 46, 50, 79):
            got = evaluate({"a": 10 * sp.log(6 * n) / n, "b": 7 * sp.log(n) / 3}, {"N": v})
            assert got == {"a": float(10 * mpmath.log(6 * v) / v), "b": float(7 * mpmath.log(v) / 3)}


def test_evaluate_resolves_a_max_or_min_sympy_cannot_compare():
    n = symbol("n")
    x = sp.log(n) / sp.log(2)
    got = evaluate({"a": sp.Max(x, 3), "b": sp.Min(x, 3)}, {"n": 8})
    assert got == {"a": 3, "b": 3} and all(type(v) is int for v in got.values())


def test_evaluate_names_every_missing_symbol():
    with pytest.raises(ParameterError) as info:
        evaluate({"d": symbol("m") + symbol("N") + symbol("d")}, {"N": 5})
    assert str(info.value) == "size d = N + d + m needs values for d, m"


def test_compose_refuses_an_empty_chain_and_substitutes_simultaneously():
    with pytest.raises(ParameterError) as info:
        compose([])
    assert str(info.value) == "compose needs at least one reduction"
    na, nb = symbol("n_a"), symbol("n_b")
    swap = _Step("OV", "OV", {"n_a": nb, "n_b": na})
    mix = _Step("OV", "OV", {"n_a": na + 2 * nb})
    stages = compose([swap, mix])
    assert stages[-1].symbolic == {"n_a": nb + 2 * na}  # n_a -> n_b and n_b -> n_a at once, not one after the other
    # a source without size names: its stage is empty and the step's inputs stay free
    alien = compose([_Step("Foo", "OV", {"n_a": symbol("x")})])
    assert alien[0].symbolic == {} and alien[1].symbolic == {"n_a": symbol("x")}


def test_regime_is_its_formula_and_floors_log_n_at_log_2():
    assert regime_of(2, 3, 5.0) == {"n": 3, "log_n": math.log(3), "d_over_log_n": 2 / math.log(3),
                                    "B_over_sqrt_log_n": 5.0 / math.sqrt(math.log(3))}
    assert regime_of(2, 2, 1.0)["log_n"] == math.log(2) and regime_of(2, 1, 1.0)["log_n"] == math.log(2)


def regime_of(d, n, B):
    from reductions.sizes import regime

    return regime({"n_q": n, "n_k": 1, "d": d, "B": B})


def test_report_states_the_regime_when_the_last_stage_has_exactly_its_sizes():
    step = _Step("OV", "Attention", {"n_q": symbol("n_a"), "n_k": symbol("n_b"), "d": symbol("d"),
                                     "B": sp.Integer(2)})
    out = report([step], at={"n_a": 4, "n_b": 8, "d": 3})
    assert out["regime"]["n"] == 8 and out["regime"]["log_n"] == math.log(8)


def test_derivations_are_their_whole_text():
    d = implies(path("OV", "Attention").steps, "n^(2-delta)*poly(d)")
    assert d.as_dict() == {
        "target_time": "n**(2 - delta)", "source_time": "2 - delta",
        "steps": ["target: Attention in time T(n) = n**(2 - delta), n = max(n_q, n_k) = Max(n_a, n_b + 1)",
                  "the target's dimension is d + 1: polynomial in the source sizes, so its factors are poly(d)",
                  "with n_a = n_b: log n / log n_a -> 1",
                  "so OV with n vectors is solved in n^(2 - delta) poly(d)"],
        "hypothesis": "the OV hypothesis: for every delta > 0 there is a c such that OV with n vectors in dimension "
                      "c log n is not solvable in time n^(2-delta)"}
    assert d.target_time == symbol("n") ** (2 - symbol("delta"))
    k = implies(path("k-SAT", "OV").steps + [_Step("OV", "Attention", {"n_q": symbol("n_a"), "n_k": symbol("n_b"),
                                                                        "d": symbol("d")})], "n^(2-delta)")
    assert k.steps[1:] == [
        "the target's dimension is m: polynomial in the source sizes, so its factors are poly(N, m)",
        "drop ceiling/floor (a factor 2^O(1)): n = 2**(N/2)",
        "log2 T(n) / N -> 1 - delta/2 as N -> oo",
        "so k-SAT on N variables is solved in 2^((1 - delta/2) N) poly(N, m), plus 2^(N/2) poly(N, m) for the "
        "reductions",
        "for every delta > 0 the exponent is < 1 for every k, contradicting SETH"]
    # no dimension declared: no dimension line
    bare = implies([_Step("OV", "Attention", {"n_q": symbol("n_a"), "n_k": symbol("n_b")})], "n^2")
    assert bare.source_time == 2 and not any("dimension" in line for line in bare.steps)


@pytest.mark.parametrize(("time", "exponent"), [
    ("n^(2-delta)*d^2", 1 - symbol("delta") / 2),
    ("n^(2-delta)*poly(d)*d", 1 - symbol("delta") / 2),
    ("n^2.5", sp.Rational(5, 4)),
    ("n^1000", 500),
    ("n" + " " * 197 + "*1", sp.Integer(1) / 2),  # 200 characters: the longest accepted
])
def test_running_times_of_the_allowed_shapes(time, exponent):
    assert sp.simplify(implies(path("k-SAT", "AAttC").steps, time).source_time - exponent) == 0


def test_every_refused_running_time_is_its_whole_message():
    steps = path("k-SAT", "AAttC").steps
    shape = "must be n^(a) times powers of d and of log n (poly(d) allowed): the factor {} is not of that form"
    cases = [
        ("n^2 & 1", "cannot read the running time 'n^2 & 1': use n, d, delta, log(...), poly(...), numbers and "
                    "+ - * / ^ ( ), e.g. n^(2-delta)*poly(d)"),
        ("n" + " " * 198 + "*1", f"cannot read the running time {'n' + ' ' * 198 + '*1'!r}: use n, d, delta, "
                                 "log(...), poly(...), numbers and + - * / ^ ( ), e.g. n^(2-delta)*poly(d)"),
        ("n^q*x", "the running time may use n, d, delta, log and poly(...), not q, x"),
        ("n^(12345678)", "the running time 'n^(12345678)' has a number too large to be a running-time exponent"),
        ("n^(0/0)", "cannot read the running time 'n^(0/0)': it is not a finite real expression"),
        ("n^(1/0)", "cannot read the running time 'n^(1/0)': it is not a finite real expression"),
        ("n^2*(1/0)", "cannot read the running time 'n^2*(1/0)': it is not a finite real expression"),
        ("n^2*(-1)^(1/2)", "cannot read the running time 'n^2*(-1)^(1/2)': it is not a finite real expression"),
        ("3*2^n", "the running time '3*2^n' " + shape.format("2**n")),
        ("(n+1)^2", "the running time '(n+1)^2' " + shape.format("(n + 1)**2")),
        ("(n+d)^2", "the running time '(n+d)^2' " + shape.format("(d + n)**2")),
        ("n^1001", "the running time 'n^1001' " + shape.format("n**1001")),
    ]
    for time, message in cases:
        with pytest.raises(ParameterError) as info:
            implies(steps, time)
        assert str(info.value) == message, time
    with pytest.raises(ParameterError) as info:
        implies(path("Gap-ANN", "AAttC").steps, "n^2")
    assert str(info.value) == "conditional bounds are derived from k-SAT or OV, not Gap-ANN"



def test_a_log_d_factor_keeps_the_exponent_finite():
    """log(d) is a polylog factor of the source sizes: it must not become log 1 = 0 and a 2^(zoo N) bound."""
    delta = symbol("delta")
    for time in ("n^(2-delta)*log(d)", "n^(2-delta)*log(n)^3*d^2"):  # the second one sympy could not take at d = 1
        assert sp.simplify(implies(path("k-SAT", "AAttC").steps, time).source_time - (1 - delta / 2)) == 0
        assert sp.simplify(implies(path("OV", "AAttC").steps, time).source_time - (2 - delta)) == 0


@pytest.mark.parametrize(("time", "refutes"), [("n^(2-delta)", True), ("n^(2-delta)*log(n)", True),
                                               ("n^(2+delta)", False), ("n^2", False), ("n^2*d^2", False)])
def test_only_a_truly_subquadratic_time_contradicts_seth(time, refutes):
    steps = implies(path("k-SAT", "AAttC").steps, time).steps
    assert ("for every delta > 0 the exponent is < 1 for every k, contradicting SETH" in steps) == refutes
    assert ("the exponent is not below 1 for every delta > 0, so this time contradicts nothing" in steps) != refutes
