"""Scaling of the exact oracle on the chain's instances: locally, on Dask workers, on a GPU (``bench scale``).

For each number of variables ``N``, a seeded random 3-SAT formula at clause ratio 4.26 goes through one route to
attention (``aattc``: k-SAT -> OV -> Gap-ANN -> AAttC, the default; ``attention``: k-SAT -> OV -> Attention, the
Theorem 1.5 gadget, decided by ``u_i >= 1/2``), and the exact oracle is timed (best of ``repeat``) on the reduction's
``(Q, K, V)``:

* **local**: :func:`~finegrained.attention.exact.exact_oracle` in this process (BLAS on every core), next to a
  bare float64 ``Q @ K.T`` of the full shape timed in the same run (the ratio is the single-machine target of
  ``oracle <= 0.6 x Q @ K.T``);
* **dask**: the same oracle on a :class:`distributed.LocalCluster` of 1, 2, ... single-threaded workers
  (:mod:`~finegrained.attention.dask_backend`), giving the strong-scaling efficiency ``T_1 / (k T_k)``;
* **gpu**: :func:`~finegrained.attention.torch_backend.torch_exact` on CUDA, when torch sees a CUDA device.

Every run's decisions are checked against the local oracle's. The rate of each backend is the oracle's work
(multiply-adds of the score products after the column skip, :meth:`.exact.Prepared.work`) per second at the
largest ``N`` measured; the projection of larger ``N`` divides the work of that ``N`` (it grows as
``n_a n_b m``: ``2^N`` query-key pairs times the number of clauses) by that rate, for ``k`` workers at the
measured efficiency of the largest cluster measured (an assumption beyond it, stated in the result).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from instances.errors import ParameterError
from instances.generators import random_ksat

from ..attention.exact import exact_oracle, prepare
from ..chain import chain_memory_bytes
from ..resources import check_memory
from .chain import clause_count, route_chain
from .timing import Progress, best_interleaved, best_of

# each LocalCluster worker is a process of its own (~100 MiB): more than this would exhaust a workstation before
# it measured anything, and counts beyond the cores only repeat the last point of the scaling curve
MAX_WORKERS = 64

#: Clause width of the random formulas.
K = 3


@dataclass
class ScaleResult:
    """Measured rows ``{N, m, n_q, n_k, d, work, backend, workers, seconds, rate[, gemm_s, ratio]}``.

    ``efficiency`` maps ``"N=..,k=.."`` to ``T_1 / (k T_k)`` on the LocalCluster; ``projections`` are rows
    ``{N, target, workers, seconds}`` computed from the measured rates (module docstring).
    """

    repeat: int
    rows: list[dict] = field(default_factory=list)
    efficiency: dict[str, float] = field(default_factory=dict)
    projections: list[dict] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    gpu: str | None = None
    benchmark: str = "scale"
    route: str = "aattc"

    @property
    def max_local_ratio(self) -> float | None:
        """The largest measured ``oracle / (Q @ K.T)`` ratio of the local oracle."""
        return max((r["ratio"] for r in self.rows if "ratio" in r), default=None)

    def to_dict(self) -> dict:
        return {**asdict(self), "max_local_ratio": self.max_local_ratio}


def _dims(n_vars: int, m: int) -> float:
    """``n_a n_b m``: the oracle's work up to a constant (Lemma 4.7's real query-key pairs times the clauses)."""
    return 2.0 ** math.ceil(n_vars / 2) * 2.0 ** math.floor(n_vars / 2) * m


def _decisions(ans, threshold: float) -> np.ndarray:
    return (ans.output.sign[:, 0] > 0) & (ans.output.log_abs[:, 0] >= threshold)


def run(*, vars_min: int = 14, vars_max: int = 20, step: int = 2, ratio: float = 4.26,
        workers: tuple[int, ...] = (1, 2), gpu: bool | None = None, project: tuple[int, ...] = (34, 36, 40),
        project_workers: tuple[int, ...] = (1, 2, 8, 32), gemm: bool = True, repeat: int = 3, seed: int = 0,
        max_memory: int | None = None, processes: bool = True, progress: Progress | None = None,
        route: str = "aattc") -> ScaleResult:
    """Time the exact oracle against ``N`` locally, on LocalClusters of ``workers`` workers and on CUDA.

    Parameters
    ----------
    vars_min, vars_max, step : int
        The grid of ``N`` (number of variables).
    workers : tuple of int
        LocalCluster sizes (empty: skip Dask). Needs the ``parallel`` extra.
    gpu : bool, optional
        Time :func:`~finegrained.attention.torch_backend.torch_exact` on CUDA; default: when CUDA is available.
    project, project_workers : tuple of int
        ``N`` to project and cluster sizes to project them on.
    gemm : bool
        Also time a bare float64 ``Q @ K.T`` of the full shape (the local target's yardstick).
    repeat : int
        Best of ``repeat`` for every timing.
    processes : bool
        LocalCluster workers as processes (the default, as a real cluster) or as threads of this process.
    route : {"aattc", "attention"}
        The route whose instances are timed (:data:`finegrained.chain.ROUTES`).
    """
    chain = route_chain(route)
    if vars_min < K or vars_min > vars_max or step < 1:
        raise ParameterError(f"need {K} <= vars_min <= vars_max and step >= 1, got {vars_min}, {vars_max}, {step}")
    if repeat < 1:
        raise ParameterError(f"repeat must be at least 1, got {repeat}")
    if any(int(w) < 1 for w in workers) or any(int(w) < 1 for w in project_workers):
        raise ParameterError("worker counts must be at least 1")
    if any(int(w) > MAX_WORKERS for w in workers):
        raise ParameterError(f"at most {MAX_WORKERS} local Dask workers are started, got "
                             f"{max(int(w) for w in workers)}; larger counts belong in --project-workers")
    grid = list(range(vars_min, vars_max + 1, step))
    m_max = clause_count(ratio, grid[-1])
    check_memory(chain_memory_bytes(grid[-1], m_max), max_memory, f"bench scale up to N = {grid[-1]}")
    cuda = None
    if gpu is None or gpu:
        try:
            import torch

            cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        except ImportError:
            cuda = None
        if gpu and cuda is None:
            raise ParameterError("bench scale --gpu needs torch with a CUDA device; none is available here")
    result = ScaleResult(repeat=repeat, gpu=cuda, route=route)
    clients: dict[int, Any] = {}
    stack = None
    if workers:
        import contextlib

        from ..attention.dask_backend import open_client

        stack = contextlib.ExitStack()
        for w in workers:
            clients[int(w)] = stack.enter_context(open_client(None, n_workers=int(w), processes=processes))
    try:
        for i, n in enumerate(grid):
            f = random_ksat(n, clause_count(ratio, n), K, seed=seed + n)
            att = chain.forward(f)
            Q, Km, V, s = att.Q, att.K, att.V, att.scale
            # the threshold test of the route: log 2t~ (Lemma 4.7) or log 1/2 (the gadget)
            thr = att.meta["lemma47"]["log_threshold"] if route == "aattc" else math.log(att.meta["threshold"])
            work = prepare(Q, Km, V, scale=s).work()
            base = {"N": n, "m": f.num_clauses, "n_q": int(Q.shape[0]), "n_k": int(Km.shape[0]),
                    "d": int(Q.shape[1]), "work": int(work)}
            local = exact_oracle(Q, Km, V, scale=s)  # warm: measures the GEMM rate once per process
            want = _decisions(local, thr)
            if gemm:
                t_or, t_mm = best_interleaved([lambda: exact_oracle(Q, Km, V, scale=s),  # noqa: B023
                                               lambda: Q @ Km.T], repeat)  # noqa: B023
                result.rows.append({**base, "backend": "local", "workers": 1, "seconds": t_or, "rate": work / t_or,
                                    "gemm_s": t_mm, "ratio": t_or / t_mm})
            else:
                t_or, _ = best_of(lambda: exact_oracle(Q, Km, V, scale=s), repeat=repeat)  # noqa: B023
                result.rows.append({**base, "backend": "local", "workers": 1, "seconds": t_or, "rate": work / t_or})
            times: dict[int, float] = {}
            for w, c in clients.items():
                exact_oracle(Q, Km, V, scale=s, backend="dask", client=c)  # warm: K and V paths, imports

                def _dask(c=c):
                    ans = exact_oracle(Q, Km, V, scale=s, backend="dask", client=c)  # noqa: B023
                    if not np.array_equal(_decisions(ans, thr), want):  # noqa: B023
                        raise AssertionError(f"dask with {w} workers changed a decision at N = {n}")  # noqa: B023
                t, _ = best_of(_dask, repeat=repeat)
                times[w] = t
                result.rows.append({**base, "backend": "dask", "workers": w, "seconds": t, "rate": work / t})
            if 1 in times:
                for w, t in times.items():
                    if w > 1:
                        result.efficiency[f"N={n},k={w}"] = times[1] / (w * t)
            if cuda is not None:
                from ..attention.torch_backend import torch_exact

                torch_exact(Q, Km, V, scale=s, device="cuda")
                t, ans = best_of(lambda: torch_exact(Q, Km, V, scale=s, device="cuda"), repeat=repeat)  # noqa: B023
                if not np.array_equal(_decisions(ans, thr), want):
                    raise AssertionError(f"torch_exact on CUDA changed a decision at N = {n}")
                result.rows.append({**base, "backend": "gpu", "workers": 1, "seconds": t, "rate": work / t})
            if progress is not None:
                progress(i + 1, len(grid))
    finally:
        if stack is not None:
            stack.close()
    _project(result, grid[-1], ratio, project, project_workers)
    return result


def _project(result: ScaleResult, n_top: int, ratio: float, project: tuple[int, ...],
             project_workers: tuple[int, ...]) -> None:
    top = [r for r in result.rows if r["N"] == n_top]
    if not top:
        return
    work_top, m_top = top[0]["work"], top[0]["m"]
    rate = {(r["backend"], r["workers"]): r["rate"] for r in top}
    eff_k = max((int(k.split("k=")[1]) for k in result.efficiency if k.startswith(f"N={n_top},")), default=None)
    eff = result.efficiency.get(f"N={n_top},k={eff_k}") if eff_k else None
    one = rate.get(("dask", 1))
    if one is not None and eff is not None:
        result.assumptions.append(f"k workers run at k x the 1-worker rate x {eff:.2f}, the efficiency measured "
                                  f"with {eff_k} workers at N = {n_top}; beyond {eff_k} workers that is assumed")
    result.assumptions.append(f"work grows as n_a n_b m from N = {n_top} (measured work {work_top:.3g} "
                              "multiply-adds); memory is not the limit (O((n_q + n_k) d))")
    for n in project:
        m = clause_count(ratio, n)
        work = work_top * _dims(n, m) / _dims(n_top, m_top)
        result.projections.append({"N": n, "target": "local", "workers": 1, "seconds": work / rate[("local", 1)]})
        if one is not None:
            for k in project_workers:
                e = 1.0 if k == 1 else (eff if eff is not None else math.nan)
                if math.isnan(e):
                    continue
                result.projections.append({"N": n, "target": "dask", "workers": k, "seconds": work / (one * k * e)})
        if ("gpu", 1) in rate:
            result.projections.append({"N": n, "target": "gpu", "workers": 1, "seconds": work / rate[("gpu", 1)]})


__all__ = ["ScaleResult", "run"]
