"""The layering of the toolkit, read from the source with ``ast`` (issue 12, item 5).

* ``instances`` imports neither ``reductions`` nor ``finegrained``; ``reductions`` does not import ``finegrained``.
* The module import graph has no cycles. Every import counts, including lazy ones inside functions; only
  ``if TYPE_CHECKING:`` blocks, which never run, are left out. ``from pkg import name`` is an edge to the module
  ``pkg.name`` when that is a module and to ``pkg`` (its ``__init__``) otherwise; importing ``pkg.mod`` is not also
  counted as an import of ``pkg``, the way import linters count it.
* The library never prints and never parses arguments: ``print(`` calls and ``argparse`` imports appear only
  under ``finegrained/cli/``.

Each check lists every offender. The walker itself is tested on a small synthetic tree, so the checks can fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("instances", "reductions", "finegrained")
#: The only place allowed to print or to import argparse.
CLI_PREFIX = "finegrained/cli/"
#: ``layer -> packages it must not import``.
FORBIDDEN = {"instances": ("reductions", "finegrained"), "reductions": ("finegrained",)}


def module_files(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """Module name -> file, for every ``.py`` file of the packages under ``root``."""
    out = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:`` (typing-only imports never execute)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def _imported(name: str, path: Path, node: ast.AST, modules: set[str]) -> list[str]:
    """The internal modules one import statement of module ``name`` (file ``path``) refers to."""
    def nearest(dotted: str) -> str | None:
        parts = dotted.split(".")
        while parts:
            candidate = ".".join(parts)
            if candidate in modules:
                return candidate
            parts.pop()
        return None

    found = []
    if isinstance(node, ast.Import):
        for alias in node.names:
            found.append(nearest(alias.name))
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
            base_parts = package[: len(package) - (node.level - 1)]
            base = ".".join(base_parts + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            found.append(sub if sub in modules else nearest(base))
    return [m for m in found if m is not None]


def import_graph(root: Path, packages=PACKAGES) -> nx.DiGraph:
    """Directed graph of the packages' modules; an edge ``a -> b`` for every import of ``b`` in ``a``."""
    files = module_files(root, packages)
    g = nx.DiGraph()
    g.add_nodes_from(files)
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _runtime_nodes(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _imported(name, path, node, set(files)):
                    if target != name:
                        g.add_edge(name, target, line=node.lineno)
    return g


def upward_imports(g: nx.DiGraph) -> list[str]:
    out = []
    for a, b, data in g.edges(data=True):
        for forbidden in FORBIDDEN.get(a.split(".")[0], ()):
            if b.split(".")[0] == forbidden:
                out.append(f"{a}:{data['line']} imports {b}")
    return sorted(out)


def import_cycles(g: nx.DiGraph, limit: int = 25) -> list[str]:
    """Up to ``limit`` elementary cycles, each written ``a -> b -> ... -> a``."""
    out = []
    for cycle in nx.simple_cycles(g):
        start = cycle.index(min(cycle))  # a canonical rotation, so that the listing is stable
        cycle = cycle[start:] + cycle[:start]
        out.append(" -> ".join([*cycle, cycle[0]]))
        if len(out) >= limit:
            break
    return sorted(out)


def cli_only_offenders(root: Path, packages=PACKAGES) -> list[str]:
    """``print(`` calls and ``argparse`` imports outside ``finegrained/cli/``, as ``file:line what``."""
    out = []
    for path in module_files(root, packages).values():
        rel = path.relative_to(root).as_posix()
        if rel.startswith(CLI_PREFIX):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                out.append(f"{rel}:{node.lineno} print(")
            elif isinstance(node, ast.Import) and any(a.name.split(".")[0] == "argparse" for a in node.names):
                out.append(f"{rel}:{node.lineno} import argparse")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "argparse":
                out.append(f"{rel}:{node.lineno} from argparse import")
    return sorted(out)


def test_no_upward_imports():
    offenders = upward_imports(import_graph(ROOT))
    assert not offenders, "upward imports:\n" + "\n".join(offenders)


def test_no_import_cycles():
    g = import_graph(ROOT)
    assert g.number_of_nodes() > 30 and g.number_of_edges() > 50  # the walk really saw the packages
    tangles = sorted(", ".join(sorted(c)) for c in nx.strongly_connected_components(g) if len(c) > 1)
    cycles = import_cycles(g)
    assert nx.is_directed_acyclic_graph(g), (
        "modules tied into cycles:\n" + "\n".join(tangles) + "\nimport cycles (up to 25):\n" + "\n".join(cycles)
    )


def test_only_the_cli_prints_or_parses_arguments():
    offenders = cli_only_offenders(ROOT)
    assert not offenders, f"{len(offenders)} print/argparse use(s) outside {CLI_PREFIX}:\n" + "\n".join(offenders)


def test_the_walker_finds_each_kind_of_offender(tmp_path):
    files = {
        "instances/__init__.py": "from .a import A\n",
        "instances/a.py": "A = 1\n\ndef lazy():\n    from reductions import b\n    return b\n",
        "reductions/__init__.py": "",
        "reductions/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import finegrained.cli.x\n"
                           "import instances.a\nfrom . import c\n",
        "reductions/c.py": "from .b import *\n",
        "finegrained/__init__.py": "import argparse\n",
        "finegrained/cli/__init__.py": "import argparse\nprint('fine here')\n",
        "finegrained/cli/x.py": "",
        "finegrained/lib.py": "def f():\n    print('not here')\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    g = import_graph(tmp_path)
    assert upward_imports(g) == ["instances.a:4 imports reductions.b"]  # the lazy one; TYPE_CHECKING is skipped
    assert set(g.successors("reductions.b")) == {"instances.a", "reductions.c"}
    assert import_cycles(g) == ["instances.a -> reductions.b -> instances.a",
                                "reductions.b -> reductions.c -> reductions.b"]
    assert cli_only_offenders(tmp_path) == ["finegrained/__init__.py:1 import argparse", "finegrained/lib.py:2 print("]
