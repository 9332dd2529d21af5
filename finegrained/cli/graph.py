"""``finegrained graph``: every registered problem and reduction, its size blow-up and the lemma it implements.

``--path SOURCE TARGET`` highlights the chain that :func:`reductions.path` composes between two problems.
"""

from __future__ import annotations

import argparse

from .formatting import STDOUT, json_report, output_format, write_output

HELP = "show the reduction graph (text, DOT, PNG/PDF/SVG or JSON)"
DESCRIPTION = ("Show the reduction graph: every registered problem and reduction, its size blow-up and the lemma it "
               "implements. The output format comes from --format or from the extension of -o (.txt, .dot/.gv, "
               ".png, .pdf, .svg, .json); a conflict between them is an error. With --path, --sizes prints the "
               "composed size map of the path (--at evaluates it and states the regime) and --implies derives the "
               "running time a bound for the last problem gives the first.")
_EXTENSIONS = {".txt": "text", ".dot": "dot", ".gv": "dot", ".png": "png", ".pdf": "pdf", ".svg": "svg",
               ".json": "json"}
_FIGURES = ("png", "pdf", "svg")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("text", "dot", "json", *_FIGURES), default=None,
                        help="output format (default: from the extension of -o, else text)")
    parser.add_argument("--path", nargs=2, metavar=("SOURCE", "TARGET"), help="highlight the chain SOURCE -> TARGET")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write exactly FILE ('-': standard output; required for figures)")
    parser.add_argument("--json", action="store_true", help="the same as --format json")
    from .graph_sizes import add_arguments as add_size_arguments

    add_size_arguments(parser)  # --sizes, --at, --implies, --params, --safety


def highlighted_edges(g, path: list[str] | None) -> set[tuple[str, str]]:
    """Edges of the shortest path between the two named problems (the one ``reductions.path`` composes)."""
    from reductions.registry import problem_path

    if not path:
        return set()
    nodes = problem_path(g, *path)
    return set(zip(nodes, nodes[1:]))


def graph_data(g, hot: set[tuple[str, str]]) -> dict:
    """The JSON payload: problems and reductions, each reduction marked when it is on the highlighted path."""
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


def to_text(g, hot: set[tuple[str, str]]) -> str:
    """Problems, then reductions with their lemma, blow-up and derived parameters; ``*`` marks the path."""
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


def to_dot(g, hot: set[tuple[str, str]]) -> str:
    """Graphviz DOT, the path in red."""
    lines = ["digraph reductions {", "  rankdir=LR;", "  node [shape=box, style=rounded];"]
    for n in g.nodes:
        lines.append(f"  {_dot_quote(n)} [tooltip={_dot_quote(g.nodes[n]['definition'])}];")
    for u, v in g.edges:
        style = ", color=red, penwidth=2" if (u, v) in hot else ""
        lines.append(f"  {_dot_quote(u)} -> {_dot_quote(v)} [label={_dot_quote(g.edges[u, v]['lemma'])}{style}];")
    lines.append("}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from instances.errors import ParameterError
    from reductions.registry import reduction_graph

    if args.json and args.format not in (None, "json"):
        raise ParameterError(f"--json contradicts --format {args.format}")
    fmt = output_format(args.output, "json" if args.json else args.format, _EXTENSIONS, "text")
    from . import graph_sizes

    if graph_sizes.wanted(args):
        if fmt not in ("text", "json"):
            raise ParameterError(f"--sizes, --at and --implies print text or JSON, not {fmt}")
        data = graph_sizes.payload(args)
        write_output(args.output, json_report(data) if fmt == "json" else graph_sizes.to_text(data))
        return 0
    if args.params is not None or args.safety is not None:
        raise ParameterError("--params and --safety set the sizes of --sizes/--implies; the graph has none")
    g = reduction_graph()
    hot = highlighted_edges(g, args.path)
    if fmt in _FIGURES:
        if not args.output:
            raise ParameterError(f"--format {fmt} writes a file: give it with -o FILE.{fmt} (or -o - for stdout)")
        from .formatting import note
        from .plots import plot_graph

        if args.output == STDOUT:
            import io
            import os
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, f"graph.{fmt}")
                plot_graph(g, hot, path, fmt=fmt)
                data = io.FileIO(path).readall()
            write_output(STDOUT, "", binary=data)
        else:
            plot_graph(g, hot, args.output, fmt=fmt)
            note(f"wrote {args.output}")
        return 0
    if fmt == "json":
        text = json_report(graph_data(g, hot))
    else:
        text = to_text(g, hot) if fmt == "text" else to_dot(g, hot)
    write_output(args.output, text)
    return 0
