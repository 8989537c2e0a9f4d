"""The brief's questions and its synthesis template, field by field: each parameter with its v4
value, range, importance and a rationale made of numbers; the strategy with its sampler's and
pruner's settings; the night's trials and what one of them is; warm start in both senses; the
success criteria; the recommended configuration. A field with no number behind it says "not
measured" and the command that measures it."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from harness.analysis import verdict as verdict_rules
from harness.analysis.analyze import recommended_candidates
from harness.analysis.render import fmt_number, fmt_share
from harness.defaults import FINAL_MAX_EPOCHS, FINAL_PATIENCE, FINAL_TOP_K
from harness.errors import UserError
from harness.records import param_column
from harness.team import (
    GAP_GUARD,
    NIGHT_TRIAL_COUNTS,
    PRUNED_SHARE_AIM,
    TARGET_MARGIN,
    TEAM_TRIAL_MINUTES,
    team_trials_sentence,
)
from strategies import get_strategy
from strategies.base import StrategyInputs
from strategies.registry import COLD_SUFFIX, V4_WEIGHTS_SUFFIX
from strategies.space import Ladder, SearchSpace

NOT_MEASURED = "not measured"
EARLIER_FINAL = "final.json of an earlier version: run `python -m harness final` again"
WILCOXON_MIN_PAIRS = 6  # the fewest pairs at which the exact two-sided test reaches p < 0.05
LEVELS_TEXT = (
    "HIGH: searching it alone gains at least the non-inferiority margin over v4, with a 95% "
    "interval above 0; MEDIUM: a gain whose interval is above 0 but that is under the margin, "
    "or a parameter not safe to fix at v4 (its tuning risk's interval reaches the margin); "
    "LOW: neither (its gain is noise and fixing it at v4 is safe)."
)


def synthesis(inputs) -> list:
    """The brief's questions answered, then its template with every field filled or marked."""
    a, plan, final = inputs.analysis, inputs.plan, inputs.final
    return [
        ("h2", "The brief's questions, and the synthesis"),
        ("li", strategy_text(a)),
        ("li", f"What pruning skips: {_pruning_text(a)}."),
        ("li", search_text(a)),
        ("li", trials_text(a, plan)),
        ("li", warm_start_text(a)),
        ("li", recommended_text(a, final)),
        ("p", _levels_text(a.tunability)),
        ("table", parameter_table(a, plan)),
        ("p", "The brief's success criteria:"),
        ("table", criteria_table(a, final)),
    ]


def _pruning_text(a) -> str:
    sv = a.saved
    pruned, saved = sv[("pruned_share", "median")], sv[("saved_share", "median")]
    return (
        ", ".join(
            f"{s} prunes {fmt_share(p)} of its trials and saves {fmt_share(v)} of their compute"
            for s, p, v in zip(sv["strategy"], pruned, saved)
            if p > 0
        )
        or "nothing was pruned"
    )


def search_text(a) -> str:
    good = dict(zip(a.good_ranges["param"], a.good_ranges["good"]))
    ranges = [(p, good.get(p, "n/a")) for p in a.params_to_search()]
    listed = ", ".join(f"{p} ({g})" for p, g in ranges) or "n/a"
    return f"Parameters worth searching, in order: {listed}; {a.search_source()}."


def importance_level(gain: dict | None, risk: dict | None, margin: float) -> str:
    """HIGH / MEDIUM / LOW by the thresholds of LEVELS_TEXT on tunability (``gain``: mean, low,
    high) and tuning risk (``risk``: with safe_to_fix); "not measured" without them."""
    if gain is None or risk is None:
        return NOT_MEASURED
    if gain["low"] > 0 and gain["mean"] >= margin:
        return "HIGH"
    if gain["low"] > 0 or not risk["safe_to_fix"]:
        return "MEDIUM"
    return "LOW"


def _levels_text(t: dict | None) -> str:
    if not t:
        return (
            "Importance levels: not measured (they are set on tunability; "
            "`python -m harness tunability` measures it on the replay). " + LEVELS_TEXT
        )
    return (
        f"Importance levels from tunability on the replay ({t['strategy']}, {t['seeds']} seeds, "
        f"margin {fmt_number(t['margin'])} bikes = {t['margin'] / t['v4_score']:.0%} of v4). "
        + LEVELS_TEXT
    )


def parameter_table(a, plan: dict | None) -> pd.DataFrame:
    """One row per parameter of the compared space, most important first where measured."""
    t = a.tunability or {}
    gains = {r["param"]: r for r in t.get("tunability", [])}
    risks = {r["param"]: r for r in t.get("tuning_risk", [])}
    importance = a.importance_final if len(a.importance_final) else a.importance_rung1
    rows = []
    for p in a.results.space():
        gain, risk = gains.get(p.name), risks.get(p.name)
        rows.append(
            {
                "param": p.name,
                "v4": _value(p.default),
                "range": _suggested_range(p.name, a, plan),
                "range measured": _range_scale(p.name, plan),
                "importance": importance_level(gain, risk, t.get("margin", np.nan)),
                "rationale": _rationale(gain, risk, importance.get(p.name)),
            }
        )
    order = {name: k for k, name in enumerate(gains)}
    table = pd.DataFrame(rows)
    return table.sort_values("param", key=lambda s: s.map(order).fillna(len(order)), kind="stable")


def _suggested_range(name: str, a, plan: dict | None) -> str:
    if plan and name in plan.get("space", {}):
        entry = plan["space"][name]
        if "choices" in entry:
            return ", ".join(map(str, entry["choices"]))
        return f"{entry['low']:.4g} .. {entry['high']:.4g}{' (log)' if entry.get('log') else ''}"
    if plan and name in plan.get("fixed", {}):
        return f"fixed at {plan['fixed'][name]}"
    good = a.good_ranges.set_index("param")
    if name in good.index:
        return f"{good.loc[name, 'good']} (best trials here; no plan)"
    return NOT_MEASURED


def _range_scale(name: str, plan: dict | None) -> str:
    """Whether the night's range rests on trials at the night's scale or is carried over."""
    if not plan:
        return "no plan: `python -m harness plan`"
    if name in plan.get("fixed", {}):
        return "fixed (not searched)"
    return plan.get("ranges", {}).get(name, {}).get("scale", NOT_MEASURED)


def _value(v) -> str:
    """A parameter value as the experiment file would write it (1e-03, 128, 0.2, True)."""
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _signed(r: dict) -> str:
    return f"{r['mean']:+.4f} bikes (95% {r['low']:+.4f} .. {r['high']:+.4f})"


def _rationale(gain: dict | None, risk: dict | None, importance) -> str:
    parts = []
    if gain is not None:
        parts.append(f"tuned alone, gain over v4 {_signed(gain)}")
    if risk is not None:
        parts.append(f"fixed at v4, loss {_signed(risk)}")
    if importance is not None and np.isfinite(importance):
        parts.append(f"fANOVA importance {importance:.2f}")
    return "; ".join(parts) or NOT_MEASURED


def describe(obj) -> str:
    """An Optuna sampler or pruner with the settings it holds (its scalar attributes)."""
    inner = getattr(obj, "inner", obj)  # strategies.seeding.PerTrialSeeded wraps the sampler
    settings = {
        k.lstrip("_"): v
        for k, v in sorted(vars(inner).items())
        if isinstance(v, (bool, int, float, str))  # None: a setting left to its default
    }
    shown = ", ".join(f"{k}={v}" for k, v in settings.items())
    return f"{type(inner).__name__}({shown})"


def strategy_text(a) -> str:
    """The chosen strategy's sampler and pruner as built for this experiment, and why."""
    try:
        strategy = get_strategy(a.choice)
    except (KeyError, ValueError):
        return (
            f"Which strategy: {a.choice_named}. Its sampler and pruner: {NOT_MEASURED} "
            f"({a.choice} is not a registered strategy here)."
        )
    space = SearchSpace(tuple(a.results.space()))
    sampler, pruner = strategy.make(StrategyInputs(space, _ladder(a), 0))
    return (
        f"Which strategy: {a.choice_named} ({strategy.summary}; see the verdict). Sampler "
        f"{describe(sampler)}; pruner {describe(pruner)}. Why: {a.choice_reason.rstrip('.')}."
    )


def _ladder(a) -> Ladder:
    return Ladder.from_record(a.results.experiment["ladder"])


def trials_text(a, plan: dict | None) -> str:
    """Trials and trials per hour with their source, the brief's 40-70 checked, and what a
    harness trial is against the team's."""
    low, high = NIGHT_TRIAL_COUNTS[0], NIGHT_TRIAL_COUNTS[-1]
    short, long = TEAM_TRIAL_MINUTES
    meaning = (
        f"One harness trial is one configuration climbing the ladder ({_ladder(a).budget:.2f} "
        "epochs of the "
        f"full training set at most, stopped earlier only by the pruner); the team's trial is a "
        f"training early-stopped at convergence, {short}-{long} minutes. The night's harness "
        f"trials screen configurations; `final` then trains the best {FINAL_TOP_K} of them the "
        f"team's way (early stopping, at most {FINAL_MAX_EPOCHS} epochs, patience "
        f"{FINAL_PATIENCE})."
    )
    if not plan:
        return (
            f"Trials in the night: {NOT_MEASURED} (`python -m harness plan` sizes it); the "
            f"brief's {low}-{high}-trial ceiling cannot be checked without it. {meaning}"
        )
    hours, n = plan["hours"], plan["n_trials"]
    low_n, high_n = plan.get("n_trials_range") or (n, n)
    return (
        f"Trials in the night: {n} harness trials in {hours:g} h ({n / hours:.1f} per hour, "
        f"range {low_n}-{high_n}; from {plan.get('cost_source', 'the cost model')}). "
        f"{team_trials_sentence(n, hours)} {meaning}"
    )


def warm_start_text(a) -> str:
    """Warm start in both senses: v4's configuration as the first trial, v4's weights."""
    return f"{_warm_configuration_text(a)} {v4_weights_text(a)}"


def v4_weights_text(a) -> str:
    """Whether starting trials from v4's trained weights helped: each ``<strategy>.v4w`` run
    against its fresh-weights twin, paired by seed on the runs' recorded bests, with the first
    rung's mean MAE beside it."""
    r = a.results
    if r.weights_trials is None:
        return (
            f"Warm start from v4's trained weights: {NOT_MEASURED} (`compare --v4-weights` with "
            "the same strategies and seeds runs their <strategy>.v4w twins)."
        )
    twins = sorted({strategy for strategy, _ in r.weights_meta})
    answers = "; ".join(_weights_against_fresh(r, warm) for warm in twins)
    return (
        f"Warm start from v4's trained weights: {answers}. Recorded bests on both sides (a "
        "re-evaluation retrains from fresh weights); v4's own training, early-stopped on the "
        "same validation split, is not charged to the budget."
    )


def _weights_against_fresh(r, warm: str) -> str:
    fresh = warm.removesuffix(V4_WEIGHTS_SUFFIX)
    runs = {**r.meta, **r.weights_meta}
    seeds = [
        seed
        for strategy, seed in r.weights_meta
        if strategy == warm and _budget(runs.get((fresh, seed))) == _budget(runs[(warm, seed)])
    ]
    if not seeds:
        return f"{warm}: cannot tell (no run of {fresh} with its seed and budget)"
    trials = pd.concat([r.trials, r.weights_trials], ignore_index=True)
    done = trials[trials["state"] == "COMPLETE"]
    best = done.groupby(["strategy", "seed"])["val_mae"].min()
    gap = np.array([best.get((warm, s), np.nan) - best.get((fresh, s), np.nan) for s in seeds])
    gap = gap[np.isfinite(gap)]
    differing = int(np.count_nonzero(gap))
    p = float(stats.wilcoxon(gap).pvalue) if differing >= 2 else np.nan
    if differing < 2:
        answer = "cannot tell (fewer than 2 seeds where the twins differ)"
    elif p < verdict_rules.ALPHA:
        answer = "YES" if np.median(gap) < 0 else "NO (it ends worse)"
    elif differing < WILCOXON_MIN_PAIRS:
        answer = (
            "cannot tell yet (the signed-rank test cannot reject under "
            f"{WILCOXON_MIN_PAIRS} differing pairs)"
        )
    else:
        answer = "NO measurable effect"
    rungs = pd.concat([r.rungs, r.weights_rungs], ignore_index=True)
    first = rungs[(rungs["rung"] == 1) & rungs["seed"].isin(seeds)]
    first = first.groupby("strategy")["val_mae"].mean()
    mine = done[(done["strategy"] == warm) & done["seed"].isin(seeds)]
    v4_best = int((mine.loc[mine.groupby("seed")["val_mae"].idxmin(), "trial"] == 0).sum())
    shape = (
        ""  # a cold twin's trial 0 is not v4
        if COLD_SUFFIX in warm
        else f"; its best trial is v4's own configuration in {v4_best} of {len(seeds)} seeds "
        "(the head start goes to v4's shape)"
    )
    return (
        f"{warm} against {fresh}: {answer}: best MAE {np.median(gap):+.4f} bikes (median over "
        f"{len(gap)} paired seeds, {differing} differing; Wilcoxon signed-rank p = {p:.2g}); "
        f"first-rung MAE {first.get(warm, np.nan):.4f} from v4's weights against "
        f"{first.get(fresh, np.nan):.4f} fresh{shape}{_by_shape(r.weights_rungs, warm, seeds)}"
    )


def _by_shape(rungs: pd.DataFrame, warm: str, seeds: list) -> str:
    """The first-rung MAE of trials that inherited every tensor against the others: the head
    start a comparison under v4's weights gives v4's shape ("" where not recorded)."""
    if "inherited_share" not in rungs:
        return ""
    mine = rungs[(rungs["strategy"] == warm) & (rungs["rung"] == 1) & rungs["seed"].isin(seeds)]
    share = pd.to_numeric(mine["inherited_share"], errors="coerce")
    whole, part = mine[share >= 1.0], mine[share < 1.0]
    if whole.empty or part.empty:
        return ""
    return (
        f"; by shape, first-rung MAE {whole['val_mae'].mean():.4f} where every tensor was "
        f"inherited ({len(whole)} trials) against {part['val_mae'].mean():.4f} where some were "
        f"fresh ({len(part)}, a median {share[share < 1.0].median():.0%} inherited)"
    )


def _budget(meta: dict | None):
    return None if meta is None else meta.get("budget")


def _warm_configuration_text(a) -> str:
    if not np.isfinite(a.mae_target):
        return "Warm start (v4 evaluated first): not measured (no run evaluated v4 first)."
    trials = a.results.trials  # v4 is trial 0 of a warm run (not the first to finish)
    v4 = trials[(trials["trial"] == 0) & (trials["state"] == "COMPLETE")]
    v4 = a.results.warm_rows(v4).rename(columns={"val_mae": "v4"})
    held = a.scores.merge(v4[["strategy", "seed", "v4"]], on=["strategy", "seed"])
    improved = float((held["recorded"] < held["v4"] - 1e-12).mean()) if len(held) else np.nan
    head = (
        "Warm start (v4 evaluated first): the warm runs improved on v4 in "
        f"{fmt_share(improved)} of cases."
    )
    if a.warm_start.empty:
        return (
            f"{head} Its effect on time to target was not measured: `compare --no-warm-start` "
            "with the same strategies and seeds runs their cold twins (`<strategy>.cold`)."
        )
    return (
        f"{head} Against cold starts: "
        + "; ".join(_warm_against_cold(row) for row in a.warm_start.itertuples(index=False))
        + "."
    )


def _warm_against_cold(row) -> str:
    """One strategy's warm-start answer: yes, no, or no measurable effect, with its evidence."""
    decided = row.warm_first + row.cold_first
    if decided == 0:
        answer = "cannot tell (no pair decided)"
    elif row.p < verdict_rules.ALPHA and row.warm_first > row.cold_first:
        answer = "yes"
    elif row.p < verdict_rules.ALPHA:
        answer = "no (cold starts reach it first)"
    else:
        answer = "no measurable effect"
    return (
        f"{row.strategy}: {answer}: warm reached the target first on {row.warm_first} of "
        f"{row.pairs} seeds, cold on {row.cold_first} ({row.undecided} undecided: censored "
        f"first), two-sided sign test p = {row.p:.2g}; Kaplan-Meier median compute "
        f"{_flops(row.warm_median)} warm, {_flops(row.cold_median)} cold"
    )


def criteria_table(a, final: dict | None) -> pd.DataFrame:
    """The brief's success criteria, each met, not met or not measured, with its number."""
    return pd.DataFrame(
        [_gain_criterion(final), _pruning_criterion(a), _gap_criterion(final)],
        columns=["success criterion", "status", "evidence"],
    )


def _gain_criterion(final: dict | None) -> tuple:
    name = f"more than {TARGET_MARGIN:.0%} better than v4 at T+1h (test)"
    if not final:
        return name, NOT_MEASURED, "`python -m harness final` retrains and tests it"
    h1 = final.get("tests", {}).get("test_mae_h1")
    if h1 is None or "meets_target" not in final:
        return name, NOT_MEASURED, EARLIER_FINAL
    evidence = (
        f"{h1['change']:+.1%} against v4 over {h1['seeds']} seeds (95% CI "
        f"{h1['ci_low']:+.1%}..{h1['ci_high']:+.1%}), one-sided p = {h1['p']:.3g}"
    )
    return name, "met" if final["meets_target"] else "not met", evidence


def _pruning_criterion(a) -> tuple:
    low, high = PRUNED_SHARE_AIM
    name = f"pruning skips {low:.0%}-{high:.0%} of trials"
    sv = a.saved.set_index("strategy")
    if a.choice not in sv.index:
        return name, NOT_MEASURED, f"no run of {a.choice}"
    share = float(sv.loc[a.choice, ("pruned_share", "median")])
    if not np.isfinite(share):
        return name, NOT_MEASURED, f"no finished trial of {a.choice}"
    met = low <= share <= high
    evidence = f"{a.choice} prunes {fmt_share(share)} of its trials (median over seeds)"
    return name, "met" if met else "not met", evidence


def _gap_criterion(final: dict | None) -> tuple:
    name = f"validation and test MAE within {GAP_GUARD:.0%}"
    if not final:
        return name, NOT_MEASURED, "`python -m harness final` tests it"
    gap = final.get("largest_gap", {}).get("recommended")
    if gap is None or "gap_guard_held" not in final:
        return name, NOT_MEASURED, EARLIER_FINAL
    met = final["gap_guard_held"]  # final's own decision, on the same guard
    return name, "met" if met else "not met", f"largest gap over seeds {gap:.1%}"


def recommended_text(a, final: dict | None) -> str:
    """The recommended configuration's values: final's where it ran, else the chosen
    strategy's best incumbent (by re-evaluated score where there is one)."""
    names = [p.name for p in a.results.space()]
    if final and final.get("config"):
        values = {n: final["config"][n] for n in names if n in final["config"]}
        source = "as `final` retrained and tested it"
    else:
        try:
            row = recommended_candidates(a, 1).iloc[0]
        except UserError:
            return f"Recommended configuration: {NOT_MEASURED} ({a.choice} has no complete trial)."
        values = {n: row[param_column(n)] for n in names if param_column(n) in row}
        ranked = a.scores[a.scores["strategy"] == a.choice]["reevaluated"].any()
        how = "re-evaluated" if ranked else "recorded (not re-evaluated)"
        source = f"{a.choice}'s best {how} incumbent; `final` has not tested it"
    shown = ", ".join(f"{n} = {_value(v)}" for n, v in values.items())
    return f"Recommended configuration ({source}): {shown}."


def _flops(value: float) -> str:
    return "not reached by half" if not np.isfinite(value) else f"{value:.3g} FLOPs"
