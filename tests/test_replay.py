"""record -> surrogate -> replay on smoke, with real learning curves from the real LSTM."""

import json

import numpy as np
import pandas as pd
import pytest

from harness.analysis.agreement import agreement
from harness.analysis.analyze import analyze
from harness.analysis.loading import load_results
from harness.experiment import load_experiment
from harness.replay.learners import CANDIDATES
from harness.replay.prepare import learning_curves
from harness.replay.surrogate import Surrogate
from tests.e2e import cli, copy_record, copy_results


@pytest.mark.slow
def test_record_trains_every_configuration_through_every_rung_repeated(recorded):
    curves = learning_curves(recorded, "smoke")
    assert set(curves["rung"]) == {1, 2, 3} and not curves["pruned"].any()
    per_config = (
        curves[curves["rung"] == 3]
        .groupby([c for c in curves.columns if c.startswith("param_")])
        .size()
    )
    assert len(per_config) == 11 and (per_config == 2).all()  # 10 Sobol points + v4, twice each
    exp = load_experiment("smoke")
    v4 = curves[
        (curves["param_hidden_1"] == exp.space.defaults()["hidden_1"])
        & np.isclose(curves["param_learning_rate"], exp.space.defaults()["learning_rate"])
    ]
    assert len(v4) == 6  # the defaults (v4) are in the design


@pytest.mark.slow
def test_surrogate_is_chosen_on_held_out_evidence(recorded):
    s = Surrogate.fit(
        list(load_experiment("smoke").space.params), learning_curves(recorded, "smoke")
    )
    scores = {k: s.evidence[k]["spearman"] for k in CANDIDATES}
    assert s.kind == max(scores, key=scores.get)  # the best held-out rank correlation wins
    assert s.noise_trial > 0 and (s.noise_rung >= 0).all()  # noise measured from repeats
    params = load_experiment("smoke").space.defaults()
    draws = np.array([s.sample(params, np.random.default_rng(i))[-1] for i in range(400)])
    assert draws.std() == pytest.approx(np.hypot(s.noise_trial, s.noise_rung[-1]), rel=0.15)
    train, ev = s.cost(params)
    curves = learning_curves(recorded, "smoke")
    v4 = curves[
        (curves["param_hidden_1"] == params["hidden_1"])
        & np.isclose(curves["param_learning_rate"], params["learning_rate"])
    ]
    np.testing.assert_allclose(
        train, v4.groupby("rung")["train_seconds"].mean(), rtol=1e-3
    )  # a recorded config's own cost
    assert (ev > 0).all()


@pytest.mark.slow
def test_replay_runs_fast_with_the_real_layout_and_agrees_in_the_report(
    recorded, smoke_compare, tmp_path, capsys
):
    """On a copy of the shared record, the replay of four strategies; then, on a copy of the
    shared real comparison (random, tpe_hyperband), compare adds real tpe_median and qmc runs.
    The replay's runs are laid out like the real ones, and the report's agreement is held out:
    the surrogate was fitted to the record alone, before the real runs existed (it once passed
    only when the replay benchmark had fitted it in the shared record folder first)."""
    copy_record(recorded, tmp_path)
    strategies = "random,tpe_hyperband,tpe_median,qmc"
    # this test is about the replay's layout: count trials
    replay = dict(backend="replay", seeds=6, trials=20, budget_unit="trials")
    assert cli("compare", strategies=strategies, **replay, results=tmp_path) == 0
    copy_results(smoke_compare, tmp_path)
    assert cli("compare", strategies=strategies, seeds=2, results=tmp_path) == 0
    real = pd.read_csv(tmp_path / "smoke/random/seed-0/rungs.csv")
    replayed = pd.read_csv(tmp_path / "smoke.replay/random/seed-0/rungs.csv")
    assert list(real.columns) == list(replayed.columns)  # same layout...
    assert (
        replayed["replayed"].all()
        and not real["replayed"].any()
        and set(replayed["device"]) == {"replay"}
    )  # ...marked
    trials = pd.read_csv(tmp_path / "smoke.replay/tpe_hyperband/seed-0/trials.csv")
    assert (
        len(trials) == 20 and (trials["state"] == "PRUNED").any()
    )  # real pruners drive the surrogate
    # simulated clock: wall = simulated work + real harness time, nothing slept
    assert np.allclose(
        trials["wall_seconds"],
        trials["train_seconds"] + trials["eval_seconds"] + trials["harness_seconds"],
    )
    meta = json.loads((tmp_path / "smoke.replay/random/seed-0/metadata.json").read_text())
    assert meta["backend"] == "replay" and meta["finished"]

    capsys.readouterr()
    assert cli("report", experiment="smoke.replay", results=tmp_path) == 0
    report = (tmp_path / "smoke.replay/REPORT.md").read_text()
    evidence = json.loads((tmp_path / "smoke.replay/surrogate.json").read_text())
    assert "Kendall's tau" in report and f"{evidence[evidence['chosen']]['spearman']:.4f}" in report
    # the report hands its analysed runs (either side) to the agreement, which reads the other
    for side in ("smoke.replay", "smoke"):
        analysed = load_results(tmp_path, side, echo=False)  # what the analysis holds
        given, read = agreement(tmp_path, side, analysed), agreement(tmp_path, side)
        assert given["summary"] == read["summary"] and given["table"].equals(read["table"])


def test_replay_without_a_record_is_a_clear_error(tmp_path, capsys):
    code = cli("run", strategy="random", backend="replay", results=tmp_path)
    assert (
        code == 2
        and "no recorded learning curves; run 'python -m harness record" in capsys.readouterr().err
    )


@pytest.mark.slow
def test_cold_twins_run_apart_and_the_report_answers_warm_start(recorded, tmp_path):
    """--no-warm-start runs `<strategy>.cold`: its own folder and study, v4 never its trial 0,
    the target taken from the warm runs only, and the report's warm-start answer measured
    from the pairs (the replay makes 8 seeds x 4 runs cheap)."""
    copy_record(recorded, tmp_path)
    opts = dict(strategies="random,tpe_median", backend="replay", seeds=8, results=tmp_path)
    assert cli("compare", **opts) == 0
    assert cli("compare", **opts, no_warm_start=True) == 0
    v4 = load_experiment("smoke").space.defaults()
    for name, warm in (("random", True), ("random.cold", False)):
        trials = pd.read_csv(tmp_path / f"smoke.replay/{name}/seed-0/trials.csv")
        first = {p: trials.loc[0, f"param_{p}"] for p in v4}
        assert (first == v4) is warm, name
        meta = json.loads((tmp_path / f"smoke.replay/{name}/seed-0/metadata.json").read_text())
        assert meta["strategy_traits"]["warm_start"] is warm
    assert cli("report", experiment="smoke.replay", results=tmp_path) == 0
    report = (tmp_path / "smoke.replay/REPORT.md").read_text()
    assert "Against cold starts: random:" in report and "tpe_median:" in report
    assert "of 8 seeds" in report


def test_a_cold_start_of_a_fixed_queue_is_refused_by_name():
    from strategies import cold_start, get_strategy

    assert get_strategy("tpe.cold").name == "tpe.cold" and not get_strategy("tpe.cold").warm_start
    assert cold_start(get_strategy("grid")) is get_strategy("grid")  # never warm-started
    with pytest.raises(ValueError, match="grid runs a fixed queue"):
        get_strategy("grid.cold")


def _smoke_surrogate(recorded, curves=None) -> Surrogate:
    space = list(load_experiment("smoke").space.params)
    return Surrogate.fit(space, learning_curves(recorded, "smoke") if curves is None else curves)


@pytest.mark.slow
def test_the_surrogate_learns_whole_curves_from_pruned_trials_too(recorded):
    """The rung is an input, so a pruned trial's partial curve is data: fitted beside the
    complete ones, scored on folds grouped by configuration, with an interval."""
    curves = learning_curves(recorded, "smoke")
    curves = curves[curves["source"].str.startswith("record")]  # other tests add real runs
    s = _smoke_surrogate(recorded, curves)
    ev = s.evidence
    assert "grouped by configuration" in ev["folds"] and ev["configs"] == 11
    for k in CANDIDATES:
        assert ev[k]["spearman_low"] <= ev[k]["spearman"] <= ev[k]["spearman_high"]
    assert ev["calibration"]["supported"] and 0 <= ev["calibration"]["coverage"] <= 1
    pruned = curves[curves["rung"] == 1].head(4).copy()
    pruned["param_learning_rate"] *= 1.37  # four configurations nobody finished
    pruned["trial"] += 1000
    more = _smoke_surrogate(recorded, pd.concat([curves, pruned], ignore_index=True)).evidence
    assert more["configs"] == 15 and more["configs_at_top"] == 11
    assert more["rungs_fitted"] == ev["rungs_fitted"] + 4


@pytest.mark.slow
def test_every_configuration_that_reached_the_top_prices_its_cost(recorded):
    """A trial shared by two runs keeps one copy of each rung. When one run pruned it at rung
    1, the run that finished it holds no rung-1 row, and costs taken per curve were NaN at rung
    1 for it: every replayed trial near it failed. Re-evaluations (top rung, no timings) price
    nothing either."""
    curves = learning_curves(recorded, "smoke")
    curves = curves[curves["source"].str.startswith("record")]
    top = curves["rung"].max()
    params = [c for c in curves.columns if c.startswith("param_")]
    finished = curves[curves["rung"] == top].drop_duplicates(params).head(3)
    keys = ["source", "trial"]
    repeats = curves.merge(finished[params + keys], on=params, suffixes=("", "_kept"))
    repeats = repeats[repeats["trial"] != repeats["trial_kept"]][keys].drop_duplicates()
    curves = curves[~curves.set_index(keys).index.isin(repeats.set_index(keys).index)]
    shared = curves.merge(finished[keys], on=keys)
    pruned_copy = shared[shared["rung"] == 1].assign(source="tpe_asha/seed-0", strategy="tpe_asha")
    reeval = finished.assign(
        source="reeval", strategy="reeval", seed=-1, train_seconds=np.nan, eval_seconds=np.nan
    )
    reeval["param_learning_rate"] *= 1.01  # configurations that only re-evaluations hold
    s = _smoke_surrogate(recorded, pd.concat([pruned_copy, curves, reeval], ignore_index=True))
    assert np.isfinite(s.train_seconds).all() and np.isfinite(s.eval_seconds).all()
    assert len(s.x_cost) == s.evidence["configs_at_top"] - len(reeval)  # none left out
    for _, row in pd.concat([finished, reeval]).iterrows():
        train, evaluate = s.cost({p.name: row[f"param_{p.name}"] for p in s.space})
        assert np.isfinite(train).all() and np.isfinite(evaluate).all()


@pytest.mark.slow
def test_a_replayed_retrain_uses_common_random_numbers(recorded):
    s = _smoke_surrogate(recorded)
    v4 = load_experiment("smoke").space.defaults()
    other = {**v4, "learning_rate": v4["learning_rate"] * 2}
    assert s.reevaluate(v4, 9_000_000) == s.reevaluate(v4, 9_000_000)  # same config, same seed
    assert s.reevaluate(v4, 9_000_000) != s.reevaluate(v4, 9_000_001)
    assert s.reevaluate(v4, 9_000_000) != s.reevaluate(other, 9_000_000)


@pytest.mark.slow
def test_more_trials_on_a_flat_objective_buy_no_verdict(recorded, tmp_path):
    """Every configuration equally good (a surrogate whose predictions are clamped flat, the
    seed noise kept): a pruner's extra trials only draw more noise. Its recorded bests look
    better than its own retrains (winner's curse); ranked on re-evaluated incumbents, as the
    replay now ranks, it is never called significantly better."""
    from harness.replay import prepare as replay_prepare

    s = _smoke_surrogate(recorded)
    flat = s.predict(load_experiment("smoke").space.defaults())
    s.low, s.high, s._memo = flat, flat, {}
    replay_prepare._CACHE[(str(tmp_path.resolve()), "smoke")] = s
    args = dict(strategies="tpe_median,tpe_asha", backend="replay", seeds=20, trials=12)
    assert cli("compare", **args, results=tmp_path) == 0
    a = analyze(tmp_path, "smoke.replay", echo=False)
    trials = a.results.trials.groupby("strategy").size()
    assert trials["tpe_asha"] > trials["tpe_median"]  # pruning bought more draws
    asha = a.scores[a.scores.strategy == "tpe_asha"]
    # the curse: the best of many noisy draws looks better than its own retrains (whether it
    # looks better than the default's best too depends on how many of its trials completed)
    assert (asha["recorded"] - asha["score"]).mean() < 0
    row = a.tests[(a.tests.strategy == "tpe_asha") & (a.tests.control == "tpe_median")]
    assert a.scores["reevaluated"].all() and row["verdict"].iloc[0] != "better"
