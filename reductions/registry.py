"""The reduction graph: problems are nodes, reductions are edges of a :class:`networkx.DiGraph`.

:func:`path` finds a shortest path between two problems and composes its reductions into a
:class:`~reductions.base.Chain`, so ``path("k-SAT", "AAttC")`` is the whole SETH chain of Alman & Song.
"""

from __future__ import annotations

from collections.abc import Callable

import networkx as nx

from instances.errors import ParameterError

from .base import Chain, Reduction
from .gap_ann_to_attention import GapANNToAAttC
from .maxip_to_attention import MaxIPToAttention, OVToMaxIP
from .ov_to_attention import OVToAttention
from .ov_to_gap_ann import OVToGapANN
from .sat_to_ov import SatToOV

#: Problem name -> one-line definition.
PROBLEMS: dict[str, str] = {
    "k-SAT": "CNF formula with N variables and m clauses of width <= k: is it satisfiable?",
    "OV": "A, B ⊂ {0,1}^m: is there a in A, b in B with <a, b> = 0?",
    "Gap-ANN": "Definition 4.5: for each a_i, is some b_j at Hamming distance < t, or all at >= (1+eps) t?",
    "AAttC": "Definition 1.2: output D^{-1} exp(Q K^T / d) V to additive error eps_a, entries bounded by B",
    "Max-IP": "integer A, B and thresholds tau_i: is max_j <a_i, b_j> >= tau_i? (exact integer Max-IP, per row)",
    "Attention": "output D^{-1} exp(s Q K^T) V exactly or to additive error eps_a, any entry size and dimension",
}

#: Edge factories; a factory receives the keyword options given to :func:`path` that it accepts.
FACTORIES: dict[tuple[str, str], Callable[..., Reduction]] = {
    ("k-SAT", "OV"): lambda **_: SatToOV(),
    ("OV", "Gap-ANN"): lambda **_: OVToGapANN(),
    ("Gap-ANN", "AAttC"): lambda mode="tight", safety=None, beta=None, check=True, **_: GapANNToAAttC(
        mode=mode, safety=safety, beta=beta, check=check
    ),
    ("OV", "Attention"): lambda **_: OVToAttention(),
    ("OV", "Max-IP"): lambda **_: OVToMaxIP(),
    ("Max-IP", "Attention"): lambda **_: MaxIPToAttention(),
}


def reduction_graph() -> nx.DiGraph:
    """The graph of problems and reductions; each edge has attributes ``reduction``, ``lemma`` and ``blowup``."""
    g = nx.DiGraph()
    for name, text in PROBLEMS.items():
        g.add_node(name, definition=text)
    for (u, v), factory in FACTORIES.items():
        r = factory()
        g.add_edge(u, v, factory=factory, lemma=r.lemma, blowup=r.blowup, derived=r.derived)
    return g


def problem_path(g: nx.DiGraph, source: str, target: str) -> list[str]:
    """The problems on a shortest path from ``source`` to ``target`` in the reduction graph ``g``."""
    for name in (source, target):
        if name not in g:
            raise ParameterError(f"unknown problem {name!r}; known problems: {', '.join(g.nodes)}")
    try:
        return nx.shortest_path(g, source, target)
    except nx.NetworkXNoPath:
        raise ParameterError(f"no chain of reductions leads from {source} to {target}") from None


def path(source: str, target: str, **options) -> Chain:
    """Compose the reductions along a shortest path from ``source`` to ``target``.

    Options (e.g. ``mode="paper"``, ``safety=2.0``) go to the reductions that take them.

    Examples
    --------
    >>> chain = path("k-SAT", "AAttC")
    >>> chain.problems
    ['k-SAT', 'OV', 'Gap-ANN', 'AAttC']
    """
    g = reduction_graph()
    nodes = problem_path(g, source, target)
    if len(nodes) < 2:
        raise ParameterError(f"source and target are both {source}: there is nothing to reduce")
    return Chain([g.edges[u, v]["factory"](**options) for u, v in zip(nodes, nodes[1:])])
