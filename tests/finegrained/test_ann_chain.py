"""The attention route on Gap-ANN instances agrees with the direct solver, row by row."""

from __future__ import annotations

import json

import numpy as np
import pytest

from finegrained.ann_chain import attention_decider, run_ann_chain
from finegrained.gap_ann_solvers import approximate_nearest_neighbour
from instances.errors import ResourceLimitError
from instances.gap_ann import GapANNInstance
from instances.gap_ann_builders import max_far_distance, planted


@pytest.mark.parametrize(("n", "d", "params"), [(256, 64, "tight"), (256, 128, "paper"), (64, 32, "tight")])
def test_attention_agrees_with_direct_on_planted(n, d, params):
    p = planted(n, d, max_far_distance(n, d) / 1.5, 0.5, n // 8, seed=n + d)
    r = run_ann_chain(p.instance, params=params, expected=p.expected_yes)
    assert r.agree_with_direct and r.ground_truth_agrees and r.disagreement_count == 0
    assert r.rows == n and int(r.yes.sum()) == n // 8
    data = json.loads(r.to_json())
    assert data["schema"] == "finegrained.ann_chain/1" and data["agree_with_direct"] is True
    assert data["decision"]["min_yes_margin"] > 0 > data["decision"]["max_no_margin"]
    assert set(data["timings"]) == {"reduction", "oracle", "decode", "direct", "total"}
    assert data["parameters"]["n"] == n and data["instance"]["balanced_by_remark_4_4"] is False


def test_unbalanced_instance_is_balanced_and_outside_promise_rows_are_reported():
    rng = np.random.default_rng(1)
    A, B = rng.integers(0, 2, (30, 12)), rng.integers(0, 2, (25, 12))
    inst = GapANNInstance(A, B, 3.0, 0.5)
    r = run_ann_chain(inst, direct_method="ball")
    assert r.instance["balanced_by_remark_4_4"] and r.instance["t_balanced"] == 6.0
    assert r.in_promise_errors == 0
    assert np.array_equal(r.status, inst.row_status())


def test_wrong_oracle_is_caught():
    p = planted(64, 32, 4, 1.0, 8, seed=0)

    def always_zero(Q, K, V, *, scale=None):
        from instances.logspace import LogArray

        return LogArray(np.zeros((Q.shape[0], 1), np.int8), np.full((Q.shape[0], 1), -np.inf))

    r = run_ann_chain(p.instance, oracle=always_zero, expected=p.expected_yes)
    assert not r.agree_with_direct and r.in_promise_errors == 8 and r.ground_truth_agrees is False
    assert r.disagreements[0]["attention"] is False and r.disagreements[0]["direct"] is True
    with pytest.raises(ResourceLimitError):
        run_ann_chain(p.instance, max_memory=1000)


def test_ann_with_attention_decider_matches_direct():
    p = planted(48, 32, 4, 1.0, 4, seed=2)
    a = approximate_nearest_neighbour(p.instance, 0.5, decider=attention_decider())
    b = approximate_nearest_neighbour(p.instance, 0.5, decider=attention_decider(params="paper"))
    c = approximate_nearest_neighbour(p.instance, 0.5)
    assert a.guarantee_holds and b.guarantee_holds and a.distance == c.distance == p.planted_distance
