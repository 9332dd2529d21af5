"""``finegrained validate``: the threshold test u_i >= 2t~ of Lemma 4.7, row by row, on a Gap-ANN instance.

Builds k-SAT -> OV -> Gap-ANN (default: the shipped example), runs Lemma 4.7 and an attention oracle, and prints
for every real query row the oracle's log u_i, the threshold log 2t~, the brute-force ground truth, the decision
and its margin in nats, and the proof's Case 2a / 2b bound at the row's own distance. The summary gives the
largest error an omniscient adversary can add without flipping a decision (bisection in log eps), beside log t~
and log eps_a. --proof checks every inequality of the corrected proof exactly (sympy); --sweep beta shows how
the decisions degrade below beta_min; --reference certifies the float64 oracle against mpmath. --route attention
validates Gupta et al.'s k-SAT -> OV -> Attention instead (rule u_i >= 1/2, gadget bounds c/(c+1) and 1/(c+1)),
and --proof then checks that gadget's constants. Exit status 1 when a row is decided wrongly, a row breaks its
bound, or a proof check fails. See docs/validation.md.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable

import numpy as np

from instances.errors import FinegrainedError, ParameterError

from .argtypes import add_max_memory, finite_float, int_range, pos_int
from .formatting import emit, fmt, json_report, note

HELP = "validate the threshold test u_i >= 2t~ row by row (and proof checks, beta sweep)"
DESCRIPTION = ("Build k-SAT -> OV -> Gap-ANN from a formula (default: the shipped example), run Lemma 4.7 and an "
               "attention oracle, and print for every real query row the oracle's log u_i, the threshold log 2t~, "
               "the brute-force ground truth, the decision and its margin in nats, and the proof's Case 2a / 2b "
               "bound. --proof checks every inequality of the corrected proof exactly (sympy); --sweep beta shows "
               "how the decisions degrade below beta_min; --reference certifies the float64 oracle against mpmath. "
               "--route attention validates Gupta et al.'s k-SAT -> OV -> Attention instead (rule u_i >= 1/2, "
               "gadget bounds c/(c+1) and 1/(c+1); --proof then checks the gadget's constants). "
               "Exit status 1 when a row is decided wrongly, a row breaks its bound, or a proof check fails.")
DEFAULT_ROWS = 20
#: Largest --dps: mpmath's cost grows faster than linearly in the digits, and 10^4 digits already certify any
#: float64 computation many times over (the reference's own work limit counts operations, not digits).
MAX_DPS = 10_000
_NUM = r"\d+(?:\.\d*)?(?:[eE][+-]?\d+)?"
# a named quantity takes a signed offset (t~+0.5); a plain number may go unsigned (1.5 is +1.5)
_EPS_ADV = re.compile(rf"^\s*(?:(eps_a|t~|t_tilde|gap)\s*([+-]\s*{_NUM})?|([+-]?\s*{_NUM}))\s*$")
#: Options that set Lemma 4.7's constants or analyse its construction: refused on --route attention (dest, flag).
AATTC_ONLY = (("ann", "--ann"), ("params", "--params"), ("safety", "--safety"), ("beta", "--beta"),
              ("sweep", "--sweep"), ("symbolic", "--symbolic"), ("reference", "--reference"), ("plot", "--plot"),
              ("points", "--points"), ("dps", "--dps"))


def _rows(text: str) -> int | None:
    return None if text == "all" else pos_int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from instances.examples import DEFAULT_EXAMPLE, list_examples

    from ..attention import ORACLES
    from .inputs import add_input_arguments

    add_input_arguments(parser, list_examples(), DEFAULT_EXAMPLE)
    parser.add_argument("--route", choices=("aattc", "attention"), default="aattc",
                        help="aattc: Alman-Song k-SAT -> OV -> Gap-ANN -> AAttC (Lemma 4.7, threshold 2t~); "
                        "attention: Gupta et al. k-SAT -> OV -> Attention (Thm 1.5 gadget, threshold 1/2)")
    parser.add_argument("--margins-plot", metavar="FILE.png",
                        help="save the per-row margins log u_i - log 2t~ as a plot (.png, .pdf or .svg; needs "
                        "finegrained[plot])")
    parser.add_argument("--ann", metavar="FILE.npz",
                        help="validate a Gap-ANN instance from 'finegrained generate gap-ann' instead of a formula")
    parser.add_argument("--params", default=None, choices=("tight", "paper"),
                        help="Lemma 4.7 constants (default: tight)")
    parser.add_argument("--safety", type=finite_float, default=None,
                        help="factor on beta_min in tight mode (default 1.25)")
    parser.add_argument("--beta", type=finite_float, default=None,
                        help="override beta (experiments below beta_min; then eps_a = t~ and nothing is enforced)")
    parser.add_argument("--oracle", default=None,
                        help=f"attention oracle: one of {', '.join(sorted(ORACLES))}, or 'adversarial' "
                        "(the exact answer pushed by eps_a towards 2t~); default exact")
    parser.add_argument("--eps-adv", metavar="LOG_EPS", default=None,
                        help="make the oracle adversarial with error eps given as a natural log: a number "
                        "(e.g. -2480; write --eps-adv=-1e3 for an exponent form), or 'eps_a' / 't~' "
                        "optionally with an offset in nats (e.g. 't~+0.5'); on --route attention 'eps_a' (1/4) "
                        "or 'gap' (min(c/(c+1) - 1/2, 1/2 - 1/(c+1)), the error the gadget bounds tolerate)")
    parser.add_argument("--rows", type=_rows, default=DEFAULT_ROWS, metavar="K|all",
                        help="table rows to show: the K closest to the threshold, or all")
    parser.add_argument("--proof", action="store_true",
                        help="check every inequality of the corrected Lemma 4.7 proof exactly (sympy)")
    parser.add_argument("--symbolic", action="store_true",
                        help="with --proof: also prove the inequalities for all n at this instance's constants")
    parser.add_argument("--sweep", choices=("beta",), default=None,
                        help="fraction of rows decided correctly as beta varies around beta_min")
    parser.add_argument("--points", type=pos_int, default=None, help="grid points of --sweep (default 25)")
    parser.add_argument("--plot", metavar="FILE.png", default=None,
                        help="with --sweep: save a plot (.png, .pdf or .svg; matplotlib)")
    parser.add_argument("--reference", action="store_true",
                        help="certify the exact oracle against an mpmath reference (small instances only)")
    parser.add_argument("--dps", type=int_range(15, MAX_DPS), default=None,
                        help=f"with --reference: decimal digits of the mpmath reference, 15 to {MAX_DPS} (default 50)")
    add_max_memory(parser, "refuse instances needing more memory than this, e.g. 8G (default: half of RAM)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON (schema in docs/validation.md)")


def parse_eps_adv(text: str, params) -> float:
    """``--eps-adv`` as a natural log: a number, or a named error plus an optional offset in nats.

    ``params`` is Lemma 4.7's record (names ``eps_a``, ``t~``) or the attention route's parameter dict (names
    ``eps_a`` = 1/4 and ``gap`` = ``min(c/(c+1) - 1/2, 1/2 - 1/(c+1))``, the largest error the gadget bounds
    tolerate on a point answer).

    Examples
    --------
    >>> from reductions import lemma47_parameters
    >>> p = lemma47_parameters(4, 4, 12, 5.0, 0.6)
    >>> parse_eps_adv("t~+0.5", p) == p.log_t_tilde + 0.5, parse_eps_adv("-30", p)
    (True, -30.0)
    >>> round(parse_eps_adv("gap", {"log_eps_a": -1.386, "yes_lower": 8 / 9, "no_upper": 1 / 9}), 4)
    -0.9445
    """
    m = _EPS_ADV.match(text)
    attention = isinstance(params, dict)
    names = "eps_a / gap" if attention else "eps_a / t~"
    if not m:
        raise ParameterError(f"--eps-adv expects a natural log such as {'-1.5' if attention else '-2480'}, or "
                             f"{names} with an optional offset such as {'gap-0.1' if attention else 't~+0.5'}; "
                             f"got {text!r}")
    if attention:
        gap = min(params["yes_lower"] - 0.5, 0.5 - params["no_upper"])
        base = {None: 0.0, "eps_a": params["log_eps_a"], "gap": math.log(gap) if gap > 0 else -math.inf}
    else:
        base = {None: 0.0, "eps_a": params.log_eps_a, "t~": params.log_t_tilde, "t_tilde": params.log_t_tilde}
    if m.group(1) not in base:
        what = "a Lemma 4.7 quantity" if attention else "the attention route's gadget gap"
        raise ParameterError(f"--eps-adv {m.group(1)} names {what}; on this route use a number or {names}")
    number = m.group(2) or m.group(3)
    offset = float(number.replace(" ", "")) if number else 0.0
    value = base[m.group(1)] + offset
    if not math.isfinite(value):
        # e.g. -1e400 reads as -inf: refused like the literal -inf, instead of an infinite log in the report
        raise ParameterError(f"--eps-adv must be a finite natural log; {text!r} is {value} (for no error, leave "
                             "--eps-adv out)")
    return value


# --------------------------------------------------------------------------------------------------- formatters
def _log_u_text(sign: int, log_abs: float) -> str:
    """``log u_i`` for the table: ``-inf (u=0)``, or ``log|u_i|`` marked ``(u<0)`` (log u of a negative u is not
    a real number, and a bare minus sign in front of a negative log would read ``--2.6``)."""
    if sign == 0:
        return "-inf (u=0)"
    return f"{fmt(log_abs, '.6g')} (u<0)" if sign < 0 else fmt(log_abs, ".8g")


def _nats(x: float, signed: bool = True) -> str:
    """A margin in nats: four decimals, or four significant digits past 10^6 (an adversary's e^(1e300) margin
    would otherwise print all of its 300 digits)."""
    spec = ".4f" if not math.isfinite(x) or abs(x) < 1e6 else ".4g"
    return fmt(float(x), ("+" if signed else "") + spec)


def _margins_text(s: dict) -> str:
    """The summary's closest margins; a missing one is ``-inf`` (a YES row with ``u_i <= 0``), ``inf`` (every NO
    row has ``u_i <= 0``) or ``none`` (no such rows), never a bare dash."""
    yes = s["min_yes_margin"]
    no = s["min_abs_no_margin"]
    yes_t = (f"{_nats(yes)} nats" if yes is not None else "-inf (a YES row has u_i <= 0)" if s["yes_rows"]
             else "none (no YES rows)")
    no_t = (f"{_nats(no, signed=False)} nats" if no is not None else "inf (every NO row has u_i <= 0)" if s["no_rows"]
            else "none (no NO rows)")
    return f"              min YES margin {yes_t}, min |NO margin| {no_t}"


def _rows_shown(margin: np.ndarray, k: int | None) -> tuple[np.ndarray, str]:
    """The rows a table shows (all, or the ``k`` closest to the threshold) and the line that says which."""
    n_a = margin.size
    if k is None or n_a <= k:
        return np.arange(n_a), f"  all {n_a} rows"
    # the rows closest to the threshold are the ones a slightly worse oracle would flip first
    order = np.argsort(np.abs(np.nan_to_num(margin, neginf=-1e300)), kind="stable")[:k]
    return order, f"  the {k} of {n_a} rows closest to the threshold (--rows all shows every row)"


def _summary_lines(s: dict, scope: str, bound: str) -> list[str]:
    """The verdict, the closest margins and the rows outside their proven bound (both routes)."""
    verdict = (f"all {s['rows']} rows correct" if s["all_correct"]
               else f"{len(s['wrong_rows'])} of {s['rows']} rows WRONG: {s['wrong_rows'][:10]}")
    ob = s["rows_outside_bound"]
    return [f"  summary     {verdict} ({s['yes_rows']} YES, {s['no_rows']} NO, {scope})", _margins_text(s),
            f"              exact u_i inside its {bound} on every row" if not ob
            else f"              {len(ob)} rows OUTSIDE their {bound}: {ob[:10]}"]


def _robustness_lines(s: dict, slack_line: Callable[[], str]) -> list[str]:
    """The adversary's largest tolerated error, then ``slack_line()`` (called only when that error exists)."""
    L = s["max_tolerated_log_eps"]
    if L is None:
        return ["  robustness  the exact answer itself is decided wrongly: no error is tolerated"]
    return [f"  robustness  largest log eps an omniscient adversary can add: {L:.10g} (bisection; "
            f"closed form {fmt(s['analytic_log_slack'], '.10g')})", slack_line()]


def format_report(rep, k: int | None) -> str:
    """The human-readable table and summary of ``finegrained validate`` (``rep`` is a ``ValidationReport``)."""
    p, r, s = rep.parameters, rep.rows, rep.summary
    lines = [
        f"finegrained validate: {rep.source}   (params: {p.mode}, oracle: {rep.oracle})",
        f"  Gap-ANN    n_a = {p.n_a}, n = {p.n}, d = {p.d}, t = {p.t:g}, eps = {p.eps:.6g}",
        f"  Lemma 4.7  beta = {p.beta:.6g} (beta_min = {p.beta_min:.6g}, x{p.safety:.3g}), "
        f"log t~ = {p.log_t_tilde:.6g}, log eps_a = {p.log_eps_a:.6g}",
        f"  threshold  u_i >= 2t~, i.e. log u_i >= log 2t~ = {p.log_threshold:.8g}"
        + (f";  adversary log eps = {rep.log_eps_adv:.8g}" if rep.log_eps_adv is not None else ""),
        "",
    ]
    order, note_line = _rows_shown(r["margin"], k)
    head = (f"  {'row':>6} {'H':>6} {'truth':>7} {'log u_i':>14} {'margin':>10} {'decision':>8} {'ok':>3}  "
            f"{'case':>4} {'log bound':>14} {'slack':>10} {'in':>3}")
    lines += [note_line, head]
    for i in order:
        log_u = _log_u_text(int(r["sign_u"][i]), float(r["log_u"][i]))
        inb = {1: "yes", 0: "NO", -1: "-"}[int(r["in_bound"][i])]
        lines.append(
            f"  {i:>6} {r['min_distance'][i]:>6g} {r['status'][i]:>7} {log_u:>14} "
            f"{_nats(r['margin'][i]):>10} {'YES' if r['decision'][i] else 'NO':>8} "
            f"{'ok' if r['correct'][i] else 'BAD':>3}  {r['bound_case'][i] or '-':>4} "
            f"{fmt(float(r['log_bound'][i]), '.8g'):>14} {fmt(float(r['bound_slack'][i]), '+.4f'):>10} {inb:>3}")
    lines.append("")
    lines += _summary_lines(s, f"{s['outside_promise_rows']} outside the promise", "Case 2a/2b bound")
    lines += _robustness_lines(s, lambda: f"              = log t~ {s['slack_vs_t_tilde']:+.6g} nats = log eps_a "
                                  f"{s['slack_vs_eps_a']:+.6g} nats")
    return "\n".join(lines)


def format_attention_report(rep, k: int | None) -> str:
    """The table and summary of ``finegrained validate --route attention`` (``rep``: AttentionValidationReport)."""
    p, r, s = rep.parameters, rep.rows, rep.summary
    c = p["factor"]
    lines = [
        f"finegrained validate: {rep.source}   (route: attention, oracle: {rep.oracle})",
        f"  OV         n_a = {p['n_a']}, n_b = {p['n_b']}, m = {p['m']}",
        f"  gadget     lambda = 2 ln(c n_b) = {p['lambda']:.6g} with c = {c:g} (Thm 1.5 gadget)",
        f"  bounds     YES rows u_i >= c/(c+1) = {p['yes_lower']:.6g}, NO rows u_i <= 1/(c+1) = {p['no_upper']:.6g}",
        f"  threshold  u_i >= 1/2, i.e. log u_i >= {p['log_threshold']:.8g}; eps_a = {math.exp(p['log_eps_a']):g}"
        + (f";  adversary log eps = {rep.log_eps_adv:.8g}" if rep.log_eps_adv is not None else ""),
        "",
    ]
    order, note_line = _rows_shown(r["margin"], k)
    head = (f"  {'row':>6} {'partners':>8} {'truth':>5} {'u_i':>10} {'log u_i':>14} {'margin':>10} {'decision':>8} "
            f"{'ok':>3}  {'bound':>9} {'slack':>10} {'in':>3}")
    lines += [note_line, head]
    for i in order:
        log_u = _log_u_text(int(r["sign_u"][i]), float(r["log_u"][i]))
        bound = (">= " if r["truth"][i] else "<= ") + fmt(float(np.exp(r["log_bound"][i])), ".4f")
        lines.append(
            f"  {i:>6} {r['partners'][i]:>8} {r['status'][i]:>5} {fmt(float(r['u'][i]), '.6g'):>10} {log_u:>14} "
            f"{_nats(r['margin'][i]):>10} {'YES' if r['decision'][i] else 'NO':>8} "
            f"{'ok' if r['correct'][i] else 'BAD':>3}  {bound:>9} {fmt(float(r['bound_slack'][i]), '+.4f'):>10} "
            f"{'yes' if r['in_bound'][i] else 'NO':>3}")
    lines.append("")
    lines += _summary_lines(s, "brute force on the OV instance", "gadget bound")
    lines.append(f"  answer      {s['certification']} ({s['certified_rows']} of {s['rows']} rows certified"
                 + (f"; {rep.reason}" if rep.reason else "") + ")")
    lines += _robustness_lines(s, lambda: f"              = log eps_a {s['slack_vs_eps_a']:+.6g} nats = log gap "
                                  f"{s['slack_vs_gadget_gap']:+.6g} nats (gap = min(c/(c+1) - 1/2, 1/2 - 1/(c+1)))")
    return "\n".join(lines)


def format_attention_proof(report) -> str:
    """The table of ``validate --route attention --proof`` (``report``: a ProofReport of the gadget's checks)."""
    i = report.inputs
    lines = [f"Theorem 1.5 gadget checks (n_a = {i['n_a']}, n_b = {i['n_b']}, m = {i['m']}, c = {i['factor']:g}, "
             f"lambda = {i['lambda']:.10g} as an exact rational)"]
    width = max(len(c.name) for c in report.checks)
    for c in report.checks:
        op = ">" if c.strict else ">="
        lines.append(f"  {'pass' if c.passed else 'FAIL'}  {c.name:<{width}}  slack {c.value_text:>12} {op} 0"
                     f"   [{c.reference}; {c.certificate}]")
    lines.append("all checks pass" if report.passed else "FAILED: " + ", ".join(report.failed))
    return "\n".join(lines)


def format_proof(report) -> str:
    """Human-readable table of ``validate --proof``: one line per check with pass/fail and slack in nats.

    ``report`` is a :class:`finegrained.proof.ProofReport`.
    """
    lines = [f"Lemma 4.7 proof checks ({report.mode} mode; n = {report.inputs['n']}, d = {report.inputs['d']}, "
             f"t = {report.inputs['t']}, eps = {report.inputs['eps']}, beta = {report.inputs['beta_float']:.10g} "
             f"as an exact rational, eps_a = {report.inputs['eps_a']})"]
    width = max(len(c.name) for c in [*report.checks, *report.symbolic])
    for c in report.checks:
        op = ">" if c.strict else ">="
        lines.append(f"  {'pass' if c.passed else 'FAIL'}  {c.name:<{width}}  slack {c.value_text:>12} nats {op} 0"
                     f"   [{c.reference}; {c.certificate}]")
    if report.symbolic:
        lines.append("Symbolic (all n at this instance's constants):")
        for c in report.symbolic:
            lines.append(f"  {'pass' if c.passed else 'FAIL'}  {c.name:<{width}}  {c.statement}: {c.slack} >= 0"
                         f"   [{c.certificate}]")
    lines.append("all checks pass" if report.passed else "FAILED: " + ", ".join(report.failed))
    return "\n".join(lines)


def format_sweep(result, source: str, params: str) -> str:
    """The table of ``validate --sweep beta`` (``result`` is a ``SweepResult``)."""
    lines = [f"finegrained validate --sweep beta: {source}   (params: {params}, {result.rows} rows)",
             f"  beta_min = {result.beta_min:.6g}, {params} mode beta = {result.beta_mode:.6g}",
             f"  {'beta':>12} {'beta/beta_min':>13} {'exact %':>8} {'adv(t~) %':>9}  gap condition"]
    for b, fe, fa, g in zip(result.beta, result.frac_exact, result.frac_adversarial, result.gap_condition):
        lines.append(f"  {b:>12.6g} {b / result.beta_min:>13.4g} {100 * fe:>8.2f} {100 * fa:>9.2f}  "
                     f"{'holds' if g else 'fails'}")
    return "\n".join(lines)


def format_reference(cert: dict, source: str, params: str, dps: int) -> str:
    """The summary of ``validate --reference``."""
    return "\n".join([
        f"finegrained validate --reference: {source}   (params: {params}, mpmath {dps} digits)",
        f"  attention n_q = {cert['n_q']}, n_k = {cert['n_k']}, d = {cert['d']}",
        f"  exact oracle vs reference: max |log u - log u_ref| = {cert['max_log_rel_error']:.3g} nats "
        f"(real rows {cert['max_log_rel_error_real_rows']:.3g})",
        f"  absolute error <= exp({fmt(cert['log_max_abs_error'], '.6g')}) = t~ * "
        f"exp({fmt(cert['abs_error_vs_t_tilde'], '+.4g')}) = eps_a * "
        f"exp({fmt(cert['abs_error_vs_eps_a'], '+.4g')})",
        f"  smallest |log u_i - log 2t~| = {fmt(cert['min_margin'], '.4g')} nats: decisions "
        + ("certified" if cert["decisions_certified"] else "NOT certified"),
        f"  time: exact {cert['seconds_exact']:.3f} s, reference {cert['seconds_reference']:.3f} s",
    ])


# ------------------------------------------------------------------------------------------------------- run
def _gap_source(args: argparse.Namespace):
    """The Gap-ANN instance to validate: from ``--ann FILE.npz``, or built from a formula by the chain."""
    from instances.examples import DEFAULT_EXAMPLE
    from instances.gap_ann_builders import load_gap_ann

    from ..resources import check_memory
    from ..validate import gap_ann_of_cnf
    from .inputs import read_cnf

    if not args.ann:
        cnf, source = read_cnf(args, DEFAULT_EXAMPLE)
        return gap_ann_of_cnf(cnf, max_memory=args.max_memory), source
    if args.file or args.example:
        raise FinegrainedError("give either a formula (FILE or --example) or --ann FILE.npz, not both")
    gap, _ = load_gap_ann(args.ann, max_memory=_load_limit(args))
    n_q, n_k, d = gap.n_a + gap.n_b, 2 * gap.n_b, 2 * gap.dim
    check_memory(8 * (n_q + n_k) * d * 2 + 16 * 2**20 + gap.n_a * gap.n_b * 8, args.max_memory,
                 f"validating {args.ann} ({gap.n_a} x {gap.n_b} vectors of dimension {gap.dim})")
    return gap, args.ann


def _check_plot_paths(args: argparse.Namespace) -> None:
    """Refuse a plot path whose format is unknown or contradictory before any work is done."""
    from .plots import check_figure_path

    for path in (args.plot, args.margins_plot):
        if path:
            check_figure_path(path)


def plot_attention_margins(rep, path: str) -> None:
    """Per-row margins ``log u_i - log 1/2`` (nats) of the attention route (:func:`~.plots.plot_row_margins`), with
    the gadget bounds ``log 2c/(c+1)`` and ``log 2/(c+1)`` (``rep``: an AttentionValidationReport)."""
    from .plots import plot_row_margins

    r, p = rep.rows, rep.parameters
    source = str(rep.source).replace("\\", "/").rsplit("/", 1)[-1]
    plot_row_margins(
        r["margin"], r["truth"], path, threshold=r"threshold $u_i = 1/2$",
        bounds=[(math.log(2 * p["yes_lower"]), "tab:green", ":",
                 rf"YES bound $\geq \ln(2c/(c+1))$, c = {p['factor']:g}"),
                (math.log(2 * p["no_upper"]), "tab:red", "--", r"NO bound $\leq \ln(2/(c+1))$")],
        ylabel=r"margin $\log u_i - \log(1/2)$ (nats, symlog)",
        title=rf"{source}: {len(r['margin'])} rows, route attention, $\lambda = {p['lambda']:.4g}$")


#: Options of the row-by-row validation only (dest, flag): refused with --proof, --sweep and --reference.
ROW_ONLY = (("oracle", "--oracle"), ("eps_adv", "--eps-adv"), ("margins_plot", "--margins-plot"))


def _refuse_ignored(args: argparse.Namespace) -> None:
    """One-line errors for options that the chosen mode would silently ignore."""
    mode = next((flag for flag, on in (("--proof", args.proof), ("--sweep", args.sweep),
                                       ("--reference", args.reference)) if on), None)
    if mode:
        given = [flag for dest, flag in ROW_ONLY if getattr(args, dest, None) is not None]
        if given:
            raise ParameterError(f"{mode} does not take {', '.join(given)}: "
                                 f"{'it belongs' if len(given) == 1 else 'they belong'} to the row-by-row validation")
    if args.dps is not None and not args.reference:
        raise ParameterError("--dps needs --reference (it sets the mpmath reference's digits)")
    if args.points is not None and not args.sweep:
        raise ParameterError("--points needs --sweep beta (it sets the sweep's grid)")


def _run_attention(args: argparse.Namespace) -> int:
    """``validate --route attention``: Gupta et al.'s k-SAT -> OV -> Attention, row by row, or its --proof."""
    from instances.examples import DEFAULT_EXAMPLE
    from reductions.ov_to_attention import OVToAttention, gadget_bounds

    from ..validate import attention_proof_checks, ov_of_cnf, validate_attention_route
    from .inputs import read_cnf

    given = [flag for dest, flag in AATTC_ONLY if getattr(args, dest, None) not in (None, False)]
    if given:
        raise ParameterError(f"--route attention does not take {', '.join(given)}: "
                             f"{'it sets or analyses' if len(given) == 1 else 'they set or analyse'} Lemma 4.7's "
                             "construction (--route aattc); the attention route has no such constants")
    _refuse_ignored(args)
    _check_plot_paths(args)
    cnf, source = read_cnf(args, DEFAULT_EXAMPLE)
    ov = ov_of_cnf(cnf, max_memory=args.max_memory)
    if args.proof:
        report = attention_proof_checks(ov)
        if args.json:
            emit(json_report({"source": source, "route": "attention", **report.as_dict()},
                             schema="finegrained.validate.proof/1"))
        else:
            emit(f"finegrained validate --route attention --proof: {source}\n{format_attention_proof(report)}")
        return 0 if report.passed else 1
    log_eps_adv = None
    if args.eps_adv is not None:
        p = OVToAttention().parameters(ov)
        yes_lo, no_hi = gadget_bounds(p["factor"])
        log_eps_adv = parse_eps_adv(args.eps_adv, {**p, "yes_lower": yes_lo, "no_upper": no_hi})
    rep = validate_attention_route(ov, oracle=args.oracle or "exact", log_eps_adv=log_eps_adv, source=source)
    if args.margins_plot:
        plot_attention_margins(rep, args.margins_plot)
    if args.json:
        emit(json_report(rep.to_dict()))
    else:
        emit(format_attention_report(rep, args.rows))
    if args.margins_plot:
        note(f"wrote {args.margins_plot}")
    s = rep.summary
    return 0 if s["all_correct"] and not s["rows_outside_bound"] else 1


def run(args: argparse.Namespace) -> int:
    from reductions import GapANNToAAttC

    if args.route == "attention":
        return _run_attention(args)
    args.params = args.params or "tight"
    if args.params == "paper" and args.safety is not None:
        raise ParameterError("--safety applies to the tight parameters only; the paper mode fixes beta by Eq. (9)")
    if args.symbolic and not args.proof:
        raise ParameterError("--symbolic needs --proof")
    if args.plot and not args.sweep:
        raise ParameterError("--plot needs --sweep beta")
    if sum(bool(x) for x in (args.proof, args.sweep, args.reference)) > 1:
        raise ParameterError("give at most one of --proof, --sweep and --reference")
    _refuse_ignored(args)
    _check_plot_paths(args)
    gap, source = _gap_source(args)

    if args.proof:
        from ..proof import proof_checks, symbolic_checks

        params = GapANNToAAttC(mode=args.params, beta=args.beta, check=False, safety=args.safety).derive(gap)
        report = proof_checks(params, beta_overridden=args.beta is not None)
        if args.symbolic:
            report.symbolic = symbolic_checks(params)
        if args.json:
            emit(json_report({"source": source, "route": "aattc", **report.as_dict()},
                             schema="finegrained.validate.proof/1"))
        else:
            emit(f"finegrained validate --proof: {source}\n{format_proof(report)}")
        return 0 if report.passed else 1

    if args.sweep:
        from ..validate import beta_sweep
        from .plots import plot_sweep

        result = beta_sweep(gap, params=args.params, points=args.points or 25, source=source.rsplit("/", 1)[-1])
        if args.plot:
            plot_sweep(result, args.plot)
        if args.json:
            emit(json_report(result.to_dict(), route="aattc"))
        else:
            emit(format_sweep(result, source, args.params))
        if args.plot:
            note(f"wrote {args.plot}")
        return 0

    if args.reference:
        from ..validate import certify_exact

        cert = certify_exact(gap, params=args.params, beta=args.beta, dps=args.dps or 50, safety=args.safety)
        if args.json:
            emit(json_report({"source": source, "route": "aattc", **cert}, schema="finegrained.validate.reference/1"))
        else:
            emit(format_reference(cert, source, args.params, args.dps or 50))
        return 0 if cert["decisions_certified"] else 1

    from ..validate import validate_gap_ann

    log_eps_adv = None
    if args.eps_adv is not None:
        reduction = GapANNToAAttC(mode=args.params, beta=args.beta, check=args.beta is None, safety=args.safety)
        log_eps_adv = parse_eps_adv(args.eps_adv, reduction.derive(gap))
    rep = validate_gap_ann(gap, params=args.params, beta=args.beta, oracle=args.oracle or "exact",
                           log_eps_adv=log_eps_adv, source=source, safety=args.safety)
    if args.margins_plot:
        from .plots import plot_margins

        plot_margins(rep, args.margins_plot)
    if args.json:
        import json

        emit(json_report(json.loads(rep.to_json())))
    else:
        emit(format_report(rep, args.rows))
    if args.margins_plot:
        note(f"wrote {args.margins_plot}")
    s = rep.summary
    return 0 if s["all_correct"] and not s["rows_outside_bound"] else 1


def _load_limit(args: argparse.Namespace) -> int:
    """The memory limit for unpacking an ``.npz`` (its headers are checked before anything is unpacked)."""
    from ..resources import default_memory_limit

    return default_memory_limit() if args.max_memory is None else args.max_memory
