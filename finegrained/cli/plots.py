"""Every figure of the CLI; matplotlib is the optional extra ``finegrained[plot]``.

* :func:`plot_margins` -- per-row threshold margins ``log u_i - log 2t~`` of ``validate --margins-plot``;
* :func:`plot_sweep` -- the beta sweep of ``validate --sweep beta --plot``;
* :func:`plot_times` -- time against n for each algorithm of ``bench compare --plot``;
* :func:`plot_degree_rank` -- Algorithm 1's planned degree and rank against B, ``bench poly --plot``;
* :func:`plot_graph` -- the reduction graph, ``graph --format png``;
* :func:`plot_as_printed` -- Lemma 4.7 as printed against corrected, ``explain --as-printed --plot DIR``.

Figures are written with :func:`save_figure`: the format is explicit (from ``--format`` or the extension, never
guessed by matplotlib) and the file is replaced atomically.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from instances.errors import FinegrainedError

from .formatting import write_atomic

#: Extensions of the figure formats the CLI writes.
FIGURE_EXTENSIONS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}


def pyplot() -> Any:
    """``matplotlib.pyplot`` with the non-interactive Agg backend, or a clear error if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise FinegrainedError(
            "plotting needs matplotlib, which is not installed; install it with: pip install 'finegrained[plot]'"
        ) from None
    return plt


def figure_format(path: str, requested: str | None = None) -> str:
    """The figure format of ``path``: ``requested`` or the extension; a conflict or an unknown one is an error."""
    import os

    ext = os.path.splitext(path)[1].lower()
    from_ext = FIGURE_EXTENSIONS.get(ext)
    if requested is not None:
        if from_ext is not None and from_ext != requested:
            raise FinegrainedError(f"--format {requested} contradicts the extension of {path} ({from_ext})")
        return requested
    if from_ext is None:
        raise FinegrainedError(f"cannot tell the figure format of {path}: use a .png, .pdf or .svg name")
    return from_ext


def check_figure_path(path: str, requested: str | None = None) -> str:
    """The figure format of ``path``, refusing before any work a conflict or a directory that does not exist."""
    import os

    kind = figure_format(path, requested)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise FinegrainedError(f"cannot write {path}: directory {parent} does not exist")
    return kind


def save_figure(fig: Any, path: str, dpi: int | None = None, fmt: str | None = None) -> None:
    """Save and close a figure, atomically and in an explicit format; an unwritable path is one clear error."""
    plt = pyplot()
    try:
        kind = figure_format(path, fmt)
        write_atomic(path, lambda fh: fig.savefig(fh, dpi=dpi, format=kind))
    finally:
        plt.close(fig)


#: Margins beyond this many nats are drawn at it (marked), so that the symlog axis stays drawable.
_MARGIN_LIMIT = 1e6


def plot_row_margins(margin: np.ndarray, yes: np.ndarray, path: str, *, threshold: str,
                     bounds: list[tuple[float, str, str, str]], ylabel: str, title: str) -> None:
    r"""Per-row margins in nats, sorted, YES and NO rows apart, each with its closest margin marked.

    The y axis is symmetric-logarithmic (linear within 1 nat of the threshold), so the proof's bounds stay visible
    next to margins of hundreds of nats. A margin of ``-inf`` (a row with ``u_i <= 0``) is drawn clipped at a floor
    below every finite margin and every bound, with its own marker, never dropped; ``+inf`` likewise at a ceiling.

    Parameters
    ----------
    margin : ndarray
        ``log u_i`` minus the log threshold, per row.
    yes : ndarray of bool
        The rows drawn in the YES panel (the others go to the NO panel).
    bounds : list of (y, colour, linestyle, label)
        Horizontal lines: the proof's bounds on each class's margin.
    """
    plt = pyplot()
    margin = np.asarray(margin, dtype=float)
    yes = np.asarray(yes, dtype=bool)
    finite = np.isfinite(margin)
    marks = [y for y, *_ in bounds] + [0.0]
    lo, hi = ([float(margin[finite].min())], [float(margin[finite].max())]) if finite.any() else ([], [])
    # matplotlib's symlog axis overflows past ~1e300 (an empty figure): margins beyond +-1e6 nats are clipped too
    floor = max(min(lo + marks) - 1.0, -_MARGIN_LIMIT)
    ceiling = min(max(hi + marks) + 1.0, _MARGIN_LIMIT)
    fig, axes = plt.subplots(1, 2, figsize=(8.0, 4.0), dpi=200, sharey=True, gridspec_kw={"width_ratios": [2, 3]})
    for ax, want, colour, label in ((axes[0], True, "tab:green", "YES rows"), (axes[1], False, "tab:red", "NO rows")):
        m = np.sort(margin[yes == want])
        m = m if want else m[::-1]  # YES: the smallest margin first; NO: the largest (closest to 0) first
        closest = float(m[0]) if m.size else None
        shown = np.clip(m, floor, ceiling)
        x = np.arange(m.size)
        low, high = m < floor, m > ceiling
        ax.plot(x[~(low | high)], shown[~(low | high)], "o", ms=3, color=colour,
                label=f"{label} ({m.size}, brute force)")
        for sel, marker, text in ((low, "v", f"below {floor:.3g} nats (-inf where u_i <= 0), drawn at it"),
                                  (high, "^", f"above {ceiling:.3g} nats (+inf where u_i = inf), drawn at it")):
            if sel.any():
                ax.plot(x[sel], shown[sel], marker, ms=5, color=colour, mfc="none", label=f"{int(sel.sum())} {text}")
        ax.axhline(0.0, color="k", lw=1.2, label=threshold)
        for y, c, ls, text in bounds:
            ax.axhline(y, color=c, lw=1, ls=ls, label=text)
        if closest is not None and math.isfinite(closest):
            at = min(max(closest, floor), ceiling)  # the value is printed; the line stays on the drawable axis
            ax.axhline(at, color=colour, lw=0.8, alpha=0.6)
            ax.annotate(f"closest: {closest:+.3g} nats", (0, at), xytext=(4, 4 if closest > 0 else -12),
                        textcoords="offset points", fontsize=8, color=colour)
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_xlabel(f"{label}, sorted by distance\nto the threshold")
        ax.grid(True, alpha=0.3, which="both")
        ax.legend(fontsize=6.5, loc="best")
    axes[0].set_ylabel(ylabel)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=200)


def plot_margins(report: Any, path: str) -> None:
    r"""Per-row margins ``log u_i - log 2t~`` of the aattc route (:func:`plot_row_margins`), with the proof's Case 2a
    bound ``ln(3/2)`` and Case 2b bound ``-ln 2``. ``report`` is a :class:`finegrained.validate.ValidationReport`;
    rows outside the promise are drawn with the NO rows."""
    rows, p = report.rows, report.parameters
    source = str(report.source).replace("\\", "/").rsplit("/", 1)[-1]
    plot_row_margins(
        rows["margin"], np.asarray(rows["status"]) == "YES", path, threshold=r"threshold $u_i = 2\tilde t$",
        bounds=[(math.log(1.5), "tab:green", ":", r"Case 2a: $\geq \ln(3/2)$"),
                (-math.log(2), "tab:red", "--", r"Case 2b: $\leq -\ln 2$")],
        ylabel=r"margin $\log u_i - \log 2\tilde t$ (nats, symlog)",
        title=rf"{source}: {len(rows['margin'])} rows, {p.mode} mode, $\beta = {p.beta:.5g}$")


def plot_sweep(result: Any, path: str) -> None:
    r"""The beta sweep (:class:`finegrained.validate.SweepResult`): YES rows and NO rows decided correctly, apart,
    and the exact answer's smallest margin of each class, against ``beta / beta_min``; the range where the gap
    condition fails is shaded."""
    plt = pyplot()
    fig, (ax, axm) = plt.subplots(2, 1, figsize=(8.0, 6.4), dpi=200, sharex=True,
                                  gridspec_kw={"height_ratios": [3, 2]})
    ratio = np.asarray(result.beta) / result.beta_min
    per_class = getattr(result, "frac_yes_exact", None) is not None
    if per_class:
        for key, colour, name in (("yes", "tab:green", "YES rows"), ("no", "tab:red", "NO rows")):
            ax.semilogx(ratio, 100 * np.asarray(getattr(result, f"frac_{key}_exact")), "o-", ms=3, color=colour,
                        label=f"{name}, exact oracle")
            ax.semilogx(ratio, 100 * np.asarray(getattr(result, f"frac_{key}_adversarial")), "s--", ms=3,
                        color=colour, alpha=0.6, label=rf"{name}, adversary $\varepsilon = \tilde t(\beta)$")
    else:
        ax.semilogx(ratio, 100 * np.asarray(result.frac_exact), "o-", ms=3, label="all rows, exact oracle")
        ax.semilogx(ratio, 100 * np.asarray(result.frac_adversarial), "s--", ms=3, label="all rows, adversary")
    fails = ~np.asarray(result.gap_condition, dtype=bool)
    for a in (ax, axm):
        if fails.any():
            # the gap condition fails below beta_min: shade up to the last failing grid point's right neighbour
            hi = ratio[min(len(ratio) - 1, int(np.nonzero(fails)[0].max()) + 1)] if not fails.all() else ratio[-1]
            a.axvspan(ratio[0], min(hi, 1.0) if not fails.all() else hi, color="0.85", zorder=0,
                      label="gap condition fails" if a is ax else None)
        a.axvline(1.0, color="k", lw=1, label=r"$\beta_{\min} = 4d\ln(6n)/(\varepsilon t)$" if a is ax else None)
        mode_ratio = result.beta_mode / result.beta_min
        if ratio[0] <= mode_ratio <= ratio[-1]:
            a.axvline(mode_ratio, color="gray", ls=":", lw=1, label=f"{result.mode} mode $\\beta$" if a is ax else None)
        a.grid(True, which="both", alpha=0.3)
    ax.set_ylabel("rows decided correctly (%)")
    ax.set_ylim(-3, 103)
    ax.set_title(rf"{result.source}: {result.rows} rows, $\beta_{{\min}} = {result.beta_min:.5g}$", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    if per_class:
        axm.semilogx(ratio, result.min_margin_yes, "o-", ms=3, color="tab:green",
                     label=r"YES: $\min (\log u_i - \log 2\tilde t)$")
        axm.semilogx(ratio, result.min_margin_no, "o-", ms=3, color="tab:red",
                     label=r"NO: $\min (\log 2\tilde t - \log u_i)$")
        axm.axhline(0.0, color="k", lw=1)
        axm.set_yscale("symlog", linthresh=1.0)
        axm.legend(fontsize=7, loc="lower right")
    axm.set_ylabel("smallest margin\n(nats, symlog)")
    axm.set_xlabel(r"$\beta / \beta_{\min}$")
    fig.tight_layout()
    save_figure(fig, path, dpi=200)


def plot_times(result: dict, path: str) -> None:
    """Log-log time against n for each algorithm of a ``finegrained bench compare`` result."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for name in result["algorithms"]:
        pts = [(r["n"], r["times"][name]) for r in result["rows"] if r["times"].get(name) is not None]
        if pts:
            n, t = zip(*pts)
            exp = result["exponents"].get(name)
            label = f"{name} (n^{exp:.2f})" if exp is not None else name
            ax.loglog(n, t, "o-", ms=3, label=label)
    ax.set_xlabel("n (queries = keys)")
    ax.set_ylabel("seconds")
    ax.set_title(f"d = {result['d']}, B = {result['B']}, eps = {result['eps']:g}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def plot_degree_rank(path: str, log2_n: int, eps: float, ds: list[int]) -> dict:
    """Plot the planned degree ``g`` and rank ``r`` of Algorithm 1 against ``B`` at ``n = 2^log2_n``."""
    from finegrained.attention.poly import poly_plan

    plt = pyplot()
    n = 2**log2_n
    Bs = np.linspace(0.1, 4.0, 79)
    data = {}
    fig, (ax_g, ax_r) = plt.subplots(1, 2, figsize=(10, 4))
    for d in ds:
        plans = [poly_plan(n, d, float(B), eps=eps) for B in Bs]
        data[d] = {"B": Bs.tolist(), "g": [p.degree for p in plans], "log10_r": [p.log10_rank for p in plans]}
        ax_g.plot(Bs, data[d]["g"], label=f"d={d}")
        ax_r.plot(Bs, data[d]["log10_r"], label=f"d={d}")
    threshold = math.sqrt(math.log(n))
    ax_r.axhline(math.log10(n), color="grey", ls=":", lw=1, label="r = n")
    for ax in (ax_g, ax_r):
        ax.axvline(threshold, color="k", ls="--", lw=1, label=f"B = sqrt(ln n) = {threshold:.2f}")
        ax.set_xlabel("entry bound B (scores in [-B^2, B^2])")
        ax.legend()
    ax_g.set_ylabel("degree g (independent of d)")
    ax_r.set_ylabel("log10 rank r = log10 C(g + d, d)")
    fig.suptitle(f"Polynomial method: planned degree and rank, n = 2^{log2_n}, eps = {eps:g}")
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    return {"path": path, "n": n, "eps": eps, "threshold_B": threshold, "series": data}


def plot_graph(g: Any, hot: set[tuple[str, str]], output: str, fmt: str | None = None) -> None:
    """The reduction graph, layered left to right by topological generation (networkx), every edge labelled with
    the lemma it implements and the edges of ``hot`` (the chosen path) in red; 1920 px wide."""
    import textwrap

    import networkx as nx
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    plt = pyplot()
    if nx.is_directed_acyclic_graph(g):
        layers = [sorted(layer, key=list(g.nodes).index) for layer in nx.topological_generations(g)]
    else:
        layers = [list(g.nodes)]
    pos = {}
    for x, layer in enumerate(layers):
        for k, node in enumerate(layer):
            pos[node] = (3.9 * x, (len(layer) - 1) / 2 * 1.6 - 1.6 * k)
    w, h = 0.75, 0.28  # half width and half height of a node box, data units
    fig, ax = plt.subplots(figsize=(12, 5.2), dpi=160)
    on_path = {n for e in hot for n in e}
    for node, (x, y) in pos.items():
        hot_node = node in on_path
        ax.add_patch(FancyBboxPatch((x - w, y - h), 2 * w, 2 * h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                    fc="#fde2e2" if hot_node else "#dde8f5", ec="red" if hot_node else "#4a6a8a",
                                    lw=2.2 if hot_node else 1.2, zorder=3))
        ax.text(x, y, node, ha="center", va="center", fontsize=13, zorder=4, weight="bold" if hot_node else None)

    def border(a, b):
        # the point where the segment from box centre a towards b leaves a's box
        dx, dy = b[0] - a[0], b[1] - a[1]
        s = min(w / abs(dx) if dx else np.inf, h / abs(dy) if dy else np.inf)
        return a[0] + dx * s, a[1] + dy * s

    for u, v in g.edges:
        a, b = pos[u], pos[v]
        skip = abs(b[0] - a[0]) > 4.0  # an edge across a layer bends below the boxes in between
        rad = 0.45 if skip else 0.0
        is_hot = (u, v) in hot
        start, end = ((a[0], a[1] - h), (b[0], b[1] - h)) if skip else (border(a, b), border(b, a))
        arrow = FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=22,
                                connectionstyle=f"arc3,rad={rad}", lw=2.8 if is_hot else 1.4,
                                color="red" if is_hot else "#555555", shrinkA=2, shrinkB=2, zorder=5)
        ax.add_patch(arrow)
        mx, my = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
        label = textwrap.fill(str(g.edges[u, v].get("lemma", "")), 28)
        # labels sit beside their arrow, never on it, so no arrow or arrowhead is hidden
        if skip:
            my -= rad * math.hypot(end[0] - start[0], end[1] - start[1]) / 2 + 0.6
        else:
            my += 0.32 + 0.12 * label.count("\n")
        ax.text(mx, my, label, ha="center", va="center", fontsize=7.5, zorder=6,
                color="darkred" if is_hot else "#333333",
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.9})
    xs, ys = [p[0] for p in pos.values()], [p[1] for p in pos.values()]
    ax.set_xlim(min(xs) - 1.0, max(xs) + 1.0)
    ax.set_ylim(min(ys) - 2.6, max(ys) + 1.0)
    ax.set_aspect("equal")
    ax.set_axis_off()
    if hot:
        ax.set_title("red: the chosen path", fontsize=10, color="red")
    fig.tight_layout()
    save_figure(fig, output, fmt=fmt, dpi=160)


def plot_as_printed(instance: Any, path: str, params: str = "tight") -> dict:
    r"""Lemma 4.7 as printed against corrected: every real row's ``log u_i`` (exact oracle) with the corrected
    threshold ``log 2t~`` and the printed one (errata E2/E4, ``tau = e^beta``), the rows it misreads marked.

    ``instance`` is a :class:`instances.gap_ann.GapANNInstance`; returns the plotted numbers.
    """
    from instances.gap_ann import OUTSIDE_PROMISE, YES
    from reductions import Chain, GapANNToAAttC

    from ..attention.exact import exact

    plt = pyplot()
    status = instance.row_status()
    truth, constrained = status == YES, status != OUTSIDE_PROMISE
    reduced = Chain([GapANNToAAttC(mode=params)]).reduce(instance)
    p, att = reduced.steps[-1].parameters, reduced.target
    u = exact(att.Q[: instance.n_a], att.K, att.V, scale=att.scale)[:, 0]
    logu = np.where(u.sign > 0, u.log_abs, -np.inf)
    n, d, t = instance.n_b, instance.dim, instance.t
    printed = math.log(2) + 0.25 * p.beta * (1 - t / d) - math.log(6 * n) - p.beta
    wrong = ((logu >= printed) != truth) & constrained
    order = np.argsort(logu)
    x = np.arange(order.size)
    fig, ax = plt.subplots(figsize=(8.0, 4.5), dpi=200)
    for sel, colour, label, size in ((truth[order], "tab:green", "YES rows (brute force)", 18),
                                     (~truth[order], "tab:blue", "NO rows", 10)):
        ax.scatter(x[sel], logu[order][sel], s=size, color=colour, label=label, zorder=3)
    if wrong.any():
        ax.scatter(x[wrong[order]], logu[order][wrong[order]], s=60 if order.size <= 64 else 14, facecolors="none",
                   edgecolors="red", lw=1.2,
                   zorder=4, label=rf"decided wrongly as printed ({int(wrong.sum())} rows)")
    ax.axhline(p.log_threshold, color="k", lw=1.5, label=r"corrected $\log 2\tilde t$, $\tau = e^{\beta/2}$")
    ax.axhline(printed, color="red", lw=1.5, ls="--", label=r"printed $\log 2\tilde t$, $\tau = e^{\beta}$ (E2, E4)")
    ax.axhspan(printed, p.log_threshold, color="red", alpha=0.08)
    ax.set_xlabel(r"query rows, sorted by $\log u_i$")
    ax.set_ylabel(r"$\log u_i$ (nats)")
    ax.set_title(rf"Lemma 4.7 as printed: the threshold drops by $\beta/2 = {p.beta / 2:.5g}$ nats, below the NO rows",
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center right")
    fig.tight_layout()
    save_figure(fig, path, dpi=200)
    return {"log_threshold": p.log_threshold, "log_threshold_printed": printed, "wrong_rows": int(wrong.sum())}
