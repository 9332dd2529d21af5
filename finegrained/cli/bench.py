"""``finegrained bench NAME``: run a registered benchmark and print its result (a table, or JSON).

The benchmarks are registered in :data:`finegrained.bench.BENCHES`; the command line of benchmark ``NAME`` is
the module :func:`finegrained.bench.cli_module_name` names, exposing ``DESCRIPTION``, ``add_arguments(parser)``,
``run(args, progress)`` and ``format_text(result)`` (see :mod:`finegrained.bench`). ``--json`` prints
``schema``, ``version`` and ``machine`` (CPU, cores, BLAS, numpy) with the result.
"""

from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass, field
from typing import Any

from .formatting import emit, json_report

HELP = "run a benchmark"
DESCRIPTION = ("Run a benchmark; see docs/benchmarks.md. Every benchmark spells its options the same way: "
               "--log2-n-min/--log2-n-max (sizes n = 2^K), --dims, --B and --eps (comma-separated lists), "
               "--repeat, --seed, --max-memory (e.g. 8G) and --json.")


@dataclass
class Extended:
    """A benchmark result with extra JSON fields (for example the plot a command wrote)."""

    result: Any
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {**self.result.to_dict(), **self.extra}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.result, name)


def cli_module(name: str):
    """The command-line module of benchmark ``name``."""
    from ..bench import cli_module_name

    return importlib.import_module(cli_module_name(name))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..bench import BENCHES, cli_module_name

    bsub = parser.add_subparsers(dest="bench", metavar="NAME", required=True)
    for name in BENCHES:
        try:
            mod = cli_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != cli_module_name(name):
                raise
            # registered without a command line yet: the rest of the CLI keeps working, this one says why not
            bsub.add_parser(name, help=f"(no command line yet: {cli_module_name(name)} is missing)")
            continue
        bp = bsub.add_parser(name, help=mod.DESCRIPTION.split(". ")[0].rstrip("."), description=mod.DESCRIPTION)
        mod.add_arguments(bp)
        bp.add_argument("--json", action="store_true",
                        help="print the result as JSON with schema, version and machine metadata")


def run(args: argparse.Namespace) -> int:
    from instances.errors import FinegrainedError

    from ..bench import cli_module_name
    from ..bench.timing import machine_info
    from .progress import progress_for

    try:
        mod = cli_module(args.bench)
    except ModuleNotFoundError as exc:
        if exc.name != cli_module_name(args.bench):
            raise
        raise FinegrainedError(f"bench {args.bench} is registered but has no command line: write "
                               f"{cli_module_name(args.bench)} (see finegrained/bench/__init__.py)") from None
    progress, close = progress_for(f"bench {args.bench}", args.json)
    try:
        result = mod.run(args, progress)
    finally:
        close()
    if args.json:
        emit(json_report(result.to_dict(), schema=f"finegrained.bench.{args.bench}/1", machine=machine_info()))
    else:
        emit(mod.format_text(result))
    status = getattr(mod, "exit_status", None)
    return int(status(result)) if status else 0
