"""The comparison protocol's numbers: a target fixed before the runs, censored time to target,
re-evaluated incumbents, timing noise on identical work, and intervals for the side figures.

Each function reads the recorded tables only (no torch, no model).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from harness.analysis.verdict import ALPHA, CONTROLS, POWER
from harness.records import param_columns
from harness.team import TARGET_MARGIN  # the margin every default here uses


def v4_per_seed(rungs: pd.DataFrame, n_rungs: int) -> pd.Series:
    """v4's top-rung validation MAE on each seed, from the rungs of warm-started runs (each
    trains the experiment's defaults as trial 0 with the same training seed, so all strategies
    of a seed agree; the median over them guards against a run that disagrees)."""
    top = rungs[(rungs["trial"] == 0) & (rungs["rung"] == n_rungs)]
    return top.groupby("seed")["val_mae"].median()


def mae_target(rungs: pd.DataFrame, n_rungs: int, margin: float = TARGET_MARGIN) -> float:
    """The MAE to reach, fixed before the runs (``target_info``'s target). NaN when no run
    evaluated v4 first."""
    return target_info(rungs, n_rungs, margin)["target"]


SPREAD_GUARD = 2.0  # a target must sit this many of v4's seed standard deviations below v4


def target_info(rungs: pd.DataFrame, n_rungs: int, margin: float = TARGET_MARGIN) -> dict:
    """v4 at the top rung averaged over seeds, minus ``margin``; when that lies within
    ``SPREAD_GUARD`` of v4's own seed standard deviations of its mean (v4 alone would reach it
    on a lucky seed), the target is moved below them and flagged. Adding a strategy cannot move
    it. Keys: target, v4, v4_sd, seeds, margin_target, moved."""
    per_seed = v4_per_seed(rungs, n_rungs)
    if not len(per_seed):
        nan = float("nan")
        return {"target": nan, "v4": nan, "v4_sd": nan, "seeds": 0, "margin_target": nan,
                "moved": False}  # fmt: skip
    v4 = float(per_seed.mean())
    sd = float(per_seed.std(ddof=1)) if len(per_seed) > 1 else float("nan")
    by_margin = v4 * (1 - margin)
    guard = v4 - SPREAD_GUARD * sd if np.isfinite(sd) else by_margin
    return {
        "target": float(min(by_margin, guard)),
        "v4": v4,
        "v4_sd": sd,
        "seeds": int(len(per_seed)),
        "margin_target": float(by_margin),
        "moved": bool(guard < by_margin),
    }


def time_to_target(
    trials: pd.DataFrame, target: float, clock: str, warm: set | None = None
) -> pd.DataFrame:
    """Per run: the ``clock`` spent (cumulative ``train_flops`` or ``wall_seconds``, in trial
    order) when a COMPLETE trial first reached ``target``, or, censored, what the run spent in
    all. v4's own trial (trial 0 of the ``warm`` (strategy, seed) runs) is paid for but never
    counts as the strategy reaching it. Columns strategy, seed, spent, reached."""
    rows = []
    for (strategy, seed), run in trials.sort_values("trial").groupby(["strategy", "seed"]):
        spent = run[clock].fillna(0).cumsum().to_numpy()
        hit = ((run["state"] == "COMPLETE") & (run["val_mae"] <= target)).to_numpy()
        if warm and (strategy, int(seed)) in warm:
            hit = hit & (run["trial"] != 0).to_numpy()
        reached = bool(hit.any())
        at = spent[np.argmax(hit)] if reached else (spent[-1] if len(spent) else 0.0)
        rows.append({"strategy": strategy, "seed": seed, "spent": float(at), "reached": reached})
    return pd.DataFrame(rows, columns=["strategy", "seed", "spent", "reached"])


def kaplan_meier(per_run: pd.DataFrame) -> pd.DataFrame:
    """Per strategy: runs, runs that reached the target, and the Kaplan-Meier median of the time
    to target with runs that ended first censored at their end, given only where more than half
    of the runs reached it (NaN otherwise: a median read off fewer is biased low)."""
    rows = []
    for strategy, runs in per_run.groupby("strategy"):
        reached = runs["reached"].to_numpy()
        median = float("nan")
        if reached.sum() * 2 > len(reached):
            data = stats.CensoredData(
                uncensored=runs.loc[reached, "spent"].to_numpy(),
                right=runs.loc[~reached, "spent"].to_numpy(),
            )
            sf = stats.ecdf(data).sf
            below = np.flatnonzero(sf.probabilities <= 0.5)
            median = float(sf.quantiles[below[0]]) if len(below) else float("nan")
        rows.append(
            {
                "strategy": strategy,
                "runs": len(runs),
                "reached": int(reached.sum()),
                "median": median,
            }
        )
    return pd.DataFrame(rows, columns=["strategy", "runs", "reached", "median"])


def incumbent_scores(best: pd.DataFrame, reeval: pd.DataFrame | None) -> pd.DataFrame:
    """One score per run: the mean re-evaluated MAE of its incumbent (fresh training seeds),
    or its recorded best where no re-evaluation exists; with the winner's-curse gap
    (re-evaluated minus recorded). Columns strategy, seed, recorded, score, curse, reevaluated."""
    out = best.rename(columns={"best": "recorded"})[["strategy", "seed", "recorded"]].copy()
    if reeval is not None and not reeval.empty:
        mean = reeval.groupby(["strategy", "seed"])["val_mae"].mean().rename("reeval")
        out = out.merge(mean.reset_index(), on=["strategy", "seed"], how="left")
    else:
        out["reeval"] = np.nan
    out["reevaluated"] = out["reeval"].notna()
    out["score"] = out["reeval"].where(out["reevaluated"], out["recorded"])
    out["curse"] = out["reeval"] - out["recorded"]
    return out.drop(columns="reeval")


def comparable_scores(scores: pd.DataFrame, meta: dict) -> tuple[pd.DataFrame, list[str]]:
    """The runs the tests may pool: those with the comparison's budget (the most common one
    among the runs) and, when any run was re-evaluated, re-evaluated ones only. The others are
    left out and each group named in one sentence: never pooled silently."""
    budget = {k: _budget_key(m) for k, m in meta.items()}
    keys = [budget.get((s, int(seed))) for s, seed in zip(scores["strategy"], scores["seed"])]
    common = pd.Series(keys, dtype=object).value_counts()
    chosen = common.index[0] if len(common) else None
    same = np.array([k == chosen for k in keys], dtype=bool)
    apart = []
    if (~same).any():
        odd = scores.loc[~same]
        apart.append(
            f"{len(odd)} run(s) with another budget than the comparison's ({_runs(odd)}) are "
            "reported apart: not in the tests or the verdict."
        )
    kept = scores.loc[same]
    if kept["reevaluated"].any() and not kept["reevaluated"].all():
        odd = kept.loc[~kept["reevaluated"]]
        apart.append(
            f"{len(odd)} run(s) without a re-evaluated incumbent ({_runs(odd)}) are reported "
            "apart: their recorded bests would be flattered by the winner's curse."
        )
        kept = kept.loc[kept["reevaluated"]]
    return kept.reset_index(drop=True), apart


def _budget_key(meta: dict) -> tuple:
    b = meta.get("budget", {}) or {}
    return (b.get("n_trials"), b.get("unit"), b.get("timeout_minutes"))


def _runs(frame: pd.DataFrame) -> str:
    names = [f"{s} seed {int(k)}" for s, k in zip(frame["strategy"], frame["seed"])]
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def timing_noise(rungs: pd.DataFrame) -> dict:
    """Spread of train_seconds over identical work (same configuration, seed, trial and rung
    reaching the same MAE in different strategies' runs): the machine's own noise."""
    params = sorted(param_columns(rungs))
    keys = ["seed", "trial", "rung", "val_mae", *params]
    groups = rungs.groupby(keys, dropna=False)["train_seconds"]
    spread = groups.agg(["count", "min", "max", "mean", "std"])
    spread = spread[spread["count"] >= 2]
    if spread.empty:
        return {
            "groups": 0,
            "max_over_min_median": float("nan"),
            "cv_median": float("nan"),
            "max_over_min_worst": float("nan"),
        }
    ratio = spread["max"] / spread["min"].clip(lower=1e-9)
    return {
        "groups": int(len(spread)),
        "max_over_min_median": float(ratio.median()),
        "max_over_min_worst": float(ratio.max()),
        "cv_median": float((spread["std"] / spread["mean"]).median()),
    }


def share_with_interval(k: int, n: int) -> dict:
    """A share k/n with its exact (Clopper-Pearson) 95% interval."""
    if n == 0:
        return {"k": 0, "n": 0, "share": float("nan"), "low": float("nan"), "high": float("nan")}
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return {"k": k, "n": n, "share": k / n, "low": float(ci.low), "high": float(ci.high)}


def noise_floor_interval(noise: pd.DataFrame | None) -> dict:
    """The seed-to-seed standard deviation of retrained configurations, pooled over them, with
    its degrees of freedom and a chi-square 95% interval."""
    if noise is None or noise.empty:
        return {"sd": float("nan"), "df": 0, "low": float("nan"), "high": float("nan")}
    groups = [g["val_mae"].dropna().to_numpy() for _, g in noise.groupby("config_rank")]
    groups = [g for g in groups if len(g) >= 2]
    df = sum(len(g) - 1 for g in groups)
    if df == 0:
        return {"sd": float("nan"), "df": 0, "low": float("nan"), "high": float("nan")}
    ss = sum(float(((g - g.mean()) ** 2).sum()) for g in groups)
    sd = np.sqrt(ss / df)
    low = np.sqrt(ss / stats.chi2.ppf(0.975, df))
    high = np.sqrt(ss / stats.chi2.ppf(0.025, df))
    return {"sd": float(sd), "df": int(df), "low": float(low), "high": float(high)}


def horizon_trust(converge: pd.DataFrame | None) -> dict:
    """How the ladder's top rung ranks configurations against training to convergence:
    Spearman's rho over the converged sample, and the converged regret of the ladder's pick
    (the converged MAE of the configuration the top rung liked best, minus the best converged
    MAE of the sample)."""
    ok = None if converge is None else converge.dropna(subset=["top_rung_mae", "converged_mae"])
    if ok is None or len(ok) < 3:  # a configuration that diverged at once has no converged MAE
        return {"n": 0 if ok is None else len(ok), "spearman": np.nan, "regret": np.nan}
    rho = stats.spearmanr(ok["top_rung_mae"], ok["converged_mae"]).statistic
    pick = ok.loc[ok["top_rung_mae"].idxmin(), "converged_mae"]
    return {
        "n": int(len(ok)),
        "spearman": float(rho),
        "regret": float(pick - ok["converged_mae"].min()),
    }


WEAK_TRUST = 0.5  # below this rank correlation a rung's ranking is called weak


def cannot_tell(
    *,
    seeds: int,
    tests: pd.DataFrame,
    reached: pd.DataFrame,
    trust: dict,
    identical: list[frozenset[str]],
    reevaluated: bool,
    target: float,
    scale_measured: bool = True,
) -> list[str]:
    """Sentences for "What this evidence cannot tell you", each generated from a number."""
    out = [_power_note(seeds, tests), _target_note(target, reached), _horizon_note(trust)]
    out = [sentence for sentence in out if sentence]
    for group in identical:
        out.append(
            f"{', '.join(sorted(group))} trained identical models on every seed (shared "
            "random streams, nothing pruned differently): they are one result, not "
            f"{len(group)}."
        )
    if not reevaluated:
        out.append(
            "Incumbents were not re-evaluated with fresh seeds (compare --reeval-seeds): "
            "the ranking uses recorded bests, which the winner's curse flatters."
        )
    if not scale_measured:
        out.append(
            "Nothing was measured at the night's scale: trial counts for the night are "
            "projections, and no MAE is projected to that scale."
        )
    return out


def _power_note(seeds: int, tests: pd.DataFrame) -> str | None:
    """What the paired tests cannot show with this many seeds (None: nothing to say)."""
    if seeds < 2:
        return (
            "One seed per strategy: no spread, no paired test; the ranking is a single draw "
            "(compare --seeds 5 or more)."
        )
    if not len(tests):
        return f"No declared control ({', '.join(CONTROLS)}) ran: no strategy was tested."
    min_p, level = float(tests["min_p"].min()), ALPHA / len(tests)
    if min_p > level:
        return (
            f"With {seeds} seeds the smallest p-value a paired test can give is {min_p:.3g}, "
            f"above the {level:.3g} Holm needs for the first of {len(tests)} comparisons: no "
            "strategy can be shown better or worse than a control, whatever the gaps."
        )
    against = tests[tests["control"] == tests["control"].iloc[0]]
    real_pairs = against[~against["identical"] & (against["sd_diff"] > 0)]
    detectable = real_pairs["detectable"].replace(np.inf, np.nan).dropna()
    if len(detectable):
        low, high = detectable.min(), detectable.max()
        span = f"{low:.3f}" if np.isclose(low, high) else f"{low:.3f} to {high:.3f}"
        return (
            f"Against {against['control'].iloc[0]}, gaps smaller than {span} bikes (by "
            f"comparison) could not be detected with these seeds at {POWER:.0%} power (simulated "
            "sign-flip test at Holm's strictest level)."
        )
    return None


def _target_note(target: float, reached: pd.DataFrame) -> str | None:
    """Why time to target says nothing: no target, or no run reached it (None: it speaks)."""
    if not np.isfinite(target):
        return (
            "No run evaluated v4 first, so there is no target fixed before the runs: "
            "time to target is not reported."
        )
    if len(reached) and (reached["reached"] == 0).all():
        return (
            f"No run reached the target ({target:.4f} bikes, fixed before the runs): time to "
            "target is censored for every run and says nothing about speed."
        )
    return None


def _horizon_note(trust: dict) -> str | None:
    """Whether the top rung ranks like convergence is weak or unmeasured (None: it is fine)."""
    if trust.get("n", 0) >= 3 and trust["spearman"] < WEAK_TRUST:
        return (
            f"The ladder's top rung ranks configurations weakly against convergence "
            f"(Spearman {trust['spearman']:.2f} over {trust['n']}): the verdict is about "
            "short trainings; a longer top rung would be needed to speak for a night."
        )
    if trust.get("n", 0) < 3:
        return (
            "Horizon trust was not measured (compare --converge K): whether the top "
            "rung ranks configurations like training to convergence is assumed."
        )
    return None


def warm_start_effect(per_run: pd.DataFrame, cold_suffix: str) -> pd.DataFrame:
    """For each strategy run both warm and cold (``<strategy><cold_suffix>``) on the same seeds:
    on how many seeds each reached the target first, counted with Gehan's rule for censored
    pairs (a run censored before its twin reached decides nothing), a two-sided sign test over
    the decided pairs, and both Kaplan-Meier medians. ``per_run``: ``time_to_target``'s table
    in one clock. Columns strategy, pairs, warm_first, cold_first, undecided, p, warm_median,
    cold_median."""
    rows = []
    by_run = per_run.set_index(["strategy", "seed"])
    for cold in sorted(s for s in per_run["strategy"].unique() if s.endswith(cold_suffix)):
        warm = cold.removesuffix(cold_suffix)
        if warm not in set(per_run["strategy"]):
            continue
        w = by_run.loc[warm]
        c = by_run.loc[cold]
        seeds = w.index.intersection(c.index)
        firsts = [_first_to_target(w.loc[s], c.loc[s]) for s in seeds]
        warm_first, cold_first = firsts.count("warm"), firsts.count("cold")
        decided = warm_first + cold_first
        p = stats.binomtest(warm_first, decided).pvalue if decided else float("nan")
        medians = kaplan_meier(per_run[per_run["strategy"].isin([warm, cold])]).set_index(
            "strategy"
        )["median"]
        rows.append(
            {
                "strategy": warm,
                "pairs": len(seeds),
                "warm_first": warm_first,
                "cold_first": cold_first,
                "undecided": len(seeds) - decided,
                "p": float(p),
                "warm_median": float(medians[warm]),
                "cold_median": float(medians[cold]),
            }
        )
    columns = ["strategy", "pairs", "warm_first", "cold_first", "undecided", "p"]
    return pd.DataFrame(rows, columns=columns + ["warm_median", "cold_median"])


def _first_to_target(warm: pd.Series, cold: pd.Series) -> str | None:
    """'warm' or 'cold': which run of a pair surely reached the target first; None: undecided."""
    if warm["reached"] and (warm["spent"] < cold["spent"] or not cold["reached"]):
        return "warm" if warm["spent"] <= cold["spent"] else None
    if cold["reached"] and (cold["spent"] < warm["spent"] or not warm["reached"]):
        return "cold" if cold["spent"] <= warm["spent"] else None
    return None
