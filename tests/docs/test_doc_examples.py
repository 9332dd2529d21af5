"""Execute every ``pycon`` example in README.md and docs/*.md, so documentation cannot rot.

Each Markdown file is one doctest: its fenced ```` ```pycon ```` blocks run in order with shared globals.
Examples that print numbers must print exactly what the code prints.
"""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_BLOCK = re.compile(r"^```pycon[^\n]*\n(.*?)^```", re.M | re.S)


def _examples(path: Path) -> str:
    return "\n".join(m.group(1) for m in _BLOCK.finditer(path.read_text(encoding="utf-8")))


DOCS = [p for p in sorted([ROOT / "README.md", *(ROOT / "docs").glob("**/*.md")]) if _examples(p).strip()]


def test_readme_has_examples() -> None:
    assert ROOT / "README.md" in DOCS


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_markdown_examples(path: Path) -> None:
    text = _examples(path)
    parser = doctest.DocTestParser()
    test = parser.get_doctest(text, {"__name__": "__docs__"}, str(path), str(path), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} doc example(s) failed in {path.name}"
