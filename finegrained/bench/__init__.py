"""Benchmarks: plain functions with keyword arguments that return dataclasses.

``finegrained bench NAME`` runs ``run(**options)`` of the module registered as ``NAME`` and prints the dataclass
it returns (a table, or JSON with ``--json``). The library never prints; progress is reported through an optional
``progress(done, total)`` callback.

Adding a benchmark
------------------
1. Write ``finegrained/bench/<module>.py`` with

   * ``run(*, ..., progress=None) -> <Result>``: keyword-only arguments in the shared vocabulary below, checks
     limits (:func:`finegrained.resources.check_memory`) before allocating, returns a dataclass;
   * ``<Result>.to_dict() -> dict``: the JSON payload (plain numbers, lists, dicts; no NaN or inf).

2. Register it: add ``"NAME": "finegrained.bench.<module>"`` to :data:`BENCHES` (or call :func:`register`).

3. Write its command line in ``finegrained/cli/benches/<module>.py`` (the CLI module of a benchmark has the same
   module name as its library module), exposing

   * ``DESCRIPTION: str``: plain text for ``--help`` (no markup, no internal references);
   * ``add_arguments(parser)``: options, built with the helpers of :mod:`finegrained.cli.argtypes`
     (``add_sizes``, ``add_dims``, ``add_B``, ``add_eps``, ``add_repeat``, ``add_seed``, ``add_max_memory``) so
     that every benchmark spells the same thing the same way; ``--json`` is added for you;
   * ``run(args, progress) -> <Result>``: calls the library function;
   * ``format_text(result) -> str``: the human-readable table.

   ``tests/finegrained/cli/test_bench_vocabulary.py`` parses every registered benchmark's help and checks the
   vocabulary.

Shared vocabulary: ``--log2-n-min K`` / ``--log2-n-max K`` (sizes n = 2^K), ``--dims 2,4,8``, ``--B 0.5,1``,
``--eps 1e-3,1e-6`` (comma-separated lists), ``--repeat R`` (best of R), ``--seed S``, ``--max-memory 8G``,
``--json``. Helpers for best-of timing, exponent fits and machine metadata are in :mod:`finegrained.bench.timing`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: benchmark name -> module implementing it (``run(**options) -> dataclass``)
BENCHES: dict[str, str] = {
    "ann": "finegrained.bench.ann",
    "anytemp": "finegrained.bench.anytemp",
    "chain": "finegrained.bench.chain",
    "compare": "finegrained.bench.compare",
    "grad": "finegrained.bench.grad",
    "kernels": "finegrained.bench.kernels",
    "lev": "finegrained.bench.lev",
    "lev-train": "finegrained.bench.lev_train",
    "poly": "finegrained.bench.poly",
    "scale": "finegrained.bench.scale",
    "sizes": "finegrained.bench.sizes",
}


def register(name: str, module: str) -> None:
    """Register benchmark ``name`` implemented by ``module`` (a dotted module path)."""
    BENCHES[name] = module


def load(name: str) -> ModuleType:
    """Import the module implementing benchmark ``name``."""
    return importlib.import_module(BENCHES[name])


def cli_module_name(name: str) -> str:
    """The dotted name of the command-line module of benchmark ``name`` (same module name, under the CLI)."""
    return "finegrained.cli.benches." + BENCHES[name].rsplit(".", 1)[-1]
