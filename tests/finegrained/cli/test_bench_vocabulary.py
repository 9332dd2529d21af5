"""Every benchmark speaks one option vocabulary, and every help text is plain text with its defaults shown.

The vocabulary: ``--log2-n-min K`` / ``--log2-n-max K`` for sizes ``n = 2^K``, ``--dims``, ``--B`` and ``--eps``
as comma-separated lists, ``--repeat``, ``--seed``, ``--max-memory SIZE`` and ``--json``. The spellings the
benchmarks used before (``--min-log2-n``, ``--ds``, ``--Bs``, ``--epss``, ``--eps-rel``, ``--repeats``, ...)
never appear in a help text. Benchmarks registered later are checked too: the test walks the registry.
"""

from __future__ import annotations

import argparse
import re

import pytest

from finegrained.bench import BENCHES
from finegrained.cli import build_parser
from finegrained.cli.argtypes import memory_size

FORBIDDEN = ("--min-log2-n", "--max-log2-n", "--n-min", "--n-max", "--repeats", "--d", "--ds", "--bs", "--Bs",
             "--epss", "--eps-rel", "--scaling-max-log2-n")
REQUIRED = ("--seed", "--repeat", "--max-memory", "--json")
LISTS = ("--dims", "--B", "--eps")
#: Markup and references a user cannot follow: RST roles and literals, the issue tracker, internal notes.
NOT_PLAIN = re.compile(r"``|:func:|:class:|:mod:|:data:|\bissue\b|research notes|§|docs/research")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    # argparse has no public accessor for its subparsers
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(subs[0].choices) if subs else {}


def _bench_parsers() -> dict[str, argparse.ArgumentParser]:
    return _subparsers(_subparsers(build_parser())["bench"])


def _visible(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {s: a for a in parser._actions if a.help != argparse.SUPPRESS for s in a.option_strings}


def _all_parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    out, todo = [], [("finegrained", build_parser())]
    while todo:
        name, p = todo.pop()
        out.append((name, p))
        todo += [(f"{name} {k}", v) for k, v in _subparsers(p).items()]
    return out


def test_every_registered_bench_has_a_command():
    assert set(_bench_parsers()) == set(BENCHES) and len(BENCHES) >= 6


@pytest.mark.parametrize("name", sorted(BENCHES))
def test_bench_vocabulary(name):
    parser = _bench_parsers()[name]
    opts = _visible(parser)
    text = parser.format_help()
    for word in FORBIDDEN:
        assert word not in opts and not re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text), (name, word)
    for word in REQUIRED:
        assert word in opts, (name, word)
    assert opts["--max-memory"].type is memory_size and opts["--max-memory"].default is None
    # a size grid is always spelled in log2, with both ends
    assert ("--log2-n-min" in opts) == ("--log2-n-max" in opts), name
    for word in LISTS:
        if word in opts:  # a list option takes comma-separated values, never space-separated ones
            assert opts[word].nargs is None and opts[word].type.__name__.startswith("list of"), (name, word)
            assert "comma-separated" in opts[word].help, (name, word)
    # --max-memory takes a size such as 8G, and the parsed value is bytes
    args = parser.parse_args(["--max-memory", "8G"])
    assert args.max_memory == 8 * 2**30


def test_size_benches_share_the_grid_options():
    with_sizes = [n for n, p in _bench_parsers().items() if "--log2-n-max" in _visible(p)]
    assert {"ann", "anytemp", "compare", "lev", "poly"} <= set(with_sizes)


@pytest.mark.parametrize("name", [n for n, _ in _all_parsers()])
def test_help_is_plain_text_with_defaults(name):
    parser = dict(_all_parsers())[name]
    text = parser.format_help()
    assert not NOT_PLAIN.search(text), (name, NOT_PLAIN.search(text).group(0))
    for action in parser._actions:
        if action.option_strings and action.help not in (None, argparse.SUPPRESS) and action.default not in (
                None, False, argparse.SUPPRESS) and action.dest != "help":
            # every default is shown: by the formatter, or written out in the help itself
            assert "default" in parser._get_formatter()._expand_help(action), (name, action.option_strings)
