"""A step-by-step walkthrough of the chain on a tiny formula, printing the real objects of every stage.

Meant for the lecture screen: every vector of the OV and Gap-ANN instances, the Hamming distances, ``Q`` and
``K`` with the τ padding block, the four blocks of ``A = exp(QKᵀ/d̃)`` symbolically (sympy, in terms of β) and
numerically (as logarithms), ``u_i`` against ``2t̃`` row by row, and the decoded assignment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from instances.cnf import CNFFormula
from instances.errors import ParameterError
from instances.gap_ann import hamming_distances
from reductions.sat_to_ov import split_variables

from .chain import ChainResult, run_chain

#: Largest formula explained unless the caller raises the limit (2^(N/2) rows per table).
DEFAULT_MAX_VARS = 6


@dataclass
class Section:
    """One stage of the walkthrough: a title, the statement it implements, and its body lines."""

    title: str
    cite: str
    lines: list[str] = field(default_factory=list)
    latex: list[str] = field(default_factory=list)


@dataclass
class Walkthrough:
    result: ChainResult
    sections: list[Section]

    def to_text(self) -> str:
        out = []
        for k, s in enumerate(self.sections, 1):
            out.append(f"== {k}. {s.title}   [{s.cite}]")
            out.extend("   " + line for line in s.lines)
            out.append("")
        return "\n".join(out).rstrip() + "\n"

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def to_markdown(self) -> str:
        out = ["# Walkthrough of the SETH chain", ""]
        for k, s in enumerate(self.sections, 1):
            out += [f"## {k}. {s.title}", "", f"*{s.cite}*", "", "```text", *s.lines, "```", ""]
            for tex in s.latex:
                out += ["$$", tex, "$$", ""]
        return "\n".join(out)


def _bits(row: np.ndarray) -> str:
    return "".join(str(int(x)) for x in row)


def symbolic_blocks(n_a: int, n: int, d: int, inner: np.ndarray) -> dict[str, sp.Matrix]:
    """The four blocks of ``A = exp(QKᵀ/d̃)`` as sympy matrices in the symbol β, from the inner products.

    Top-left ``exp(β⟨a_i, b_j⟩/2d)``, top-right and bottom-right ``exp(β/2) = τ``, bottom-left ``exp(0) = 1``.
    """
    beta = sp.Symbol("beta", positive=True)
    d_tilde = 2 * d
    tl = sp.Matrix(n_a, n, lambda i, j: sp.exp(beta * sp.Rational(int(inner[i, j]), d_tilde)))
    tau = sp.exp(beta * sp.Rational(d, d_tilde))
    return {
        "top-left": tl,
        "top-right": sp.Matrix(n_a, n, lambda i, j: tau),
        "bottom-left": sp.Matrix(n, n, lambda i, j: sp.Integer(1)),
        "bottom-right": sp.Matrix(n, n, lambda i, j: tau),
    }


def check_size(num_vars: int, max_vars: int = DEFAULT_MAX_VARS) -> None:
    """Refuse a formula of ``num_vars`` variables beyond ``max_vars``; callers check it before building one."""
    if num_vars > max_vars:
        raise ParameterError(
            f"explain prints 2^(N/2) vectors per table and is meant for tiny formulas: N = {num_vars} exceeds "
            f"the limit {max_vars} (raise max_vars to explain it anyway)"
        )


def explain(cnf: CNFFormula, *, params: str = "tight", max_vars: int = DEFAULT_MAX_VARS) -> Walkthrough:
    """Run the chain with the exact oracle and describe every stage.

    Examples
    --------
    >>> w = explain(CNFFormula([[1, -2], [2]], num_vars=2))
    >>> [s.title for s in w.sections][:3]
    ['The formula (k-SAT)', 'Split and list (k-SAT -> OV)', 'Coordinate gadget and balancing (OV -> Gap-ANN)']
    >>> w.result.assignment
    [1, 2]
    """
    check_size(cnf.num_vars, max_vars)
    result = run_chain(cnf, params=params)
    f, ov, gap, att, out = result.trace
    p = result.parameters
    left, right = split_variables(f.num_vars)
    secs: list[Section] = []

    s = Section("The formula (k-SAT)", "input")
    s.lines.append(f"N = {f.num_vars} variables, m = {f.num_clauses} clauses")
    s.lines += [f"C{c + 1}: " + (" v ".join(_lit(x) for x in cl) or "(empty clause)") for c, cl in enumerate(f.clauses)]
    secs.append(s)

    s = Section("Split and list (k-SAT -> OV)", "Williams 2005")
    s.lines.append(f"L = {{{', '.join(f'x{v}' for v in left)}}}, R = {{{', '.join(f'x{v}' for v in right)}}}")
    s.lines.append("a_alpha[c] = 1 iff the assignment alpha of L satisfies no literal of clause c (same for b_beta)")
    for name, variables, X in (("a", left, ov.A), ("b", right, ov.B)):
        for idx, row in enumerate(X):
            vals = " ".join(f"x{v}={(idx >> k) & 1}" for k, v in enumerate(variables)) or "(empty)"
            s.lines.append(f"{name}{idx}: {vals:<24} -> {_bits(row)}")
    pairs = [(i, j) for i in range(ov.n_a) for j in range(ov.n_b) if int(ov.A[i].astype(int) @ ov.B[j]) == 0]
    s.lines.append("orthogonal pairs: " + (", ".join(f"(a{i}, b{j})" for i, j in pairs) or "none"))
    secs.append(s)

    s = Section("Coordinate gadget and balancing (OV -> Gap-ANN)", "gadget 1 + 2xy, Remark 4.4")
    s.lines.append("x -> (1-x, x, 0) for A, y -> (1, 1-y, y) for B; then v -> [v, 1-v]")
    s.lines.append(f"d = {gap.dim}, t = {gap.t:g}, (1+eps) t = {(1 + gap.eps) * gap.t:g}, eps = {gap.eps:.6g}")
    s.lines += [f"a{i}: {_bits(r)}" for i, r in enumerate(gap.A)]
    s.lines += [f"b{j}: {_bits(r)}" for j, r in enumerate(gap.B)]
    H = hamming_distances(gap.A, gap.B).astype(int)
    s.lines.append("Hamming distances H[i, j] (rows a_i, columns b_j):")
    s.lines += ["  " + " ".join(f"{h:>4d}" for h in row) for row in H]
    secs.append(s)

    s = Section("Attention instance (Gap-ANN -> AAttC)", "Lemma 4.7, corrected (docs/errata.md)")
    s.lines.append(f"beta = {p['beta']:.6g} (beta_min = 4 d ln(6n)/(eps t) = {p['beta_min']:.6g}), "
                   f"B = sqrt(beta) = {p['B']:.6g}")
    s.lines.append(f"log tau = beta/2 = {p['log_tau']:.6g}, log t~ = {p['log_t_tilde']:.6g}, "
                   f"log eps_a = {p['log_eps_a']:.6g}")
    s.lines.append(f"Q: {att.n_q} x {att.dim} = sqrt(beta) [[a_i, 1_d], [0_d, 1_d]];  "
                   f"K: {att.n_k} x {att.dim} = sqrt(beta) [[b_j, 0_d], [0_d, 1_d]];  V = [1_n; 0_n]")
    inner = gap.A.astype(int) @ gap.B.T.astype(int)
    blocks = symbolic_blocks(gap.n_a, gap.n_b, gap.dim, inner)
    for name, M in blocks.items():
        note = " (every entry is tau = exp(beta/2))" if name.endswith("right") else ""
        s.lines.append(f"A {name} block, first row (symbolic): {sp.sstr(list(M[0, :]))}{note}")
        s.latex.append(rf"A_{{\text{{{name}}}}} = " + sp.latex(M))
    logA = att.scale * (att.Q @ att.K.T)
    s.lines.append("log A (numeric; columns: real keys | padding keys):")
    s.lines += ["  " + " ".join(f"{v:8.2f}" for v in row) for row in logA]
    secs.append(s)

    s = Section("Oracle and threshold test", "Lemma 4.7, Cases 2a/2b")
    s.lines.append(f"oracle: {result.oracle}; decide YES iff log u_i >= log 2t~ = {p['log_threshold']:.6g}")
    yes, margin = result.rows.yes, result.rows.margin
    dist = H.min(axis=1)
    s.lines.append(f"{'row':>4} {'log u_i':>12} {'margin':>9} {'decision':>8} {'min H':>6} {'truth':>6}")
    for i in range(gap.n_a):
        truth = "YES" if dist[i] < gap.t else "NO"
        s.lines.append(f"{i:>4} {out.log_abs[i, 0]:>12.6g} {margin[i]:>+9.3f} {'YES' if yes[i] else 'NO':>8} "
                       f"{dist[i]:>6d} {truth:>6}")
    secs.append(s)

    s = Section("Back to the formula", "backward maps")
    if result.satisfiable:
        s.lines.append("first YES row -> its orthogonal partner (linear scan) -> alpha and beta -> assignment")
        s.lines.append("assignment: " + " ".join(map(str, result.assignment or [])))
        s.lines.append("verified: " + ("satisfies every clause" if result.verified else "FAILS"))
    else:
        s.lines.append("no row passes the threshold: no orthogonal pair, the formula is UNSATISFIABLE")
    s.lines.append(f"pysat CDCL says: {'SAT' if result.cdcl_satisfiable else 'UNSAT'}")
    secs.append(s)
    return Walkthrough(result, secs)


def _lit(x: int) -> str:
    return f"x{x}" if x > 0 else f"~x{-x}"
