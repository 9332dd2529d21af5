"""The reduction graph: problems are nodes, reductions are edges of a :class:`networkx.DiGraph`.

:func:`path` finds a shortest path between two problems and composes its reductions into a
:class:`~reductions.base.Chain`, so ``path("k-SAT", "AAttC")`` is the whole SETH chain of Alman & Song.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import networkx as nx

from instances.errors import ParameterError

from .base import Chain, Reduction
from .gap_ann_to_attention import GapANNToAAttC
from .maxip_to_attention import MaxIPToAttention, OVToMaxIP
from .ov_to_attention import DEFAULT_FACTOR, OVToAttention
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

def _sat_to_ov() -> Reduction:
    return SatToOV()


def _ov_to_gap_ann() -> Reduction:
    return OVToGapANN()


def _gap_ann_to_aattc(
    *, mode: str = "tight", safety: float | None = None, beta: float | None = None, check: bool = True
) -> Reduction:
    return GapANNToAAttC(mode=mode, safety=safety, beta=beta, check=check)


def _ov_to_attention(*, factor: float = DEFAULT_FACTOR) -> Reduction:
    return OVToAttention(factor=factor)


def _ov_to_maxip() -> Reduction:
    return OVToMaxIP()


def _maxip_to_attention(*, factor: float = DEFAULT_FACTOR) -> Reduction:
    return MaxIPToAttention(factor=factor)


#: Edge factories. Each takes explicit keyword options (no ``**kwargs``); :func:`path` hands every step the
#: options it accepts and rejects options that no step on the path accepts.
FACTORIES: dict[tuple[str, str], Callable[..., Reduction]] = {
    ("k-SAT", "OV"): _sat_to_ov,
    ("OV", "Gap-ANN"): _ov_to_gap_ann,
    ("Gap-ANN", "AAttC"): _gap_ann_to_aattc,
    ("OV", "Attention"): _ov_to_attention,
    ("OV", "Max-IP"): _ov_to_maxip,
    ("Max-IP", "Attention"): _maxip_to_attention,
}


def factory_options(factory: Callable[..., Reduction]) -> tuple[str, ...]:
    """The keyword options a factory accepts, read from its signature."""
    return tuple(
        name for name, p in inspect.signature(factory).parameters.items()
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    )


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

    Options (e.g. ``mode="paper"``, ``safety=2.0``) go to the reductions on the path that take them; the
    reductions' constructors check their values.

    Raises
    ------
    ParameterError
        For an unknown problem, no path, or an option that no reduction on the path accepts (all such options
        are named).

    Examples
    --------
    >>> chain = path("k-SAT", "AAttC")
    >>> chain.problems
    ['k-SAT', 'OV', 'Gap-ANN', 'AAttC']
    >>> path("k-SAT", "AAttC", safty=100, mood="paper")
    Traceback (most recent call last):
    ...
    instances.errors.ParameterError: unknown option(s) mood, safty for the path k-SAT -> OV -> Gap-ANN -> AAttC; ...
    """
    g = reduction_graph()
    nodes = problem_path(g, source, target)
    if len(nodes) < 2:
        raise ParameterError(f"source and target are both {source}: there is nothing to reduce")
    factories = [g.edges[u, v]["factory"] for u, v in zip(nodes, nodes[1:])]
    accepted = [set(factory_options(f)) for f in factories]
    known = set().union(*accepted)
    unknown = sorted(set(options) - known)
    if unknown:
        raise ParameterError(
            f"unknown option(s) {', '.join(unknown)} for the path {' -> '.join(nodes)}; "
            f"its reductions accept {', '.join(sorted(known)) or 'no options'}"
        )
    return Chain([f(**{k: v for k, v in options.items() if k in acc}) for f, acc in zip(factories, accepted)])
