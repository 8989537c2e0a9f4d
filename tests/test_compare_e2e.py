"""compare + plan + final + report on smoke, with the real LSTM and the real commands."""

import json
import tomllib

import pandas as pd
import pytest

from harness.analysis.loading import load_results
from harness.analysis.plots import FIGURES
from harness.experiment import parse_experiment
from tests.e2e import cli


@pytest.mark.slow
def test_compare_plan_final_report(smoke_results, capsys):
    """On a copy of the shared comparison (random, tpe_hyperband): compare adds grid and the
    side measurements, resumes, then plan, final and report on the whole."""
    results = _compare_and_resume(smoke_results)
    _plan_then_capped_plan(smoke_results)
    _final(smoke_results)
    capsys.readouterr()
    _report(smoke_results, results)


def _compare_and_resume(root):
    options = dict(strategies="random,tpe_hyperband,grid", seeds=2, results=root)
    options.update(noise_seeds=2, noise_configs=2, audit=2)
    assert cli("compare", **options) == 0
    results = load_results(root, "smoke")
    assert set(results.meta) == {
        (s, seed) for s in ("random", "tpe_hyperband", "grid") for seed in (0, 1)
    }
    noise = pd.read_csv(root / "smoke/noise.csv")
    assert len(noise) == 4 and noise["val_mae"].notna().all()
    audit = pd.read_csv(root / "smoke/audit.csv")
    assert len(audit) <= 2 and set(audit.columns) >= {"full_mae", "would_have_won"}

    n_rungs_before = len(results.rungs)
    assert cli("compare", **options) == 0  # resumable: every run is reused, nothing retrained
    assert len(load_results(root, "smoke").rungs) == n_rungs_before
    return results


def _plan_then_capped_plan(tmp_path):
    plan_options = dict(night="smoke", hours=12, results=tmp_path)
    assert cli("plan", **plan_options) == 0
    plan = json.loads((tmp_path / "smoke/plan.json").read_text())
    overnight = tmp_path / "smoke/overnight.toml"
    exp = parse_experiment(tomllib.loads(overnight.read_text()), str(overnight))  # runnable
    assert exp.strategy == plan["strategy"] and exp.budget.timeout_minutes == 720
    assert 1 <= len(exp.space.params) <= 6
    free_high = dict(tomllib.loads(overnight.read_text())["space"]).get("hidden_1", {}).get("high")

    # a cost ceiling changes the plan: only small models inform the space, and the plan says
    # what it costs
    assert cli("plan", **plan_options, max_params=2300) == 0
    capped = json.loads((tmp_path / "smoke/plan.json").read_text())
    assert capped["ceiling"]["mae_cost"] >= 0 and "the ceiling costs" in capped["summary"]
    capped_space = tomllib.loads(overnight.read_text())["space"]
    if free_high is not None and "hidden_1" in capped_space:
        assert capped_space["hidden_1"]["high"] <= free_high


def _final(tmp_path):
    assert cli("final", seeds=2, max_epochs=2, v4_weights=True, results=tmp_path) == 0
    assert sorted(p.name for p in (tmp_path / "smoke/final").iterdir()) == [
        "model-seed-0.pt",
        "model-seed-1.pt",
    ]  # the recommended configuration's fresh weights; the one from v4's is compared only
    final = json.loads((tmp_path / "smoke/final.json").read_text())
    weights = final["v4_weights"]
    assert weights["seeds"] == 2 and len(weights["test_mae"]) == 2
    assert weights["test_diff_ci"][0] <= weights["test_diff"] <= weights["test_diff_ci"][1]
    assert "From v4's weights against fresh" in final["summary"]
    runs = pd.read_csv(tmp_path / "smoke/final_runs.csv")
    assert (runs["model"] == "recommended, from v4's weights").sum() == 2


def _report(tmp_path, results):
    assert cli("report", results=tmp_path) == 0
    report = (tmp_path / "smoke/REPORT.md").read_text()
    html = (tmp_path / "smoke/REPORT.html").read_text()
    for plot in FIGURES:  # smoke's comparison draws every one
        assert (tmp_path / f"smoke/plots/{plot}.png").stat().st_size > 5000 and (
            tmp_path / f"smoke/plots/{plot}.svg"
        ).exists()
    assert html.count("data:image/png;base64,") == 8  # self-contained
    # the report carries the figures of the tables it was made from
    best = (
        results.trials[results.trials["state"] == "COMPLETE"]
        .groupby(["strategy", "seed"])["val_mae"]
        .min()
    )
    for _strategy, values in best.groupby(level=0):
        assert f"{values.median():.4f}" in report
    latest = json.loads((tmp_path / "smoke/plan.json").read_text())  # the capped plan, written last
    assert f"Run **{latest['strategy']}**" in report and latest["summary"] in report
    assert "## MAE against cost" in report and "Front against training seconds" in report
    assert json.loads((tmp_path / "smoke/final.json").read_text())["summary"] in report


def test_report_without_runs_is_a_clear_error(tmp_path, capsys):
    assert cli("report", results=tmp_path) == 2
    assert "no recorded runs" in capsys.readouterr().err
