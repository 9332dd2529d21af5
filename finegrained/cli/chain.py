"""``finegrained chain``: decide a CNF formula through k-SAT -> OV -> Gap-ANN -> AAttC -> attention oracle.

``--format competition`` follows the SAT competition's output rules: ``s SATISFIABLE`` with ``v ... 0`` lines
(exit 10), ``s UNSATISFIABLE`` (exit 20), or ``s UNKNOWN`` (exit 0) when the answer is not certified; comment
lines start with ``c``. ``--ann FILE.npz`` runs Gap-ANN -> AAttC -> oracle on a Gap-ANN instance instead.
"""

from __future__ import annotations

import argparse
import sys

from .argtypes import add_max_memory, finite_float
from .formatting import emit, fmt, json_report, note
from .status import EXIT_OK, EXIT_SAT, EXIT_UNSAT, EXIT_WRONG

HELP = "decide a CNF formula through k-SAT -> OV -> Gap-ANN -> AAttC -> attention oracle"
DESCRIPTION = ("Run the Alman-Song SETH chain end to end on a DIMACS CNF formula: k-SAT -> OV (Williams' split and "
               "list) -> Gap-ANN -> AAttC (Lemma 4.7) -> an attention oracle, then decode and verify the answer. "
               "Exit status: 0 success, 1 wrong or unverified answer, 2 error; with --format competition 10 "
               "SATISFIABLE, 20 UNSATISFIABLE, 0 UNKNOWN.")

#: Print an up-front time estimate when the oracle's matrix product is expected to take longer than this.
ESTIMATE_SECONDS = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from instances.examples import DEFAULT_EXAMPLE, list_examples

    from ..attention import ORACLES
    from .inputs import add_input_arguments

    add_input_arguments(parser, list_examples(), DEFAULT_EXAMPLE)
    parser.add_argument("--oracle", default="exact", help=f"attention oracle, one of: {', '.join(sorted(ORACLES))}")
    parser.add_argument("--route", choices=("aattc", "attention"), default="aattc",
                        help="aattc: Alman-Song k-SAT -> OV -> Gap-ANN -> AAttC (Lemma 4.7, log-space outputs); "
                        "attention: Gupta et al. k-SAT -> OV -> Attention (Thm 1.5 gadget, float32 decides it)")
    parser.add_argument("--params", default="tight", choices=("tight", "paper"), help="Lemma 4.7 constants")
    parser.add_argument("--safety", type=finite_float, default=None,
                        help="factor on beta_min in tight mode (default 1.25)")
    add_max_memory(parser, "refuse instances needing more memory than this, e.g. 8G (default: half of RAM)")
    parser.add_argument("--dask", nargs="?", const="local", default=None, metavar="ADDRESS",
                        help="run the exact oracle on Dask: without ADDRESS on a LocalCluster with one worker per "
                        "core, with one on that dask.distributed scheduler (needs the 'parallel' extra)")
    parser.add_argument("--device", default=None, metavar="DEVICE",
                        help="torch device for --oracle torch_exact or sdpa, e.g. cpu or cuda (default: cuda when "
                        "available)")
    parser.add_argument("--no-cdcl", action="store_true", help="skip the cross-check with pysat's CDCL solver")
    parser.add_argument("--ann", metavar="FILE.npz", default=None,
                        help="run Gap-ANN -> AAttC -> oracle on a Gap-ANN instance instead (see docs/gap_ann.md)")
    parser.add_argument("--format", choices=("text", "json", "competition"), default=None,
                        help="output format: a report (text), JSON (schema in docs/cli.md), or SAT-competition "
                        "lines (s/v, exit 10/20/0) (default: text)")
    parser.add_argument("--json", action="store_true", help="the same as --format json")


def _format(args: argparse.Namespace) -> str:
    from instances.errors import ParameterError

    if args.json and args.format not in (None, "json"):
        raise ParameterError(f"--json contradicts --format {args.format}")
    return "json" if args.json else (args.format or "text")


# --------------------------------------------------------------------------------------------------- formatters
def _margin(x) -> str:
    """A margin in nats; the JSON-safe spellings of infinities (``"-inf"``) pass through."""
    return f"{x:+.4g}" if isinstance(x, int | float) else str(x)


def format_chain(result, source: str) -> str:
    """The human-readable report of ``finegrained chain`` (``result`` is a :class:`finegrained.ChainResult`)."""
    s = {st["problem"]: st for st in result.stages}
    p = result.parameters
    if getattr(result, "route", "aattc") == "attention":
        return _format_attention_route(result, source, s, p)
    sat, ov, gap, att = s["k-SAT"], s["OV"], s["Gap-ANN"], s["AAttC"]
    lines = [
        f"finegrained chain: {source}   (params: {result.params}, oracle: {result.oracle})",
        "",
        f"  k-SAT    N = {sat['num_vars']} variables, m = {sat['num_clauses']} clauses, k = {sat['k']}",
        f"  OV       split and list (Williams): n_a = {ov['n_a']}, n_b = {ov['n_b']}, d = {ov['d']}",
        f"  Gap-ANN  gadget 1+2xy, Remark 4.4: n = {gap['n_a']}, d = {gap['d']}, t = {gap['t']:g}, "
        f"eps = {gap['eps']:.6g}",
        f"  AAttC    Lemma 4.7: n_q = {att['n_q']}, n_k = {att['n_k']}, d = {att['d']}, d_v = {att['d_v']}",
        f"           beta = {p['beta']:.6g} (beta_min = {p['beta_min']:.6g}, x{p['safety']:.3g}), "
        f"B = sqrt(beta) = {p['B']:.6g}"
        + (f" = {p['B_over_sqrt_ln_n']:.3g} sqrt(ln n): the exact-gap gadget gives B = Theta(sqrt(m log n)), "
           "docs/errata.md" if "B_over_sqrt_ln_n" in p else ""),
        f"           log tau = {fmt(p['log_tau'])}, log t~ = {fmt(p['log_t_tilde'])}, "
        f"log eps_a = {fmt(p['log_eps_a'])}, log 2t~ = {fmt(p['log_threshold'])}",
        "",
        f"  oracle   {result.oracle}: {result.timings['oracle']:.3f} s; certifies "
        f"{_certifies(result)}",
    ]
    return "\n".join(lines + _answer_lines(result))


def _certifies(result) -> str:
    cert = getattr(result, "certificate", {}) or {}
    return cert.get("description", "nothing") if cert.get("kind", "none") != "none" else "nothing"


def _format_attention_route(result, source: str, s: dict, p: dict) -> str:
    sat, ov, att = s["k-SAT"], s["OV"], s["Attention"]
    lines = [
        f"finegrained chain: {source}   (route: attention, oracle: {result.oracle})",
        "",
        f"  k-SAT      N = {sat['num_vars']} variables, m = {sat['num_clauses']} clauses, k = {sat['k']}",
        f"  OV         split and list (Williams): n_a = {ov['n_a']}, n_b = {ov['n_b']}, d = {ov['d']}",
        f"  Attention  Gupta et al. Thm 1.5 gadget: n_q = {att['n_q']}, n_k = {att['n_k']}, d = {att['d']}, "
        f"entries <= lambda = 2 ln(8n) = {p['lambda']:.4g}; decide u_i >= 1/2",
        "",
        f"  oracle     {result.oracle}: {result.timings['oracle']:.3f} s; certifies "
        f"{_certifies(result)}",
    ]
    return "\n".join(lines + _answer_lines(result, "u_i >= 1/2"))


def _answer_lines(result, rule: str = "u_i >= 2t~") -> list[str]:
    lines: list[str] = []
    d = result.decision
    margins = []
    if d.get("min_yes_margin") is not None:
        margins.append(f"closest YES margin {_margin(d['min_yes_margin'])} nats")
    if d.get("max_no_margin") is not None:
        margins.append(f"closest NO margin {_margin(d['max_no_margin'])} nats")
    undecided = d.get("undecided_rows")
    lines.append(f"  decode   {d['yes_rows']} of {d['rows']} rows have {rule}"
                 + (f" ({', '.join(margins)})" if margins else "")
                 + (f"; {undecided} undecided by the certificate" if undecided else ""))
    lines.append("")
    certified = getattr(result, "certified", True)
    if result.satisfiable:
        lines.append("  answer   SATISFIABLE")
        lines.append("  assignment  " + " ".join(map(str, result.assignment or [])))
        check = "satisfies every clause" if result.verified else "DOES NOT satisfy the formula"
        lines.append(f"  verified    the assignment {check}")
    else:
        lines.append("  answer   UNSATISFIABLE" + ("" if certified else " (uncertified)"))
    if not certified and getattr(result, "reason", ""):
        lines.append(f"  not certified: {result.reason}")
    if result.cdcl_satisfiable is not None:
        agree = result.cdcl_satisfiable == result.satisfiable
        verdict = "SAT" if result.cdcl_satisfiable else "UNSAT"
        lines.append(f"  pysat CDCL: {verdict} ({'agrees' if agree else 'DISAGREES'})")
    t = result.timings
    lines.append("  time     " + ", ".join(f"{k} {v:.3f} s" for k, v in t.items()))
    return lines


def format_ann_chain(result, source: str) -> str:
    """The human-readable report of ``finegrained chain --ann FILE`` (``result`` is an ``AnnChainResult``)."""
    data = result.to_dict()
    inst, p, t = data["instance"], data["parameters"], data["timings"]
    lines = [
        f"finegrained chain --ann: {source}   (params: {result.params}, oracle: {result.oracle})",
        "",
        f"  Gap-ANN  n_a = {inst['n_a']}, n_b = {inst['n_b']}, d = {inst['d']}, t = {inst['t']:g}, "
        f"eps = {inst['eps']:.6g}" + ("  (balanced by Remark 4.4: d = "
                                      f"{inst['d_balanced']}, t = {inst['t_balanced']:g})"
                                      if inst["balanced_by_remark_4_4"] else ""),
        f"  AAttC    Lemma 4.7: beta = {p['beta']:.6g} (beta_min = {p['beta_min']:.6g}), B = {p['B']:.6g}, "
        f"log t~ = {p['log_t_tilde']:.6g}, log eps_a = {p['log_eps_a']:.6g}",
        f"  oracle   {result.oracle}: {t['oracle']:.3f} s",
        f"  answer   {data['yes_rows']} of {data['rows']} rows YES through attention; direct solver "
        f"({result.direct_method}): {data['direct_yes_rows']} YES, {t['direct']:.3f} s",
        f"  promise  {data['outside_promise_rows']} rows outside the promise",
    ]
    if result.agree_with_direct:
        lines.append("  check    attention agrees with the direct solver on every row")
    else:
        lines.append(f"  check    {result.disagreement_count} rows DISAGREE ({result.in_promise_errors} inside the "
                     "promise, i.e. wrong answers)")
        for row in result.disagreements[:10]:
            lines.append(f"           row {row['row']}: attention {row['attention']}, direct {row['direct']}, "
                         f"min distance {row['min_distance']:g}")
    if result.ground_truth_agrees is not None:
        lines.append(f"  planted  ground truth {'agrees' if result.ground_truth_agrees else 'DISAGREES'}")
    lines.append("  time     " + ", ".join(f"{k} {v:.3f} s" for k, v in t.items()))
    return "\n".join(lines)


def competition_answer(result) -> str:
    """``SATISFIABLE``, ``UNSATISFIABLE`` or ``UNKNOWN``: never an answer that is not certified.

    SAT needs a verified assignment; UNSAT needs a certified answer that pysat (when it ran) does not contradict.
    """
    if result is None:
        return "UNKNOWN"
    if result.cdcl_satisfiable is not None and result.cdcl_satisfiable != result.satisfiable:
        return "UNKNOWN"
    if result.satisfiable:
        return "SATISFIABLE" if result.verified and result.assignment is not None else "UNKNOWN"
    return "UNSATISFIABLE" if getattr(result, "certified", True) else "UNKNOWN"


def format_competition(result, source: str, comment: str | None = None) -> str:
    """SAT-competition output: ``c`` comments, one ``s`` line, and ``v`` lines ending in ``0`` for SAT."""
    from .formatting import version

    lines = [f"c finegrained {version()} chain: {source}"]
    if result is not None:
        lines.append(f"c params {result.params}, oracle {result.oracle}, "
                     f"{'certified' if getattr(result, 'certified', True) else 'not certified'}")
    if comment:
        lines.append(f"c {comment}")
    answer = competition_answer(result)
    lines.append(f"s {answer}")
    if answer == "SATISFIABLE":
        words = [str(x) for x in result.assignment] + ["0"]
        line = "v"
        for w in words:
            if len(line) + 1 + len(w) > 78:  # the competition's lines stay short
                lines.append(line)
                line = "v"
            line += " " + w
        lines.append(line)
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- estimates
def time_estimate(num_vars: int, num_clauses: int, route: str = "aattc") -> tuple[float, float] | None:
    """Seconds the oracle's score product is expected to take on this machine, and the measured flop rate.

    On the aattc route the attention has ``n_q = n_a + n_b`` queries and ``n_k = 2 n_b`` keys of dimension
    ``12 m`` (Lemma 4.7 on the split-and-list vectors); on the attention route ``n_q = n_a``, ``n_k = n_b + 1``
    and ``d = m + 1`` (:attr:`reductions.ov_to_attention.OVToAttention.sizes`); ``n_a = 2^ceil(N/2)``,
    ``n_b = 2^floor(N/2)``. ``2 n_q n_k d`` flops at the rate of a float64 matrix product measured now. None
    when the product is too small to be worth measuring.
    """
    n_a, n_b, m = 2 ** ((num_vars + 1) // 2), 2 ** (num_vars // 2), max(num_clauses, 1)
    if route == "attention":
        flops = 2 * n_a * (n_b + 1) * (m + 1)  # exact integers: no overflow
    else:
        flops = 2 * (n_a + n_b) * (2 * n_b) * 12 * m
    if flops < 10**10 or flops > 10**300:  # well under a second; or far beyond memory (refused before it runs)
        return None
    from ..bench.timing import gemm_rate

    rate = gemm_rate()
    return flops / rate, rate


def _human_seconds(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    if s < 48 * 3600:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.0f} days"


# ------------------------------------------------------------------------------------------------------- run
def _run_ann(args: argparse.Namespace, out_format: str) -> int:
    from instances.errors import FinegrainedError, ParameterError
    from instances.gap_ann_builders import load_gap_ann

    from ..ann_chain import ann_chain_memory_bytes, run_ann_chain
    from .formatting import format_bytes

    if args.file or args.example:
        raise FinegrainedError("give either a CNF (FILE or --example) or --ann FILE.npz, not both")
    if out_format == "competition":
        raise ParameterError("--format competition answers a CNF formula; --ann decides a Gap-ANN instance")
    instance, meta = load_gap_ann(args.ann, max_memory=_load_limit(args))
    expected = None
    if meta.get("generator") == "planted" and "planted_rows" in meta:
        import numpy as np

        expected = np.zeros(instance.n_a, dtype=bool)
        expected[np.asarray(meta["planted_rows"], dtype=np.int64)] = True
    result = run_ann_chain(instance, oracle=args.oracle, params=args.params, safety=args.safety,
                           expected=expected, max_memory=args.max_memory)
    if out_format == "json":
        est = ann_chain_memory_bytes(instance.n_a, instance.n_b, result.instance["d_balanced"])
        emit(json_report(result.to_dict(), input={
            "file": str(args.ann), "generator": meta.get("generator"), "seed": meta.get("seed"),
            "estimated_memory_bytes": est, "estimated_memory": format_bytes(est)}))
    else:
        emit(format_ann_chain(result, str(args.ann)))
    return EXIT_WRONG if result.in_promise_errors else EXIT_OK


def _oracle(args: argparse.Namespace, out_format: str):
    """``--oracle`` with ``--dask`` or ``--device`` bound in (a named callable, so reports keep the name)."""
    from instances.errors import ParameterError

    if args.dask is None and args.device is None:
        return args.oracle
    from ..attention import resolve_oracle

    name, fn = resolve_oracle(args.oracle)
    if args.dask is not None:
        if name != "exact":
            raise ParameterError(f"--dask runs the exact oracle; --oracle {name} has no Dask backend")
        client = None if args.dask == "local" else args.dask
        progress = out_format == "text" and sys.stderr.isatty()

        def bound(Q, K, V, *, scale=None, log_eps=None):
            return fn(Q, K, V, scale=scale, log_eps=log_eps, backend="dask", client=client, progress=progress)
    else:
        if name not in ("torch_exact", "sdpa"):
            raise ParameterError(f"--device selects the torch device of torch_exact and sdpa, not of {name}")

        def bound(Q, K, V, *, scale=None, log_eps=None):
            return fn(Q, K, V, scale=scale, log_eps=log_eps, device=args.device)

    bound.__name__ = name
    return bound


def run(args: argparse.Namespace) -> int:
    from instances.errors import UncertifiedError, WrongAnswerError

    from ..chain import chain_memory_bytes, run_chain
    from ..resources import check_memory
    from .inputs import read_cnf

    out_format = _format(args)
    if args.ann:
        return _run_ann(args, out_format)
    from instances.examples import DEFAULT_EXAMPLE

    cnf, source = read_cnf(args, DEFAULT_EXAMPLE)
    # the memory limit first: an instance that cannot run gets one error line, not an estimate and then an error
    check_memory(chain_memory_bytes(cnf.num_vars, cnf.num_clauses), args.max_memory,
                 f"the chain on {cnf.num_vars} variables and {cnf.num_clauses} clauses")
    if out_format == "text":
        est = time_estimate(cnf.num_vars, cnf.num_clauses, args.route)
        if est is not None and est[0] >= ESTIMATE_SECONDS:
            # an upper estimate on the aattc route: its padding rows are all alike and the exact oracle merges them
            merged = "; the exact oracle merges repeated rows and is usually faster" if args.route == "aattc" else ""
            note(f"N = {cnf.num_vars}, m = {cnf.num_clauses}: a full score product takes about "
                 f"{_human_seconds(est[0])} on this machine (measured {est[1] / 1e9:.0f} GFLOP/s){merged}")
    oracle = _oracle(args, out_format)
    try:
        result = run_chain(cnf, oracle=oracle, params=args.params, safety=args.safety,
                           max_memory=args.max_memory, cdcl=not args.no_cdcl, route=args.route)
    except (UncertifiedError, WrongAnswerError) as exc:
        if out_format != "competition":
            raise
        # A harness reads the s line: an answer that is not proved is UNKNOWN, never a guess.
        emit(format_competition(None, source, comment=str(exc).splitlines()[0]))
        if isinstance(exc, WrongAnswerError):
            print(f"finegrained: wrong answer from the oracle: {exc}", file=sys.stderr)
            return EXIT_WRONG
        return EXIT_OK
    if out_format == "competition":
        emit(format_competition(result, source))
        answer = competition_answer(result)
        return {"SATISFIABLE": EXIT_SAT, "UNSATISFIABLE": EXIT_UNSAT}.get(answer, EXIT_OK)
    if out_format == "json":
        est_bytes = chain_memory_bytes(cnf.num_vars, cnf.num_clauses)
        emit(json_report(result.to_dict(), input={"file": source, "num_vars": cnf.num_vars,
                                                  "num_clauses": cnf.num_clauses,
                                                  "estimated_memory_bytes": est_bytes}))
    else:
        emit(format_chain(result, source))
    # A wrong answer is never a success: an unverified assignment, or an answer pysat contradicts.
    if (result.satisfiable and not result.verified) or (
        result.cdcl_satisfiable is not None and result.cdcl_satisfiable != result.satisfiable
    ):
        return EXIT_WRONG
    return EXIT_OK


__all__ = ["competition_answer", "format_ann_chain", "format_chain", "format_competition", "run", "time_estimate"]


def _load_limit(args: argparse.Namespace) -> int:
    """The memory limit for unpacking an ``.npz`` (its headers are checked before anything is unpacked)."""
    from ..resources import default_memory_limit

    return default_memory_limit() if args.max_memory is None else args.max_memory
