r"""Slide-ready pictures of every stage of the chain (``finegrained explain --plot DIR``).

:func:`stage_figures` draws, from one :class:`~finegrained.chain.ChainResult`:

1. ``1_split_and_list.png`` — the formula's split-and-list table: one row per half-assignment, one column per
   clause, dark where the half-assignment leaves the clause unsatisfied (the OV vector);
2. ``2_ov.png`` — the OV matrix ``<a_i, b_j>`` with the orthogonal pairs marked;
3. ``3_hamming.png`` — the Gap-ANN distances ``H_ij`` as a heatmap, with ``t`` and ``(1 + eps) t`` on its colour
   bar, orthogonal pairs at ``2m`` and the rest at ``>= 2m + 4``;
4. ``4_log_A.png`` — ``log A = Q K^T / d~`` with its four blocks and ``log tau = beta/2`` marked;
5. ``5_threshold.png`` — ``log u_i`` of every real row against ``log t~``, ``log 2t~`` and ``log 3t~``.

Every figure is 1600 px wide or more (8 in at 200 dpi) with mathtext labels. matplotlib is the optional extra
``finegrained[plot]``.
"""

from __future__ import annotations

import os

import numpy as np

from instances.errors import ParameterError
from reductions.sat_to_ov import split_variables

from .plots import pyplot, save_figure

#: Width (inches) and resolution of every stage figure: 8 in x 200 dpi = 1600 px.
WIDTH_IN, DPI = 8.0, 200
FIGURES = ("1_split_and_list.png", "2_ov.png", "3_hamming.png", "4_log_A.png", "5_threshold.png")
#: Largest matrix side drawn cell by cell (larger ones are still drawn, but without per-cell annotations).
ANNOTATE_MAX = 16


#: Matrices with a side above this are pooled in square blocks before drawing (a 2048 x 2048 image takes
#: seconds to resample and shows no more at 1600 px).
POOL_ABOVE = 400


def _pool(M: np.ndarray, how: str) -> tuple[np.ndarray, int]:
    """``M`` reduced by the block minimum (``how="min"``) or maximum so that no side exceeds POOL_ABOVE."""
    k = max(1, int(np.ceil(max(M.shape) / POOL_ABOVE)))
    if k == 1:
        return M, 1
    r, c = -(-M.shape[0] // k) * k, -(-M.shape[1] // k) * k
    fill = np.inf if how == "min" else -np.inf
    P = np.full((r, c), fill)
    P[: M.shape[0], : M.shape[1]] = M
    P = P.reshape(r // k, k, c // k, k)
    return (P.min(axis=(1, 3)) if how == "min" else P.max(axis=(1, 3))), k


def _fig(plt, height: float):
    return plt.subplots(figsize=(WIDTH_IN, height), dpi=DPI)


def stage_figures(result, directory: str) -> list[str]:
    """Write the five stage figures of ``result`` (aattc route) into ``directory``; returns their paths."""
    if getattr(result, "route", "aattc") != "aattc" or len(result.trace) < 5:
        raise ParameterError("stage figures show the Alman-Song route (k-SAT -> OV -> Gap-ANN -> AAttC)")
    os.makedirs(directory, exist_ok=True)
    plt = pyplot()
    cnf, ov, gap, att, out = result.trace[:5]
    p = result.parameters
    paths = [os.path.join(directory, name) for name in FIGURES]
    m = ov.dim

    # 1. split and list
    left, right = split_variables(cnf.num_vars)
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH_IN, max(3.0, 1.2 + 0.22 * max(ov.n_a, ov.n_b))), dpi=DPI)
    for ax, X, vars_, name in ((axes[0], ov.A, left, "A"), (axes[1], ov.B, right, "B")):
        ax.imshow(X if X.size else np.zeros((X.shape[0], 1)), cmap="Greys", vmin=0, vmax=1, aspect="auto")
        labels = ["".join("1" if (code >> b) & 1 else "0" for b in range(len(vars_))) or "-"
                  for code in range(X.shape[0])]
        if X.shape[0] <= 32:
            ax.set_yticks(range(X.shape[0]), labels, fontsize=7)
        if 0 < m <= 40:
            ax.set_xticks(range(m), [rf"$c_{{{j + 1}}}$" for j in range(m)], fontsize=6)
        ax.set_ylabel("half-assignment (bits)")
        ax.set_xlabel(r"clause $c_1 \ldots c_m$ (dark: left unsatisfied)")
        ax.set_title(rf"${name}$: assignments of $x_{{{int(vars_[0]) if len(vars_) else 0}}}\ldots$"
                     rf" ({len(vars_)} variables)", fontsize=9)
    fig.suptitle(rf"Split and list: $N = {cnf.num_vars}$, $m = {m}$; orthogonal pair $\Leftrightarrow$ satisfying "
                 r"assignment", fontsize=10)
    fig.tight_layout()
    save_figure(fig, paths[0], dpi=DPI)

    # 2. OV inner products
    # small integers: exact in float64, and float64 products go through BLAS
    inner = ov.A.astype(np.float64) @ ov.B.T.astype(np.float64) if m else np.zeros((ov.n_a, ov.n_b))
    fig, ax = _fig(plt, 5.0)
    shown, k = _pool(inner, "min")
    im = ax.imshow(shown, cmap="viridis", aspect="auto", interpolation="nearest")
    zi, zj = np.nonzero(inner == 0)
    ax.scatter(zj // k, zi // k, marker="o", s=40 if inner.size <= 1024 else 10, facecolors="none",
               edgecolors="red", label=r"$\langle a_i, b_j\rangle = 0$")
    pooled = f", {k}x{k} blocks (min)" if k > 1 else ""
    ax.set_xlabel(r"$b_j$" + pooled), ax.set_ylabel(r"$a_i$")
    ax.set_title(rf"OV: $\langle a_i, b_j \rangle$ ({len(zi)} orthogonal pairs)", fontsize=10)
    fig.colorbar(im, ax=ax, label=r"$\langle a_i, b_j\rangle$")
    if len(zi):
        ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    save_figure(fig, paths[1], dpi=DPI)

    # 3. Hamming distances
    Af, Bf = gap.A.astype(np.float64), gap.B.astype(np.float64)
    H = Af @ (1 - Bf.T) + (1 - Af) @ Bf.T
    fig, ax = _fig(plt, 5.0)
    shown, k = _pool(H, "min")
    im = ax.imshow(shown, cmap="magma_r", aspect="auto", interpolation="nearest")
    cb = fig.colorbar(im, ax=ax, label=r"$H_{ij} = \|a_i - b_j\|_0$")
    for level, style, name in ((gap.t, "-", r"$t$"), ((1 + gap.eps) * gap.t, "--", r"$(1+\varepsilon)t$")):
        cb.ax.axhline(level, color="cyan", ls=style, lw=2)
        cb.ax.text(1.6, level, name, transform=cb.ax.get_yaxis_transform(), va="center", fontsize=8)
    ax.set_xlabel(r"$b_j$" + (f", {k}x{k} blocks (min)" if k > 1 else "")), ax.set_ylabel(r"$a_i$")
    ax.set_title(rf"Gap-ANN ($d = {gap.dim}$): YES $H < t = {gap.t:g}$, NO $H \geq (1+\varepsilon)t = "
                 rf"{(1 + gap.eps) * gap.t:g}$", fontsize=10)
    fig.tight_layout()
    save_figure(fig, paths[2], dpi=DPI)

    # 4. log A with its blocks
    logA = att.scale * (att.Q @ att.K.T)
    fig, ax = _fig(plt, 5.5)
    n_a, n = gap.n_a, gap.n_b
    shown, k = _pool(logA, "max")
    im = ax.imshow(shown, cmap="cividis", aspect="auto", interpolation="nearest",
                   extent=(-0.5, logA.shape[1] - 0.5, logA.shape[0] - 0.5, -0.5))
    ax.axhline(n_a - 0.5, color="white", lw=1.5)
    ax.axvline(n - 0.5, color="white", lw=1.5)
    for (r, c, text) in ((n_a / 2, n / 2, r"$\frac{\beta}{4}(1 - H_{ij}/d)$"),
                         (n_a / 2, n + n / 2, r"$\log\tau = \beta/2$"),
                         (n_a + n / 2, n / 2, r"$0$, i.e. $A = 1$ (errata E3)"),
                         (n_a + n / 2, n + n / 2, r"$\log\tau$")):
        ax.text(c - 0.5, r - 0.5, text, ha="center", va="center", color="red", fontsize=11,
                bbox={"facecolor": "white", "alpha": 0.7, "lw": 0})
    fig.colorbar(im, ax=ax, label=r"$\log A_{ij} = \langle q_i, k_j\rangle/\tilde d$")
    ax.set_xlabel(r"keys: real $|$ padding"), ax.set_ylabel(r"queries: real $|$ padding")
    ax.set_title(rf"$\log A$, $\beta = {p['beta']:.5g}$, $\tau = e^{{\beta/2}} = e^{{{p['log_tau']:.5g}}}$",
                 fontsize=10)
    fig.tight_layout()
    save_figure(fig, paths[3], dpi=DPI)

    # 5. u_i against the thresholds
    u = out[:n_a, 0]
    logu = np.where(u.sign > 0, u.log_abs, np.nan)
    truth = gap.min_distances() < gap.t
    fig, ax = _fig(plt, 4.5)
    rows = np.arange(n_a)
    ax.scatter(rows[truth], logu[truth], s=14, color="tab:green", label="YES rows (brute force)", zorder=3)
    ax.scatter(rows[~truth], logu[~truth], s=8, color="tab:blue", label="NO rows", zorder=3)
    lt = p["log_t_tilde"]
    for val, style, name in ((lt, ":", r"$\log\tilde t$"), (lt + np.log(2), "-", r"$\log 2\tilde t$ (threshold)"),
                             (lt + np.log(3), "--", r"$\log 3\tilde t$")):
        ax.axhline(val, color="k", ls=style, lw=1.2, label=name)
    ax.set_xlabel(r"query row $i$"), ax.set_ylabel(r"$\log u_i$ (nats)")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(r"Threshold test: YES rows have $u_i > 3\tilde t$, NO rows $u_i < \tilde t$ (log scale)",
                 fontsize=10)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, paths[4], dpi=DPI)
    plt.close("all")
    return paths


__all__ = ["FIGURES", "stage_figures"]
