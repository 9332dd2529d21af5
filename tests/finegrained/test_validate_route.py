"""``--route attention`` on ``finegrained validate`` and on ``bench chain|sizes|scale`` (Gupta et al.'s route)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from finegrained.bench.chain import run as bench_chain
from finegrained.bench.scale import run as bench_scale
from finegrained.bench.sizes import run as bench_sizes
from finegrained.cli import main
from finegrained.validate import attention_proof_checks, ov_of_cnf, validate_attention_route, validate_cnf
from instances import CNFFormula, example_path
from reductions import ov_to_attention

TINY4 = CNFFormula.read(example_path("tiny4"))
UNSAT = CNFFormula([[1, 2], [-1, 2], [1, -2], [-1, -2]])


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _brute_force_rows(cnf: CNFFormula) -> np.ndarray:
    ov = ov_of_cnf(cnf)
    return np.array([any(int(a @ b) == 0 for b in ov.B.astype(int)) for a in ov.A.astype(int)])


# ------------------------------------------------------------------------------------------------ library
def test_attention_rows_match_brute_force_and_gadget_bounds():
    rep = validate_attention_route(TINY4)
    r, s = rep.rows, rep.summary
    truth = _brute_force_rows(TINY4)
    assert r["truth"].tolist() == truth.tolist() == [True, False, True, True]
    assert r["decision"].tolist() == truth.tolist() and r["correct"].all() and (r["in_bound"] == 1).all()
    # YES rows above 8/9, NO rows below 1/9 (exact u), margins log u + ln 2
    assert (r["u"][truth] >= 8 / 9).all() and (r["u"][~truth] <= 1 / 9).all()
    assert np.allclose(r["margin"], r["log_u"] + math.log(2))
    assert (s["yes_lower"], s["no_upper"], s["threshold"]) == (8 / 9, 1 / 9, 0.5)
    assert s["certification"] == "certified" and s["certified_rows"] == 4
    assert s["max_tolerated_log_eps"] == pytest.approx(s["analytic_log_slack"], abs=1e-6)
    assert s["slack_vs_eps_a"] > 0  # the exact rows sit further than eps_a = 1/4 from 1/2


def test_attention_factor_sets_the_bounds():
    s = validate_attention_route(TINY4, factor=4.0).summary
    assert (s["yes_lower"], s["no_upper"]) == (0.8, 0.2) and s["all_correct"] and not s["rows_outside_bound"]


def test_attention_adversary_and_a_wrong_oracle_are_reported_not_raised():
    ok = validate_attention_route(UNSAT, oracle="adversarial")
    assert ok.oracle == "adversarial(exact)" and ok.summary["all_correct"] and ok.summary["yes_rows"] == 0
    assert ok.summary["log_eps_adv"] == pytest.approx(math.log(0.25))
    # an error beyond the gap 7/18 flips every row of tiny4
    bad = validate_attention_route(TINY4, log_eps_adv=math.log(7 / 18) + 0.3)
    assert bad.summary["wrong_rows"] == [0, 1, 2, 3] and bad.summary["rows_outside_bound"] == []

    def always_yes(Q, K, V, *, scale=None):  # a float kernel that claims every row has a partner
        return np.full((Q.shape[0], 1), 0.75)

    wrong = validate_attention_route(TINY4, oracle=always_yes)
    assert wrong.summary["wrong_rows"] == [1] and wrong.summary["certification"] == "uncertified"


def test_attention_float_plugin_decides_uncertified():
    def softmax(Q, K, V, *, scale=None):
        S = (scale or 1.0) * (Q @ K.T).astype(np.float32)
        P = np.exp(S - S.max(axis=1, keepdims=True))
        return (P / P.sum(axis=1, keepdims=True)) @ V.astype(np.float32)

    rep = validate_attention_route(CNFFormula.read(example_path("random3sat-n20")), oracle=softmax)
    assert rep.summary["all_correct"] and rep.summary["yes_rows"] == 12 and rep.certification == "uncertified"


def test_json_states_the_route():
    att = json.loads(validate_attention_route(TINY4).to_json())
    assert att["route"] == "attention" and att["rows"]["in_bound"] == [True] * 4 and att["params"] is None
    assert json.loads(validate_cnf(TINY4).to_json())["route"] == "aattc"


def test_rows_outside_a_wrong_bound_are_caught(monkeypatch, capsys):
    # a gadget bound the construction does not meet: every YES row falls outside it
    monkeypatch.setattr(ov_to_attention, "gadget_bounds", lambda factor=8.0: (0.9999, 0.1111))
    rep = validate_attention_route(TINY4)
    assert rep.summary["rows_outside_bound"] == [0, 2, 3]
    code, out, _ = run(capsys, "validate", "--route", "attention", "--example", "tiny4")
    assert code == 1 and "3 rows OUTSIDE their gadget bound" in out


# ------------------------------------------------------------------------------------------------ proof
def test_attention_proof_passes_on_the_code():
    rep = attention_proof_checks(ov_of_cnf(TINY4))
    assert rep.passed and rep.mode == "attention" and len(rep.checks) == 13


@pytest.mark.parametrize(("attr", "value", "named"), [
    ("gadget_lambda", lambda n, factor=8.0: 2 * math.log(4 * max(n, 1)), ["lambda = 2 ln(c n)",
                                                                         "NO rows: u <= 1/(c+1)"]),
    ("gadget_bounds", lambda factor=8.0: (0.8, 0.2), ["yes bound = c/(c+1)", "no bound = 1/(c+1)"]),
    ("EPS_A", 0.45, ["eps_a = 1/4", "NO decision"]),
])
def test_attention_proof_names_a_wrong_constant(monkeypatch, capsys, attr, value, named):
    monkeypatch.setattr(ov_to_attention, attr, value)
    failed = attention_proof_checks(ov_of_cnf(TINY4)).failed
    assert set(named) <= set(failed), failed
    code, out, _ = run(capsys, "validate", "--route", "attention", "--example", "tiny4", "--proof")
    assert code == 1 and f"FAIL  {named[0]}" in out


def test_attention_proof_json(capsys):
    code, out, _ = run(capsys, "validate", "--route", "attention", "--example", "tiny4", "--proof", "--json")
    data = json.loads(out)
    assert code == 0 and data["route"] == "attention" and data["passed"] and data["mode"] == "attention"


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_attention_table_and_json(capsys):
    code, out, _ = run(capsys, "validate", "--route", "attention", "--example", "tiny4")
    assert code == 0 and "(route: attention, oracle: exact)" in out and "u_i >= 1/2" in out
    assert "all 4 rows correct (3 YES, 1 NO" in out and ">= 0.8889" in out and "<= 0.1111" in out
    code, out, _ = run(capsys, "validate", "--route", "attention", "--example", "tiny4", "--json")
    data = json.loads(out)
    assert code == 0 and data["route"] == "attention" and data["summary"]["rows"] == 4
    code, out, _ = run(capsys, "validate", "--example", "tiny4", "--json")
    assert json.loads(out)["route"] == "aattc"


def test_cli_attention_adversary_exit_status(capsys):
    code, out, _ = run(capsys, "validate", "--route", "attention", "--example", "tiny4", "--oracle", "adversarial")
    assert code == 0 and "adversarial(exact)" in out
    code, out, _ = run(capsys, "validate", "--route", "attention", "--example", "tiny4", "--eps-adv", "gap+0.3")
    assert code == 1 and "4 of 4 rows WRONG" in out


@pytest.mark.parametrize("extra", [["--ann", "x.npz"], ["--params", "tight"], ["--safety", "2"], ["--beta", "3"],
                                   ["--sweep", "beta"], ["--proof", "--symbolic"], ["--reference"]])
def test_cli_attention_refuses_lemma47_options(capsys, extra):
    code, out, err = run(capsys, "validate", "--route", "attention", "--example", "tiny4", *extra)
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1 and extra[-1 if extra[0] == "--proof" else 0] in lines[0]
    assert "--route attention does not take" in lines[0]


def test_cli_attention_refuses_lemma47_eps_names(capsys):
    code, _, err = run(capsys, "validate", "--route", "attention", "--example", "tiny4", "--eps-adv", "t~")
    assert code == 2 and "Lemma 4.7" in err
    code, _, err = run(capsys, "validate", "--example", "tiny4", "--eps-adv", "gap")
    assert code == 2 and "gadget gap" in err


def test_cli_attention_margins_plot(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "m.png"
    code, _, err = run(capsys, "validate", "--route", "attention", "--example", "tiny4", "--margins-plot", str(path))
    assert code == 0 and path.stat().st_size > 1000 and "wrote" in err


# ------------------------------------------------------------------------------------------------ benches
def test_bench_chain_on_the_attention_route(capsys):
    res = bench_chain(vars_min=4, vars_max=6, step=2, repeat=1, route="attention")
    assert res.route == "attention" and res.params is None
    assert [(r["n_q"], r["n_k"], r["d"]) for r in res.rows] == [(4, 5, 18), (8, 9, 27)]  # n_a, n_b + 1, m + 1
    code, out, _ = run(capsys, "bench", "chain", "--route", "attention", "--vars-min", "4", "--vars-max", "4",
                       "--repeat", "1", "--json")
    assert code == 0 and json.loads(out)["route"] == "attention"
    code, out, _ = run(capsys, "bench", "chain", "--vars-min", "4", "--vars-max", "4", "--repeat", "1")
    assert code == 0 and "route aattc, params tight" in out.splitlines()[0]
    code, _, err = run(capsys, "bench", "chain", "--route", "attention", "--params", "paper", "--vars-min", "4")
    assert code == 2 and "--route attention has none" in err


def test_bench_sizes_on_the_attention_route(capsys, monkeypatch):
    res = bench_sizes(vars_min=4, vars_max=7, repeat=1, route="attention")
    assert res.route == "attention" and res.consistent
    top = res.rows[-1]["sizes"]
    assert top["Attention.n_k"] == [top["OV.n_b"][1] + 1] * 2 and top["Attention.d"] == [31, 31]
    code, out, _ = run(capsys, "bench", "sizes", "--route", "attention", "--vars-min", "4", "--vars-max", "5",
                       "--repeat", "1")
    assert code == 0 and "route attention" in out.splitlines()[0] and "(consistent)" in out
    # a declared map that disagrees with the code is a counterexample (exit 1)
    wrong = dict(ov_to_attention.OVToAttention().sizes)
    monkeypatch.setattr(ov_to_attention.OVToAttention, "sizes", property(lambda self: {**wrong, "d": wrong["d"] + 1}))
    code, out, _ = run(capsys, "bench", "sizes", "--route", "attention", "--vars-min", "4", "--vars-max", "4",
                       "--repeat", "1", "--json")
    assert code == 1 and json.loads(out)["route"] == "attention" and not json.loads(out)["consistent"]


def test_bench_scale_on_the_attention_route(capsys):
    res = bench_scale(vars_min=4, vars_max=6, step=2, workers=(), gpu=False, gemm=False, repeat=1,
                      project=(10,), project_workers=(1,), route="attention")
    assert res.route == "attention" and [r["n_q"] for r in res.rows] == [4, 8] and res.projections
    code, out, _ = run(capsys, "bench", "scale", "--route", "attention", "--vars-min", "4", "--vars-max", "4",
                       "--workers", "0", "--gpu", "no", "--repeat", "1", "--project", "8")
    assert code == 0 and "route attention" in out.splitlines()[0]


def test_attention_memory_limit_is_checked_first(capsys):
    from instances.errors import ResourceLimitError

    with pytest.raises(ResourceLimitError):
        validate_attention_route(TINY4, max_memory=1024)
    with pytest.raises(ResourceLimitError):
        validate_attention_route(ov_of_cnf(TINY4), max_memory=1024)
    code, _, err = run(capsys, "validate", "--route", "attention", "--example", "tiny4", "--max-memory", "1K")
    assert code == 2 and "memory" in err


# ------------------------------------------------------------------------------------------------ review fixes
@pytest.fixture
def plug_one(tmp_path, monkeypatch):
    (tmp_path / "fg_plug_one.py").write_text("import numpy as np\n\n\ndef one(Q, K, V, *, scale=None):\n"
                                             "    return np.ones((Q.shape[0], 1))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "fg_plug_one:one"


def _certified_wrong(data: dict) -> list:
    r = data["rows"]
    return [i for i, (c, ok) in enumerate(zip(r["certified"], r["correct"])) if c and not ok]


def test_adversary_on_a_bare_plugin_is_not_certified(capsys, plug_one):
    code, out, _ = run(capsys, "validate", "--route", "attention", "--example", "tiny4", "--oracle", plug_one,
                       "--eps-adv=-5", "--json")
    data = json.loads(out)
    assert code == 1 and data["summary"]["wrong_rows"] == [1] and data["summary"]["certification"] == "uncertified"
    assert data["summary"]["certified_rows"] == 0 and not _certified_wrong(data)
    # the aattc route goes through the same adversary
    aattc = validate_cnf(TINY4, oracle=plug_one, log_eps_adv=-5.0)
    assert aattc.certification == "uncertified" and not aattc.rows["certified"].any()


@pytest.mark.parametrize("log_eps", ["+36", "+40", "+700"])
def test_huge_eps_never_certifies_a_wrong_row(capsys, log_eps):
    code, out, _ = run(capsys, "validate", "--route", "attention", "--example", "tiny4", f"--eps-adv={log_eps}",
                       "--rows", "all", "--json")
    data = json.loads(out)
    assert code == 1 and data["summary"]["wrong_rows"] == [0, 1, 2, 3]
    assert data["summary"]["certified_rows"] == 0 and not _certified_wrong(data)


@pytest.mark.parametrize("route", ["attention", "aattc"])
@pytest.mark.parametrize("value", ["-1e400", "+1e400"])
def test_non_finite_eps_adv_is_one_line(capsys, route, value):
    code, out, err = run(capsys, "validate", "--route", route, "--example", "tiny4", f"--eps-adv={value}", "--json")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "finite natural log" in err


def test_ground_truth_counts_distinct_rows_and_refuses_too_much_work(capsys, monkeypatch):
    from finegrained import validate as v
    from instances.errors import ResourceLimitError

    rng = np.random.default_rng(3)
    A, B = rng.integers(0, 2, (300, 9)), rng.integers(0, 2, (200, 9))  # at most 2^9 distinct rows each
    want = np.array([int((B @ a == 0).sum()) for a in A])
    assert v.orthogonal_partners(A, B, tile=7).tolist() == want.tolist()
    assert v.orthogonal_partners(A[:0], B).tolist() == [] and v.orthogonal_partners(A, B[:0]).tolist() == [0] * 300
    with pytest.raises(ResourceLimitError, match=r"distinct rows of A .* bit operations, above the limit 100"):
        v.orthogonal_partners(A, B, max_work=100)
    # 40 variables, one clause: 2^20 x 2^20 vectors but 2 distinct rows each -- finishes (it ran for hours)
    big = v.orthogonal_partners(np.tile([[1], [0]], (2**19, 1)), np.tile([[1], [0]], (2**19, 1)))
    assert big.shape == (2**20,) and big[0] == 2**19 and big[1] == 2**20
    monkeypatch.setattr(v, "MAX_PARTNER_WORK", 10)
    code, out, err = run(capsys, "validate", "--route", "attention", "--example", "tiny4")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "bit operations" in err


@pytest.mark.parametrize(("route", "extra", "named"), [
    ("attention", ["--proof", "--margins-plot", "m.png"], "--margins-plot"),
    ("attention", ["--proof", "--oracle", "lev"], "--oracle"),
    ("attention", ["--proof", "--eps-adv=-3"], "--eps-adv"),
    ("attention", ["--dps", "30"], "--dps"),
    ("attention", ["--points", "5"], "--points"),
    ("aattc", ["--proof", "--oracle", "lev"], "--oracle"),
    ("aattc", ["--sweep", "beta", "--eps-adv=-3"], "--eps-adv"),
    ("aattc", ["--dps", "30"], "--dps"),
    ("aattc", ["--points", "5"], "--points"),
])
def test_ignored_options_are_refused(capsys, tmp_path, route, extra, named):
    extra = [str(tmp_path / x) if x.endswith(".png") else x for x in extra]
    code, out, err = run(capsys, "validate", "--route", route, "--example", "tiny4", *extra)
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1 and named in lines[0]
    assert not (tmp_path / "m.png").exists()


def test_negative_answers_and_infinite_margins_are_displayed(capsys):
    code, out, _ = run(capsys, "validate", "--route", "attention", "--example", "tiny4", "--eps-adv=+0.5",
                       "--rows", "all")
    assert code == 1 and "--" not in out.replace("--rows", "")
    assert "-0.41699 (u<0)" in out and "min YES margin -inf (a YES row has u_i <= 0)" in out
    assert "margin - nats" not in out and "margin -inf nats" not in out


def test_huge_u_is_reported_without_a_warning(capsys):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rep = validate_attention_route(TINY4, log_eps_adv=710.0)
        data = json.loads(rep.to_json())
    assert np.isinf(rep.rows["u"]).all() and data["rows"]["u"] == [None] * 4
    code, out, err = run(capsys, "validate", "--route", "attention", "--example", "tiny4", "--eps-adv=+710")
    assert code == 1 and "RuntimeWarning" not in err and "       -inf" in out  # u = -inf shown as such


def test_margins_plot_keeps_infinite_margin_rows(monkeypatch):
    pytest.importorskip("matplotlib")
    from finegrained.cli import plots
    from finegrained.cli.validate import plot_attention_margins

    figs = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path, dpi=200: figs.append(fig))
    plot_attention_margins(validate_attention_route(TINY4, log_eps_adv=0.5), "unused.png")
    yes_ax = figs[0].axes[0]
    points = sum(len(line.get_xdata()) for line in yes_ax.lines if line.get_marker() in ("o", "v"))
    clipped = [line for line in yes_ax.lines if line.get_marker() == "v"]
    assert points == 3 and len(clipped) == 1 and np.isfinite(clipped[0].get_ydata()).all()


@pytest.mark.parametrize(("value", "want"), [("0", 0.0), ("1.5", 1.5), ("700", 700.0), ("-1.5", -1.5)])
def test_eps_adv_takes_an_unsigned_number(capsys, value, want):
    # the help says "a number": 1.5 is +1.5 (only a named quantity needs a signed offset, as in gap-0.1)
    code, out, _ = run(capsys, "validate", "--route", "attention", "--example", "tiny4", "--eps-adv", value, "--json")
    assert json.loads(out)["summary"]["log_eps_adv"] == want and code in (0, 1)


def test_eps_adv_named_quantity_still_needs_a_sign(capsys):
    code, out, err = run(capsys, "validate", "--route", "attention", "--example", "tiny4", "--eps-adv", "eps_a1.5")
    assert code == 2 and out == "" and "--eps-adv expects a natural log" in err


def test_huge_margins_print_in_short_form(capsys):
    code, out, _ = run(capsys, "validate", "--route", "attention", "--example", "tiny4", "--eps-adv=+1e300",
                       "--rows", "all")
    assert code == 1 and "+1e+300" in out
    assert max(len(line) for line in out.splitlines()) < 300  # the margin's 300 digits are not printed
    summary = next(line for line in out.splitlines() if "min |NO margin|" in line)
    assert "-1e+300 nats" in summary


def test_attention_route_parameters_are_one_parameter_error():
    from instances.errors import ParameterError

    cnf = CNFFormula([[1, 2], [-1, 2], [1, -2]])
    for factor, what in ((10**400, "within float64 range"), ("8", "real number"), (8 + 0j, "real number")):
        with pytest.raises(ParameterError, match=what):
            validate_attention_route(cnf, factor=factor)
    with pytest.raises(ParameterError, match="log_eps_adv must be a real number within float64 range"):
        validate_attention_route(cnf, oracle="adversarial", log_eps_adv=10**400)
    with pytest.raises(ParameterError, match="log_eps_adv must be a real number"):
        validate_attention_route(cnf, oracle="adversarial", log_eps_adv="-3")
    report = validate_attention_route(cnf, factor=1e308)  # c n overflows; 2 (ln c + ln n) does not
    assert math.isfinite(report.parameters["lambda"]) and report.summary["all_correct"]


def test_attention_route_on_an_empty_ov_instance():
    from instances.ov import OVInstance

    for A, B in ((np.zeros((0, 2)), np.zeros((0, 2))), ([[1, 0]], np.zeros((0, 2)))):
        report = validate_attention_route(OVInstance(A, B))
        assert report.summary["all_correct"] and report.certification == "certified"
        json.dumps(report.to_dict())
