"""Show the reduction graph: every registered problem and reduction, its size blow-up and the lemma it implements.

``--path SOURCE TARGET`` highlights the chain that :func:`reductions.path` composes between two problems.
"""

from __future__ import annotations

import argparse
import json

import networkx as nx

from instances.errors import ParameterError
from reductions.registry import problem_path, reduction_graph

from ..plots import pyplot, save_figure
from ..resources import write_text

HELP = "show the reduction graph (text, DOT, PNG or JSON)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("text", "dot", "png"), default="text", help="output format")
    parser.add_argument("--path", nargs=2, metavar=("SOURCE", "TARGET"), help="highlight the chain SOURCE -> TARGET")
    parser.add_argument("-o", "--output", help="file to write (required for png; default stdout otherwise)")
    parser.add_argument("--json", action="store_true", help="print nodes and edges as JSON")


def highlighted_edges(g: nx.DiGraph, path: list[str] | None) -> set[tuple[str, str]]:
    """Edges of the shortest path between the two named problems (the one ``reductions.path`` composes)."""
    if not path:
        return set()
    nodes = problem_path(g, *path)
    return set(zip(nodes, nodes[1:]))


def graph_data(g: nx.DiGraph, hot: set[tuple[str, str]]) -> dict:
    return {
        "schema": "finegrained.graph/1",
        "problems": [{"name": n, "definition": g.nodes[n]["definition"]} for n in g.nodes],
        "reductions": [
            {"source": u, "target": v, "lemma": g.edges[u, v]["lemma"], "blowup": g.edges[u, v]["blowup"],
             "parameters": g.edges[u, v].get("derived", ""),
             "on_path": (u, v) in hot}
            for u, v in g.edges
        ],
    }


def to_text(g: nx.DiGraph, hot: set[tuple[str, str]]) -> str:
    lines = ["Problems:"]
    width = max(len(n) for n in g.nodes)
    lines += [f"  {n:<{width}}  {g.nodes[n]['definition']}" for n in g.nodes]
    lines.append("")
    lines.append("Reductions:" + ("   (* = on the highlighted path)" if hot else ""))
    for u, v in g.edges:
        mark = "*" if (u, v) in hot else " "
        lines.append(f" {mark} {u} -> {v}")
        lines.append(f"      implements: {g.edges[u, v]['lemma']}")
        lines.append(f"      blow-up:    {g.edges[u, v]['blowup']}")
        if g.edges[u, v].get("derived"):
            lines.append(f"      parameters: {g.edges[u, v]['derived']}")
    return "\n".join(lines)


def _dot_quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(g: nx.DiGraph, hot: set[tuple[str, str]]) -> str:
    lines = ["digraph reductions {", "  rankdir=LR;", "  node [shape=box, style=rounded];"]
    for n in g.nodes:
        lines.append(f"  {_dot_quote(n)} [tooltip={_dot_quote(g.nodes[n]['definition'])}];")
    for u, v in g.edges:
        style = ", color=red, penwidth=2" if (u, v) in hot else ""
        lines.append(f"  {_dot_quote(u)} -> {_dot_quote(v)} [label={_dot_quote(g.edges[u, v]['lemma'])}{style}];")
    lines.append("}")
    return "\n".join(lines)


def to_png(g: nx.DiGraph, hot: set[tuple[str, str]], output: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 4.5))
    layers = {n: i for i, n in enumerate(nx.topological_sort(g))} if nx.is_directed_acyclic_graph(g) else {}
    pos = {n: (layers.get(n, i), (i % 2) * 0.6) for i, n in enumerate(g.nodes)} if layers else nx.spring_layout(
        g, seed=0
    )
    nx.draw_networkx_nodes(g, pos, ax=ax, node_color="#dde8f5", node_size=2600, node_shape="s")
    nx.draw_networkx_labels(g, pos, ax=ax, font_size=9)
    cold = [e for e in g.edges if e not in hot]
    nx.draw_networkx_edges(g, pos, edgelist=cold, ax=ax, arrows=True, node_size=2600, edge_color="#666666")
    nx.draw_networkx_edges(g, pos, edgelist=list(hot), ax=ax, arrows=True, node_size=2600, edge_color="red", width=2.5)
    ax.set_axis_off()
    fig.tight_layout()
    save_figure(fig, output)


def run(args: argparse.Namespace) -> int:
    g = reduction_graph()
    hot = highlighted_edges(g, args.path)
    if args.json:
        print(json.dumps(graph_data(g, hot), indent=2))
        return 0
    if args.format == "png":
        if not args.output:
            raise ParameterError("--format png writes a file: give it with -o FILE.png")
        to_png(g, hot, args.output)
        print(f"wrote {args.output}")
        return 0
    text = to_text(g, hot) if args.format == "text" else to_dot(g, hot)
    if args.output:
        write_text(args.output, text + "\n")
        print(f"wrote {args.output}")
    else:
        print(text)
    return 0
