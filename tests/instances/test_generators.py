from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instances.errors import ParameterError
from instances.generators import planted_ksat, random_ksat


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5), st.integers(0, 30), st.integers(0, 2**32 - 1))
def test_random_ksat_shape_and_determinism(k, m, seed):
    n = k + 3
    f = random_ksat(n, m, k, seed=seed)
    assert f.num_vars == n and f.num_clauses == m
    assert all(len(c) == k and len({abs(x) for x in c}) == k for c in f.clauses)
    assert f.to_dimacs() == random_ksat(n, m, k, seed=seed).to_dimacs()


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(0, 60), st.integers(0, 2**32 - 1))
def test_planted_is_satisfied_by_hidden_assignment(k, m, seed):
    f, hidden = planted_ksat(k + 4, m, k, seed=seed)
    assert f.num_clauses == m and f.is_satisfied_by(hidden)


def test_generator_accepts_generator_and_rejects_bad_parameters():
    a = random_ksat(6, 5, 3, seed=np.random.default_rng(7))
    b = random_ksat(6, 5, 3, seed=7)
    assert a.clauses == b.clauses
    with pytest.raises(ParameterError, match="num_vars >= k"):
        random_ksat(2, 5, 3)
    with pytest.raises(ParameterError, match="at least 1"):
        random_ksat(2, 5, 0)


def test_random_3sat_threshold_is_mixed():
    sat = [random_ksat(12, 51, 3, seed=s).solve_cdcl() is not None for s in range(40)]
    assert 5 < sum(sat) < 35
