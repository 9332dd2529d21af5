"""The figures the docs embed are current: regenerated from the code, they match the committed PNGs (issue 15).

``python -m finegrained.cli.docs_figures`` writes them; this test reruns its fast set (the tiny4 example) into a
temporary directory. The comparison is on pixels, not bytes, so a different matplotlib build that shifts
antialiasing a little still passes, while a changed plot (another layout, a new curve, a different size) fails.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from matplotlib.image import imread  # noqa: E402

from finegrained.cli.docs_figures import FAST, FULL, generate  # noqa: E402

IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
#: Mean absolute pixel difference (0..1 per channel) tolerated between a regenerated and a committed figure.
TOLERANCE = 0.01
FIX = "regenerate them with: python -m finegrained.cli.docs_figures --full"


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("img")
    written = generate(str(out))
    assert sorted(Path(p).relative_to(out).as_posix() for p in written) == sorted(FAST)
    return out


@pytest.mark.parametrize("name", FAST)
def test_committed_figure_matches_the_code(regenerated, name):
    committed = IMG / name
    assert committed.is_file(), f"docs/img/{name} is missing; {FIX}"
    new, old = imread(str(regenerated / name)), imread(str(committed))
    assert new.shape == old.shape, f"docs/img/{name} is {old.shape}, the code draws {new.shape}; {FIX}"
    diff = float(np.abs(new.astype(float) - old.astype(float)).mean())
    assert diff < TOLERANCE, f"docs/img/{name} differs from the code's figure (mean |diff| {diff:.4f}); {FIX}"
    assert new.shape[1] >= 1600  # slide-ready


@pytest.mark.parametrize("name", FULL)
def test_slow_figures_are_committed_and_slide_ready(name):
    img = imread(str(IMG / name))
    assert img.shape[1] >= 1600 and img.std() > 0.01, (name, img.shape)


def test_every_embedded_figure_is_generated_or_committed():
    # every image a docs page embeds exists (mkdocs --strict checks it too, but only where mkdocs is run)
    import re

    docs = IMG.parent
    for page in docs.glob("*.md"):
        for target in re.findall(r"!\[[^\]]*\]\((img/[^)]+)\)", page.read_text(encoding="utf-8")):
            assert (docs / target).is_file(), (page.name, target)
