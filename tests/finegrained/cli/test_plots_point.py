"""The validation plots make their point (issue 15): YES and NO rows apart, slide-ready sizes."""

from __future__ import annotations

import numpy as np
import pytest

from finegrained.validate import beta_sweep, gap_ann_of_cnf, validate_gap_ann
from instances import CNFFormula, example_path

pytest.importorskip("matplotlib")
from matplotlib.image import imread  # noqa: E402

from finegrained.cli.plots import plot_graph, plot_margins, plot_sweep  # noqa: E402


@pytest.fixture(scope="module")
def tiny():
    return gap_ann_of_cnf(CNFFormula.read(example_path("tiny4")))


def test_sweep_reports_yes_and_no_rows_apart(tiny):
    s = beta_sweep(tiny, points=9, low=1 / 8, high=2.0)
    ratio = s.beta / s.beta_min
    above = ratio >= 1
    # the theory: at and above beta_min every row of both classes is right, with positive margins
    assert (s.frac_yes_exact[above] == 1).all() and (s.frac_no_exact[above] == 1).all()
    assert (s.min_margin_yes[above] > 0).all() and (s.min_margin_no[above] > 0).all()
    # below it tiny4's NO row is the one that breaks, and its margin says so
    assert s.frac_no_exact[0] == 0 and s.min_margin_no[0] < 0 and s.frac_yes_exact[0] == 1
    # the totals are the class fractions weighted by the class sizes (3 YES rows, 1 NO row)
    assert np.allclose(s.frac_exact, (3 * s.frac_yes_exact + s.frac_no_exact) / 4)
    d = s.to_dict()
    assert d["frac_no_exact"][0] == 0 and len(d["min_margin_yes"]) == 9


def test_figures_are_slide_ready(tiny, tmp_path):
    from finegrained.cli.graph import highlighted_edges
    from reductions.registry import reduction_graph

    plot_margins(validate_gap_ann(tiny, source="tiny4"), str(tmp_path / "m.png"))
    plot_sweep(beta_sweep(tiny, points=4, low=0.25, high=2.0), str(tmp_path / "s.png"))
    g = reduction_graph()
    plot_graph(g, highlighted_edges(g, ["k-SAT", "AAttC"]), str(tmp_path / "g.png"))
    for name in ("m.png", "s.png", "g.png"):
        img = imread(str(tmp_path / name))
        assert img.shape[1] >= 1600 and img.std() > 0.01, (name, img.shape)
    # the chosen path is drawn in pure red somewhere in the graph
    g_img = imread(str(tmp_path / "g.png"))[..., :3]
    assert ((g_img[..., 0] > 0.95) & (g_img[..., 1] < 0.05) & (g_img[..., 2] < 0.05)).sum() > 1000
