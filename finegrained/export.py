r"""Hard attention instances for outside kernels: ``Q, K, V``, the scale, the threshold and the expected decisions.

:func:`export_instance` runs a formula through one of the two routes to attention and returns everything an
outside kernel needs to be scored on it, with the ground truth computed by brute force on the OV instance (an
orthogonal pair is exactly a YES row, on both routes):

* ``route="aattc"`` — Alman & Song's k-SAT → OV → Gap-ANN → AAttC (Lemma 4.7). Row ``i < n_a`` is YES iff
  ``a_i`` has an orthogonal partner; the rule is ``log u_i >= log_threshold`` with ``log_threshold = log 2t~``
  (about ``-2484`` on the shipped example: below every float format, so the kernel must work in log space).
  The ``n`` padding rows are NO (their exact output is ``1/(1 + tau)``, far below ``2t~``).
* ``route="attention"`` — Gupta et al.'s k-SAT → OV → Attention (Theorem 1.5 gadget). Row ``i`` is YES iff
  ``a_i`` has an orthogonal partner; the rule is ``u_i >= 1/2``. Entries are ``O(log n)`` and outputs are
  ``>= 8/9`` or ``<= 1/9``, so a plain float32 kernel decides it.

The library returns arrays and metadata; the CLI (``finegrained export``) writes them.

Examples
--------
>>> from instances import CNFFormula
>>> ex = export_instance(CNFFormula([[1, 2], [-1, 2], [1, -2]]), route="attention")
>>> sorted(ex.arrays)[:4], ex.arrays["expected"].tolist(), bool(ex.arrays["satisfiable"])
(['K', 'Q', 'V', 'expected'], [False, True], True)
>>> ex.metadata["rule"]
'u_i >= 1/2, i.e. log u_i >= log_threshold'
"""

from __future__ import annotations

import hashlib
import math
import platform
from dataclasses import dataclass, field

import numpy as np

from instances.cnf import CNFFormula
from instances.errors import ParameterError
from reductions import path

from .chain import ROUTES

SCHEMA = "finegrained.export/1"


@dataclass
class ExportedInstance:
    """An attention instance with its decision rule and ground truth.

    Attributes
    ----------
    arrays : dict of numpy arrays
        ``Q``, ``K``, ``V`` (float64), ``expected`` (bool, one per query row: True = YES), and the 0-d arrays
        ``scale``, ``log_threshold``, ``log_eps_a``, ``satisfiable``, ``rows_decoded`` (how many query rows carry
        the answer; the rest are padding).
    metadata : dict
        ``schema``, ``version``, ``route``, ``params``, ``rule``, ``input_sha256``, ``num_vars``, ``num_clauses``
        and the versions of Python and numpy.
    """

    arrays: dict[str, np.ndarray]
    metadata: dict = field(default_factory=dict)


def _sha256(cnf: CNFFormula) -> str:
    text = "\n".join(" ".join(map(str, c)) + " 0" for c in cnf.clauses)
    return hashlib.sha256(f"p cnf {cnf.num_vars} {cnf.num_clauses}\n{text}\n".encode()).hexdigest()


def _orthogonal_rows(A: np.ndarray, B: np.ndarray, tile: int = 1024) -> np.ndarray:
    """``out[i]``: some ``b_j`` is orthogonal to ``a_i`` (brute force, one BLAS product per tile of rows)."""
    Bt = np.ascontiguousarray(B.T, dtype=np.float64)
    out = np.zeros(A.shape[0], dtype=bool)
    for start in range(0, A.shape[0], tile):
        # 0/1 inner products are small integers: exact in float64
        out[start:start + tile] = ((A[start:start + tile].astype(np.float64) @ Bt) == 0).any(axis=1)
    return out


def export_instance(cnf: CNFFormula, *, route: str = "aattc", params: str = "tight",
                    safety: float | None = None) -> ExportedInstance:
    """Build the attention instance of ``cnf`` on ``route`` with its expected per-row decisions (module docstring).

    Parameters
    ----------
    cnf : CNFFormula
    route : {"aattc", "attention"}
    params : {"tight", "paper"}
        Lemma 4.7 constants (``aattc`` route only).
    safety : float, optional
        Factor on ``beta_min`` (``aattc`` route, tight mode only).
    """
    from . import __version__

    if route not in ROUTES:
        raise ParameterError(f"unknown route {route!r}; expected one of {', '.join(ROUTES)}")
    if route == "attention" and (params != "tight" or safety is not None):
        raise ParameterError("--params and --safety belong to Lemma 4.7: the attention route has no such constants")
    options = {"mode": params, "safety": safety} if route == "aattc" else {}
    reduced = path(*ROUTES[route], **options).reduce(cnf)
    ov = reduced.steps[0].target
    att = reduced.target
    orthogonal = _orthogonal_rows(ov.A, ov.B)
    expected = np.zeros(att.n_q, dtype=bool)
    expected[: ov.n_a] = orthogonal
    if route == "aattc":
        p = reduced.steps[-1].parameters
        log_threshold, log_eps_a = p.log_threshold, p.log_eps_a
        rule = "log u_i >= log_threshold (log_threshold = log 2 t~, Lemma 4.7)"
    else:
        log_threshold, log_eps_a = -math.log(2.0), float(att.log_eps_a)
        rule = "u_i >= 1/2, i.e. log u_i >= log_threshold"
    satisfiable = bool(orthogonal.any())
    arrays = {
        "Q": np.ascontiguousarray(att.Q, dtype=np.float64),
        "K": np.ascontiguousarray(att.K, dtype=np.float64),
        "V": np.ascontiguousarray(att.V, dtype=np.float64),
        "expected": expected,
        "scale": np.float64(att.scale),
        "log_threshold": np.float64(log_threshold),
        "log_eps_a": np.float64(log_eps_a),
        "satisfiable": np.bool_(satisfiable),
        "rows_decoded": np.int64(ov.n_a),
    }
    metadata = {
        "schema": SCHEMA,
        "version": __version__,
        "route": route,
        "params": params if route == "aattc" else None,
        "safety": safety,
        "rule": rule,
        "input_sha256": _sha256(cnf),
        "num_vars": cnf.num_vars,
        "num_clauses": cnf.num_clauses,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    return ExportedInstance(arrays, metadata)


def score_exported(arrays: dict[str, np.ndarray], log_u: np.ndarray) -> dict:
    """Compare a kernel's ``log u`` (one value per query row) with the exported expected decisions.

    Returns ``rows``, ``correct`` (count), ``accuracy`` and ``wrong_rows`` (indices, at most 100).
    """
    log_u = np.asarray(log_u, dtype=np.float64).reshape(-1)
    expected = np.asarray(arrays["expected"], dtype=bool)
    if log_u.shape != expected.shape:
        raise ParameterError(f"need one log u per query row ({expected.size}), got {log_u.size}")
    decided = log_u >= float(np.asarray(arrays["log_threshold"]).reshape(-1)[0])  # 0-d (npz) or (1,) (safetensors)
    wrong = np.flatnonzero(decided != expected)
    return {"rows": int(expected.size), "correct": int(expected.size - wrong.size),
            "accuracy": float(1 - wrong.size / max(expected.size, 1)), "wrong_rows": wrong[:100].tolist()}


__all__ = ["ROUTES", "SCHEMA", "ExportedInstance", "export_instance", "score_exported"]
