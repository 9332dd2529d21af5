"""Every `finegrained ...` command shown in a ```bash block of README.md or docs/*.md parses with the real CLI.

The pycon examples are executed (test_doc_examples.py); shell examples can be long runs (benchmarks), so they are
checked for validity instead: a renamed option or subcommand breaks this test.
"""

from __future__ import annotations

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


@pytest.mark.parametrize(("doc", "command"), COMMANDS, ids=[f"{d}: {c}" for d, c in COMMANDS])
def test_documented_command_parses(doc, command):
    """A full command must parse; a mention of a subcommand in prose (no required options) must have a --help."""
    words = shlex.split(command)[1:]
    try:
        build_parser().parse_args(words)
    except SystemExit:
        with pytest.raises(SystemExit) as info:
            build_parser().parse_args([*words, "--help"])
        assert info.value.code == 0, f"{doc}: {command!r} is neither a valid command nor a valid subcommand"
