"""``finegrained bench scale``."""

from __future__ import annotations

import argparse

from ..argtypes import (
    add_max_memory,
    add_repeat,
    add_seed,
    choice_of,
    int_range,
    list_of,
    pos_float,
    pos_int,
)

DESCRIPTION = ("Scaling of the exact oracle on the chain's instances. For each number of variables N, a seeded "
               "random 3-SAT formula goes through k-SAT -> OV -> Gap-ANN -> AAttC (--route attention: k-SAT -> OV "
               "-> Attention) and the exact oracle is timed "
               "locally (next to a bare float64 Q @ K.T of the full shape, in the same run), on a Dask "
               "LocalCluster with each of --workers single-threaded workers (strong-scaling efficiency "
               "T1 / (k Tk)), and with torch on CUDA when a CUDA device is present. Every run's decisions are "
               "checked against the local oracle. Larger N (--project) are projected from the measured rates "
               "on k workers (--project-workers) and on the GPU. Dask needs the parallel extra, the GPU run "
               "the torch extra.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vars-min", type=pos_int, default=14, metavar="N", help="smallest number of variables N")
    parser.add_argument("--vars-max", type=pos_int, default=20, metavar="N", help="largest number of variables N")
    parser.add_argument("--step", type=pos_int, default=2, help="step in N")
    parser.add_argument("--ratio", type=pos_float, default=4.26, help="clauses per variable")
    parser.add_argument("--route", choices=("aattc", "attention"), default="aattc",
                        help="aattc: k-SAT -> OV -> Gap-ANN -> AAttC (Lemma 4.7); attention: Gupta et al.'s "
                        "k-SAT -> OV -> Attention (Thm 1.5 gadget, no Lemma 4.7 constants)")
    parser.add_argument("--workers", type=list_of(int_range(0, 64)), default=[1, 2], metavar="K[,K...]",
                        help="comma-separated LocalCluster sizes (0..64); 0 skips Dask")
    parser.add_argument("--gpu", type=choice_of("auto", "yes", "no"), default="auto",
                        help="time torch_exact on CUDA: auto (when present), yes (required), no")
    parser.add_argument("--project", type=list_of(int_range(1, 200)), default=[34, 36, 40], metavar="N[,N...]",
                        help="comma-separated N (1..200) to project from the measured rates")
    parser.add_argument("--project-workers", type=list_of(pos_int), default=[1, 2, 8, 32], metavar="K[,K...]",
                        help="comma-separated worker counts of the projection")
    parser.add_argument("--no-gemm", action="store_true", help="skip the bare Q @ K.T timing")
    add_repeat(parser, 3)
    add_seed(parser)
    add_max_memory(parser, "refuse N whose chain needs more memory than this, e.g. 8G (default: half of RAM)")


def run(args: argparse.Namespace, progress):
    from ...bench.scale import run as bench

    workers = tuple(w for w in args.workers if w > 0)
    gpu = {"auto": None, "yes": True, "no": False}[args.gpu]
    return bench(vars_min=args.vars_min, vars_max=args.vars_max, step=args.step, ratio=args.ratio,
                 workers=workers, gpu=gpu, project=tuple(args.project), project_workers=tuple(args.project_workers),
                 gemm=not args.no_gemm, repeat=args.repeat, seed=args.seed, max_memory=args.max_memory,
                 progress=progress, route=args.route)


def _secs(t: float) -> str:
    if t < 120:
        return f"{t:.3g} s"
    if t < 7200:
        return f"{t / 60:.3g} min"
    if t < 172800:
        return f"{t / 3600:.3g} h"
    return f"{t / 86400:.3g} days"


def format_text(result) -> str:
    """Measured rows, the strong-scaling efficiency and the projection.

    Examples
    --------
    >>> from finegrained.bench.scale import ScaleResult
    >>> res = ScaleResult(repeat=1, projections=[{"N": 34, "target": "dask", "workers": 8, "seconds": 5400.0}])
    >>> print(format_text(res).splitlines()[-1])
      N = 34 on 8 workers   90 min
    """
    lines = [f"bench scale: exact oracle on the chain's instances, route {result.route} (best of {result.repeat})"
             + (f", GPU {result.gpu}" if result.gpu else ", no CUDA device"),
             f"{'N':>3} {'n_q':>6} {'n_k':>6} {'d':>5} {'backend':>7} {'k':>3} {'seconds':>9} "
             f"{'Gmadd/s':>8} {'Q@K.T s':>9} {'ratio':>6}"]
    for r in result.rows:
        extra = f" {r['gemm_s']:>9.4f} {r['ratio']:>6.2f}" if "ratio" in r else ""
        lines.append(f"{r['N']:>3} {r['n_q']:>6} {r['n_k']:>6} {r['d']:>5} {r['backend']:>7} {r['workers']:>3} "
                     f"{r['seconds']:>9.4f} {r['rate'] / 1e9:>8.2f}{extra}")
    if result.efficiency:
        lines.append("strong-scaling efficiency T1 / (k Tk): "
                     + ", ".join(f"{k} {v:.2f}" for k, v in result.efficiency.items()))
    if result.projections:
        lines.append("projection from the measured rates:")
        for p in result.projections:
            where = {"local": "local", "gpu": "GPU"}.get(p["target"], f"{p['workers']} workers")
            lines.append(f"  N = {p['N']:>2} on {where:<11} {_secs(p['seconds'])}")
        lines.extend(f"  assumption: {a}" for a in result.assumptions)
    return "\n".join(lines)
