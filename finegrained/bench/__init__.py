"""Benchmarks run by ``finegrained bench NAME``.

Each benchmark is a module of this package exposing

* ``add_arguments(parser: argparse.ArgumentParser) -> None`` — its own options;
* ``run(args: argparse.Namespace) -> dict`` — runs, prints a human table unless ``args.json``, and returns a
  JSON-serialisable result.

Benchmarks report ratios measured within one run (e.g. an oracle against a bare matrix product of the same
shape), because absolute times on shared machines are noisy. They are never timed assertions in the test suite.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: benchmark name -> module implementing it
BENCHES: dict[str, str] = {
    "ann": "finegrained.bench.ann",
    "anytemp": "finegrained.bench.anytemp",
    "chain": "finegrained.bench.chain",
    "compare": "finegrained.bench.compare",
    "lev": "finegrained.bench.lev",
    "poly": "finegrained.bench.poly",
}


def load(name: str) -> ModuleType:
    """Import the module implementing benchmark ``name``."""
    return importlib.import_module(BENCHES[name])
