from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import instances.generators as generators
from instances.errors import ParameterError, ResourceLimitError
from instances.generators import estimate_memory, planted_ksat, random_ksat


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


@pytest.mark.parametrize(("args", "kwargs", "arrays", "block", "per_clause_list"), [
    # (num_vars, num_clauses[, k]); arrays: 24 bytes per literal (x2 planted); block: 2^25 + 16 N permutation keys
    # when drawing by permutation (N <= 64 or k^2 > N), else 0; lists: 3 copies of 56 + 40 k bytes per clause.
    ((10, 7), {}, 24 * 7 * 3, 2**25 + 160, 56 + 120),
    ((10, 7), {"planted": True}, 2 * 24 * 7 * 3, 2**25 + 160, 56 + 120),
    ((100, 20, 4), {}, 24 * 20 * 4, 0, 56 + 160),
    ((100, 20, 4), {"planted": True}, 2 * 24 * 20 * 4, 0, 56 + 160),
    ((100, 20, 11), {}, 24 * 20 * 11, 2**25 + 1600, 56 + 440),
    ((64, 9, 2), {}, 24 * 9 * 2, 2**25 + 1024, 56 + 80),
    ((65, 9, 2), {}, 24 * 9 * 2, 0, 56 + 80),
    ((7, 0, 5), {}, 0, 2**25 + 112, 56 + 200),
])
def test_estimate_memory_is_the_documented_sum(args, kwargs, arrays, block, per_clause_list):
    num_vars, num_clauses = args[0], args[1]
    expected = arrays + block + 3 * num_clauses * per_clause_list + 16 * num_vars + 2**20
    got = estimate_memory(*args, **kwargs)
    assert type(got) is int and got == expected


def test_memory_refusal_names_the_estimate():
    need = estimate_memory(100, 20, 4)
    assert random_ksat(100, 20, 4, seed=0, max_memory=need).num_clauses == 20  # exactly at the limit is fine
    with pytest.raises(ResourceLimitError) as info:
        random_ksat(100, 20, 4, seed=0, max_memory=need - 1)
    assert str(info.value).startswith("random 4-SAT with 100 variables and 20 clauses would need about 1.0")
    need = estimate_memory(10, 7, planted=True)
    with pytest.raises(ResourceLimitError, match=r"^planted 3-SAT with 10 variables and 7 clauses would need"):
        planted_ksat(10, 7, seed=0, max_memory=need - 1)
    assert planted_ksat(10, 7, seed=0, max_memory=need)[0].num_clauses == 7


def _reference_clauses(num_vars, count, k, seed, rng=None):
    """The documented stream, drawn in one piece: the first k entries of a random permutation per row (keys of one
    (count, num_vars) uniform draw) when num_vars <= 64 or k^2 > num_vars, else uniform variables with every row
    holding a repeat redrawn; then one uniform per literal, negated below 1/2."""
    rng = np.random.default_rng(seed) if rng is None else rng
    if num_vars <= 64 or k * k > num_vars:
        variables = np.argsort(rng.random((count, num_vars)), axis=1, kind="stable")[:, :k] + 1
    else:
        variables = rng.integers(1, num_vars + 1, size=(count, k))
        while True:
            bad = [r for r in range(count) if len(set(variables[r].tolist())) < k]
            if not bad:
                break
            variables[bad] = rng.integers(1, num_vars + 1, size=(len(bad), k))
    signs = np.where(rng.random((count, k)) < 0.5, -1, 1)
    return (variables * signs).tolist()


@pytest.mark.parametrize(("num_vars", "count", "k", "block_rows"), [
    (10, 7, 3, None), (10, 7, 3, 2), (64, 5, 8, 1), (65, 9, 9, 4), (81, 40, 9, None), (200, 60, 3, None),
    (100, 30, 10, None), (100, 12, 1, None),
])
def test_random_ksat_follows_the_documented_stream(monkeypatch, num_vars, count, k, block_rows):
    if block_rows is not None:  # tiny key blocks: the block-by-block draw must equal the one-piece draw
        monkeypatch.setattr(generators, "_BLOCK_BYTES", 16 * num_vars * block_rows)
    f = random_ksat(num_vars, count, k, seed=123)
    want = _reference_clauses(num_vars, count, k, 123)
    assert [list(c) for c in f.clauses] == want
    lits = np.abs(np.array(want))
    assert lits.min() >= 1 and lits.max() <= num_vars


def test_parameter_limits_are_exact_and_messages_whole():
    assert random_ksat(3, 2, 3, seed=0).num_vars == 3  # num_vars == k is enough
    assert random_ksat(3, 0, 3, seed=0).num_clauses == 0
    for args, message in [((3, -1, 3), "num_clauses must be non-negative, got -1"),
                          ((2, 1, 3), "k=3 distinct variables per clause need num_vars >= k, got num_vars=2"),
                          ((2, 1, 0), "clause width k must be at least 1, got 0")]:
        with pytest.raises(ParameterError) as info:
            random_ksat(*args)
        assert str(info.value) == message


def test_random_ksat_defaults_to_3_sat():
    assert [list(c) for c in random_ksat(10, 4, seed=9).clauses] == _reference_clauses(10, 4, 3, 9)


@pytest.mark.parametrize(("num_vars", "count", "k", "seed"), [(10, 20, 1, 0), (10, 20, 1, 1), (12, 30, 2, 4),
                                                              (9, 25, 3, 2), (100, 12, 3, 3)])
def test_planted_ksat_follows_the_documented_stream(num_vars, count, k, seed):
    """Hidden values first, then batches of max(16, 2 * missing) random clauses, keeping those the hidden
    assignment satisfies, until there are enough (k = 1 keeps about half, so several batches are needed)."""
    rng = np.random.default_rng(seed)
    hidden = rng.random(num_vars) < 0.5
    kept: list = []
    while len(kept) < count:
        batch = _reference_clauses(num_vars, max(16, 2 * (count - len(kept))), k, None, rng)
        kept += [c for c in batch if any((lit > 0) == hidden[abs(lit) - 1] for lit in c)]
    f, assignment = planted_ksat(num_vars, count, k, seed=seed)
    assert [list(c) for c in f.clauses] == kept[:count]
    assert assignment == [v if hidden[v - 1] else -v for v in range(1, num_vars + 1)]
    assert f.is_satisfied_by(assignment)
