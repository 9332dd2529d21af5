"""``finegrained graph --path ... --sizes [--at ...]`` and ``--implies`` (issue 13, items 3 and 4).

The evaluated sizes are compared with what real runs of the chain report in their ``stages`` for formulas with
those N and m, for N = 1..16, in both parameter modes and on both routes; one comparison goes through a real
``finegrained chain FILE --json`` run. Integers must be equal; real sizes (B, eps, beta, ...) agree to the relative
1e-9 that ``check_reduction`` allows, since the reductions compute them in float64.
"""

from __future__ import annotations

import json
import math

import pytest

from finegrained.chain import run_chain
from finegrained.cli import main
from instances.generators import random_ksat

#: chain stage key -> size name of --sizes (k-SAT is reported as num_vars / num_clauses by the chain)
_RENAME = {"num_vars": "N", "num_clauses": "m"}


def _graph_json(capsys, *argv: str) -> dict:
    capsys.readouterr()
    assert main(["graph", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _formula(n: int):
    # clause counts from 1 to 23 that vary with N (m = 0, where the guard Max(1, m) acts, is checked below)
    m = 1 + (7 * n) % 23
    return random_ksat(n, m, min(3, n), seed=100 + n)


def _assert_stages_match(declared: list[dict], measured: list[dict]) -> None:
    assert [s["problem"] for s in declared] == [s["problem"] for s in measured]
    for dec, meas in zip(declared, measured):
        checked = 0
        # the chain's k-SAT entry repeats num_clauses as its summary "d"; the size map calls it m
        meas = {k: v for k, v in meas.items() if not (dec["problem"] == "k-SAT" and k == "d")}
        for key, got in meas.items():
            name = _RENAME.get(key, key)
            if name not in dec["value"]:
                continue
            want = dec["value"][name]
            if isinstance(got, int) and not isinstance(got, bool):
                assert want == got and isinstance(want, int), (dec["problem"], name, want, got)
            else:
                assert math.isclose(want, got, rel_tol=1e-9), (dec["problem"], name, want, got)
            checked += 1
        # every size the chain reports (but the clause width k and the n / d summaries) was compared
        assert checked == len([k for k in meas if k not in ("problem", "k", "n")]), dec["problem"]


@pytest.mark.parametrize(("route", "target", "params"),
                         [("aattc", "AAttC", "tight"), ("aattc", "AAttC", "paper"), ("attention", "Attention", None)])
def test_evaluated_sizes_equal_real_runs(capsys, route, target, params):
    extra = ["--params", params] if params else []
    for n in range(1, 17):
        f = _formula(n)
        data = _graph_json(capsys, "--path", "k-SAT", target, "--sizes", "--at", f"N={n}", f"m={f.num_clauses}",
                           *extra)
        result = run_chain(f, params=params or "tight", route=route, cdcl=False)
        _assert_stages_match(data["stages"], result.stages)
        last = data["stages"][-1]["value"]
        if route == "aattc":  # the Lemma 4.7 parameters the run derived
            for name in ("beta", "log_t_tilde", "log_eps_a"):
                assert math.isclose(last[name], result.parameters[name], rel_tol=1e-9), (n, name)
        # the regime: d against ln n and B against sqrt(ln n), n = max(n_q, n_k)
        log_n = math.log(max(last["n_q"], last["n_k"], 2))
        assert math.isclose(data["regime"]["d_over_log_n"], last["d"] / log_n)
        assert math.isclose(data["regime"]["B_over_sqrt_log_n"], result.parameters["B"] / math.sqrt(log_n))


def test_a_real_chain_run_reports_the_declared_sizes(capsys, tmp_path):
    f = random_ksat(14, 40, 3, seed=7)
    path = tmp_path / "f.cnf"
    f.write(path)
    capsys.readouterr()
    assert main(["chain", str(path), "--json", "--no-cdcl"]) in (0,)
    run = json.loads(capsys.readouterr().out)
    data = _graph_json(capsys, "--path", "k-SAT", "AAttC", "--sizes", "--at", "N=14", "m=40")
    _assert_stages_match(data["stages"], run["stages"])


def test_symbolic_map_and_text(capsys):
    data = _graph_json(capsys, "--path", "k-SAT", "AAttC", "--sizes")
    stages = {s["problem"]: s for s in data["stages"]}
    assert "value" not in stages["AAttC"] and "d_over_log_n" not in data["regime"]
    assert stages["OV"]["symbolic"] == {"n_a": "2**ceiling(N/2)", "n_b": "2**floor(N/2)", "d": "m"}
    assert stages["AAttC"]["symbolic"]["d"] == "12*Max(1, m)"
    assert stages["AAttC"]["symbolic"]["n_k"] == "2*2**floor(N/2)"
    assert data["regime"]["symbolic"]["d_over_log_n"] == "24*m/((N + 2)*log(2))"
    capsys.readouterr()
    assert main(["graph", "--path", "k-SAT", "AAttC", "--sizes", "--at", "N=10", "m=42"]) == 0
    out = capsys.readouterr().out
    for text in ("n_q", "= 64", "d / ln n", "B / sqrt(ln n)", "Theta(sqrt(log n))", "12*Max(1, m)  = 504"):
        assert text in out, text


def test_clause_free_formula_uses_the_guard(capsys):
    data = _graph_json(capsys, "--path", "k-SAT", "Gap-ANN", "--sizes", "--at", "N=4", "m=0")
    assert data["stages"][-1]["value"]["d"] == 6  # 6 Max(1, m): the gadget keeps one coordinate


@pytest.mark.parametrize(("source", "target", "time", "exponent", "hypothesis"), [
    ("k-SAT", "AAttC", "n^(2-delta)", "1 - delta/2", "SETH"),
    ("k-SAT", "AAttC", "n^(2-delta)*poly(d)", "1 - delta/2", "SETH"),
    ("k-SAT", "Attention", "n^(2-delta)", "1 - delta/2", "SETH"),
    ("k-SAT", "AAttC", "n^(3/2)", "3/4", "SETH"),
    ("OV", "Attention", "n^(2-delta)", "2 - delta", "the OV hypothesis"),
])
def test_implies(capsys, source, target, time, exponent, hypothesis):
    data = _graph_json(capsys, "--path", source, target, "--implies", time)
    assert data["source_time"] == exponent
    assert data["hypothesis"].startswith(hypothesis)
    assert len(data["steps"]) >= 3
    capsys.readouterr()
    assert main(["graph", "--path", source, target, "--implies", time]) == 0
    out = capsys.readouterr().out
    assert "1. target:" in out and f"({exponent})" in out and "hypothesis:" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["--sizes"], "need --path"),
    (["--path", "k-SAT", "AAttC", "--at", "N=ten"], "expected a number"),
    (["--path", "k-SAT", "AAttC", "--at", "N=3.5", "m=2"], "non-negative integer"),
    (["--path", "k-SAT", "AAttC", "--at", "Q=3"], "unknown size"),
    (["--path", "k-SAT", "AAttC", "--at", "N=100000", "m=2"], "too large"),
    (["--path", "k-SAT", "AAttC", "--at", "N=10"], "needs values for m"),
    (["--path", "k-SAT", "Attention", "--sizes", "--params", "paper"], "unknown option"),
    (["--path", "k-SAT", "AAttC", "--sizes", "--format", "dot"], "print text or JSON"),
    (["--path", "k-SAT", "OV", "--implies", "n^2"], "no n_q and n_k"),
    (["--path", "k-SAT", "AAttC", "--implies", "n^(2-"], "cannot read the running time"),
    (["--params", "paper"], "the graph has none"),
])
def test_errors_are_one_line(capsys, argv, message):
    assert main(["graph", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
