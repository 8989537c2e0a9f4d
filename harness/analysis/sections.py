"""The report's content, one function per heading.

Each section takes the ``ReportInputs`` and returns its content blocks (see
``harness.analysis.render`` for the block kinds); a section with nothing to say returns
an empty list. ``SECTIONS``, at the end, lists them in report order: a new section is a
function here and its place in that list.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harness.analysis import verdict as verdict_rules
from harness.analysis.agreement import (
    agreement,
    surrogate_evidence,
    surrogate_table,
    surrogate_text,
)
from harness.analysis.analyze import Analysis
from harness.analysis.architecture_section import architecture_blocks
from harness.analysis.currency import currency_section
from harness.analysis.pareto import pareto_front, trial_costs
from harness.analysis.plots import pareto_plot
from harness.analysis.render import fmt_number, fmt_share
from harness.analysis.synthesis_section import synthesis
from harness.analysis.tunability_section import tunability_blocks
from harness.analysis.two_stage_section import two_stage_blocks
from harness.layout import REPLAY_SUFFIX
from strategies.registry import MEDIAN_STARTUP_TRIALS, get_strategy

FRONT_COLUMNS = ["strategy", "seed", "trial", "val_mae", "full_train_seconds", "parameters"]
LITTLE_PRUNING = 0.2  # a pruned share under this is "much like no pruning"
# Learning rate's Spearman with MAE this much more negative at rung 1 than at the last rung
# is a short-horizon bias (low rungs favouring fast learners); less is not reported as one.
SHORT_HORIZON_GAP = 0.2


@dataclass(frozen=True)
class ReportInputs:
    """What the report is made from: the analysis, its plots (name -> PNG file name in
    ``plot_dir``; ``plot_dir`` None: none drawn), and the plan and final check as written to
    JSON (None where not run)."""

    analysis: Analysis
    plots: dict[str, str]
    plan: dict | None
    final: dict | None
    plot_dir: Path | None

    def plot(self, name: str) -> str | None:
        """The PNG file name of plot ``name``; None when the report draws no plots."""
        return None if self.plot_dir is None else self.plots[name]


def title(inputs: ReportInputs) -> list:
    """The question the report answers, under the experiment's name."""
    name = inputs.analysis.results.experiment["name"]
    return [
        ("h1", f"Which strategy should run tonight? ({name})"),
        (
            "p",
            "The question: which hyperparameter-optimization strategy finds the best forecaster "
            "within the budget, how much pruning saves and what it costs, which hyperparameters "
            "deserve the search, and what exact setup should run overnight. Every number below "
            "is computed from the recorded runs.",
        ),
    ]


def setup(inputs: ReportInputs) -> list:
    """Data, ladder, budget, runs and machine; then how each strategy works."""
    r = inputs.analysis.results
    exp, any_meta = r.experiment, next(iter(r.meta.values()))
    seeds = sorted({s for _, s in r.meta})
    data, ladder = exp["data"], exp["ladder"]
    text = (
        f"Data: {data['source'] or 'synthetic Vélib-like network'} ({data['stations']} stations "
        f"x {data['days']} days). Fidelity ladder: data fractions "
        f"{[round(f, 4) for f in ladder['fractions']]}, epochs {ladder['epochs']}, report steps "
        f"{ladder['steps']}. Budget per run: {_budget(any_meta['budget'])}. "
        f"{len(r.strategies)} strategies x {len(seeds)} seeds ({seeds}); {len(r.trials)} trials "
        f"and {len(r.rungs)} rungs recorded. Machine: {any_meta['device']} "
        f"({any_meta.get('device_name', '')}), torch {any_meta['versions']['torch']}, "
        f"optuna {any_meta['versions']['optuna']}."
    )
    described = {s: m for (s, _), m in sorted(r.meta.items())}
    strategies = pd.DataFrame(
        [
            {
                "strategy": s,
                "how it works": m["strategy_summary"],
                "when it shines": m["strategy_rationale"],
            }
            for s, m in described.items()
        ]
    )
    return [("h2", "Setup"), ("p", text), ("h3", "How each strategy works"), ("table", strategies)]


def _budget(budget: dict) -> str:
    """The budget the runs actually had (command-line overrides included), from their metadata."""
    parts = [
        f"{budget['n_trials']} trials" if budget.get("n_trials") else "",
        f"{budget['timeout_minutes']:g} minutes"
        if budget.get("timeout_minutes") not in (None, float("inf"))
        else "",
    ]
    return " or ".join(p for p in parts if p) or "unlimited"


def protocol(inputs: ReportInputs) -> list:
    """How the verdict is decided, stated before any result."""
    a = inputs.analysis
    target = _target_text(a.target)
    budget = next(iter(a.results.meta.values()))["budget"]
    currency = (
        "training FLOPs (the same price for the same work on any machine; a pruner buys more "
        "trials with what it saves)"
        if budget.get("unit") == "compute"
        else "trials"
    )
    return [
        ("h2", "How the verdict is decided (fixed before the results)"),
        (
            "li",
            f"Budget: every run gets the same budget, counted in {currency}; wall-clock is "
            "shown beside it. Strategies run in a seeded shuffled order within each seed.",
        ),
        ("li", f"Target: {target}."),
        (
            "li",
            "Score: each run's incumbent retrained with fresh training seeds (the MAE a user "
            "would get); the recorded best is shown beside it (the winner's curse).",
        ),
        ("li", verdict_rules.TIE_RULE),
    ]


def _target_text(t: dict) -> str:
    """The target and where it comes from; flagged when v4's own seed spread would reach the
    margin's target and it was moved below."""
    if not np.isfinite(t["target"]):
        return "not set (no run evaluated v4 first)"
    share = 1 - t["margin_target"] / t["v4"]
    text = (
        f"{fmt_number(t['target'])} bikes (v4's top-rung validation MAE {fmt_number(t['v4'])}, "
        f"averaged over {t['seeds']} seeds, minus {share:.0%}"
    )
    if t["moved"]:
        text += (
            f"; **flagged**: v4 minus {share:.0%} ({fmt_number(t['margin_target'])}) lay within "
            f"two of v4's seed standard deviations ({fmt_number(t['v4_sd'])}), where v4 itself "
            "reaches it on a lucky seed, so the target was moved below them"
        )
    return text + "). v4's own trial never counts as a strategy reaching it"


def results(inputs: ReportInputs) -> list:
    """Scores per strategy with the paired tests, anytime plots, time to target, savings."""
    return [
        ("h2", "Results"),
        *_ranking(inputs),
        *_tests(inputs),
        *_time_to_target(inputs),
        *_compute_saved(inputs),
    ]


def _ranking(inputs: ReportInputs) -> list:
    a = inputs.analysis
    rk = a.ranking.copy()
    rk["95% CI of mean"] = [
        f"{fmt_number(lo)} .. {fmt_number(hi)}" for lo, hi in zip(rk["ci_low"], rk["ci_high"])
    ]
    per = a.scores.groupby("strategy")
    rk["recorded best (median)"] = rk["strategy"].map(per["recorded"].median())
    rk["winner's curse (median)"] = rk["strategy"].map(per["curse"].median())
    scored = "re-evaluated incumbents" if a.scores["reevaluated"].any() else "recorded bests"
    text = (
        f"Score per run: validation MAE (bikes) of its {scored}, over "
        f"{a.scores['seed'].nunique()} seeds. Descriptive; the tests follow."
    )
    columns = [
        "rank",
        "strategy",
        "median",
        "mean",
        "95% CI of mean",
        "seeds",
        "recorded best (median)",
        "winner's curse (median)",
    ]
    return [
        ("p", text),
        ("table", rk[columns]),
        ("img", inputs.plot("anytime"), "Best validation MAE so far against wall-clock."),
        ("img", inputs.plot("rank_over_time"), "Rank of each strategy's median over time."),
    ]


def _tests(inputs: ReportInputs) -> list:
    a = inputs.analysis
    if a.tests.empty:
        return [("p", "No declared control ran, so no strategy was tested.")]
    table = a.tests[
        [
            "strategy",
            "control",
            "pairs",
            "mean_diff",
            "p",
            "p_holm",
            "min_p",
            "detectable",
            "verdict",
        ]
    ].rename(
        columns={
            "mean_diff": "mean difference (bikes)",
            "p_holm": "p (Holm)",
            "min_p": "smallest attainable p",
            "detectable": f"detectable difference ({verdict_rules.POWER:.0%} power)",
        }
    )
    blocks = [
        ("p", "Paired by seed against each declared control (negative: better)."),
        ("table", table),
    ]
    for group in a.identical:
        blocks.append(
            (
                "p",
                f"Identical by construction (one result, not ranked): {', '.join(sorted(group))}.",
            )
        )
    return blocks


def _text_table_figure(text: str, table: pd.DataFrame, figure: tuple) -> list:
    """A paragraph, its table and one figure (path, caption), as report blocks."""
    return [("p", text), ("table", table), ("img", *figure)]


def _time_to_target(inputs: ReportInputs) -> list:
    a = inputs.analysis
    table = a.ttt.assign(median_tflop=a.ttt["median_flops"] / 1e12)[
        ["strategy", "runs", "reached", "median_tflop", "median_seconds"]
    ].rename(columns={"median_tflop": "median training TFLOP", "median_seconds": "median seconds"})
    text = (
        f"Time to target ({fmt_number(a.mae_target)} bikes): the training compute, and the "
        "wall-clock beside it, until a run's first complete trial at or below the target; runs "
        "that ended first are censored at their end (Kaplan-Meier medians; empty: fewer than "
        "half reached it)."
    )
    return _text_table_figure(text, table, (inputs.plot("time_to_target"), "Time to target."))


def _compute_saved(inputs: ReportInputs) -> list:
    sv = inputs.analysis.saved
    table = pd.DataFrame(
        {
            "strategy": sv["strategy"],
            "saved (median)": sv[("saved_share", "median")].map(fmt_share),
            "saved (min..max)": [
                f"{fmt_share(lo)}..{fmt_share(hi)}"
                for lo, hi in zip(sv[("saved_share", "min")], sv[("saved_share", "max")])
            ],
            "pruned (median)": sv[("pruned_share", "median")].map(fmt_share),
        }
    )
    text = (
        "Compute saved: time spent against the time the same trials would have taken at full "
        "fidelity (pruned trials extrapolated from their own measured cost per sample)."
    )
    return _text_table_figure(
        text, table, (inputs.plot("savings"), "Compute saved and share of trials pruned.")
    )


def fidelity_trust(inputs: ReportInputs) -> list:
    """Rank correlation of each rung with the last (all trials, and unpruned ones only), the
    top rung against convergence, learning curves, audited false prunes, timing noise."""
    a = inputs.analysis
    text = (
        "Spearman rank correlation of MAE at each rung with MAE at the last rung, over distinct "
        "trials that reached both (a trial recorded by several runs, as a start-up shared by "
        "two strategies, counts once); the rho_ columns show which parameters each rung's "
        "ranking favours (negative: a larger value gives a lower MAE at that rung). Over every "
        "trial the survivors of pruning are a selected sample; the second table uses only "
        "strategies that never prune, so every trial reached the last rung."
    )
    blocks = [
        ("h2", "Can the low rungs be trusted?"),
        ("p", text),
        ("table", a.trust),
    ]
    if len(a.trust_unpruned):
        blocks += [("p", "Unpruned strategies only:"), ("table", a.trust_unpruned)]
    blocks += [
        ("img", inputs.plot("fidelity_trust"), "MAE at low rungs against MAE at full fidelity."),
        ("img", inputs.plot("learning_curves"), "Learning curves of pruned and completed trials."),
        ("p", _horizon_text(a.horizon)),
        ("p", _false_prunes_text(a.false_prunes)),
        ("p", _timing_text(a.timing)),
    ]
    return blocks


def _horizon_text(h: dict) -> str:
    if h["n"] < 3:
        measured = f" ({h['n']} configuration(s) converged, 3 needed)" if h["n"] else ""
        return (
            f"Horizon trust not measured{measured} (compare --converge K): the top rung is "
            "itself a short training."
        )
    return (
        f"Horizon trust: over {h['n']} configurations trained to early-stopped convergence, "
        f"Spearman {h['spearman']:.2f} between the top rung's MAE and the converged MAE; "
        f"the configuration the top rung liked best converged {h['regret']:.4f} bikes "
        "behind the best of them (the ladder's regret)."
    )


def _false_prunes_text(fp: dict) -> str:
    if not fp["audited"]:
        return "False prunes were not audited (run compare --audit K)."
    interval = f"{fmt_share(fp['low'])}..{fmt_share(fp['high'])}"
    won = f"{fp['would_have_won']} ({fmt_share(fp['share'])}, exact 95% interval {interval})"
    return (
        f"False prunes: {fp['audited']} pruned trials were finished at full fidelity; "
        f"{won} would have beaten their run's best survivor."
    )


def _timing_text(t: dict) -> str:
    if not t["groups"]:
        return "Timing noise: no identical work was repeated across runs to measure it."
    return (
        f"Timing noise on identical work ({t['groups']} rungs trained identically in "
        f"different runs): the slower copy took a median {t['max_over_min_median']:.2f}x "
        f"the faster (worst {t['max_over_min_worst']:.2f}x; coefficient of variation "
        f"{t['cv_median']:.1%}). Wall-clock differences smaller than this are the machine, "
        "not the strategy; budgets are counted in FLOPs for that reason."
    )


def hyperparameters(inputs: ReportInputs) -> list:
    """Parameter importance, where the best trials lie, and what to search tonight."""
    a = inputs.analysis
    imp = pd.DataFrame(
        {
            "last rung (complete trials)": a.importance_final,
            "rung 1 (every trial)": a.importance_rung1,
        }
    )
    search = ", ".join(a.params_to_search()) or "n/a"
    return [
        ("h2", "Hyperparameters worth searching"),
        ("table", imp.reset_index(names="param").round(3)),
        ("p", "Where the best 20% of distinct complete trials lie:"),
        ("table", a.good_ranges[["param", "good", "searched"]]),
        ("img", inputs.plot("importance"), "Parameter importance (optuna.importance)."),
        ("p", f"Search tonight: {search} ({a.search_source()})."),
    ]


def mae_against_cost(inputs: ReportInputs) -> list:
    """The Pareto fronts of MAE against training time and size; empty under two full trials."""
    costs = trial_costs(inputs.analysis.results)
    complete = costs[costs["reached_full"]].dropna(subset=["parameters"])
    if len(complete) < 2:
        return []
    fronts = {c: pareto_front(complete, c) for c in ("full_train_seconds", "parameters")}
    text = (
        "The Pareto front of the trials that reached full fidelity: no other trial is both more "
        "accurate and cheaper."
    )
    if inputs.plot_dir is not None:
        text += (
            " Pruned trials are plotted with their training time extrapolated from their own "
            "cost per sample (marked x) and their MAE at the rung where they stopped; they are "
            "not on the fronts."
        )
    blocks: list = [
        ("h2", "MAE against cost"),
        ("p", text),
        (
            "img",
            pareto_plot(costs, fronts, inputs.plot_dir) if inputs.plot_dir else None,
            "Validation MAE against full-fidelity training time and parameter count.",
        ),
    ]
    for cost, label in (("full_train_seconds", "training seconds"), ("parameters", "parameters")):
        front = fronts[cost][FRONT_COLUMNS]
        blocks += [("p", f"Front against {label} ({len(front)} trials):"), ("table", front)]
    return blocks


def verdict(inputs: ReportInputs) -> list:
    """The strategy to run, why, and how stable that pick is."""
    a = inputs.analysis
    stable = (
        f" The same strategy is picked in {a.stability:.0%} of bootstrap resamples of the seeds."
        if np.isfinite(a.stability)
        else ""
    )
    name = a.choice_named
    twins = (
        " (identical by construction: one result under several names)" if name != a.choice else ""
    )
    blocks = [("h2", "Verdict"), ("p", f"Run **{name}**{twins}: {a.choice_reason}.{stable}")]
    return blocks + [("li", line) for line in a.apart]


def two_stage(inputs: ReportInputs) -> list:
    """The two-stage verdict's screen, sizing and confirmation (empty without one)."""
    return two_stage_blocks(inputs.analysis)


def overnight_plan(inputs: ReportInputs) -> list:
    """The plan's summary and projections, where ``plan`` was run."""
    return _summary_and_table("The overnight plan", inputs.plan, "projections")


def final_check(inputs: ReportInputs) -> list:
    """The final check's summary and table, where ``final`` was run."""
    return _summary_and_table("The final check", inputs.final, "table")


def _summary_and_table(heading: str, record: dict | None, table: str) -> list:
    """A command's written record (plan.json, final.json) as its summary and one table."""
    if not record:
        return []
    return [("h2", heading), ("p", record["summary"]), ("table", pd.DataFrame(record[table]))]


def replay(inputs: ReportInputs) -> list:
    """The surrogate's evidence and how far replayed and real verdicts agree; empty for real
    runs with no replay beside them."""
    a = inputs.analysis
    name = a.results.experiment["name"] + (REPLAY_SUFFIX if a.replayed else "")
    agree = agreement(a.results_dir, name, a.results)
    if not (a.replayed or agree):
        return []
    blocks: list = [("h2", "Replay: the surrogate and its agreement with real runs")]
    evidence = (
        agree["surrogate"]
        if agree
        else surrogate_evidence(a.results_dir, a.results.experiment["name"])
    )
    if evidence:
        text = surrogate_text(evidence)
        blocks += [("p", text), ("table", surrogate_table(evidence))]
    if agree:
        blocks += [("p", agree["summary"]), ("table", agree["table"])]
    else:
        unchecked = "No real runs of this experiment to compare with: the replayed verdict is "
        blocks.append(("p", unchecked + "unchecked."))
    return blocks


def cannot_tell(inputs: ReportInputs) -> list:
    """What this evidence cannot tell you, generated from the numbers."""
    lines = inputs.analysis.cannot_tell
    if not lines:
        return []
    return [("h2", "What this evidence cannot tell you"), *(("li", line) for line in lines)]


def caveats_section(inputs: ReportInputs) -> list:
    """The caveats of ``caveats``, one list item each."""
    return [("h2", "Caveats the data shows"), *(("li", line) for line in caveats(inputs.analysis))]


def caveats(a: Analysis) -> list[str]:
    """What limits the conclusions, read from the data: fidelity trust at rung 1, short-horizon
    bias, false prunes, how many trials the runs finished and how much each pruner pruned, and
    the noise floor."""
    out = _trust_caveats(a)
    if a.false_prunes["audited"]:
        out.append(
            f"False prunes: {a.false_prunes['would_have_won']} of {a.false_prunes['audited']} "
            "audited pruned trials would have beaten the survivor."
        )
    out.append(_pruning_caveat(a))
    floor = a.floor
    if not np.isfinite(floor["sd"]):
        out.append(
            "The noise floor was not measured (compare --noise-seeds), so small differences "
            "between configurations may be seed noise."
        )
    else:
        out.append(
            f"Noise floor: retraining the same configuration with another seed moves its MAE by "
            f"{floor['sd']:.4f} bikes (standard deviation, {floor['df']} degrees of freedom, 95% "
            f"interval {floor['low']:.4f}..{floor['high']:.4f})."
        )
    return out


def _trust_caveats(a: Analysis) -> list[str]:
    rung1 = a.trust[a.trust["rung"] == 1]
    if not (len(rung1) and np.isfinite(rung1["spearman_with_final"].iloc[0])):
        return []
    rho = rung1["spearman_with_final"].iloc[0]
    word = "weak" if rho < 0.6 else "moderate" if rho < 0.8 else "strong"
    out = [
        f"Fidelity trust at rung 1 is {word}: Spearman {rho:.2f} with the last rung "
        f"(n={int(rung1['trials_with_final'].iloc[0])} distinct trials). Pruners are only as "
        "good as this correlation."
    ]
    if "rho_learning_rate" in rung1:
        out.append(
            _short_horizon_text(
                rung1["rho_learning_rate"].iloc[0], a.trust["rho_learning_rate"].iloc[-1]
            )
        )
    return out


def _short_horizon_text(lr1: float, lr_last: float) -> str:
    """Whether low rungs favour fast learners: said only where learning rate's Spearman with
    MAE is more negative at rung 1 than at the last rung by more than ``SHORT_HORIZON_GAP``."""
    head = (
        f"Short-horizon bias: learning rate's Spearman with MAE is {lr1:.2f} at rung 1 and "
        f"{lr_last:.2f} at the last rung"
    )
    if not (np.isfinite(lr1) and np.isfinite(lr_last)):
        return f"{head}; not measured (too few trials, or one learning rate, at a rung)."
    if lr_last - lr1 > SHORT_HORIZON_GAP:
        return (
            f"{head}: a higher learning rate helps more at rung 1 than at the last rung, so "
            "low rungs reward fast convergence."
        )
    return (
        f"{head}: no short-horizon bias visible (rung 1 does not favour a higher learning rate "
        f"by more than {SHORT_HORIZON_GAP:g} over the last rung)."
    )


def _pruning_caveat(a: Analysis) -> str:
    """How many trials the runs finished, and each pruning strategy's measured pruned share
    (median over seeds): "much like no pruning" only where it is under ``LITTLE_PRUNING``."""
    sv = a.saved
    shares = {
        s: p
        for s, p in zip(sv["strategy"], sv[("pruned_share", "median")])
        if p > 0 or _prunes(a, s)
    }
    text = f"Runs finished a median of {a.best['trials'].median():.0f} trials."
    pruned = [f"{s} {fmt_share(p)}" for s, p in shares.items() if p >= LITTLE_PRUNING]
    little = [f"{s} {fmt_share(p)}" for s, p in shares.items() if p < LITTLE_PRUNING]
    if pruned:
        text += (
            f" Share of trials pruned (median over seeds): {', '.join(pruned)}; at this budget "
            "these pruners did stop trials early."
        )
    if little:
        text += (
            f" Pruned under {LITTLE_PRUNING:.0%} of their trials: {', '.join(little)}; at this "
            "budget much like no pruning (median pruning prunes nothing before "
            f"{MEDIAN_STARTUP_TRIALS} trials complete, and Hyperband's brackets each need "
            "several trials at a rung before they prune)."
        )
    return text if shares else f"{text} No strategy here prunes."


def _prunes(a: Analysis, strategy: str) -> bool:
    """Whether ``strategy`` has a pruner: from its runs' metadata, else from the registry."""
    for (s, _), meta in a.results.meta.items():
        if s == strategy and "prunes" in meta.get("strategy_traits", {}):
            return bool(meta["strategy_traits"]["prunes"])
    try:
        return get_strategy(strategy).prunes
    except ValueError:  # a name no longer registered, with no trait recorded
        return False


# The report, in order: ``harness.analysis.report`` writes these sections' blocks.
SECTIONS = (
    title,
    setup,
    protocol,
    results,
    fidelity_trust,
    tunability_blocks,
    architecture_blocks,
    hyperparameters,
    mae_against_cost,
    currency_section,
    two_stage,
    verdict,
    synthesis,
    overnight_plan,
    final_check,
    replay,
    cannot_tell,
    caveats_section,
)
