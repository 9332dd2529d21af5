"""Every `finegrained ...` command shown in a ```bash block of README.md or docs/*.md parses with the real CLI.

The pycon examples are executed (test_doc_examples.py); shell examples can be long runs (benchmarks), so they are
checked for validity instead: a renamed option or subcommand breaks this test.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from finegrained.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
_BLOCK = re.compile(r"^```(?:bash|sh|console)[^\n]*\n(.*?)^```", re.M | re.S)
#: Inline code such as `finegrained validate --ann FILE.npz`; synopses with [ ], | or ... are not commands.
_INLINE = re.compile(r"`(finegrained [^`\[\]|…]+?)`")


def _commands() -> list[tuple[str, str]]:
    found = []
    for path in sorted([ROOT / "README.md", *(ROOT / "docs").glob("**/*.md")]):
        text = path.read_text(encoding="utf-8")
        found += [(path.name, " ".join(m.split())) for m in _INLINE.findall(text) if "..." not in m]
        for block in _BLOCK.findall(text):
            for line in block.splitlines():
                line = line.strip().removeprefix("$ ")
                for part in line.split("&&"):
                    words = shlex.split(part, comments=True)
                    if words and words[0] == "finegrained":
                        found.append((path.name, shlex.join(words)))
    return found


COMMANDS = _commands()


def test_there_are_documented_commands():
    assert len(COMMANDS) >= 5


def _parse_error(words: list[str]) -> str | None:
    """Why ``finegrained WORDS`` is not a command the real parser accepts, or None when it is.

    A full command must parse with no leftover words. A bare subcommand named in prose (``finegrained validate``,
    whose required options are missing) counts as valid only when it is a subcommand and nothing else: every
    option after it must exist. The check never appends ``--help``, which argparse honours even after an unknown
    option, so a renamed option cannot hide behind it.
    """
    parser = build_parser()
    try:
        _, extra = parser.parse_known_args(words)
    except SystemExit as exc:
        if exc.code == 0:
            return None  # e.g. a documented `finegrained --version` or `finegrained chain --help`
        if _is_subcommand_path(parser, words):
            return None  # a subcommand named in prose: its required options are simply not shown
        return f"argparse rejects it (exit {exc.code})"
    if extra:
        return f"unknown arguments {extra}"
    return None


def _is_subcommand_path(parser: argparse.ArgumentParser, words: list[str]) -> bool:
    """Whether ``words`` (no options at all) is a chain of subcommand names, e.g. ``generate gap-ann``."""
    if not words:
        return False
    for word in words:
        if word.startswith("-"):
            return False
        # argparse has no public accessor for its subparsers
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or word not in subs[0].choices:
            return False
        parser = subs[0].choices[word]
    return True


@pytest.mark.parametrize(("doc", "command"), COMMANDS, ids=[f"{d}: {c}" for d, c in COMMANDS])
def test_documented_command_parses(doc, command, capsys):
    """Every documented command parses with the real CLI parser, with no unknown option left over."""
    error = _parse_error(shlex.split(command)[1:])
    capsys.readouterr()  # argparse's usage message
    assert error is None, f"{doc}: {command!r}: {error}"


@pytest.mark.parametrize(
    "command",
    [
        "finegrained chain --example tiny4 --option-that-was-renamed 3",
        "finegrained chain --example tiny4 --option-that-was-renamed",
        "finegrained validate --example tiny4 --prooof",
        "finegrained chainn --example tiny4",
        "finegrained bench nosuchbench",
        "finegrained generate nosuchkind",
        "finegrained validate --example tiny4 --proof --rows",  # an option missing its value
    ],
)
def test_the_checker_rejects_renamed_options_and_subcommands(command, capsys):
    """The checker itself: an option or subcommand that does not exist (or was renamed) fails it."""
    assert _parse_error(shlex.split(command)[1:]) is not None
    capsys.readouterr()


def test_the_checker_accepts_real_commands(capsys):
    for command in ("finegrained chain --example tiny4", "finegrained validate", "finegrained chain --help",
                    "finegrained generate gap-ann"):
        assert _parse_error(shlex.split(command)[1:]) is None, command
    capsys.readouterr()
