"""Gap-ANN builders against exact references: hypergeometric tails in integer arithmetic, T_max by brute force,
whole error messages, the planted builder's bookkeeping and the ``.npz`` layout (Definition 4.5, Remark 4.4)."""

from __future__ import annotations

import json
import math
import os
import re
import struct
import zipfile
from fractions import Fraction

import numpy as np
import pytest

import instances.gap_ann_builders as builders
from instances.errors import FinegrainedError, ParameterError, ResourceLimitError
from instances.gap_ann import GapANNInstance
from instances.gap_ann_builders import (
    check_planted_parameters,
    far_tail_probability,
    from_binary,
    load_gap_ann,
    load_memory_bytes,
    max_far_distance,
    planted,
    planted_memory_bytes,
    save_gap_ann,
)


def _exact(message: str) -> str:
    return "^" + re.escape(message) + "$"


def _cumulative(m: int) -> list[int]:
    """``sum_{y <= x} C(m, y)^2`` for ``x = 0..m``, by the recurrence ``C(m, x+1) = C(m, x) (m - x) / (x + 1)``."""
    out, c, total = [], 1, 0
    for x in range(m + 1):
        total += c * c
        out.append(total)
        c = c * (m - x) // (x + 1)
    return out


def _tail(d: int, T: float, cum: list[int] | None = None) -> Fraction:
    """``P[H < T]``: ``sum_{2x < T} C(m, x)^2 / C(2m, m)`` in integers."""
    m = d // 2
    cum = _cumulative(m) if cum is None else cum
    top = min(m, math.ceil(T / 2) - 1)
    return Fraction(cum[top] if top >= 0 else 0, math.comb(2 * m, m))


def _t_max(n_b: int, d: int) -> int:
    """The largest even ``T`` with ``n_b P[H < T] <= 1/2``, by trying every even ``T`` (0 if none)."""
    return max([T for T in range(2, d + 3, 2) if n_b * _tail(d, T) <= Fraction(1, 2)], default=0)


# --------------------------------------------------------------------------------------------- tails
@pytest.mark.parametrize("m", [1, 2, 5, 60])
def test_log_tail_terms_are_the_log_hypergeometric_masses(m):
    got = builders._log_tail_terms(m)
    want = [math.log(Fraction(math.comb(m, x) ** 2, math.comb(2 * m, m))) for x in range(m + 1)]
    assert got.dtype == np.float64 and got.shape == (m + 1,)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("d", [2, 4, 6, 10, 30])
def test_far_tail_probability_is_exact_in_the_integer_range(d):
    for T in (-3.0, 0.0, 0.5, 1.0, 2.0, 2.5, 4.0, d - 1.0, d, d + 1.0, d + 3.0):
        assert far_tail_probability(d, T) == float(_tail(d, T)), T
    assert far_tail_probability(d, 0.0) == 0.0 and far_tail_probability(d, d + 2.5) == 1.0


def test_far_tail_probability_in_log_space_beyond_the_integer_range():
    d = 2 * (builders._EXACT_HALF_DIM + 1)  # the first dimension summed in log space
    cum = _cumulative(d // 2)
    for T in (2.0, 64.0, d / 2 - 100, d / 2 - 1, d / 2 + 1, d / 2 + 200, float(d)):
        assert far_tail_probability(d, T) == pytest.approx(float(_tail(d, T, cum)), rel=1e-9), T
    assert far_tail_probability(d, 0.0) == 0.0
    assert far_tail_probability(d, d + 10.0) == pytest.approx(1.0, rel=1e-10)


def test_far_tail_probability_at_the_last_exact_dimension_is_correctly_rounded():
    d = 2 * builders._EXACT_HALF_DIM
    cum = _cumulative(d // 2)
    for T in (d / 2 - 150, d / 2 + 7):
        assert far_tail_probability(d, T) == float(_tail(d, T, cum))


@pytest.mark.parametrize("d", [0, -2, 3, 1])
def test_far_tail_probability_refuses_bad_dimensions(d):
    with pytest.raises(ParameterError, match=_exact(f"balanced vectors need an even positive dimension, got d={d}")):
        far_tail_probability(d, 2.0)


# --------------------------------------------------------------------------------------------- T_max
@pytest.mark.parametrize("d", [2, 4, 6, 8, 12, 20, 32])
def test_max_far_distance_matches_brute_force(d):
    for n_b in (1, 2, 3, 5, 10, 100, 10**4, 10**9):
        assert max_far_distance(n_b, d) == _t_max(n_b, d), (n_b, d)
    assert max_far_distance(1, 2) == 2  # 2 n_b P[x = 0] = 1 <= 1/2 * 2: the boundary counts as feasible


def test_max_far_distance_in_log_space_matches_integer_arithmetic():
    d = 2 * (builders._EXACT_HALF_DIM + 1)
    m = d // 2
    den, cum = math.comb(d, m), _cumulative(m)
    for n_b in (1, 1000, 2**40):
        x = max([y for y in range(m + 1) if 2 * n_b * cum[y] <= den], default=-1)  # n_b P[x' <= x] <= 1/2
        assert max_far_distance(n_b, d) == 2 * (x + 1), n_b
    assert max_far_distance(2**9000, d) == 0  # even x = 0 is too likely: nothing is feasible


@pytest.mark.parametrize(("n_b", "d", "message"), [
    (0, 8, "need at least one data vector, got n_b=0"),
    (-1, 8, "need at least one data vector, got n_b=-1"),
    (1, 0, "balanced vectors need an even positive dimension, got d=0"),
    (1, -4, "balanced vectors need an even positive dimension, got d=-4"),
    (1, 7, "balanced vectors need an even positive dimension, got d=7"),
])
def test_max_far_distance_errors(n_b, d, message):
    with pytest.raises(ParameterError, match=_exact(message)):
        max_far_distance(n_b, d)


# --------------------------------------------------------------------------------------------- parameters
def test_check_planted_parameters_defaults_and_boundaries():
    assert check_planted_parameters(8, 32, 5.0, 0.2, 2) == 4  # n_b defaults to n; h = largest even below t
    assert check_planted_parameters(8, 32, 4.0, 0.5, 2) == 2
    assert check_planted_parameters(8, 32, 3.0, 1.0, 2) == 2
    assert check_planted_parameters(8, 32, 4.5, 0.2, 2) == 4
    assert check_planted_parameters(1, 32, 2.0, 1.0, 1, n_b=1) == 0  # one query, one data vector
    assert check_planted_parameters(8, 32, 4.0, 0.5, 0, planted_distance=0) == 0
    assert check_planted_parameters(8, 32, 4.0, 0.5, 8, n_b=9) == 2


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    ((8, 0, 2.0, 1.0, 1), {}, "balanced vectors (weight d/2) need an even positive dimension, got d=0"),
    ((8, 31, 2.0, 1.0, 1), {}, "balanced vectors (weight d/2) need an even positive dimension, got d=31"),
    ((0, 32, 2.0, 1.0, 0), {"n_b": 4}, "need at least one query and one data vector, got n=0, n_b=4"),
    ((4, 32, 2.0, 1.0, 0), {"n_b": 0}, "need at least one query and one data vector, got n=4, n_b=0"),
    ((4, 32, 2.0, 1.0, 5), {"n_b": 6}, "planted must be between 0 and min(n, n_b) = 4, got 5"),
    ((4, 32, 2.0, 1.0, -1), {}, "planted must be between 0 and min(n, n_b) = 4, got -1"),
    ((4, 32, 0.0, 1.0, 1), {}, "Gap-ANN needs t > 0 and eps > 0, got t=0.0, eps=1.0"),
    ((4, 32, 2.0, 0.0, 1), {}, "Gap-ANN needs t > 0 and eps > 0, got t=2.0, eps=0.0"),
    ((4, 32, 2.0, -1.0, 1), {}, "Gap-ANN needs t > 0 and eps > 0, got t=2.0, eps=-1.0"),
    ((4, 32, math.inf, 1.0, 1), {}, "Gap-ANN needs t > 0 and eps > 0, got t=inf, eps=1.0"),
    ((4, 32, 2.0, math.nan, 1), {}, "Gap-ANN needs t > 0 and eps > 0, got t=2.0, eps=nan"),
    ((4, 32, -2.0, -1.0, 1), {}, "Gap-ANN needs t > 0 and eps > 0, got t=-2.0, eps=-1.0"),
    ((4, 32, 4.0, 0.5, 1), {"planted_distance": 3},
     "the planted distance must be an even integer in [0, min(t, d+1)), got 3 for t=4"),
    ((4, 32, 4.0, 0.5, 1), {"planted_distance": 4},
     "the planted distance must be an even integer in [0, min(t, d+1)), got 4 for t=4"),
    ((4, 32, 4.0, 0.5, 1), {"planted_distance": 6},
     "the planted distance must be an even integer in [0, min(t, d+1)), got 6 for t=4"),
    ((4, 32, 4.0, 0.5, 1), {"planted_distance": -2},
     "the planted distance must be an even integer in [0, min(t, d+1)), got -2 for t=4"),
])
def test_check_planted_parameters_errors(args, kwargs, message):
    with pytest.raises(ParameterError, match=_exact(message)):
        check_planted_parameters(*args, **kwargs)


def test_infeasible_message_names_the_limit_and_the_largest_usable_t():
    t_max = max_far_distance(128, 32)
    msg = (f"(t, eps) = (10, 1) is infeasible for n_b = 128, d = 32: random balanced pairs concentrate at distance "
           f"d/2 = 16 (std ~ 2.83), so the far threshold (1+eps)t = 20 must be at most T_max = {t_max} (the largest T "
           f"with n_b P[H < T] <= 1/2; ~ d/2 - sqrt(d ln(2 n_b)/2)); for eps = 1 use t <= {t_max / 2:.6g}, or raise d")
    with pytest.raises(ParameterError, match=_exact(msg)):
        check_planted_parameters(128, 32, 10.0, 1.0, 1)
    # exactly at the limit is feasible
    assert check_planted_parameters(128, 32, t_max / 2, 1.0, 1) == 2 * math.ceil(t_max / 4) - 2


# --------------------------------------------------------------------------------------------- planted
def _brute(inst: GapANNInstance) -> np.ndarray:
    return np.abs(inst.A[:, None, :].astype(int) - inst.B[None, :, :]).sum(axis=2)


def test_planted_bookkeeping_types_and_seed():
    p = planted(40, 32, 4.0, 1.0, 6, seed=7, n_b=30)
    assert p.min_distances.dtype == np.int64 and p.nearest.dtype == np.int64
    assert p.planted_rows.dtype == np.int64 and p.partners.dtype == np.int64
    assert p.instance.A.dtype == np.uint8 and p.seed == 7
    dist = _brute(p.instance)
    assert np.array_equal(p.min_distances, dist.min(axis=1)) and np.array_equal(p.nearest, dist.argmin(axis=1))
    q = planted(40, 32, 4.0, 1.0, 6, seed=np.random.default_rng(7), n_b=30)
    assert q.seed is None and np.array_equal(q.instance.A, p.instance.A)  # a Generator is used as given


def test_planted_with_one_data_vector_in_dimension_two():
    # the only column is the planted partner: no other column, so the row's far side holds vacuously
    p = planted(1, 2, 1.0, 1.0, 1, seed=0, n_b=1)
    assert p.rounds == 0 and p.planted_distance == 0
    assert p.instance.A.tolist() == p.instance.B.tolist() and p.instance.row_status().tolist() == [1]


def _violations(n, d, t, eps, k, seed, n_b, rounds):
    with pytest.raises(ParameterError) as info:
        planted(n, d, t, eps, k, seed, n_b=n_b, max_rounds=rounds)
    msg = str(info.value)
    assert msg.endswith(f"after {rounds} redraw rounds; (t, eps) = ({t:g}, {eps:g}) is too close to the feasibility "
                        f"limit T_max = {max_far_distance(n_b, d)} for n_b = {n_b}, d = {d}")
    return int(re.match(r"planted Gap-ANN: (\d+) rows still violate the far side", msg).group(1))


@pytest.mark.parametrize("seed", [5, 6])
def test_planted_counts_rounds_and_redraws_exactly(seed):
    """Replaying with max_rounds = 0, 1, ... gives the rows still violating after each round: their sum is the
    number of redraws and the first max_rounds that succeeds is the number of rounds."""
    n, d, n_b, k = 400, 64, 64, 64  # every column is a partner: redraws move partners (column 0 too)
    t = max_far_distance(n_b, d) / 1.5
    p = planted(n, d, t, 0.5, k, seed, n_b=n_b)
    assert p.rounds >= 2
    counts = [_violations(n, d, t, 0.5, k, seed, n_b, r) for r in range(p.rounds)]
    assert p.redrawn == sum(counts) and all(c > 0 for c in counts)
    again = planted(n, d, t, 0.5, k, seed, n_b=n_b, max_rounds=p.rounds)
    assert np.array_equal(again.instance.A, p.instance.A)
    dist = _brute(p.instance)
    assert (dist[p.planted_rows, p.partners] == p.planted_distance).all()
    near = dist < 1.5 * t
    assert near.sum() == k and np.array_equal(p.min_distances, dist.min(axis=1))
    assert np.array_equal(p.nearest, dist.argmin(axis=1))


def test_planted_memory_estimate_and_limit():
    n, n_b, d = 50, 30, 64
    need = (n + n_b) * d * 6 + n_b * d * 4 + (n + n_b) * 64 + 2**27
    assert planted_memory_bytes(n, d, n_b) == need
    assert planted_memory_bytes(n, d) == planted_memory_bytes(n, d, n)
    p = planted(n, d, 4.0, 1.0, 3, seed=1, n_b=n_b, max_memory=need)
    assert p.instance.n_b == n_b
    with pytest.raises(ResourceLimitError, match=r"^a planted Gap-ANN instance with n = 50, n_b = 30, d = 64 would"):
        planted(n, d, 4.0, 1.0, 3, seed=1, n_b=n_b, max_memory=need - 1)


# --------------------------------------------------------------------------------------------- from_binary
def test_from_binary_messages_name_the_matrix():
    with pytest.raises(ParameterError, match=_exact("A must contain only 0 and 1")):
        from_binary([[2, 0]], [[0, 1]], 1, 1)
    with pytest.raises(ParameterError, match=_exact("B must contain only 0 and 1")):
        from_binary([[1, 0]], [[0, 3]], 1, 1)
    with pytest.raises(ParameterError, match=_exact("A has dimension 2 but B has 3")):
        from_binary([[0, 1]], [[0, 1, 1]], 1, 1)


# --------------------------------------------------------------------------------------------- .npz layout
def test_saved_file_layout(tmp_path):
    p = planted(20, 16, 2.0, 1.0, 3, seed=2)
    path = tmp_path / "g.npz"
    save_gap_ann(path, p.instance, {**p.meta, "note": "x", "k": np.int64(3), "a": 1})
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        assert names == ["format.npy", "format_version.npy", "d.npy", "t.npy", "eps.npy", "A_packed.npy",
                         "B_packed.npy", "meta_json.npy", "meta.min_distances.npy", "meta.nearest.npy",
                         "meta.partners.npy", "meta.planted_rows.npy"]
        for info in infos:
            assert info.compress_type == zipfile.ZIP_STORED and info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.external_attr == 0o644 << 16
        raw = path.read_bytes()
        first = infos[0]
        extra_len = struct.unpack("<H", raw[first.header_offset + 28: first.header_offset + 30])[0]
        assert extra_len > 0  # a zip64 extra field in the local header (force_zip64)
    with np.load(path, allow_pickle=False) as data:
        assert str(data["format"]) == "finegrained.gap_ann"
        for key, dtype in (("format_version", np.int64), ("d", np.int64), ("t", np.float64), ("eps", np.float64)):
            assert data[key].dtype == dtype and data[key].shape == ()
        meta_json = str(data["meta_json"])
        assert list(json.loads(meta_json)) == sorted(json.loads(meta_json))  # sort_keys: same bytes every time
    _, meta = load_gap_ann(path)
    assert meta["k"] == 3 and meta["note"] == "x" and meta["a"] == 1 and meta["d"] == 16


def test_save_refuses_metadata_json_cannot_hold(tmp_path):
    inst = GapANNInstance(np.eye(2, dtype=np.uint8), np.eye(2, dtype=np.uint8), 1.0, 1.0)
    path = tmp_path / "m.npz"
    with pytest.raises(ParameterError, match=_exact(f"metadata for {path} is not JSON-serialisable: Out of range float "
                                                    "values are not JSON compliant")):
        save_gap_ann(path, inst, {"x": float("nan")})
    with pytest.raises(ParameterError, match=rf"^metadata for {re.escape(str(path))} is not JSON-serialisable: "):
        save_gap_ann(path, inst, {"x": {1, 2}})
    missing = tmp_path / "no" / "such" / "dir.npz"
    with pytest.raises(FinegrainedError, match=_exact(f"{missing}: cannot write: No such file or directory")):
        save_gap_ann(missing, inst)


def test_load_memory_bytes_counts_every_member_and_the_unpacking():
    u8 = np.dtype(np.uint8)
    headers = {"A_packed": ((3, 2), u8, 6), "B_packed": ((4, 2), u8, 8), "A": ((5, 7), u8, 35),
               "B": ((2, 3), u8, 6), "t": ((), np.dtype(np.float64), 8)}
    assert load_memory_bytes(headers) == 63 + 6 * 40 + 8 * 40 + 35 * 4 + 6 * 4 + 16 * 2**20
    assert load_memory_bytes({}) == 16 * 2**20


def _write(path, **arrays):
    np.savez(path, **arrays)
    return path


PACKED = {"A_packed": np.zeros((2, 1), np.uint8), "B_packed": np.zeros((2, 1), np.uint8), "t": 1.0, "eps": 1.0}
PLAIN = {"A": np.eye(2, dtype=np.uint8), "B": np.eye(2, dtype=np.uint8), "t": 1.0, "eps": 1.0}


@pytest.mark.parametrize(("arrays", "message"), [
    ({"A": np.eye(2)}, "missing key(s) eps, t; keys are ['A']"),
    ({**PACKED, "d": 8, "A_packed": np.zeros((2, 2), np.uint8)},
     "A_packed must be a uint8 matrix with 1 bytes per row for d = 8, got dtype uint8 and shape (2, 2)"),
    ({**PACKED, "d": 9, "B_packed": np.zeros((2, 1), np.uint8), "A_packed": np.zeros((2, 2), np.uint8)},
     "B_packed must be a uint8 matrix with 2 bytes per row for d = 9, got dtype uint8 and shape (2, 1)"),
    ({**PACKED, "d": 8, "A_packed": np.zeros(2, np.uint8)},
     "A_packed must be a uint8 matrix with 1 bytes per row for d = 8, got dtype uint8 and shape (2,)"),
    ({**PACKED, "d": 8, "A_packed": np.zeros((2, 1), np.int16)},
     "A_packed must be a uint8 matrix with 1 bytes per row for d = 8, got dtype int16 and shape (2, 1)"),
    ({**PACKED, "d": 4, "B_packed": np.ones((2, 1), np.uint8)}, "B_packed has nonzero padding bits beyond d = 4"),
    ({**PACKED, "d": np.array("four")}, "'d' must be a numeric scalar, got dtype <U4 shape ()"),
    ({**PLAIN, "format_version": np.array("1")}, "'format_version' must be a numeric scalar, got dtype <U1 shape ()"),
    ({**PLAIN, "eps": np.array(True)}, "'eps' must be a numeric scalar, got dtype bool shape ()"),
    ({**PLAIN, "format_version": 2}, "format version 2 is not supported (this toolkit reads 1..1)"),
    ({**PLAIN, "format_version": 0}, "format version 0 is not supported (this toolkit reads 1..1)"),
    ({**PLAIN, "meta_json": np.array("[1, 2]")}, "meta_json is not a JSON object (cannot convert dictionary update "
                                                 "sequence element #0 to a sequence)"),
    ({**PLAIN, "meta.partners": np.array([2])}, "meta.partners must be a 1-D array of indices in [0, 2)"),
    ({**PLAIN, "meta.nearest": np.array([0, 2])}, "meta.nearest must be a 1-D array of indices in [0, 2)"),
    ({**PLAIN, "meta.planted_rows": np.array([-1])}, "meta.planted_rows must be a 1-D array of indices in [0, 2)"),
    ({**PLAIN, "meta.planted_rows": np.array([[0]])}, "meta.planted_rows must be a 1-D array of indices in [0, 2)"),
    ({**PLAIN, "meta.planted_rows": np.array([0.0])}, "meta.planted_rows must be a 1-D array of indices in [0, 2)"),
    ({**PLAIN, "meta.planted_rows": np.array([0, 1]), "meta.partners": np.array([1])},
     "meta.planted_rows and meta.partners have different lengths"),
    ({**PLAIN, "meta.min_distances": np.array([0.0])}, "meta.min_distances must have one entry per row of A (2)"),
    ({**PLAIN, "meta.nearest": np.array([0, 1, 1])}, "meta.nearest must have one entry per row of A (2)"),
])
def test_load_error_messages_whole(tmp_path, arrays, message):
    path = _write(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ParameterError, match=_exact(f"{path}: {message}")):
        load_gap_ann(path)


def test_load_accepts_dimension_one_and_consistent_ground_truth(tmp_path):
    path = _write(tmp_path / "d1.npz", A_packed=np.array([[0x80]], np.uint8),
                  B_packed=np.array([[0], [0x80]], np.uint8), d=1, t=1.0, eps=1.0)
    inst, meta = load_gap_ann(path)
    assert inst.A.tolist() == [[1]] and inst.B.tolist() == [[0], [1]] and meta == {}
    path = _write(tmp_path / "gt.npz", **PLAIN, **{"meta.planted_rows": np.array([1]), "meta.partners": np.array([1]),
                                                   "meta.nearest": np.array([0, 1]),
                                                   "meta.min_distances": np.array([0, 0])})
    _, meta = load_gap_ann(path)
    assert meta["planted_rows"].tolist() == [1] and meta["nearest"].tolist() == [0, 1]


def test_load_refuses_non_files_and_npy_with_whole_messages(tmp_path):
    with pytest.raises(ParameterError, match=_exact(f"{tmp_path}: is a directory, expected a .npz file")):
        load_gap_ann(tmp_path)
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    with pytest.raises(ParameterError, match=_exact(f"{fifo}: is not a regular file, expected a .npz file")):
        load_gap_ann(fifo)
    np.save(tmp_path / "single.npy", np.eye(2))
    with pytest.raises(ParameterError, match=_exact(f"{tmp_path / 'single.npy'}: not a .npz archive (a single .npy "
                                                    "array?)")):
        load_gap_ann(tmp_path / "single.npy")


def test_load_memory_limit_names_the_file(tmp_path):
    path = _write(tmp_path / "ok.npz", **PLAIN)
    inst, _ = load_gap_ann(path, max_memory=2**30)
    assert inst.n_a == 2
    with pytest.raises(ResourceLimitError, match=rf"^loading {re.escape(str(path))} would need"):
        load_gap_ann(path, max_memory=1)


def test_an_object_array_in_the_metadata_is_one_clear_error(tmp_path):
    from instances.gap_ann import GapANNInstance
    from instances.gap_ann_builders import save_gap_ann

    g = GapANNInstance([[1, 0, 1, 0]], [[1, 1, 0, 0]], t=1.0, eps=1.0)
    with pytest.raises(ParameterError) as info:
        save_gap_ann(tmp_path / "x.npz", g, {"labels": np.array([{"a": 1}], dtype=object)})
    assert str(info.value) == "metadata entry 'labels' is an object array; give numbers, booleans or strings"
    assert not (tmp_path / "x.npz").exists()


def test_a_metadata_key_that_is_not_a_string_is_one_clear_error(tmp_path):
    from instances.gap_ann import GapANNInstance
    from instances.gap_ann_builders import save_gap_ann

    g = GapANNInstance([[1, 0, 1, 0]], [[1, 1, 0, 0]], t=1.0, eps=1.0)
    with pytest.raises(ParameterError) as info:
        save_gap_ann(tmp_path / "x.npz", g, {1: np.arange(2), "x": np.arange(2)})
    assert str(info.value) == "metadata keys must be strings, got 1"


def _saved(tmp_path, n_a: int = 3) -> tuple[os.PathLike, GapANNInstance]:
    rng = np.random.default_rng(5)
    inst = GapANNInstance(rng.integers(0, 2, (n_a, 8)), rng.integers(0, 2, (4, 8)), t=2.0, eps=1.0)
    path = tmp_path / "inst.npz"
    save_gap_ann(path, inst)
    return path, inst


def test_load_reports_an_open_failure_with_its_strerror(tmp_path, monkeypatch):
    path, _ = _saved(tmp_path)

    def refuse(p, mode="r", *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(p))

    monkeypatch.setattr(builders, "open", refuse, raising=False)  # root ignores file modes, so fail the open itself
    with pytest.raises(ParameterError, match=_exact(f"{path}: cannot read: Permission denied")):
        load_gap_ann(path)


def test_load_refuses_an_archive_numpy_cannot_open_after_the_header_scan(tmp_path):
    """zipfile finds an archive behind a prefix (self-extracting style), numpy.load does not: one clear error."""
    path, _ = _saved(tmp_path)
    odd = tmp_path / "prefixed.npz"
    odd.write_bytes(b"#!junk\n" + path.read_bytes())
    with pytest.raises(ParameterError) as info:
        load_gap_ann(odd)
    # numpy's own words (after the file name) vary between versions; they say it took the bytes for a pickle
    assert str(info.value).startswith(f"{odd}: not a readable .npz file (") and "pickle" in str(info.value)


def test_load_reports_a_member_whose_data_fail_their_checksum(tmp_path):
    """A flipped byte at the end of a big member passes the header scan (which reads only the header) and fails
    the CRC when numpy reads the member: a ParameterError naming the entry, not a raw BadZipFile."""
    path, inst = _saved(tmp_path, n_a=6000)
    with zipfile.ZipFile(path) as zf:
        last = zf.getinfo("B_packed.npy").header_offset - 1  # the last data byte of A_packed (stored, in order)
    raw = bytearray(path.read_bytes())
    raw[last] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ParameterError) as info:
        load_gap_ann(path)
    assert str(info.value) == f"{path}: corrupt entry (Bad CRC-32 for file 'A_packed.npy')"


def _brute_distances(p) -> np.ndarray:
    A, B = p.instance.A.astype(np.int64), p.instance.B.astype(np.int64)
    return (A[:, None, :] != B[None, :, :]).sum(axis=2)


def test_planted_with_every_column_a_partner_redraws_partners_of_any_index():
    """16 of 16 rows planted: every column of B (column 0 included) is a partner, and a redrawn planted row needs
    its partner redrawn with it. Checked against all 256 distances by brute force."""
    p = planted(16, 32, 5, 1.0, 16, seed=0)
    assert p.rounds >= 1 and p.planted_distance == 4 and 0 in p.partners
    D = _brute_distances(p)
    assert (D[p.planted_rows, p.partners] == 4).all()
    D[p.planted_rows, p.partners] = 10**6
    assert D.min() >= 10  # every other pair is at least (1 + eps) t away
    assert (p.instance.row_status() == p.expected_yes).all()


def test_planted_keeps_a_pair_at_exactly_the_far_threshold():
    """Case 2 needs distance >= (1+eps)t, so a pair at exactly 10 = (1+1)*5 is fine: with max_rounds = 0 this draw
    (which has one) must be accepted as it is."""
    p = planted(16, 32, 5, 1.0, 4, seed=2, max_rounds=0)
    assert p.rounds == 0 and p.redrawn == 0
    D = _brute_distances(p)
    D[p.planted_rows, p.partners] = 10**6
    assert D.min() == 10
    assert (p.instance.row_status() == p.expected_yes).all()
