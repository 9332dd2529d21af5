"""Figures for teaching and benchmarking; matplotlib is the optional extra ``finegrained[plot]``.

* :func:`plot_margins` — per-row threshold margins ``log u_i - log 2t~`` of a validation report;
* :func:`plot_times` — time against n for each attention algorithm, from ``finegrained bench compare``.

The B-transition plot (Algorithm 1's degree and rank against B) is ``finegrained bench poly --plot``, and the
beta sweep is ``finegrained validate --sweep beta --plot``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from instances.errors import FinegrainedError


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


def save_figure(fig: Any, path: str, dpi: int | None = None) -> None:
    """Save and close a figure; an unwritable path is one clear error."""
    plt = pyplot()
    try:
        fig.savefig(path, dpi=dpi)
    except OSError as exc:
        raise FinegrainedError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)


def plot_margins(report: Any, path: str) -> None:
    """Per-row margins in nats, sorted, YES rows and NO rows in two colours; 0 is the threshold ``u_i = 2t~``.

    ``report`` is a :class:`finegrained.validate.ValidationReport`.
    """
    plt = pyplot()
    rows = report.rows
    margin = np.asarray(rows["margin"], dtype=float)
    finite = np.isfinite(margin)
    order = np.argsort(np.where(finite, margin, -np.inf))
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    x = np.arange(order.size)
    for status, colour in (("YES", "tab:green"), ("NO", "tab:red"), ("outside", "tab:gray")):
        sel = (rows["status"][order] == status) & finite[order]
        if sel.any():
            ax.plot(x[sel], margin[order][sel], "o", ms=2.5, color=colour, label=f"{status} rows (brute force)")
    ax.axhline(0.0, color="k", lw=1, label="threshold u_i = 2t~")
    ax.axhline(np.log(1.5), color="k", lw=0.8, ls=":", label="Case 2a: >= ln(3/2)")
    ax.axhline(-np.log(2), color="k", lw=0.8, ls="--", label="Case 2b: <= -ln 2")
    ax.set_xlabel("query rows, sorted by margin")
    ax.set_ylabel("log u_i - log 2t~ (nats)")
    p = report.parameters
    source = str(report.source).replace("\\", "/").rsplit("/", 1)[-1]
    ax.set_title(f"{source}: {order.size} rows, {p.mode} mode, beta = {p.beta:.4g}", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    save_figure(fig, path)


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
