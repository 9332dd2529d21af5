"""The whole chain against pysat on random formulas, SAT and UNSAT, k in {2, 3, 4}, N in 1..16, both modes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pysat.solvers import Solver

from finegrained import run_chain
from instances.cnf import CNFFormula
from instances.errors import ParameterError, ResourceLimitError
from instances.examples import example_path
from instances.generators import random_ksat

#: clause ratios near the satisfiability threshold of random k-SAT, so both answers are common
RATIO = {2: 1.0, 3: 4.26, 4: 9.9}
FORMULAS = 320


def formula(seed: int) -> CNFFormula:
    rng = np.random.default_rng(seed)
    k = (2, 3, 4)[seed % 3]
    n = 1 + (seed // 3) % 16
    m = max(1, int(round(RATIO[k] * n * rng.uniform(0.6, 1.5))))
    return random_ksat(n, m, min(k, n), seed=rng)


def glucose(f: CNFFormula) -> bool:
    with Solver(name="glucose4", bootstrap_with=f.clauses) as s:
        return bool(s.solve())


@pytest.mark.parametrize("params", ["tight", "paper"])
def test_chain_agrees_with_pysat(params):
    answers = []
    for seed in range(FORMULAS):
        f = formula(seed)
        r = run_chain(f, params=params, cdcl=False)
        expected = glucose(f)
        assert r.satisfiable == expected, f"seed {seed}: chain {r.satisfiable}, pysat {expected}"
        if r.satisfiable:
            assert r.verified and f.is_satisfied_by(r.assignment)
        answers.append(expected)
    assert min(sum(answers), len(answers) - sum(answers)) > FORMULAS // 4  # plenty of both


def messy_formula(seed: int) -> CNFFormula:
    """Duplicate literals, tautologies, the odd empty clause, wide clauses and unused variables."""
    rng = np.random.default_rng(10_000 + seed)
    n = int(rng.integers(0, 11))
    clauses = []
    for _ in range(int(rng.integers(0, 3 * n + 3))):
        width = 0 if rng.random() < 0.03 or n == 0 else int(rng.integers(1, 7))
        variables = rng.integers(1, n + 1, size=width) if n else np.zeros(0, dtype=int)
        clauses.append([int(v) * (1 if rng.random() < 0.5 else -1) for v in variables])
    return CNFFormula(clauses, num_vars=n + int(rng.integers(0, 3)))


@pytest.mark.parametrize("params", ["tight", "paper"])
def test_chain_agrees_with_pysat_on_messy_formulas(params):
    answers = []
    for seed in range(150):
        f = messy_formula(seed)
        r = run_chain(f, params=params, cdcl=False)
        expected = glucose(f)
        assert r.satisfiable == expected == (f.brute_force_solve() is not None), f"seed {seed}"
        if r.satisfiable:
            assert f.is_satisfied_by(r.assignment)
        answers.append(expected)
    assert 20 < sum(answers) < 130


def test_result_fields_and_json():
    f = CNFFormula.read(example_path("php-3-2"))
    r = run_chain(f)
    assert not r.satisfiable and r.assignment is None and r.verified and r.cdcl_satisfiable is False
    data = json.loads(r.to_json())
    assert data["schema"] == "finegrained.chain/1"
    assert [s["problem"] for s in data["stages"]] == ["k-SAT", "OV", "Gap-ANN", "AAttC"]
    assert all(isinstance(s["n"], int) and isinstance(s["d"], int) for s in data["stages"])
    att = data["stages"][-1]
    assert att["n_q"] == 8 + 8 and att["n_k"] == 16
    for key in ("beta", "log_tau", "log_t_tilde", "log_eps_a", "B"):
        assert isinstance(data["parameters"][key], float)
    assert {"oracle", "total"} <= set(data["timings"])


def test_bad_arguments():
    f = CNFFormula([[1]])
    with pytest.raises(ParameterError, match="unknown oracle"):
        run_chain(f, oracle="magic")
    with pytest.raises(ParameterError, match="unknown parameter mode"):
        run_chain(f, params="loose")
    with pytest.raises(ResourceLimitError, match=r"would need about .* bytes"):
        run_chain(CNFFormula([[1, 2]] * 100, num_vars=60))


def test_custom_oracle_is_a_black_box():
    calls = []

    def spy(Q, K, V, *, scale=None):
        from finegrained.attention import exact

        calls.append((Q.shape, K.shape, V.shape, scale))
        return exact(Q, K, V, scale=scale)

    r = run_chain(CNFFormula([[1, -2], [2]]), oracle=spy)
    assert r.satisfiable and r.oracle == "spy" and len(calls) == 1
