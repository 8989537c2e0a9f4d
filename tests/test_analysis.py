"""Each metric on small hand-made result tables whose answer is known."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from harness.analysis import measures
from harness.analysis.loading import Results
from harness.summary import unpruned_seconds

SPACE = {
    "params": [
        {
            "name": "learning_rate",
            "type": "float",
            "default": 1e-3,
            "low": 1e-4,
            "high": 1e-2,
            "log": True,
            "step": None,
            "choices": None,
            "grid": None,
        },
        {
            "name": "hidden_1",
            "type": "int",
            "default": 64,
            "low": 16,
            "high": 128,
            "log": False,
            "step": 16,
            "choices": None,
            "grid": None,
        },
    ]
}
EXPERIMENT = {
    "name": "t",
    "space": SPACE,
    "ladder": {"fractions": [1 / 9, 1 / 3, 1.0], "epochs": [1, 1, 1], "steps": [1, 3, 9]},
    "data": {"stations": 1, "days": 10, "seed": 0, "source": None},
    "budget": {"n_trials": 3, "timeout_minutes": None},
}


def _trials(rows):
    cols = [
        "strategy",
        "seed",
        "trial",
        "state",
        "val_mae",
        "wall_seconds",
        "train_seconds",
        "eval_seconds",
    ]
    return pd.DataFrame(rows, columns=cols)


def _results(trials, rungs=None, noise=None, audit=None):
    rungs = (
        rungs
        if rungs is not None
        else pd.DataFrame(
            columns=[
                "strategy",
                "seed",
                "trial",
                "rung",
                "val_mae",
                "samples",
                "train_seconds",
                "eval_seconds",
            ]
        )
    )
    return Results(EXPERIMENT, {}, rungs, trials, noise, audit)


def test_anytime_counts_only_complete_trials():
    t = _trials(
        [
            ("a", 0, 0, "COMPLETE", 5.0, 10, 9, 1),
            ("a", 0, 1, "PRUNED", 1.0, 2, 2, 0),  # a pruned low-rung MAE is not a result
            ("a", 0, 2, "COMPLETE", 4.0, 10, 9, 1),
        ]
    )
    curve = measures.anytime(t)
    assert list(curve["elapsed"]) == [10, 12, 22]
    assert list(curve["best"]) == [5.0, 5.0, 4.0]


def test_compute_saved_extrapolates_pruned_trials_from_their_own_cost():
    rungs = pd.DataFrame(
        [
            # trial 0 complete: 100, 300, 900 samples at 0.01 s/sample, 0.1 s eval per rung
            *[("s", 0, 0, r, 5.0, n, n * 0.01, 0.1) for r, n in ((1, 100), (2, 300), (3, 900))],
            (
                "s",
                0,
                1,
                1,
                6.0,
                100,
                2.0,
                0.1,
            ),  # trial 1 pruned after rung 1, twice as slow per sample
        ],
        columns=[
            "strategy",
            "seed",
            "trial",
            "rung",
            "val_mae",
            "samples",
            "train_seconds",
            "eval_seconds",
        ],
    )
    t = _trials(
        [("s", 0, 0, "COMPLETE", 5.0, 14, 13, 0.3), ("s", 0, 1, "PRUNED", 6.0, 2.1, 2.0, 0.1)]
    )
    saved = measures.compute_saved(_results(t, rungs)).set_index("strategy")
    unpruned = 13.3 + (2.1 + 0.02 * 300 + 0.1 + 0.02 * 900 + 0.1)
    assert saved.loc["s", ("saved_share", "median")] == pytest.approx(1 - (13.3 + 2.1) / unpruned)
    assert saved.loc["s", ("pruned_share", "median")] == 0.5


def test_an_unknown_extrapolated_cost_leaves_the_saving_unknown_not_negative():
    """No trial reached the last rung, so its sample count is unknown and the pruned trial's
    full cost cannot be extrapolated: the run's saving is unknown (NaN), never a sum that
    quietly counts that trial as free (which made the saving negative)."""
    columns = ["strategy", "seed", "trial", "rung", "val_mae", "samples", "train_seconds"]
    rungs = pd.DataFrame(
        [
            ("s", 0, 0, 1, 5.0, 100, 1.0),
            ("s", 0, 0, 2, 4.8, 300, 3.0),
            ("s", 0, 1, 1, 6.0, 100, 2.0),
        ],
        columns=columns,
    ).assign(eval_seconds=0.1)
    t = _trials(
        [("s", 0, 0, "COMPLETE", 4.8, 4.2, 4.0, 0.2), ("s", 0, 1, "PRUNED", 6.0, 2.1, 2.0, 0.1)]
    )
    results = _results(t, rungs)
    assert results.n_rungs == 3  # the experiment's ladder, one rung more than anyone reached
    saved = measures.compute_saved(results).set_index("strategy")
    assert np.isnan(saved.loc["s", ("saved_share", "median")])
    samples = {1: 100.0, 2: 300.0}  # rung 3 never recorded
    assert np.isnan(unpruned_seconds(rungs, t, samples, 3))
    assert unpruned_seconds(rungs, t, {**samples, 3: 900.0}, 3) > 0


def _ladder_rungs(final_maes, low_maes, lrs):
    rows = []
    for i, (final, low, lr) in enumerate(zip(final_maes, low_maes, lrs)):
        for rung, mae in ((1, low), (2, (low + final) / 2), (3, final)):
            rows.append(("s", 0, i, rung, mae, 100 * 3 ** (rung - 1), 1.0, 0.1, lr, 64))
    return pd.DataFrame(
        rows,
        columns=[
            "strategy",
            "seed",
            "trial",
            "rung",
            "val_mae",
            "samples",
            "train_seconds",
            "eval_seconds",
            "param_learning_rate",
            "param_hidden_1",
        ],
    )


def test_fidelity_trust_detects_a_rung_that_ranks_backwards_and_favours_fast_learners():
    final = [1.0, 2.0, 3.0, 4.0, 5.0]
    lrs = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]  # the best final trials learn slowly
    low = [
        9.0,
        8.0,
        7.0,
        6.0,
        5.0,
    ]  # rung 1 ranks exactly backwards: a pruner there kills the eventual best
    trust = measures.fidelity_trust(
        _results(_trials([]), _ladder_rungs(final, low, lrs))
    ).set_index("rung")
    assert trust.loc[1, "spearman_with_final"] == pytest.approx(-1.0)
    assert trust.loc[3, "spearman_with_final"] == pytest.approx(1.0)
    assert trust.loc[1, "rho_learning_rate"] == pytest.approx(
        -1.0
    )  # rung 1 rewards a high learning rate
    assert trust.loc[3, "rho_learning_rate"] == pytest.approx(1.0)  # full data rewards a low one


def test_noise_floor_is_the_pooled_seed_spread_with_its_df_and_interval():
    from scipy import stats

    from harness.analysis.protocol import noise_floor_interval

    noise = pd.DataFrame(
        {"config_rank": [1, 1, 2, 2, 3, 3, 4], "val_mae": [1.0, 1.2, 2.0, 2.0, 3.0, 3.6, 9.0]}
    )
    floor = noise_floor_interval(noise)
    ss = 0.02 + 0.0 + 0.18  # squared deviations of each pair; config 4 (one seed) adds none
    assert floor["df"] == 3 and floor["sd"] == pytest.approx(np.sqrt(ss / 3))
    assert floor["low"] == pytest.approx(np.sqrt(ss / stats.chi2.ppf(0.975, 3)))
    assert floor["low"] < floor["sd"] < floor["high"]
    assert np.isnan(noise_floor_interval(None)["sd"])


def test_ranking_is_descriptive_and_orders_by_median_then_mean():
    """The tests and the verdict moved to harness.analysis.verdict (tests/test_verdict.py): an
    unpaired test of a winner chosen first, without correction, was not a fair verdict."""
    scores = pd.DataFrame(
        {
            "strategy": ["a"] * 5 + ["b"] * 5 + ["c"] * 5,
            "score": [
                1.0,
                1.1,
                1.2,
                1.05,
                1.15,
                2.0,
                2.1,
                2.2,
                2.05,
                2.15,
                1.11,
                1.2,
                1.3,
                1.16,
                1.25,
            ],
        }
    )
    table = measures.ranking(scores).set_index("strategy")
    assert list(table.sort_values("rank").index) == ["a", "c", "b"]
    assert table.loc["a", "ci_low"] <= 1.1 <= table.loc["a", "ci_high"]  # the CI covers the mean
    assert "verdict" not in table.columns


def test_false_prunes():
    audit = pd.DataFrame({"would_have_won": [True, False, False, True]})
    assert measures.false_prunes(audit) == {"audited": 4, "would_have_won": 2, "share": 0.5}


def test_importance_finds_the_parameter_that_matters():
    rng = np.random.default_rng(0)
    lr = 10 ** rng.uniform(-4, -2, 40)
    hidden = rng.choice(np.arange(16, 129, 16), 40)
    mae = np.abs(np.log10(lr) + 3) + rng.normal(0, 0.01, 40)  # only the learning rate matters
    t = pd.DataFrame(
        {
            "strategy": "s",
            "seed": 0,
            "trial": range(40),
            "state": "COMPLETE",
            "val_mae": mae,
            "param_learning_rate": lr,
            "param_hidden_1": hidden,
        }
    )
    imp = measures.importance(_results(t))
    assert imp.index[0] == "learning_rate" and imp["learning_rate"] > 0.8


@pytest.mark.parametrize(
    "modules, forbidden",
    [
        (
            "harness.analysis.analyze, harness.analysis.report",
            "m == 'torch' or m == 'model' or m.startswith('model.')",
        ),
        (
            "harness.plan.make, harness.plan.device_factor",
            "m == 'torch'",
        ),  # plan validates the experiment it writes (model.config), torch only with --calibrate
    ],
)
def test_analysis_imports_neither_torch_nor_model(modules, forbidden):
    code = (
        f"import sys, {modules}; bad = [m for m in sys.modules if {forbidden}]; "
        "print(bad); sys.exit(bool(bad))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_replay_agreement_names_every_tied_winner_not_the_first_name():
    from harness.analysis.verdict import lowest

    medians = pd.Series({"tpe": 3.80, "random": 3.80, "cmaes": 3.90})
    assert lowest(medians, set(medians.index)) == {"random", "tpe"}
    renamed = medians.rename({"random": "zz_random"})
    assert lowest(renamed, set(renamed.index)) == {"tpe", "zz_random"}


def test_the_brief_lists_parameters_in_importance_order_not_the_spaces():
    from types import SimpleNamespace

    from harness.analysis.synthesis_section import search_text, strategy_text

    good = pd.DataFrame({"param": ["lr", "units", "decay"], "good": ["1e-3 .. 3e-3", "64", "0"]})
    saved = pd.DataFrame(
        {
            ("strategy", ""): ["tpe"],
            ("pruned_share", "median"): [0.0],
            ("saved_share", "median"): [0.0],
        }
    )
    a = SimpleNamespace(
        saved=saved,
        good_ranges=good,
        params_to_search=lambda: ["decay", "lr"],  # importance: decay first, units never
        choice="tpe_of_another_version",  # not registered here: no sampler to describe
        choice_named="random = tpe",  # the verdict's group of twins
        mae_target=float("nan"),
        search_source=lambda: "measured",
    )
    text = search_text(a) + " " + strategy_text(a)
    assert "in order: decay (0), lr (1e-3 .. 3e-3); measured" in text and "units" not in text
    assert "Which strategy: random = tpe" in text


def _copied_to(rows: pd.DataFrame, strategy: str, trials=None) -> pd.DataFrame:
    """``rows`` (of strategy "s") as another strategy's run recorded them: the same trained
    trials (same seed, trial, parameters and MAEs), as when two strategies share a start-up."""
    out = rows if trials is None else rows[rows["trial"].isin(trials)]
    return out.assign(strategy=strategy)


def test_fidelity_trust_counts_a_trial_shared_by_several_runs_once():
    from scipy import stats

    final, low = [1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 3.0, 2.0, 5.0, 4.0]
    lrs = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
    rungs = _ladder_rungs(final, low, lrs)
    # Trials 3 and 4 (rung 1 ranks them backwards) recorded again by two other runs, and
    # trial 0 by a run that pruned it after rung 1: with copies, rung 1 looked worse than it is.
    pruned_copy = _copied_to(rungs[rungs["rung"] == 1], "m", [0])
    copies = [_copied_to(rungs, s, [3, 4]) for s in ("t", "u")]
    pooled = pd.concat([rungs, *copies, pruned_copy], ignore_index=True)
    trust = measures.fidelity_trust(_results(_trials([]), pooled)).set_index("rung")
    distinct_rho = stats.spearmanr(low, final).statistic
    assert trust.loc[1, "trials_with_final"] == 5 and trust.loc[1, "trials_at_rung"] == 5
    assert trust.loc[1, "spearman_with_final"] == pytest.approx(distinct_rho)
    copied_rho = stats.spearmanr(low + low[3:] * 2, final + final[3:] * 2).statistic
    assert copied_rho != pytest.approx(distinct_rho)  # what counting copies reported
    # the same trial number and parameters with another seed is another training: kept
    other_seed = rungs.assign(seed=1, val_mae=rungs["val_mae"] + 0.5)
    trust = measures.fidelity_trust(_results(_trials([]), pd.concat([rungs, other_seed])))
    assert trust.set_index("rung").loc[1, "trials_with_final"] == 10


def test_good_ranges_come_from_distinct_trials_not_copies_of_the_best():
    lrs = [1e-4, 2e-4, 4e-4, 8e-4, 1e-3, 2e-3, 3e-3, 5e-3, 7e-3, 1e-2]
    t = pd.DataFrame(
        {
            "strategy": "s",
            "seed": 0,
            "trial": range(10),
            "state": "COMPLETE",
            "val_mae": np.arange(1.0, 11.0),
            "param_learning_rate": lrs,
            "param_hidden_1": 64,
        }
    )
    # the best trial recorded by three more runs (shared start-up): one point, not a range
    pooled = pd.concat([t, *(t.head(1).assign(strategy=s) for s in "abc")], ignore_index=True)
    good = measures.good_ranges(_results(pooled)).set_index("param")
    assert (good.loc["learning_rate", "low"], good.loc["learning_rate", "high"]) == (1e-4, 4e-4)


def _caveat_inputs(pruned: dict, *, lr_rhos=(float("nan"), float("nan")), meta=None):
    """A stand-in Analysis with what ``sections.caveats`` reads: per-strategy pruned shares
    (median over seeds), 12 trials per run, and learning rate's Spearman at rungs 1 and 3."""
    from types import SimpleNamespace

    saved = pd.DataFrame(
        {("strategy", ""): list(pruned), ("pruned_share", "median"): list(pruned.values())}
    )
    trust = pd.DataFrame(
        {
            "rung": [1, 2, 3],
            "trials_with_final": [20, 20, 20],
            "spearman_with_final": [0.7, 0.8, 1.0],
            "rho_learning_rate": [lr_rhos[0], 0.0, lr_rhos[1]],
        }
    )
    return SimpleNamespace(
        saved=saved,
        best=pd.DataFrame({"trials": [12, 12]}),
        results=SimpleNamespace(meta=meta or {}),
        trust=trust,
        false_prunes={"audited": 0},
        floor={"sd": float("nan")},
    )


def test_caveats_say_much_like_no_pruning_only_for_pruners_that_pruned_little():
    from harness.analysis.sections import caveats
    from strategies.registry import MEDIAN_STARTUP_TRIALS

    # the recorded quick runs: the pruners pruned 74-85% of trials at 12 trials a run
    heavy = " ".join(caveats(_caveat_inputs({"tpe_median": 0.74, "tpe_hyperband": 0.85})))
    assert "tpe_median 74%, tpe_hyperband 85%" in heavy
    assert "much like no pruning" not in heavy
    light = " ".join(caveats(_caveat_inputs({"tpe_median": 0.05, "tpe_hyperband": 0.5})))
    assert "tpe_hyperband 50%" in light
    assert "under 20% of their trials: tpe_median 5%; at this budget much like no pruning" in light
    assert f"before {MEDIAN_STARTUP_TRIALS} trials complete" in light
    # a pruner that pruned nothing is named; a strategy without a pruner is not
    meta = {("random_median", 0): {"strategy_traits": {"prunes": True}}}
    none = " ".join(caveats(_caveat_inputs({"random_median": 0.0, "tpe": 0.0}, meta=meta)))
    assert "random_median 0%" in none and "tpe 0%" not in none
    assert "No strategy here prunes" in " ".join(caveats(_caveat_inputs({"random": 0.0})))


@pytest.mark.parametrize(
    "rung1, last, biased",
    [
        (-0.6, 0.1, True),  # rung 1 favours a high learning rate, the last rung does not
        (-0.5, -0.45, False),  # the same preference at both: no short-horizon bias
        (0.3, -0.2, False),  # the last rung favours a high learning rate more
    ],
)
def test_short_horizon_bias_is_claimed_only_where_the_rhos_show_it(rung1, last, biased):
    from harness.analysis.sections import caveats

    text = " ".join(caveats(_caveat_inputs({}, lr_rhos=(rung1, last))))
    assert f"{rung1:.2f} at rung 1 and {last:.2f} at the last rung" in text
    assert ("low rungs reward fast convergence" in text) == biased
    assert ("no short-horizon bias visible" in text) == (not biased)
