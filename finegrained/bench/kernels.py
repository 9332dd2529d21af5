"""Every attention kernel on hard instances of both routes: accuracy, certification and time (``bench kernels``).

For each number of variables ``N`` a seeded random 3-SAT formula at clause ratio 4.26 (the hard region) goes
through both routes to attention (:data:`finegrained.chain.ROUTES`):

* ``aattc``: Alman & Song's k-SAT -> OV -> Gap-ANN -> AAttC (Lemma 4.7), whose threshold ``2 t~`` lies far below
  every float format, so only a log-space kernel can decide it;
* ``attention``: Gupta et al.'s k-SAT -> OV -> Attention (Theorem 1.5 gadget), decided by ``u_i >= 1/2``, which
  a plain float32 kernel can do.

Every kernel (the built-in oracles, torch's SDPA at each dtype and ``torch_exact`` when torch is installed, and
``package.module:function`` plug-ins) is called on the same ``(Q, K, V)``, timed (best of ``repeat``) next to a
bare float64 ``Q @ K.T`` of the same shape measured in the same run, and scored:

* **accuracy**: the fraction of decoded query rows whose point decision (the threshold test of the route on the
  kernel's output) equals the ground truth of :func:`finegrained.export.export_instance` (brute force on the OV
  instance: a row is YES iff its vector has an orthogonal partner);
* **status**: what :func:`finegrained.pipeline.decide` makes of the same answer: ``certified``, ``uncertified``
  (no error bound: a point answer), ``undecided`` (the certificate is too coarse for this instance),
  ``refused`` (the kernel declined the accuracy asked, or its float output cannot represent the threshold:
  underflow) or ``rejected`` (the answer claimed a YES row that verification disproved), with a short
  ``reason_kind`` and the one-line ``reason``.

A float answer is refused as *underflow* when the route's threshold is below the smallest normal number of the
dtype the kernel computed in: :func:`~finegrained.pipeline.decide` checks float64's range itself, and this
benchmark adds the same check for the narrower dtype an answer names (``info["dtype"]``, as SDPA's do), since a
float32 output cannot carry ``e^{-523}`` either and its NO rows are then no evidence.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import numpy as np

from instances.errors import FinegrainedError, NumericalError, ParameterError, ResourceLimitError, UncertifiedError
from instances.generators import random_ksat
from reductions import path
from reductions.base import CertificateError

from ..attention import ORACLES, resolve_oracle
from ..attention.protocol import OracleAnswer, call_oracle
from ..chain import ROUTES, chain_memory_bytes
from ..export import export_instance
from ..pipeline import decide
from ..resources import check_memory
from .chain import clause_count
from .timing import Progress, best_of

#: Clause width of the random formulas.
K = 3
#: Built-in oracles measured by default, in table order (``reference`` runs only at the smallest N).
BUILTIN = ("exact", "anytemp", "lev", "random_features", "poly", "reference")
#: dtypes at which torch's SDPA is measured.
SDPA_DTYPES = ("float32", "float16", "bfloat16", "float64")
#: Statuses of a row of the result (module docstring).
STATUSES = ("certified", "uncertified", "undecided", "refused", "rejected")


@dataclass
class KernelsResult:
    """Rows ``{route, N, m, n_q, n_k, d, kernel, status, reason_kind, reason, certificate, rows, correct, accuracy,
    seconds, gemm_s, ratio, satisfiable, log_threshold}``.

    ``seconds``/``ratio``/``certificate`` are None when the kernel refused before answering, ``accuracy`` None when
    no per-row decision exists. ``status`` is about the formula's answer: a SAT answer whose assignment checks
    out is certified even when the kernel certifies nothing (``certificate == "none"``) and many of its row
    decisions are wrong, which ``accuracy`` shows.
    """

    repeat: int
    ratio: float
    seed: int
    routes: list[str]
    kernels: list[str]
    rows: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    torch: str | None = None
    benchmark: str = "kernels"

    def summary(self) -> list[dict]:
        """Per ``(route, kernel)``: rows scored, mean accuracy, the statuses seen and the median time ratio."""
        out = []
        for route in self.routes:
            for kern in self.kernels:
                rs = [r for r in self.rows if r["route"] == route and r["kernel"] == kern]
                if not rs:
                    continue
                scored = [r for r in rs if r["accuracy"] is not None]
                ratios = [r["ratio"] for r in rs if r["ratio"] is not None]
                out.append({"route": route, "kernel": kern, "instances": len(rs),
                            "rows": sum(r["rows"] for r in scored), "correct": sum(r["correct"] for r in scored),
                            "accuracy": (sum(r["correct"] for r in scored) / max(1, sum(r["rows"] for r in scored))
                                         if scored else None),
                            "statuses": sorted({r["status"] for r in rs}),
                            "median_ratio": float(np.median(ratios)) if ratios else None})
        return out

    def to_dict(self) -> dict:
        return {**asdict(self), "summary": self.summary()}


def _reason_kind(status: str, reason: str) -> str:
    if status in ("certified", "uncertified"):
        return "" if status == "certified" else "no error bound"
    text = reason.lower()
    for key, kind in (("below every float", "underflow"), ("smallest normal", "underflow"),
                      ("cannot reach", "too coarse"), ("needs additive error", "too coarse"),
                      ("over the limit", "resource limit"), ("overflow", "overflow"),
                      ("orthogonal partner", "wrong YES")):
        if key in text:
            return kind
    return "error"


def _kernels(kernels: tuple[str, ...] | None, dtypes: tuple[str, ...], torch_ok: bool,
             plugins: tuple[str, ...]) -> list[tuple[str, Callable[..., Any]]]:
    """``(label, oracle)`` pairs: built-ins, ``torch_exact``, ``sdpa/<dtype>``, then plug-ins."""
    names = list(BUILTIN) if kernels is None else list(kernels)
    out: list[tuple[str, Callable[..., Any]]] = []
    for name in names:
        if name in ("sdpa", "torch_exact"):
            if not torch_ok:
                raise ParameterError(f"kernel {name!r} needs torch: pip install 'finegrained[torch]'")
            continue  # added below, with the dtypes
        if name not in ORACLES:
            raise ParameterError(f"unknown built-in kernel {name!r}; expected one of "
                                 f"{', '.join(BUILTIN + ('torch_exact', 'sdpa'))} (plug-ins go in plugins)")
        out.append((name, ORACLES[name]))
    if torch_ok and (kernels is None or "torch_exact" in names):
        out.append(("torch_exact", ORACLES["torch_exact"]))
    if torch_ok and (kernels is None or "sdpa" in names):
        for dt in dtypes:
            if dt not in SDPA_DTYPES:
                raise ParameterError(f"sdpa dtype must be one of {', '.join(SDPA_DTYPES)}, got {dt!r}")
            out.append((f"sdpa/{dt}", partial(ORACLES["sdpa"], dtype=dt)))
    for spec in plugins:
        out.append(resolve_oracle(spec))
    return out


def _float_floor(answer: OracleAnswer) -> tuple[str, float]:
    """The dtype a float answer was computed in and the log of its smallest normal number."""
    dt = str(answer.info.get("dtype", "float64"))
    try:
        import torch

        tiny = torch.finfo(getattr(torch, dt)).tiny if dt == "bfloat16" else np.finfo(dt).tiny
    except (ImportError, AttributeError, TypeError):
        dt, tiny = "float64", np.finfo(np.float64).tiny
    return dt, math.log(tiny)


def _score(chain, formula, reduced, answer: OracleAnswer, label: str, truth: np.ndarray) -> dict:
    """Accuracy of the point decisions and the pipeline's status for one answer (module docstring)."""
    last = reduced.steps[-1]
    log_threshold = last.parameters["log_threshold"] if isinstance(last.parameters, dict) else \
        last.parameters.log_threshold
    out: dict[str, Any] = {"certificate": answer.certificate.kind, "rows": 0, "correct": 0, "accuracy": None}
    try:
        yes = last.reduction.decide_rows(last, answer.bounds()).yes
        want = truth[: yes.size]
        out.update(rows=int(yes.size), correct=int((yes == want).sum()), accuracy=float((yes == want).mean()))
    except FinegrainedError:
        pass  # no per-row decision (e.g. the gadget's own check refused a claimed YES row)
    status, reason = None, ""
    if answer.from_float:
        dt, floor = _float_floor(answer)
        if log_threshold < floor and dt != "float64":  # float64's range is checked by decide(), with its own line
            status = "refused"
            reason = (f"{label} computed in {dt}, but the threshold is e^{log_threshold:.6g}, below {dt}'s "
                      f"smallest normal number e^{floor:.4g}: its outputs underflow (use a log-space kernel or the "
                      "attention route)")
    if status is None:
        def cached(Q, K, V, **kwargs):
            return answer

        cached.__name__ = label
        try:
            d = decide(chain, formula, cached, reduced=reduced)
            status, reason = d.status, d.reason
        except UncertifiedError as exc:
            status, reason = "refused", str(exc)
        except CertificateError as exc:
            status, reason = "rejected", str(exc)
    out.update(status=status, reason_kind=_reason_kind(status, reason), reason=reason)
    return out


def run(*, vars_min: int = 8, vars_max: int = 16, step: int = 4, ratio: float = 4.26,
        routes: tuple[str, ...] = ("aattc", "attention"), kernels: tuple[str, ...] | None = None,
        dtypes: tuple[str, ...] = SDPA_DTYPES, plugins: tuple[str, ...] = (), repeat: int = 3, seed: int = 0,
        max_memory: int | None = None, progress: Progress | None = None) -> KernelsResult:
    """Score every kernel on both routes' hard instances for ``N = vars_min, vars_min + step, ..., vars_max``.

    Parameters
    ----------
    vars_min, vars_max, step : int
        The grid of ``N`` (number of variables), ``N >= 3``.
    ratio : float
        Clauses per variable of the seeded random 3-SAT formulas (4.26: the satisfiability threshold).
    routes : tuple of str
        Subset of ``("aattc", "attention")``.
    kernels : tuple of str, optional
        Built-in kernels to measure (names of :data:`BUILTIN`, ``"torch_exact"``, ``"sdpa"``); default: all, with
        the torch ones when torch imports.
    dtypes : tuple of str
        SDPA dtypes (subset of :data:`SDPA_DTYPES`).
    plugins : tuple of str
        ``package.module:function`` oracles (or ``finegrained.oracles`` entry-point names), measured too.
    repeat : int
        Every timing (kernel and bare ``Q @ K.T``) is the best of ``repeat``.
    seed : int
        The formula of ``N`` has seed ``seed + N``.
    max_memory : int, optional
        Refuse a grid whose chain needs more bytes than this (default: half of RAM).
    progress : callable, optional
        ``progress(done, total)`` after each ``(route, N)``.

    Returns
    -------
    KernelsResult
    """
    if vars_min < K or vars_min > vars_max or step < 1:
        raise ParameterError(f"need {K} <= vars_min <= vars_max and step >= 1, got {vars_min}, {vars_max}, {step}")
    if repeat < 1:
        raise ParameterError(f"repeat must be at least 1, got {repeat}")
    bad = [r for r in routes if r not in ROUTES]
    if bad or not routes:
        raise ParameterError(f"routes must be a non-empty subset of {', '.join(ROUTES)}, got {', '.join(bad)}")
    grid = list(range(vars_min, vars_max + 1, step))
    check_memory(chain_memory_bytes(grid[-1], clause_count(ratio, grid[-1])), max_memory,
                 f"bench kernels up to N = {grid[-1]}")
    torch_version = None
    if "sdpa" in ORACLES:
        try:
            import torch

            torch_version = torch.__version__
        except ImportError:
            torch_version = None
    plan = _kernels(kernels, tuple(dtypes), torch_version is not None, tuple(plugins))
    result = KernelsResult(repeat=repeat, ratio=ratio, seed=seed, routes=list(routes),
                           kernels=[label for label, _ in plan], torch=torch_version)
    if torch_version is None and kernels is None:
        result.skipped.append("torch_exact and sdpa: torch is not installed (extra 'torch')")
    total, done = len(grid) * len(routes), 0
    for n in grid:
        formula = random_ksat(n, clause_count(ratio, n), K, seed=seed + n)
        for route in routes:
            chain = path(*ROUTES[route])
            reduced = chain.reduce(formula)
            att = reduced.target
            ex = export_instance(formula, route=route)
            if not np.array_equal(ex.arrays["Q"], att.Q):  # the truth must be about the instance the kernels see
                raise NumericalError(f"export_instance built another instance than the chain at N = {n} ({route})")
            truth = ex.arrays["expected"]
            Q, Km, V, s = att.Q, att.K, att.V, float(att.scale)
            gemm_s, _ = best_of(lambda: Q @ Km.T, repeat=repeat)  # noqa: B023
            base = {"route": route, "N": n, "m": formula.num_clauses, "n_q": int(Q.shape[0]),
                    "n_k": int(Km.shape[0]), "d": int(Q.shape[1]), "gemm_s": gemm_s,
                    "satisfiable": bool(ex.arrays["satisfiable"]),
                    "log_threshold": float(ex.arrays["log_threshold"])}
            params = reduced.steps[-1].parameters
            log_eps = params.get("log_eps_needed") if isinstance(params, dict) else params.log_eps_needed
            for label, fn in plan:
                if label == "reference" and n != grid[0]:
                    continue  # the multiprecision reference is a check at the smallest N, not a kernel to time
                best, answer = math.inf, None
                try:
                    for _ in range(repeat):
                        answer, secs = call_oracle(label, fn, Q, Km, V, scale=s, log_eps=log_eps)
                        best = min(best, secs)
                except (UncertifiedError, ResourceLimitError, NumericalError) as exc:
                    # the kernel declines this instance before answering: a refusal, never an answer
                    status = "refused"
                    result.rows.append({**base, "kernel": label, "status": status,
                                        "reason_kind": _reason_kind(status, str(exc)), "reason": str(exc),
                                        "certificate": None, "rows": 0, "correct": 0, "accuracy": None,
                                        "seconds": None, "ratio": None})
                    continue
                row = _score(chain, formula, reduced, answer, label, truth)
                result.rows.append({**base, "kernel": label, **row, "seconds": best, "ratio": best / gemm_s})
            done += 1
            if progress is not None:
                progress(done, total)
    return result


__all__ = ["BUILTIN", "SDPA_DTYPES", "STATUSES", "KernelsResult", "run"]
