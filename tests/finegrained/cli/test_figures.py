"""Stage figures (issue 15): five slide-ready PNGs for every shipped example."""

from __future__ import annotations

import pytest

from finegrained import run_chain
from instances import CNFFormula, example_path, list_examples

pytest.importorskip("matplotlib")
from matplotlib.image import imread  # noqa: E402

from finegrained.cli.figures import FIGURES, stage_figures  # noqa: E402


@pytest.mark.parametrize("example", list_examples())
def test_five_figures_per_example(example, tmp_path):
    r = run_chain(CNFFormula.read(example_path(example)), cdcl=False)
    paths = stage_figures(r, str(tmp_path))
    assert [p.rsplit("/", 1)[1] for p in paths] == list(FIGURES)
    for p in paths:
        img = imread(p)
        assert img.shape[1] >= 1600 and img.shape[0] >= 400, (p, img.shape)
        assert img.std() > 0.01  # not a blank canvas


def test_attention_route_is_refused(tmp_path):
    from instances.errors import ParameterError

    r = run_chain(CNFFormula([[1, 2]]), route="attention", cdcl=False)
    with pytest.raises(ParameterError):
        stage_figures(r, str(tmp_path))
