"""The plots are written, and a missing matplotlib is a clear error rather than a traceback."""

from __future__ import annotations

import builtins
import json

import pytest

from finegrained.cli import main
from finegrained.cli.plots import pyplot
from instances.errors import FinegrainedError


def test_margins_plot_and_compare_bench(tmp_path, capsys):
    png = tmp_path / "m.png"
    assert main(["validate", "--example", "tiny4", "--margins-plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    times = tmp_path / "t.png"
    capsys.readouterr()
    assert main(["bench", "compare", "--log2-n-min", "6", "--log2-n-max", "8", "--repeat", "1",
                 "--algorithms", "exact,poly,random_features", "--plot", str(times), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["n"] for r in data["rows"]] == [64, 128, 256]
    assert all(r["errors"]["poly"] < 1e-5 for r in data["rows"])
    assert times.read_bytes()[:4] == b"\x89PNG"


def test_compare_refusals_are_reported(capsys):
    assert main(["bench", "compare", "--log2-n-min", "6", "--log2-n-max", "6", "--repeat", "1", "--B", "40",
                 "--dims", "8", "--algorithms", "exact,poly"]) == 0
    assert "poly refused:" in capsys.readouterr().out
    assert main(["bench", "compare", "--algorithms", "nope"]) == 2
    assert "unknown algorithm" in capsys.readouterr().err


def test_missing_matplotlib_is_a_clear_error(monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(FinegrainedError, match=r"pip install 'finegrained\[plot\]'"):
        pyplot()


def test_aattc_margins_plot_keeps_infinite_margin_rows(monkeypatch):
    # the adversary at log eps = 0 pushes three YES rows of tiny4 to u_i <= 0 (margin -inf): drawn clipped and
    # marked, as on the attention route, not dropped
    pytest.importorskip("matplotlib")
    import numpy as np

    from finegrained.cli import plots
    from finegrained.validate import validate_cnf
    from instances import CNFFormula, example_path

    figs = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path, dpi=200: figs.append(fig))
    report = validate_cnf(CNFFormula.read(example_path("tiny4")), log_eps_adv=0.0)
    assert np.isneginf(np.asarray(report.rows["margin"])).sum() == 3
    plots.plot_margins(report, "unused.png")
    yes_ax = figs[0].axes[0]
    clipped = [line for line in yes_ax.lines if line.get_marker() == "v"]
    assert len(clipped) == 1 and len(clipped[0].get_xdata()) == 3 and np.isfinite(clipped[0].get_ydata()).all()
    assert clipped[0].get_label().startswith("3 below") and "-inf where u_i <= 0" in clipped[0].get_label()


@pytest.mark.parametrize("route", ["aattc", "attention"])
def test_margins_plot_of_huge_margins_is_drawn(monkeypatch, route):
    # at --eps-adv=+1e300 the margins are ~1e300 nats: matplotlib's symlog axis overflowed and the figure was
    # empty; they are drawn at the 1e6 limit, marked, and the axis stays finite
    pytest.importorskip("matplotlib")
    import numpy as np

    from finegrained.cli import plots
    from finegrained.cli.validate import plot_attention_margins
    from finegrained.validate import validate_attention_route, validate_cnf
    from instances import CNFFormula, example_path

    figs = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path, dpi=200: figs.append(fig))
    cnf = CNFFormula.read(example_path("tiny4"))
    if route == "aattc":
        plots.plot_margins(validate_cnf(cnf, log_eps_adv=1e300), "unused.png")
    else:
        plot_attention_margins(validate_attention_route(cnf, log_eps_adv=1e300), "unused.png")
    fig = figs[0]
    fig.canvas.draw()
    for ax in fig.axes:
        lo, hi = ax.get_ylim()
        assert np.isfinite([lo, hi]).all() and -1e7 < lo < hi < 1e7
    drawn = [ln for ax in fig.axes for ln in ax.lines if ln.get_marker() in ("o", "v", "^")]
    assert sum(len(ln.get_xdata()) for ln in drawn) == 4
