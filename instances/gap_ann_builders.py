r"""Builders for Hamming Gap-ANN instances (Alman & Song, Definition 4.5 and Remark 4.4), and their ``.npz`` files.

Three ways to get a :class:`~instances.gap_ann.GapANNInstance`:

* :func:`from_binary` balances arbitrary 0/1 vectors by Remark 4.4 (``v -> [v, 1 - v]``).
* :func:`planted` draws balanced vectors (weight ``d/2``) with a known answer: ``planted`` rows of ``A`` get a
  partner in ``B`` at distance ``< t``, and every other pair is at distance ``>= (1+eps) t``. The guarantee is
  checked by an all-pairs scan and violating rows are redrawn; the ground truth is kept.
* :func:`load_gap_ann` reads a file written by :func:`save_gap_ann` (or any ``.npz`` with 0/1 matrices ``A``,
  ``B`` and scalars ``t``, ``eps``).

Feasibility of planted instances
--------------------------------
Two independent uniformly random balanced vectors of dimension ``d = 2m`` overlap in ``o`` ones, with ``o``
hypergeometric: ``P[o] = C(m, o)^2 / C(2m, m)``. Their distance is ``H = 2(m - o)``, with mean ``d/2`` and standard
deviation ``sqrt(d)/2 * sqrt(d/(d-1))``. A row of ``A`` meets the far side of the promise against all ``n_b``
vectors of ``B`` with probability at least ``1 - n_b P[H < (1+eps) t]`` (union bound, exact tail). The builder
requires

.. math::  n_b \, P[H < (1+\epsilon) t] \le 1/2,

so that each redraw of a violating row succeeds with probability at least 1/2 and the redraw rounds end after
about ``log2 n_a`` rounds. :func:`max_far_distance` gives the largest far threshold ``T_max`` this allows; by the
normal approximation ``T_max ~ d/2 - sqrt(d ln(2 n_b) / 2)``. Planted pairs sit at the largest even distance below
``t`` (balanced vectors are at even distances), so only ``(1+eps) t <= T_max`` constrains ``(t, eps)``.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from .errors import FinegrainedError, ParameterError
from .gap_ann import GapANNInstance, balance
from .io import check_memory_limit, npz_headers
from .ov import as_binary_matrix

#: Value of the ``format`` entry of files written by :func:`save_gap_ann`.
FORMAT = "finegrained.gap_ann"
#: Version of the file layout; :func:`load_gap_ann` reads every version up to this one.
FORMAT_VERSION = 1
#: Score-tile size (entries) of the verification scans; 16 MiB of float32 stays in the last-level cache's reach.
_TILE_ENTRIES = 2**22
#: Largest integer every float32 represents exactly: 0/1 inner products below it are exact in float32 GEMM.
_FLOAT32_EXACT = 2**24
#: Fixed zip timestamp, so that the same instance gives the same bytes.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


# --------------------------------------------------------------------------------------------- from_binary
def from_binary(A, B, t: float, eps: float) -> GapANNInstance:
    """Balance arbitrary 0/1 vectors by Remark 4.4 and return the Gap-ANN instance Lemma 4.7 needs.

    Every vector ``v in {0,1}^d`` becomes ``[v, 1 - v] in {0,1}^{2d}`` with exactly ``d`` ones, and every distance
    doubles: ``||a~ - b~||_0 = 2 ||a - b||_0``.

    Convention: ``t`` is given in the **original** metric. The returned instance has dimension ``2d``, threshold
    ``2t`` and the same ``eps``, so Case 1 (``H < t``) and Case 2 (``H >= (1+eps) t``) of Definition 4.5 hold for
    exactly the same rows before and after balancing.

    Parameters
    ----------
    A, B : array_like of 0/1, shapes (n_a, d) and (n_b, d)
    t, eps : float
        Threshold and gap of Definition 4.5 in the original metric.

    Examples
    --------
    >>> inst = from_binary([[1, 0, 0]], [[1, 1, 0], [0, 1, 1]], t=2, eps=0.5)
    >>> inst.dim, inst.t, inst.eps, inst.is_balanced(), inst.min_distances().tolist()
    (6, 4.0, 0.5, True, [2.0])
    """
    A = as_binary_matrix("A", A)
    B = as_binary_matrix("B", B)
    if A.shape[1] != B.shape[1]:
        raise ParameterError(f"A has dimension {A.shape[1]} but B has {B.shape[1]}")
    return GapANNInstance(balance(A), balance(B), 2.0 * float(t), float(eps))


# --------------------------------------------------------------------------------------------- feasibility
#: Up to this half-dimension the hypergeometric tails are summed in exact integer arithmetic.
_EXACT_HALF_DIM = 4096


def _log_tail_terms(m: int) -> np.ndarray:
    """``log P[x]`` for ``x = 0..m``, where ``P[x] = C(m, x)^2 / C(2m, m)`` (log-gamma, for large ``m``)."""
    x = np.arange(m + 1, dtype=np.float64)
    lg = np.vectorize(math.lgamma, otypes=[np.float64])
    log_c = math.lgamma(m + 1) - lg(x + 1) - lg(m - x + 1)
    return 2 * log_c - (math.lgamma(2 * m + 1) - 2 * math.lgamma(m + 1))


def far_tail_probability(d: int, T: float) -> float:
    """``P[H < T]`` for the distance ``H`` of two independent uniformly random balanced vectors in ``{0,1}^d``.

    ``H = 2x`` where ``x`` is hypergeometric with ``P[x] = C(m, x)^2 / C(2m, m)``, ``m = d/2``; summed exactly
    (integer arithmetic) for ``d <= 8192`` and in log space beyond.

    Examples
    --------
    >>> far_tail_probability(4, 1.0), far_tail_probability(4, 3.0), far_tail_probability(4, 5.0)
    (0.16666666666666666, 0.8333333333333334, 1.0)
    """
    if d <= 0 or d % 2:
        raise ParameterError(f"balanced vectors need an even positive dimension, got d={d}")
    m = d // 2
    top = min(m, math.ceil(T / 2) - 1)  # the largest x with 2x < T
    if top < 0:
        return 0.0
    if m <= _EXACT_HALF_DIM:
        return float(Fraction(sum(math.comb(m, x) ** 2 for x in range(top + 1)), math.comb(2 * m, m)))
    logs = _log_tail_terms(m)[: top + 1]
    peak = float(logs.max())
    return float(min(1.0, math.exp(peak) * float(np.exp(logs - peak).sum())))


def max_far_distance(n_b: int, d: int) -> int:
    """The largest far threshold ``T_max`` that :func:`planted` accepts for ``n_b`` data vectors in dimension ``d``.

    ``T_max`` is the largest even ``T`` with ``n_b P[H < T] <= 1/2`` (see the module docstring); planting requires
    ``(1+eps) t <= T_max``. By the normal approximation ``T_max ~ d/2 - sqrt(d ln(2 n_b) / 2)``.

    Examples
    --------
    >>> max_far_distance(2**14, 256), max_far_distance(2**10, 64)
    (96, 18)
    """
    if n_b < 1:
        raise ParameterError(f"need at least one data vector, got n_b={n_b}")
    if d <= 0 or d % 2:
        raise ParameterError(f"balanced vectors need an even positive dimension, got d={d}")
    m = d // 2
    if m <= _EXACT_HALF_DIM:
        # n_b P[H < 2(x+1)] = n_b P[x' <= x] <= 1/2  <=>  2 n_b sum_{y<=x} C(m,y)^2 <= C(2m,m)
        total, den, x = 0, math.comb(2 * m, m), -1
        while x < m:
            total += math.comb(m, x + 1) ** 2
            if 2 * n_b * total > den:
                break
            x += 1
        return 2 * (x + 1)
    cum = np.logaddexp.accumulate(_log_tail_terms(m) + math.log(n_b))
    ok = np.flatnonzero(cum <= math.log(0.5))
    return int(2 * (ok[-1] + 1)) if ok.size else 0


def check_planted_parameters(
    n: int, d: int, t: float, eps: float, planted: int, n_b: int | None = None, planted_distance: int | None = None
) -> int:
    """Raise :class:`ParameterError` unless :func:`planted` can build this instance; return the planted distance.

    The requirements are: ``d`` even and positive, ``n, n_b >= 1``, ``0 <= planted <= min(n, n_b)``, ``t > 0``,
    ``eps > 0``, and the feasibility criterion ``(1+eps) t <= max_far_distance(n_b, d)``.
    """
    n_b = n if n_b is None else n_b
    if d <= 0 or d % 2:
        raise ParameterError(f"balanced vectors (weight d/2) need an even positive dimension, got d={d}")
    if n < 1 or n_b < 1:
        raise ParameterError(f"need at least one query and one data vector, got n={n}, n_b={n_b}")
    if not 0 <= planted <= min(n, n_b):
        raise ParameterError(f"planted must be between 0 and min(n, n_b) = {min(n, n_b)}, got {planted}")
    if not (math.isfinite(t) and t > 0 and math.isfinite(eps) and eps > 0):
        raise ParameterError(f"Gap-ANN needs t > 0 and eps > 0, got t={t}, eps={eps}")
    far = (1 + eps) * t
    t_max = max_far_distance(n_b, d)
    if far > t_max:
        best_t = t_max / (1 + eps)
        raise ParameterError(
            f"(t, eps) = ({t:g}, {eps:g}) is infeasible for n_b = {n_b}, d = {d}: random balanced pairs concentrate "
            f"at distance d/2 = {d // 2} (std ~ {math.sqrt(d) / 2:.3g}), so the far threshold (1+eps)t = {far:g} "
            f"must be at most T_max = {t_max} (the largest T with n_b P[H < T] <= 1/2; ~ d/2 - sqrt(d ln(2 n_b)/2)); "
            f"for eps = {eps:g} use t <= {best_t:.6g}, or raise d"
        )
    h = 2 * math.ceil(t / 2) - 2 if planted_distance is None else int(planted_distance)
    if h < 0 or h % 2 or h >= t or h > d:
        raise ParameterError(
            f"the planted distance must be an even integer in [0, min(t, d+1)), got {planted_distance} for t={t:g}"
        )
    return h


# --------------------------------------------------------------------------------------------- planted
@dataclass(frozen=True)
class PlantedGapANN:
    """A planted balanced Gap-ANN instance with its ground truth.

    Attributes
    ----------
    instance : GapANNInstance
        ``A`` (``n x d``) and ``B`` (``n_b x d``), every vector of weight ``d/2``.
    planted_rows : numpy.ndarray of int64
        Sorted indices ``i`` of the rows of ``A`` in Case 1 (every other row is in Case 2).
    partners : numpy.ndarray of int64
        ``partners[k]`` is the index in ``B`` of the partner of ``a_{planted_rows[k]}``.
    planted_distance : int
        ``||a_i - b_partner||_0`` for every planted pair (the largest even integer below ``t`` by default).
    min_distances : numpy.ndarray of int64
        ``min_j ||a_i - b_j||_0`` for every row (from the verification scan).
    nearest : numpy.ndarray of int64
        The smallest ``j`` attaining ``min_distances[i]``.
    seed : int or None
        The integer seed, if one was given.
    rounds, redrawn : int
        Verification rounds that redrew rows, and how many row redraws there were in all.
    """

    instance: GapANNInstance
    planted_rows: np.ndarray
    partners: np.ndarray
    planted_distance: int
    min_distances: np.ndarray
    nearest: np.ndarray
    seed: int | None
    rounds: int
    redrawn: int
    extra: dict = field(default_factory=dict, repr=False)

    @property
    def expected_yes(self) -> np.ndarray:
        """The correct Gap-ANN answer of every row (True exactly on the planted rows)."""
        yes = np.zeros(self.instance.n_a, dtype=bool)
        yes[self.planted_rows] = True
        return yes

    @property
    def meta(self) -> dict[str, Any]:
        """Parameters and ground truth, in the form :func:`save_gap_ann` stores."""
        inst = self.instance
        return {
            "generator": "planted",
            "n": inst.n_a,
            "n_b": inst.n_b,
            "d": inst.dim,
            "t": inst.t,
            "eps": inst.eps,
            "planted": int(self.planted_rows.size),
            "planted_distance": self.planted_distance,
            "seed": self.seed,
            "rounds": self.rounds,
            "redrawn": self.redrawn,
            "planted_rows": self.planted_rows,
            "partners": self.partners,
            "min_distances": self.min_distances,
            "nearest": self.nearest,
        }


def _balanced_rows(rng: np.random.Generator, count: int, d: int) -> np.ndarray:
    base = np.zeros((count, d), dtype=np.uint8)
    base[:, : d // 2] = 1
    return rng.permuted(base, axis=1)


def _perturb(rng: np.random.Generator, rows: np.ndarray, h: int) -> np.ndarray:
    """Each row with ``h/2`` of its ones and ``h/2`` of its zeros flipped: a balanced vector at distance ``h``."""
    k, d = rows.shape
    out = rows.copy()
    if k == 0 or h == 0:
        return out
    m = d // 2
    ones = np.nonzero(rows)[1].reshape(k, m)
    zeros = np.nonzero(rows == 0)[1].reshape(k, m)
    pick = rng.permuted(np.broadcast_to(np.arange(m), (k, m)), axis=1)[:, : h // 2]
    r = np.arange(k)[:, None]
    out[r, ones[r, pick]] = 0
    pick = rng.permuted(np.broadcast_to(np.arange(m), (k, m)), axis=1)[:, : h // 2]
    out[r, zeros[r, pick]] = 1
    return out


def _dtype(d: int) -> type:
    return np.float32 if d < _FLOAT32_EXACT else np.float64


def _scan(X: np.ndarray, Y: np.ndarray, skip: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For balanced rows ``X`` against balanced ``Y``: per row of ``X`` the minimum distance and its first argmin
    over the columns other than ``skip[r]`` (``-1``: none), and the distance to column ``skip[r]`` (or -1).

    Distances are ``d - 2 <x, y>``; the inner products come from tiled GEMM (float32 is exact below ``2^24``).
    """
    nx, ny = X.shape[0], Y.shape[0]
    dist = np.empty(nx, dtype=np.int64)
    arg = np.empty(nx, dtype=np.int64)
    skipped = np.full(nx, -1, dtype=np.int64)
    YT = np.ascontiguousarray(Y.T)
    rows = max(1, _TILE_ENTRIES // max(ny, 1))
    for s in range(0, nx, rows):
        e = min(nx, s + rows)
        G = X[s:e] @ YT
        sk = skip[s:e]
        has = np.flatnonzero(sk >= 0)
        if has.size:
            skipped[s + has] = d - 2 * G[has, sk[has]].astype(np.int64)
            G[has, sk[has]] = -1.0
        a = G.argmax(axis=1)
        arg[s:e] = a
        dist[s:e] = d - 2 * G[np.arange(e - s), a].astype(np.int64)
    return dist, arg, skipped


def planted_memory_bytes(n: int, d: int, n_b: int | None = None) -> int:
    """Rough peak memory of :func:`planted`: the 0/1 matrices with their shuffled and float32 copies, per-row
    int64 bookkeeping and the verification scan's score tiles (``_TILE_ENTRIES`` float32 entries, with headroom)."""
    n_b = n if n_b is None else n_b
    return int((n + n_b) * d * (2 + 4) + n_b * d * 4 + (n + n_b) * 8 * 8) + 2**27


def planted(
    n: int,
    d: int,
    t: float,
    eps: float,
    planted: int,
    seed: int | np.random.Generator | None,
    *,
    n_b: int | None = None,
    planted_distance: int | None = None,
    max_rounds: int = 64,
    max_memory: int | None = None,
) -> PlantedGapANN:
    """A balanced Gap-ANN instance (Definition 4.5) with a planted answer, verified by an all-pairs scan.

    ``A`` has ``n`` and ``B`` has ``n_b`` (default ``n``) uniformly random vectors of weight ``d/2``. For
    ``planted`` random rows ``i`` of ``A`` a random row of ``B`` is replaced by ``a_i`` with ``h/2`` ones and
    ``h/2`` zeros swapped, so the pair is at distance exactly ``h < t`` (``h`` = the largest even integer below
    ``t`` unless given). Every other pair must be at distance ``>= (1+eps) t``: all distances are computed by a
    tiled GEMM, and every row of ``A`` with a pair that is too close is redrawn (a planted row together with its
    partner), then rescanned, for at most ``max_rounds`` rounds.

    Parameters
    ----------
    n, d : int
        Number of query vectors and (even) dimension.
    t, eps : float
        Gap-ANN threshold and gap; ``(1+eps) t <= max_far_distance(n_b, d)`` is required (module docstring).
    planted : int
        Number of Case 1 rows, at most ``min(n, n_b)``.
    seed : int or numpy.random.Generator or None
        The same integer seed gives the same instance, bit for bit.
    n_b : int, optional
        Number of data vectors (default ``n``).
    planted_distance : int, optional
        Even distance of the planted pairs, ``0 <= h < t``.
    max_rounds : int
        Redraw rounds before giving up with :class:`ParameterError`.
    max_memory : int, optional
        If given, :func:`planted_memory_bytes` is checked against it before anything is allocated
        (:class:`ResourceLimitError`).

    Examples
    --------
    >>> p = planted(64, 32, t=4, eps=1.0, planted=5, seed=1)
    >>> inst = p.instance
    >>> inst.is_balanced(), p.planted_rows.size, p.planted_distance
    (True, 5, 2)
    >>> bool((inst.row_status() == p.expected_yes).all())  # YES = 1 on planted rows, NO = 0 elsewhere
    True
    """
    n_b = n if n_b is None else int(n_b)
    h = check_planted_parameters(n, d, t, eps, planted, n_b, planted_distance)
    if max_memory is not None:
        check_memory_limit(planted_memory_bytes(n, d, n_b), max_memory,
                           f"a planted Gap-ANN instance with n = {n}, n_b = {n_b}, d = {d}")
    rng = _rng(seed)
    far = (1 + float(eps)) * float(t)  # the expression GapANNInstance.row_status compares against
    A = _balanced_rows(rng, n, d)
    B = _balanced_rows(rng, n_b, d)
    rows = np.sort(rng.choice(n, size=planted, replace=False)).astype(np.int64)
    partners = rng.choice(n_b, size=planted, replace=False).astype(np.int64)
    B[partners] = _perturb(rng, A[rows], h)
    partner_of = np.full(n, -1, dtype=np.int64)
    partner_of[rows] = partners
    row_of = np.full(n_b, -1, dtype=np.int64)
    row_of[partners] = rows

    ft = _dtype(d)
    Af, Bf = A.astype(ft), B.astype(ft)
    mind, arg, pair = _scan(Af, Bf, partner_of, d)
    rounds = redrawn = 0
    bad = np.flatnonzero(mind < far)
    while bad.size:
        if rounds == max_rounds:
            raise ParameterError(
                f"planted Gap-ANN: {bad.size} rows still violate the far side (distance < (1+eps)t = {far:g}) after "
                f"{max_rounds} redraw rounds; (t, eps) = ({t:g}, {eps:g}) is too close to the feasibility limit "
                f"T_max = {max_far_distance(n_b, d)} for n_b = {n_b}, d = {d}"
            )
        rounds += 1
        redrawn += int(bad.size)
        A[bad] = _balanced_rows(rng, bad.size, d)
        Af[bad] = A[bad]
        moved = bad[partner_of[bad] >= 0]
        cols = partner_of[moved]
        B[cols] = _perturb(rng, A[moved], h)
        Bf[cols] = B[cols]
        mind[bad], arg[bad], pair[bad] = _scan(Af[bad], Bf, partner_of[bad], d)
        if cols.size:
            # the redrawn partners are new columns for every other row: fold them into the running minima
            cols = np.sort(cols)
            prev = arg.copy()
            G = Af @ np.ascontiguousarray(Bf[cols]).T
            G[row_of[cols], np.arange(cols.size)] = -1.0  # a partner's own pair is not a far pair
            best = G.argmax(axis=1)
            cdist = d - 2 * G[np.arange(n), best].astype(np.int64)
            cand = cols[best]
            better = (cdist < mind) | ((cdist == mind) & (cand < arg))
            mind = np.where(better, cdist, mind)
            arg = np.where(better, cand, arg)
            # a row whose nearest column was replaced may now be farther from B: rescan it
            stale = np.flatnonzero(np.isin(prev, cols))
            stale = stale[~np.isin(stale, bad)]
            if stale.size:
                mind[stale], arg[stale], pair[stale] = _scan(Af[stale], Bf, partner_of[stale], d)
        bad = np.flatnonzero(mind < far)
    if planted and not (pair[rows] == h).all():
        raise FinegrainedError("planted Gap-ANN: a planted pair is not at the planted distance (internal error)")
    min_d = mind.copy()
    nearest = arg.copy()
    min_d[rows] = h
    nearest[rows] = partners
    inst = GapANNInstance(A, B, float(t), float(eps))
    return PlantedGapANN(
        instance=inst,
        planted_rows=rows,
        partners=partners,
        planted_distance=int(h),
        min_distances=min_d,
        nearest=nearest,
        seed=int(seed) if isinstance(seed, (int, np.integer)) else None,
        rounds=rounds,
        redrawn=redrawn,
    )


# --------------------------------------------------------------------------------------------- .npz files
def _json_ready(meta: dict) -> tuple[dict, dict[str, np.ndarray]]:
    scalars: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for key, value in meta.items():
        if not isinstance(key, str):
            raise ParameterError(f"metadata keys must be strings, got {key!r}")
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:  # np.save would need pickle, which the format never uses
                raise ParameterError(f"metadata entry {key!r} is an object array; give numbers, booleans or strings")
            arrays[key] = value
        elif isinstance(value, np.generic):
            scalars[key] = value.item()
        else:
            scalars[key] = value
    return scalars, arrays


def save_gap_ann(path: str | os.PathLike, instance: GapANNInstance, meta: dict | None = None) -> None:
    """Write a Gap-ANN instance and its metadata to an ``.npz`` file, byte-identically for identical inputs.

    Layout (format version 1): ``format`` (``"finegrained.gap_ann"``), ``format_version``, ``d``, ``t``, ``eps``,
    ``A_packed`` and ``B_packed`` (``numpy.packbits`` of each row), ``meta_json`` (the JSON of the scalar
    metadata) and one ``meta.<key>`` array per array-valued metadata entry (e.g. the ground-truth
    ``meta.planted_rows``). The zip entries carry a fixed timestamp, so the same instance gives the same bytes.

    Parameters
    ----------
    path : path-like
    instance : GapANNInstance
    meta : dict, optional
        JSON-serialisable values and numpy arrays (e.g. :attr:`PlantedGapANN.meta`).
    """
    scalars, arrays = _json_ready(dict(meta or {}))
    try:
        meta_json = json.dumps(scalars, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"metadata for {os.fspath(path)} is not JSON-serialisable: {exc}") from None
    entries: list[tuple[str, np.ndarray]] = [
        ("format", np.array(FORMAT)),
        ("format_version", np.array(FORMAT_VERSION, dtype=np.int64)),
        ("d", np.array(instance.dim, dtype=np.int64)),
        ("t", np.array(instance.t, dtype=np.float64)),
        ("eps", np.array(instance.eps, dtype=np.float64)),
        ("A_packed", np.packbits(instance.A, axis=1)),
        ("B_packed", np.packbits(instance.B, axis=1)),
        ("meta_json", np.array(meta_json)),
    ]
    entries += [(f"meta.{k}", np.ascontiguousarray(v)) for k, v in sorted(arrays.items())]
    try:
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
            for name, arr in entries:
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
                info.external_attr = 0o644 << 16
                with zf.open(info, "w", force_zip64=True) as fh:
                    np.lib.format.write_array(fh, arr, allow_pickle=False)
    except OSError as exc:
        raise FinegrainedError(f"{os.fspath(path)}: cannot write: {exc.strerror or exc}") from None


def _unpack(name: str, packed: np.ndarray, n_bits: int, source: str) -> np.ndarray:
    if packed.ndim != 2 or packed.dtype != np.uint8 or packed.shape[1] != (n_bits + 7) // 8:
        raise ParameterError(
            f"{source}: {name}_packed must be a uint8 matrix with {(n_bits + 7) // 8} bytes per row for d = {n_bits}, "
            f"got dtype {packed.dtype} and shape {packed.shape}"
        )
    full = np.unpackbits(packed, axis=1)
    if full[:, n_bits:].any():
        raise ParameterError(f"{source}: {name}_packed has nonzero padding bits beyond d = {n_bits}")
    return np.ascontiguousarray(full[:, :n_bits])


def _scalar(data: Any, key: str, source: str) -> float:
    arr = data[key]
    if arr.shape != () or arr.dtype.kind not in "iuf":
        raise ParameterError(f"{source}: {key!r} must be a numeric scalar, got dtype {arr.dtype} shape {arr.shape}")
    return float(arr)


def _int_scalar(data: Any, key: str, source: str) -> int:
    """A numeric scalar that must hold an integer (``4.0`` is fine, ``4.7`` is refused rather than truncated)."""
    value = _scalar(data, key, source)
    if not (math.isfinite(value) and value.is_integer()):
        raise ParameterError(f"{source}: {key!r} must be an integer, got {value:g}")
    return int(value)


def load_memory_bytes(headers: dict[str, tuple[tuple[int, ...], Any, int]]) -> int:
    """Peak memory of :func:`load_gap_ann` from the archive's headers alone (see :func:`instances.io.npz_headers`).

    Every stored array is loaded (their ``nbytes``); packed ``A``/``B`` are unpacked to one byte per bit plus a
    sliced copy, and the 0/1 check of :class:`GapANNInstance` makes up to three temporaries of that size
    (five bytes per entry in all); plain ``A``/``B`` take four (the check and the ``uint8`` copy); 16 MiB of
    headroom covers the metadata and the interpreter's buffers.
    """
    total = sum(nbytes for _, _, nbytes in headers.values())
    for key, per_entry in (("A_packed", 5 * 8), ("B_packed", 5 * 8), ("A", 4), ("B", 4)):
        if key in headers:
            total += math.prod(headers[key][0]) * per_entry
    return int(total) + 16 * 2**20


def load_gap_ann(path: str | os.PathLike, *, max_memory: int | None = None) -> tuple[GapANNInstance, dict[str, Any]]:
    """Read a Gap-ANN instance and its metadata from an ``.npz`` file.

    Accepts the layout of :func:`save_gap_ann` and, for files written by hand, plain 0/1 matrices ``A`` and ``B``
    with scalars ``t`` and ``eps``. Every problem (missing file, not an ``.npz``, missing keys, bad shapes,
    non-binary entries, an unknown format version) raises :class:`ParameterError` (or another
    :class:`FinegrainedError`) whose message starts with the file name, and so does an instance that the
    reductions could not use: ``A`` or ``B`` without rows, dimension 0, or a non-integral ``d`` or
    ``format_version``.

    Before anything is unpacked, every member's ``.npy`` header is read (:func:`instances.io.npz_headers`):
    object (pickled) dtypes and members shorter than their header are refused, and the memory the load needs
    (:func:`load_memory_bytes`) is checked against ``max_memory``, so a zip bomb is refused before it expands.

    Parameters
    ----------
    path : path-like
    max_memory : int, optional
        Bytes the load may use; default half of physical memory. Over it: :class:`ResourceLimitError`.

    Returns
    -------
    instance : GapANNInstance
    meta : dict
        The stored metadata, with array entries as numpy arrays (empty for hand-written files).
    """
    source = os.fspath(path)
    p = Path(path)
    if not p.exists():
        raise ParameterError(f"{source}: no such file")
    if p.is_dir():
        raise ParameterError(f"{source}: is a directory, expected a .npz file")
    if not p.is_file():
        raise ParameterError(f"{source}: is not a regular file, expected a .npz file")
    try:
        fh = open(p, "rb")  # one open file for the header scan and the load, so both see the same archive
    except OSError as exc:
        raise ParameterError(f"{source}: cannot read: {exc.strerror or exc}") from None
    with fh:
        if fh.read(6) == b"\x93NUMPY":
            raise ParameterError(f"{source}: not a .npz archive (a single .npy array?)")
        fh.seek(0)
        headers = npz_headers(fh, source)
        check_memory_limit(load_memory_bytes(headers), max_memory, f"loading {source}")
        fh.seek(0)
        try:
            data = np.load(fh, allow_pickle=False)
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise ParameterError(f"{source}: not a readable .npz file ({exc})") from None
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ParameterError(f"{source}: not a .npz archive (a single .npy array?)")
        return _load_members(data, source)


def _load_members(data: Any, source: str) -> tuple[GapANNInstance, dict[str, Any]]:
    with data:
        try:
            keys = set(data.files)
            missing = {"t", "eps"} - keys
            if missing:
                raise ParameterError(f"{source}: missing key(s) {', '.join(sorted(missing))}; keys are {sorted(keys)}")
            meta: dict[str, Any] = {}
            if "format_version" in keys:
                version = _int_scalar(data, "format_version", source)
                if not 1 <= version <= FORMAT_VERSION:
                    raise ParameterError(
                        f"{source}: format version {version} is not supported (this toolkit reads 1..{FORMAT_VERSION})"
                    )
            if {"A_packed", "B_packed", "d"} <= keys:
                d = _int_scalar(data, "d", source)
                if d < 1:
                    raise ParameterError(f"{source}: dimension d must be positive, got {d}")
                A = _unpack("A", data["A_packed"], d, source)
                B = _unpack("B", data["B_packed"], d, source)
            elif {"A", "B"} <= keys:
                A, B = data["A"], data["B"]
            else:
                raise ParameterError(
                    f"{source}: expected keys A_packed, B_packed and d (or A and B); keys are {sorted(keys)}"
                )
            t, eps = _scalar(data, "t", source), _scalar(data, "eps", source)
            if "meta_json" in keys:
                try:
                    meta = dict(json.loads(str(data["meta_json"])))
                except (ValueError, TypeError) as exc:
                    raise ParameterError(f"{source}: meta_json is not a JSON object ({exc})") from None
            for key in sorted(keys):
                if key.startswith("meta."):
                    meta[key[5:]] = data[key]
        except (ValueError, zipfile.BadZipFile, OSError) as exc:
            if isinstance(exc, FinegrainedError):
                raise
            raise ParameterError(f"{source}: corrupt entry ({exc})") from None
    try:
        instance = GapANNInstance(A, B, t, eps)
    except ParameterError as exc:
        raise ParameterError(f"{source}: {exc}") from None
    if instance.n_a == 0:
        raise ParameterError(f"{source}: A has no rows; a Gap-ANN instance needs at least one query vector")
    if instance.n_b == 0:
        raise ParameterError(f"{source}: B has no rows; a Gap-ANN instance needs at least one data vector")
    if instance.dim == 0:
        raise ParameterError(f"{source}: the vectors have dimension 0; expected A and B with at least one column")
    _check_ground_truth(meta, instance, source)
    return instance, meta


def _check_ground_truth(meta: dict, instance: GapANNInstance, source: str) -> None:
    """Reject ground-truth arrays that cannot belong to the instance (wrong length or out-of-range indices)."""
    limits = {"planted_rows": instance.n_a, "partners": instance.n_b, "nearest": instance.n_b}
    for key, bound in limits.items():
        if key in meta:
            arr = np.asarray(meta[key])
            if arr.ndim != 1 or arr.dtype.kind not in "iu" or (arr.size and (arr.min() < 0 or arr.max() >= bound)):
                raise ParameterError(f"{source}: meta.{key} must be a 1-D array of indices in [0, {bound})")
    if "planted_rows" in meta and "partners" in meta and meta["planted_rows"].shape != meta["partners"].shape:
        raise ParameterError(f"{source}: meta.planted_rows and meta.partners have different lengths")
    for key in ("min_distances", "nearest"):
        if key in meta and np.asarray(meta[key]).shape != (instance.n_a,):
            raise ParameterError(f"{source}: meta.{key} must have one entry per row of A ({instance.n_a})")
