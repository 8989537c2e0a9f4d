"""Every number the comparison reports, gathered once from the records.

The protocol (README, "report decides by a protocol"): runs ranked on their incumbents
re-evaluated with fresh seeds; a target fixed before the runs (v4 minus the margin); time to target
censored, in compute and wall-clock; paired tests against declared controls with Holm's
correction; a tie rule stated in advance (``verdict.TIE_RULE``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from harness.analysis import measures, plots, protocol, verdict
from harness.analysis.loading import Results, load_results
from harness.backends import recorded_replayed
from harness.defaults import RESULTS_DIR
from harness.errors import UserError
from harness.records import param_columns
from harness.sidefiles import read_json_guarded
from strategies.registry import COLD_SUFFIX, SEARCH_SUFFIX

MAX_PARAMS_TO_SEARCH = 6
TWO_STAGE_FILE = "two_stage.json"  # compare --two-stage's plan, in the real experiment's folder
TUNABILITY_FILE = "tunability.json"  # `tunability`'s measurement, in the experiment's folder
ARCHITECTURE_FILE = "architecture.json"  # `architecture`'s answers, in the experiment's folder


@dataclass
class Analysis:
    """Every number the report, the plan and the final check use, computed once by ``analyze``."""

    results: Results
    curve: pd.DataFrame  # best-so-far per run and trial
    bands: pd.DataFrame  # its median and quartiles over seeds
    best: pd.DataFrame  # each run's recorded best and trial count
    scores: pd.DataFrame  # each run's incumbent: recorded, re-evaluated score, winner's curse
    ranking: pd.DataFrame  # per strategy, on the scores (descriptive)
    tests: pd.DataFrame  # paired tests against the declared controls
    identical: list  # groups of strategies identical by construction
    mae_target: float  # v4 at the top rung, averaged over seeds, minus the margin (NaN: no v4)
    target: dict  # protocol.target_info: v4, its seed spread, whether the target was moved
    ttt: pd.DataFrame  # per strategy: runs, reached, Kaplan-Meier medians in FLOPs and seconds
    warm_start: pd.DataFrame  # warm against cold twins: who reached the target first (compute)
    saved: pd.DataFrame
    trust: pd.DataFrame  # fidelity trust over every trial
    trust_unpruned: pd.DataFrame  # ... over trials of strategies that never prune
    floor: dict  # noise floor: sd, df and 95% interval
    false_prunes: dict  # audited: k of n would have won, with a 95% interval
    timing: dict  # spread of train_seconds over identical work
    horizon: dict  # top rung against convergence
    importance_final: pd.Series
    importance_rung1: pd.Series
    good_ranges: pd.DataFrame
    choice: str
    choice_reason: str
    stability: float  # share of bootstrap resamples picking the same (NaN: the test had no power)
    cannot_tell: list
    traits: dict = field(default_factory=dict)  # verdict.Traits per strategy
    apart: list = field(default_factory=list)  # runs left out of the tests, and why
    two_stage: dict | None = None  # the confirmation plan whose family the tests cover
    tunability: dict | None = None  # `tunability`'s measurement for this experiment, if made
    architecture: dict | None = None  # `architecture`'s answers for this experiment, if made
    search_scores: pd.DataFrame | None = None  # .search- twins' scores, as comparable as scores
    results_dir: str = RESULTS_DIR

    @property
    def choice_named(self) -> str:
        """The recommendation with the strategies identical to it by construction ("random =
        tpe"): no name in such a group is more the winner than another."""
        return verdict.named_with_twins(self.choice, self.identical)

    @property
    def replayed(self) -> bool:
        """Whether these runs were replayed on the surrogate rather than trained."""
        return any(recorded_replayed(m.get("backend")) for m in self.results.meta.values())

    def refuting_confirmation(self) -> dict | None:
        """The real paired runs that show tunability's preferred space worse than the full one
        (the interval of twin - full above 0), if any."""
        if not self.tunability:
            return None
        order = [r["param"] for r in self.tunability["tunability"]]
        preferred = set(order[: preferred_size(self.tunability)])
        for c in search_confirmations(self.scores, self.search_scores):
            if set(c["searched"]) == preferred and c["low"] > 0:
                return c
        return None

    def params_to_search(self) -> list[str]:
        """The parameters the night searches: where `tunability` measured them, its order and
        the size it prefers at the middle trial count (every parameter, in that order, where
        real paired runs showed that size worse than the full space); else the most important
        (at most MAX_PARAMS_TO_SEARCH), from final-rung importance, else rung 1's."""
        if self.tunability:
            order = [r["param"] for r in self.tunability["tunability"]]
            if self.refuting_confirmation():
                return order
            return order[: preferred_size(self.tunability)]
        imp = self.importance_final if len(self.importance_final) else self.importance_rung1
        return list(imp.index[:MAX_PARAMS_TO_SEARCH])

    def search_source(self) -> str:
        """Where ``params_to_search`` comes from, in words."""
        t = self.tunability
        if t and (c := self.refuting_confirmation()):
            return (
                f"measured, then refuted by real runs: searching {'+'.join(c['searched'])} "
                f"alone ended {c['diff']:+.3f} bikes against the full space ({c['n']} paired "
                f"seeds, 95% interval {c['low']:+.3f}..{c['high']:+.3f}), so every parameter "
                "is searched, in tunability's order"
            )
        if t:
            return (
                f"measured: the smallest nested space not worse than the best at "
                f"{t['judged_at']} trials ({t['strategy']}, {t['seeds']} replayed seeds; "
                "`tunability`)"
            )
        return (
            f"the most important by optuna.importance, at most {MAX_PARAMS_TO_SEARCH} (not "
            "measured: run `python -m harness tunability` for the measured answer)"
        )


def recommended_candidates(a: Analysis, top_k: int) -> pd.DataFrame:
    """The recommended strategy's incumbents (each run's best complete trial), best first by
    their re-evaluated score (recorded MAE where none), distinct configurations, ``top_k``."""
    trials = a.results.trials
    done = trials[(trials["state"] == "COMPLETE") & (trials["strategy"] == a.choice)]
    if done.empty:
        raise UserError(f"final: {a.choice} has no complete trial to retrain")
    incumbents = done.loc[done.groupby("seed")["val_mae"].idxmin()]
    scored = incumbents.merge(a.scores[["strategy", "seed", "score"]], on=["strategy", "seed"])
    ranked = scored.sort_values(["score", "val_mae"])
    return ranked.drop_duplicates(param_columns(ranked)).head(max(1, top_k))


def analyze(
    results_dir: str | Path,
    experiment: str,
    margin: float = protocol.TARGET_MARGIN,
    echo: bool = True,
) -> Analysis:
    """Loads ``<results_dir>/<experiment>`` and computes its ``Analysis``; the MAE target is v4
    minus ``margin`` (a share), moved lower when v4's own spread reaches it."""
    results = load_results(results_dir, experiment, echo=echo)
    _require_a_complete_trial(results, Path(results_dir) / experiment)
    curve = measures.anytime(results.trials)
    best, every, (scores, apart) = _scored(results)
    plan = read_two_stage_plan(results_dir, experiment)
    family = scores[scores["strategy"].isin(plan["family"])] if plan else scores
    identical = verdict.identical_groups(results.rungs)
    target = protocol.target_info(results.warm_rungs(), results.n_rungs, margin)
    warm = results.warm_runs()
    ttt = _time_to_target(results.trials, target["target"], warm)
    horizon = protocol.horizon_trust(results.converge)
    judged = _judgement(
        results, family, identical, ttt=ttt, horizon=horizon,
        target=target["target"], controls=(verdict.TEAM_DEFAULT,) if plan else verdict.CONTROLS,
    )  # fmt: skip
    return Analysis(
        results=results,
        curve=curve,
        bands=measures.anytime_bands(curve),
        best=best,
        scores=scores,
        ranking=measures.ranking(scores),
        identical=identical,
        mae_target=target["target"],
        target=target,
        ttt=ttt,
        warm_start=_warm_start(results.trials, target["target"], warm),
        saved=measures.compute_saved(results),
        trust=measures.fidelity_trust(results),
        trust_unpruned=measures.fidelity_trust(_unpruned_only(results)),
        floor=protocol.noise_floor_interval(results.noise),
        false_prunes=_false_prunes(results.audit),
        timing=protocol.timing_noise(results.rungs),
        horizon=horizon,
        importance_final=measures.importance(results),
        importance_rung1=measures.importance(results, rung=1),
        good_ranges=measures.good_ranges(results),
        **judged,
        apart=apart,
        two_stage=plan,
        tunability=read_tunability(results_dir, experiment),
        architecture=read_architecture(results_dir, experiment),
        search_scores=_search_scores(results, every),
        results_dir=str(results_dir),
    )


def pooled_scores(results_dir: str | Path, experiment: str) -> pd.DataFrame:
    """The scores ``analyze`` tests (one per pooled run), without the rest of its analysis:
    what the two-stage pilot is sized on."""
    results = load_results(results_dir, experiment, echo=False)
    _require_a_complete_trial(results, Path(results_dir) / experiment)
    _, _, (scores, _) = _scored(results)
    return scores


def _scored(results: Results) -> tuple[pd.DataFrame, pd.DataFrame, tuple[pd.DataFrame, list]]:
    """(each run's best trial, each run's incumbent score, (the scores the tests pool, the runs
    left out in words))."""
    best = measures.final_best(results.trials)
    every = protocol.incumbent_scores(best, results.reeval)
    return best, every, protocol.comparable_scores(every, results.meta)


def judged_nested(t: dict) -> dict:
    """`tunability`'s nested spaces at the trial count it judges the size at."""
    return next(n for n in t["nested"] if n["trials"] == t["judged_at"])


def preferred_size(t: dict) -> int:
    """How many parameters `tunability` prefers to search, at that trial count."""
    return int(judged_nested(t)["preferred_size"])


def search_confirmations(scores: pd.DataFrame, twins: pd.DataFrame | None) -> list[dict]:
    """Each ``<strategy>.search-...`` twin against its strategy on the full space, paired by
    seed on the runs' scores: n, the mean difference (twin - full) and its paired 95% t
    interval (nan under 3 pairs), the seeds where the twin is lower, whether re-evaluated."""
    out = []
    if twins is None:
        return out
    for twin in sorted(twins["strategy"].unique()):
        base, _, searched = twin.partition(SEARCH_SUFFIX)
        paired = twins[twins["strategy"] == twin].merge(
            scores[scores["strategy"] == base], on="seed", suffixes=("_twin", "_full")
        )
        diff = paired["score_twin"] - paired["score_full"]
        low = high = float("nan")
        if len(paired) >= 3:
            test = stats.ttest_rel(paired["score_twin"], paired["score_full"])
            low, high = (float(x) for x in test.confidence_interval())
        out.append({
            "twin": twin, "base": base, "searched": searched.split("+"), "n": len(paired),
            "diff": float(diff.mean()) if len(diff) else float("nan"), "low": low, "high": high,
            "lower": int((diff < 0).sum()),
            "reevaluated": bool(len(paired) and paired["reevaluated_twin"].all()),
        })  # fmt: skip
    return out


def _search_scores(results: Results, every: pd.DataFrame) -> pd.DataFrame | None:
    """The .search- twins' scores, kept to the runs the comparison's own are judged on (its
    budget, re-evaluated where it re-evaluated): their paired base runs are among ``scores``."""
    if results.search_trials is None:
        return None
    twins = protocol.incumbent_scores(measures.final_best(results.search_trials), results.reeval)
    pooled = pd.concat([every, twins], ignore_index=True)
    kept, _ = protocol.comparable_scores(pooled, {**results.meta, **results.search_meta})
    return kept[kept["strategy"].isin(twins["strategy"])].reset_index(drop=True)


def _read_measurement(results_dir: str | Path, experiment: str, name: str, key: str):
    """A command's measurement file ``name`` for ``experiment``: None where absent, unreadable
    (named on stderr), without ``key`` or made for another experiment."""
    found = read_json_guarded(Path(results_dir) / experiment / name)
    if not found or found.get("experiment") != experiment or key not in found:
        return None
    return found


def read_tunability(results_dir: str | Path, experiment: str) -> dict | None:
    """`tunability`'s measurement for ``experiment``, or None (see _read_measurement)."""
    return _read_measurement(results_dir, experiment, TUNABILITY_FILE, "nested")


def read_architecture(results_dir: str | Path, experiment: str) -> dict | None:
    """`architecture`'s answers for ``experiment``, or None (see _read_measurement)."""
    return _read_measurement(results_dir, experiment, ARCHITECTURE_FILE, "answers")


def read_two_stage_plan(results_dir: str | Path, experiment: str) -> dict | None:
    """compare --two-stage's plan for ``experiment`` (its family is what the verdict tests), or
    None: absent, unreadable (named on stderr) or without a family."""
    plan = read_json_guarded(Path(results_dir) / experiment / TWO_STAGE_FILE)
    return plan if plan and "family" in plan else None


def _require_a_complete_trial(results: Results, folder: Path) -> None:
    """A UserError, counting the trials by state, when no run has a complete trial."""
    if not (results.trials["state"] == "COMPLETE").any():
        counts = results.trials["state"].value_counts().to_dict()
        raise UserError(
            f"{folder}: no run has a complete trial yet "
            f"({', '.join(f'{n} {s.lower()}' for s, n in counts.items())}); "
            "run more trials before comparing"
        )


def _judgement(
    results: Results,
    scores: pd.DataFrame,
    identical: list,
    *,
    ttt: pd.DataFrame,
    horizon: dict,
    target: float,
    controls: tuple[str, ...],
) -> dict:
    """The paired tests, the chosen strategy with its reason and stability, and what the
    evidence cannot tell: the ``Analysis`` fields that judge rather than measure. Stability is
    computed only where some test could have rejected: otherwise every resample keeps the
    default by construction, and the reason says so."""
    traits = strategy_traits(results)
    tests = verdict.paired_tests(scores, identical, controls)
    choice, reason = verdict.pick(scores, traits, identical, controls)
    seeds = scores["seed"].nunique()
    powered = verdict.can_reject(tests)
    stability = (
        verdict.pick_stability(scores, traits, identical, choice, controls=controls)
        if seeds > 1 and powered
        else float("nan")
    )
    if not powered and len(tests):
        reason = (
            f"the default stands because nothing could be tested: with {seeds} seeds no "
            f"comparison can reach Holm's level (smallest attainable p "
            f"{tests['min_p'].min():.3g})"
        )
    cannot_tell = protocol.cannot_tell(
        seeds=seeds,
        tests=tests,
        reached=ttt,
        trust=horizon,
        identical=identical,
        reevaluated=bool(scores["reevaluated"].any()),
        target=target,
    )
    return dict(
        tests=tests,
        choice=choice,
        choice_reason=reason,
        stability=stability,
        cannot_tell=cannot_tell,
        traits=traits,
    )


def strategy_traits(results: Results) -> dict[str, verdict.Traits]:
    """What the tie rule may use about each strategy: whether it can run a night as planned
    (one objective, no fixed grid; from the runs' metadata) and the median compute its runs
    spent (training FLOPs)."""
    spent = results.trials.groupby(["strategy", "seed"])["train_flops"].sum()
    compute = spent.groupby("strategy").median()
    traits = {}
    for strategy in results.strategies:
        described = [
            m.get("strategy_traits", {}) for (s, _), m in results.meta.items() if s == strategy
        ]
        t = described[0] if described else {}
        ready = t.get("objectives", 1) == 1 and not t.get("fixed_queue", False)
        traits[strategy] = verdict.Traits(
            night_ready=ready, compute=float(compute.get(strategy, np.nan))
        )
    return traits


def _unpruned_only(results: Results) -> Results:
    """The records of strategies whose trials all climbed the whole ladder: fidelity trust
    from them is free of the survivors' selection."""
    never = {
        s
        for (s, _), m in results.meta.items()
        if not m.get("strategy_traits", {}).get("prunes", True)
    }
    keep = results.rungs["strategy"].isin(never)
    return replace(
        results,
        rungs=results.rungs[keep],
        trials=results.trials[results.trials["strategy"].isin(never)],
    )


def _time_to_target(trials: pd.DataFrame, target: float, warm: set) -> pd.DataFrame:
    """Kaplan-Meier medians of the compute and the wall-clock each strategy needed to reach
    ``target`` (runs that ended first are censored at their end)."""
    if not np.isfinite(target):
        strategies = sorted(trials["strategy"].unique())
        return pd.DataFrame(
            {
                "strategy": strategies,
                "runs": np.nan,
                "reached": 0,
                "median_flops": np.nan,
                "median_seconds": np.nan,
            }
        )
    flops = protocol.kaplan_meier(protocol.time_to_target(trials, target, "train_flops", warm))
    wall = protocol.kaplan_meier(protocol.time_to_target(trials, target, "wall_seconds", warm))
    return flops.rename(columns={"median": "median_flops"}).merge(
        wall[["strategy", "median"]].rename(columns={"median": "median_seconds"}), on="strategy"
    )


def _warm_start(trials: pd.DataFrame, target: float, warm: set) -> pd.DataFrame:
    """Each strategy run warm and cold on the same seeds: which reached ``target`` first (a
    NaN target is never reached: every pair undecided)."""
    per_run = protocol.time_to_target(trials, target, "train_flops", warm)
    return protocol.warm_start_effect(per_run, COLD_SUFFIX)


def _false_prunes(audit: pd.DataFrame | None) -> dict:
    counted = measures.false_prunes(audit)
    return {
        **counted,
        **protocol.share_with_interval(counted["would_have_won"], counted["audited"]),
    }


def write_plots(a: Analysis, out: Path) -> dict[str, str]:
    """Draws every comparison plot of ``a`` into ``out``; returns plot name -> PNG file name."""
    r = a.results
    return {
        "anytime": plots.anytime_plot(a.bands, out, a.mae_target),
        "time_to_target": plots.time_to_target_plot(a.ttt, out),
        "savings": plots.savings_plot(a.saved, out),
        "fidelity_trust": plots.trust_scatter(r.rungs, r.n_rungs, out),
        "importance": plots.importance_plot(
            {
                "last rung, complete trials": a.importance_final,
                "rung 1, every trial": a.importance_rung1,
            },
            out,
        ),
        "learning_curves": plots.learning_curves_plot(r.rungs, r.trials, out),
        "rank_over_time": plots.rank_over_time_plot(a.bands, out),
    }
