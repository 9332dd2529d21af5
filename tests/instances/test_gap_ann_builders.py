"""Gap-ANN builders: Remark 4.4 balancing, planted instances (guarantees, balance, determinism), .npz files."""

from __future__ import annotations

import doctest
import hashlib
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import instances.gap_ann_builders as builders
from instances.errors import FinegrainedError, ParameterError
from instances.gap_ann import NO, YES, GapANNInstance
from instances.gap_ann_builders import (
    far_tail_probability,
    from_binary,
    load_gap_ann,
    max_far_distance,
    planted,
    save_gap_ann,
)


def test_doctests():
    """The docstring examples run and pass; a module that lost its examples fails here (zero attempted)."""
    result = doctest.testmod(builders, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted >= 8, result


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 9), st.integers(1, 8), st.integers(0, 2**32 - 1))
def test_from_binary_keeps_every_rows_case(n_a, n_b, d, t, seed):
    rng = np.random.default_rng(seed)
    A, B = rng.integers(0, 2, (n_a, d)), rng.integers(0, 2, (n_b, d))
    original = GapANNInstance(A, B, t, 0.5)
    balanced = from_binary(A, B, t, 0.5)
    assert balanced.is_balanced() and balanced.dim == 2 * d and balanced.t == 2 * t
    assert np.array_equal(balanced.min_distances(), 2 * original.min_distances())
    assert np.array_equal(balanced.row_status(), original.row_status())


def test_from_binary_rejects_mismatched_dimensions():
    with pytest.raises(ParameterError, match="dimension"):
        from_binary([[0, 1]], [[0, 1, 1]], 1, 1)


def test_tail_probability_matches_enumeration():
    # d = 6: all C(6,3) = 20 balanced vectors against a fixed one
    import itertools

    vecs = [v for v in itertools.product((0, 1), repeat=6) if sum(v) == 3]
    dists = np.array([sum(x != y for x, y in zip(vecs[0], v)) for v in vecs])
    for T in (0.5, 2, 2.5, 4, 5, 7):
        assert far_tail_probability(6, T) == pytest.approx(np.mean(dists < T))
    # the normal approximation of T_max is close
    assert abs(max_far_distance(2**14, 256) - (128 - np.sqrt(256 * np.log(2**15) / 2))) < 6


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 80), st.sampled_from([8, 16, 32, 64]), st.integers(0, 2**32 - 1), st.data())
def test_planted_guarantees(n, d, seed, data):
    n_b = data.draw(st.integers(1, 80))
    t_max = max_far_distance(n_b, d)
    if t_max < 2:
        with pytest.raises(ParameterError, match="infeasible"):
            planted(n, d, 1.0, 1.0, 0, seed, n_b=n_b)
        return
    eps = data.draw(st.sampled_from([0.25, 0.5, 1.0]))
    t = data.draw(st.floats(0.5, t_max / (1 + eps)))
    k = data.draw(st.integers(0, min(n, n_b)))
    p = planted(n, d, t, eps, k, seed, n_b=n_b)
    inst = p.instance
    assert inst.is_balanced() and inst.n_a == n and inst.n_b == n_b
    dist = np.abs(inst.A[:, None, :].astype(int) - inst.B[None, :, :]).sum(axis=2)
    expected = np.full(n, NO)
    expected[p.planted_rows] = YES
    assert np.array_equal(inst.row_status(), expected)
    near = dist < (1 + eps) * t
    assert near.sum() == k and all(near[i, j] for i, j in zip(p.planted_rows, p.partners))
    assert (dist[p.planted_rows, p.partners] == p.planted_distance).all() and p.planted_distance < t
    assert np.array_equal(p.min_distances, dist.min(axis=1)) and np.array_equal(p.nearest, dist.argmin(axis=1))


def test_planted_redraws_violating_rows_at_the_limit():
    n, d = 512, 64
    p = planted(n, d, max_far_distance(n, d) / 1.5, 0.5, 32, seed=5)
    assert p.rounds >= 1 and p.redrawn >= 1
    assert np.array_equal(p.instance.row_status() == YES, p.expected_yes)
    assert np.array_equal(p.instance.min_distances(), p.min_distances)


def test_planted_is_deterministic_and_rejects_infeasible_parameters():
    a, b = planted(128, 32, 4, 1.0, 10, seed=9), planted(128, 32, 4, 1.0, 10, seed=9)
    assert np.array_equal(a.instance.A, b.instance.A) and np.array_equal(a.instance.B, b.instance.B)
    assert not np.array_equal(a.instance.A, planted(128, 32, 4, 1.0, 10, seed=10).instance.A)
    with pytest.raises(ParameterError, match=r"infeasible for n_b = 128, d = 32.*T_max"):
        planted(128, 32, 10, 1.0, 1, seed=0)
    with pytest.raises(ParameterError, match="even"):
        planted(8, 31, 2, 1.0, 1, seed=0)
    with pytest.raises(ParameterError, match="planted must be"):
        planted(8, 32, 2, 1.0, 9, seed=0)
    with pytest.raises(ParameterError, match="planted distance"):
        planted(8, 32, 4, 1.0, 1, seed=0, planted_distance=3)
    with pytest.raises(ParameterError, match="redraw rounds"):
        planted(256, 32, max_far_distance(256, 32) / 1.5, 0.5, 4, seed=0, max_rounds=0)


def test_save_load_round_trip_and_byte_identical(tmp_path):
    p = planted(200, 64, 6, 1.0, 12, seed=3, n_b=150)
    f1, f2 = tmp_path / "a.npz", tmp_path / "b.npz"
    save_gap_ann(f1, p.instance, p.meta)
    save_gap_ann(f2, planted(200, 64, 6, 1.0, 12, seed=3, n_b=150).instance,
                 planted(200, 64, 6, 1.0, 12, seed=3, n_b=150).meta)
    assert hashlib.sha256(f1.read_bytes()).digest() == hashlib.sha256(f2.read_bytes()).digest()
    inst, meta = load_gap_ann(f1)
    assert np.array_equal(inst.A, p.instance.A) and np.array_equal(inst.B, p.instance.B)
    assert (inst.t, inst.eps) == (p.instance.t, p.instance.eps)
    assert meta["seed"] == 3 and meta["generator"] == "planted" and meta["planted"] == 12
    assert np.array_equal(meta["planted_rows"], p.planted_rows) and np.array_equal(meta["partners"], p.partners)
    assert np.array_equal(meta["min_distances"], p.min_distances)
    # a hand-written file with plain matrices loads too
    np.savez(tmp_path / "plain.npz", A=np.eye(3, dtype=np.uint8), B=np.ones((2, 3), np.uint8), t=2.0, eps=0.5)
    inst, meta = load_gap_ann(tmp_path / "plain.npz")
    assert inst.n_a == 3 and inst.n_b == 2 and meta == {}


def _write(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"A": np.eye(2), "B": np.eye(2)}, "missing key"),
        ({"A": np.eye(2), "t": 1.0, "eps": 1.0}, "expected keys"),
        ({"A": np.full((2, 2), 2), "B": np.eye(2), "t": 1.0, "eps": 1.0}, "only 0 and 1"),
        ({"A": np.eye(2), "B": np.ones((2, 3)), "t": 1.0, "eps": 1.0}, "dimension"),
        ({"A": np.ones(3), "B": np.eye(2), "t": 1.0, "eps": 1.0}, "2-D"),
        ({"A_packed": np.ones((2, 2), np.uint8), "B_packed": np.ones((2, 1), np.uint8), "d": 8, "t": 1.0,
          "eps": 1.0}, "bytes per row"),
        ({"A_packed": np.ones((2, 1), np.uint8), "B_packed": np.ones((2, 1), np.uint8), "d": 4, "t": 1.0,
          "eps": 1.0}, "padding"),
        ({"A": np.eye(2), "B": np.eye(2), "t": -1.0, "eps": 1.0}, "positive"),
        ({"A": np.eye(2), "B": np.eye(2), "t": np.ones(2), "eps": 1.0}, "scalar"),
        ({"A": np.eye(2), "B": np.eye(2), "t": 1.0, "eps": 1.0, "format_version": 99}, "format version"),
        ({"A": np.eye(2), "B": np.eye(2), "t": 1.0, "eps": 1.0, "meta.planted_rows": np.array([5])}, "meta.planted"),
        # a non-integral dimension or version is refused, not truncated (d = 4.7 used to load as d = 4)
        ({"A_packed": np.zeros((2, 1), np.uint8), "B_packed": np.zeros((2, 1), np.uint8), "d": 4.7, "t": 1.0,
          "eps": 1.0}, "'d' must be an integer, got 4.7"),
        ({"A_packed": np.zeros((2, 1), np.uint8), "B_packed": np.zeros((2, 1), np.uint8), "d": np.nan, "t": 1.0,
          "eps": 1.0}, "'d' must be an integer"),
        ({"A": np.eye(2), "B": np.eye(2), "t": 1.0, "eps": 1.0, "format_version": 1.5}, "'format_version' must be"),
        ({"A_packed": np.zeros((2, 0), np.uint8), "B_packed": np.zeros((2, 0), np.uint8), "d": 0, "t": 1.0,
          "eps": 1.0}, "d must be positive"),
        # empty sets and dimension 0 are refused at load time, with the file name
        ({"A": np.zeros((0, 3), np.uint8), "B": np.ones((2, 3), np.uint8), "t": 1.0, "eps": 1.0}, "A has no rows"),
        ({"A": np.zeros((2, 3), np.uint8), "B": np.ones((0, 3), np.uint8), "t": 1.0, "eps": 1.0}, "B has no rows"),
        ({"A_packed": np.zeros((0, 1), np.uint8), "B_packed": np.zeros((2, 1), np.uint8), "d": 4, "t": 1.0,
          "eps": 1.0}, "A has no rows"),
        ({"A": np.zeros((2, 0), np.uint8), "B": np.zeros((2, 0), np.uint8), "t": 1.0, "eps": 1.0}, "dimension 0"),
        ({"A": np.eye(2), "B": np.eye(2), "t": np.nan, "eps": 1.0}, "positive"),
    ],
)
def test_load_errors_name_the_file(tmp_path, arrays, message):
    path = _write(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ParameterError, match=message) as info:
        load_gap_ann(path)
    assert str(info.value).startswith(str(path))


def test_load_missing_and_garbage_files(tmp_path):
    with pytest.raises(ParameterError, match="nope.npz: no such file"):
        load_gap_ann(tmp_path / "nope.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(FinegrainedError, match="junk.npz"):
        load_gap_ann(tmp_path / "junk.npz")
    np.save(tmp_path / "single.npy", np.eye(2))
    with pytest.raises(FinegrainedError, match="single.npy"):
        load_gap_ann(tmp_path / "single.npy")
    with zipfile.ZipFile(tmp_path / "empty.npz", "w"):
        pass
    with pytest.raises(ParameterError, match="missing key"):
        load_gap_ann(tmp_path / "empty.npz")


def test_load_accepts_integral_float_dimension(tmp_path):
    path = _write(tmp_path / "float_d.npz", A_packed=np.full((2, 1), 0b1100_0000, np.uint8),
                  B_packed=np.full((3, 1), 0b0011_0000, np.uint8), d=4.0, t=1.0, eps=1.0, format_version=1.0)
    inst, _ = load_gap_ann(path)
    assert (inst.n_a, inst.n_b, inst.dim) == (2, 3, 4) and inst.is_balanced()
