"""The protocol's numbers: a fixed target, censored time to target, incumbents re-evaluated."""

import numpy as np
import pandas as pd

from harness.analysis import protocol


def _rungs(strategies, seeds=(0, 1, 2)):
    rows = []
    for s in strategies:
        for seed in seeds:
            rows.append(
                {
                    "strategy": s,
                    "seed": seed,
                    "trial": 0,
                    "rung": 3,
                    "val_mae": 4.0 + 0.01 * seed,  # v4's seed spread well inside 3%
                    "train_seconds": 1.0,
                }
            )
            rows.append(
                {
                    "strategy": s,
                    "seed": seed,
                    "trial": 1,
                    "rung": 3,
                    "val_mae": 3.0 + hash(s) % 7 / 10,
                    "train_seconds": 1.0,
                }
            )
    return pd.DataFrame(rows)


def test_the_target_is_v4_minus_3_percent_and_does_not_move_when_a_strategy_is_added():
    two = protocol.mae_target(_rungs(["random", "tpe"]), n_rungs=3)
    three = protocol.mae_target(_rungs(["random", "tpe", "lucky_strategy"]), n_rungs=3)
    assert two == three == np.mean([4.0, 4.01, 4.02]) * 0.97


def test_a_target_inside_v4s_own_seed_spread_is_flagged_and_moved_below_it():
    rungs = _rungs(["random"]).assign(
        val_mae=lambda f: np.where(f["trial"] == 0, 5.63 + 0.17 * f["seed"], f["val_mae"])
    )  # smoke's v4: 5.63..5.97 over seeds, so v4 minus 3% sits inside v4's own spread
    info = protocol.target_info(rungs, n_rungs=3)
    v4 = np.array([5.63, 5.80, 5.97])
    assert info["moved"] and np.isclose(info["margin_target"], v4.mean() * 0.97)
    assert np.isclose(info["target"], v4.mean() - 2 * v4.std(ddof=1))
    assert info["target"] < v4.min()  # no seed's v4 reaches it
    assert not protocol.target_info(_rungs(["random"]), n_rungs=3)["moved"]


def test_v4s_own_trial_never_counts_as_a_strategy_reaching_the_target():
    trials = pd.DataFrame(
        {
            "strategy": ["a", "a", "b", "b"],
            "seed": [0, 0, 0, 0],
            "trial": [0, 1, 0, 1],
            "state": ["COMPLETE"] * 4,
            "val_mae": [3.0, 4.0, 3.0, 3.1],  # v4 (trial 0) is below the target on this seed
            "train_flops": [1.0] * 4,
        }
    )
    per_run = protocol.time_to_target(
        trials, target=3.2, clock="train_flops", warm={("a", 0), ("b", 0)}
    ).set_index("strategy")
    assert not per_run.loc["a", "reached"]  # only v4 got there
    assert per_run.loc["b", "reached"] and per_run.loc["b", "spent"] == 2.0  # its own trial did
    cold = protocol.time_to_target(trials, target=3.2, clock="train_flops", warm=set())
    assert cold.set_index("strategy").loc["a", "reached"]  # a cold run's trial 0 is its own


def test_time_to_target_censors_runs_that_end_first():
    trials = pd.DataFrame(
        {
            "strategy": ["a"] * 3 + ["b"] * 2,
            "seed": [0, 0, 0, 0, 0],
            "trial": [0, 1, 2, 0, 1],
            "state": ["COMPLETE", "PRUNED", "COMPLETE", "COMPLETE", "COMPLETE"],
            "val_mae": [4.0, 2.0, 3.0, 4.0, 3.5],
            "train_flops": [1.0, 1.0, 1.0, 1.0, 1.0],
        }
    )
    per_run = protocol.time_to_target(trials, target=3.2, clock="train_flops")
    a, b = per_run.set_index("strategy").loc["a"], per_run.set_index("strategy").loc["b"]
    assert a.reached and a.spent == 3.0  # the pruned trial's 2.0 does not count
    assert not b.reached and b.spent == 2.0  # censored at its end, not dropped


def test_kaplan_meier_median_uses_censored_runs():
    per_run = pd.DataFrame(
        {
            "strategy": ["a"] * 5,
            "seed": range(5),
            "spent": [1.0, 2.0, 3.0, 10.0, 0.5],
            "reached": [True, True, True, False, False],
        }
    )
    km = protocol.kaplan_meier(per_run).iloc[0]
    # 3 of 5 reached; the run censored at 0.5 leaves the risk set: S(1) = 3/4, S(2) = 2/4
    assert km["reached"] == 3 and km["median"] == 2.0
    half = per_run.assign(reached=[True, True, False, False, False])
    # two of five: a median read off them would be biased low, so none is given
    assert np.isnan(protocol.kaplan_meier(half).iloc[0]["median"])
    never = per_run.assign(reached=False)
    assert np.isnan(protocol.kaplan_meier(never).iloc[0]["median"])


def test_incumbents_are_scored_on_their_re_evaluation_with_the_curse_shown():
    best = pd.DataFrame({"strategy": ["a", "b"], "seed": [0, 0], "best": [3.0, 3.2]})
    reeval = pd.DataFrame({"strategy": ["a", "a"], "seed": [0, 0], "val_mae": [3.4, 3.6]})
    scores = protocol.incumbent_scores(best, reeval).set_index("strategy")
    assert scores.loc["a", "score"] == 3.5 and np.isclose(scores.loc["a", "curse"], 0.5)
    assert scores.loc["b", "score"] == 3.2 and not scores.loc["b", "reevaluated"]


def test_timing_noise_on_identical_work_and_intervals():
    rungs = _rungs(["a", "b"]).assign(train_seconds=[1.0] * 6 + [2.0] * 6)
    noise = protocol.timing_noise(rungs)
    assert noise["groups"] >= 3 and noise["max_over_min_median"] == 2.0
    share = protocol.share_with_interval(1, 4)
    assert share["share"] == 0.25 and share["low"] < 0.25 < share["high"]
    floor = protocol.noise_floor_interval(
        pd.DataFrame({"config_rank": [1, 1, 2, 2], "val_mae": [3.0, 3.2, 4.0, 4.2]})
    )
    assert floor["df"] == 2 and floor["low"] < floor["sd"] < floor["high"]


def test_final_tests_the_teams_target_shifted_by_three_percent():
    from harness.final import shifted_test

    v4 = np.array([2.80, 2.78, 2.81, 2.79, 2.80])
    clearly = shifted_test(v4 * 0.90 + np.array([0.01, -0.01, 0.0, 0.005, -0.005]), v4)
    assert clearly["p"] < 0.01 and clearly["ci_high"] < -0.03
    barely = shifted_test(v4 * 0.98 + np.array([0.01, -0.01, 0.0, 0.005, -0.005]), v4)
    assert barely["p"] > 0.5  # 2% better than v4 is not the 3% the team asked for
    assert barely["ci_low"] < -0.02 < barely["ci_high"]


def test_cannot_tell_says_one_seed_and_no_control_plainly():
    empty = pd.DataFrame(columns=["min_p", "detectable"])
    reached = pd.DataFrame({"reached": [1]})
    trust = {"n": 0}
    one = protocol.cannot_tell(
        seeds=1,
        tests=empty,
        reached=reached,
        trust=trust,
        identical=[],
        reevaluated=True,
        target=3.0,
    )
    assert any("One seed per strategy" in line for line in one)
    none = protocol.cannot_tell(
        seeds=3,
        tests=empty,
        reached=reached,
        trust=trust,
        identical=[],
        reevaluated=True,
        target=3.0,
    )
    assert any("No declared control" in line for line in none)


def test_warm_start_pairs_are_decided_with_censoring():
    """Gehan's rule: a run censored before its twin reached the target decides nothing."""
    per_run = pd.DataFrame(
        {
            "strategy": ["a"] * 4 + ["a.cold"] * 4,
            "seed": [0, 1, 2, 3] * 2,
            "spent": [1.0, 5.0, 2.0, 9.0, 3.0, 1.0, 1.0, 9.0],
            "reached": [True, True, True, False, True, True, False, False],
        }
    )
    row = protocol.warm_start_effect(per_run, ".cold").iloc[0]
    # seed 0: warm first; seed 1: cold first; seed 2: cold censored at 1 < 2: undecided;
    # seed 3: both censored: undecided
    assert (row.pairs, row.warm_first, row.cold_first, row.undecided) == (4, 1, 1, 2)
    assert row.p == 1.0


def test_the_target_ignores_cold_started_runs():
    rungs = _rungs(["random", "random.cold"])
    rungs.loc[rungs["strategy"] == "random.cold", "val_mae"] = 99.0  # trial 0 is not v4 there
    from harness.analysis.loading import Results

    meta = {
        (s, seed): {"strategy_traits": {"warm_start": s == "random"}}
        for s in ("random", "random.cold")
        for seed in (0, 1, 2)
    }
    exp = {"ladder": {"fractions": [1 / 9, 1 / 3, 1]}}
    results = Results(exp, meta, rungs, rungs.iloc[:0], None, None)
    assert protocol.mae_target(results.warm_rungs(), 3) == np.mean([4.0, 4.01, 4.02]) * 0.97


def test_which_incumbents_converge_is_a_seeded_draw_not_name_order():
    from harness.converge import converge_sample

    names = [f"s{i:02d}" for i in range(12)]
    trials = pd.DataFrame(
        {
            "strategy": names,
            "seed": 0,
            "trial": range(12),
            "state": "COMPLETE",
            "val_mae": 4.0,
            "param_x": range(12),
        }
    )
    draws = [set(converge_sample(trials, 4, seed=s)["strategy"]) for s in range(6)]
    assert all(len(d) == 4 for d in draws)
    assert any(d != set(names[:4]) for d in draws)  # not always the first names
    assert len({frozenset(d) for d in draws}) > 1


def test_horizon_trust_counts_only_configurations_that_converged():
    # A configuration that diverged in its first epoch has no converged MAE.
    nan = float("nan")
    diverged = pd.DataFrame({"top_rung_mae": [3.9, 4.0, 4.1], "converged_mae": [nan] * 3})
    assert protocol.horizon_trust(diverged)["n"] == 0
    mixed = pd.DataFrame(
        {"top_rung_mae": [3.9, 4.0, 4.1, 4.2], "converged_mae": [3.7, nan, 3.8, 3.6]}
    )
    h = protocol.horizon_trust(mixed)
    assert h["n"] == 3 and h["spearman"] == -0.5 and np.isclose(h["regret"], 0.1)


def _scores(budgets: dict, reevaluated: dict) -> tuple[pd.DataFrame, dict]:
    keys = list(budgets)
    scores = pd.DataFrame(
        {
            "strategy": [k[0] for k in keys],
            "seed": [k[1] for k in keys],
            "score": 4.0,
            "reevaluated": [reevaluated[k] for k in keys],
        }
    )
    meta = {k: {"budget": {"n_trials": n, "unit": "compute"}} for k, n in budgets.items()}
    return scores, meta


def test_a_run_with_another_budget_is_reported_apart_never_pooled():
    runs = {("a", 0): 6, ("a", 1): 6, ("b", 0): 6, ("b", 1): 12}  # b seed 1 continued to 12
    scores, meta = _scores(runs, {k: True for k in runs})
    kept, apart = protocol.comparable_scores(scores, meta)
    assert len(kept) == 3 and ("b", 1) not in set(zip(kept["strategy"], kept["seed"]))
    assert len(apart) == 1 and "b seed 1" in apart[0] and "another budget" in apart[0]


def test_a_recorded_best_run_mixed_into_re_evaluated_ones_is_shown_apart():
    runs = {("a", 0): 6, ("a", 1): 6, ("b", 0): 6, ("b", 1): 6}
    scores, meta = _scores(runs, {k: k != ("a", 1) for k in runs})
    kept, apart = protocol.comparable_scores(scores, meta)
    assert kept["reevaluated"].all() and len(kept) == 3
    assert len(apart) == 1 and "a seed 1" in apart[0] and "winner's curse" in apart[0]
    scores, meta = _scores(runs, {k: False for k in runs})  # none re-evaluated: nothing to split
    assert len(protocol.comparable_scores(scores, meta)[0]) == 4
