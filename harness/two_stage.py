"""``compare --two-stage``: a verdict with power at an affordable price.

1. **Screen** every strategy on the replay (many seeds, seconds each), scored on re-evaluated
   incumbents as the real protocol scores them.
2. **Size** the confirmation before it runs: the paired spread of the screen's best one or two
   against the team's default gives, by simulating the exact sign-flip test, the fewest real
   seeds that detect the team's margin (3% of v4) with 80% power in a family of at most three
   tests; its cost in minutes is stated.
3. **Confirm** those strategies against the default in real paired runs; the real report then
   tests only that family (``two_stage.json`` names it), so the confirmation decides. When the
   screen asks for more seeds than the fewest with which the test can reject at all, those
   fewest run first (an internal pilot); the same power analysis, at the standard deviation
   their real differences imply if the effect sought is real, sets how many run in all. The
   replay does not reproduce how alike two configurations trained with the same seed end (on
   quick the real spread was 0.4 times the screen's). The size depends on the differences'
   magnitudes, never their signs, so given the size the sign-flip test is exact and under no
   difference rejects at most at its level (``tests/test_two_stage_sizing.py`` enumerates it).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from harness.analysis import protocol, verdict
from harness.analysis.agreement import surrogate_evidence
from harness.analysis.analyze import TWO_STAGE_FILE, analyze, pooled_scores
from harness.compare import CompareOptions, compare
from harness.defaults import CONFIRM, MAX_SEEDS, SCREEN_SEEDS
from harness.errors import UserError
from harness.layout import results_folder
from harness.record import record
from harness.replay.prepare import learning_curves
from harness.sidefiles import write_json_atomic
from strategies.registry import COLD_SUFFIX

PILOT_CONFIDENCE = 0.8  # the pilot's standard deviation is sized at this one-sided upper bound


@dataclass(frozen=True)
class TwoStageOptions:
    """How many replayed seeds screen, how many strategies are confirmed, the most real seeds
    the confirmation may take, and the margin it must detect."""

    screen_seeds: int = SCREEN_SEEDS
    confirm: int = CONFIRM  # strategies confirmed against the default (a family of at most 3 tests)
    max_seeds: int = MAX_SEEDS
    margin: float = protocol.TARGET_MARGIN


def two_stage(experiment, compare_opts: CompareOptions, opts: TwoStageOptions) -> dict:
    """Record (if nothing is recorded), screen on the replay, size and run the real
    confirmation; returns and writes ``two_stage.json`` with each stage's wall-clock."""
    base = Path(compare_opts.results_dir)
    clock: dict[str, float] = {}
    start = time.monotonic()
    _ensure_recorded(experiment, compare_opts)
    clock["record"] = time.monotonic() - start
    screen_opts = replace(
        compare_opts, backend="replay", seeds=tuple(range(opts.screen_seeds)), workers=1
    )
    compare(experiment, screen_opts)
    screen = analyze(base, results_folder(experiment, replayed=True), echo=False)
    clock["screen"] = time.monotonic() - start - clock["record"]
    plan = confirmation_plan(screen, opts, compare_opts.reeval_seeds)
    plan["options"] = asdict(opts)
    write_json_atomic(base / experiment.name / TWO_STAGE_FILE, plan)
    print(plan_line(plan), flush=True)
    family = tuple(plan["family"])
    pilot = verdict.fewest_pairs(plan["level"])
    if plan["candidates"] and pilot < plan["seeds"]:
        compare(experiment, replace(compare_opts, strategies=family, seeds=tuple(range(pilot))))
        real = pooled_scores(base, experiment.name)
        plan["pilot"] = resize_on_pilot(real, plan, pilot, opts.max_seeds)
        plan["seeds"], plan["power"] = plan["pilot"]["seeds_after"], plan["pilot"]["power_after"]
        plan["estimated_minutes"] *= plan["seeds"] / plan["pilot"]["screen_seeds"]
        write_json_atomic(base / experiment.name / TWO_STAGE_FILE, plan)
        print(pilot_line(plan), flush=True)
    compare(experiment, replace(compare_opts, strategies=family, seeds=tuple(range(plan["seeds"]))))
    clock["confirm"] = time.monotonic() - start - clock["record"] - clock["screen"]
    plan["wall_seconds"] = {**clock, "total": time.monotonic() - start}
    write_json_atomic(base / experiment.name / TWO_STAGE_FILE, plan)
    return plan


def pilot_spread(scores: pd.DataFrame, plan: dict, pilot: int) -> float:
    """The largest real paired spread over the first ``pilot`` seeds of ``scores`` (strategy,
    seed, score) between a candidate and the default: the root mean square of the paired
    differences, which flipping their signs does not change (a standard deviation, centred on
    the mean seen, would let the direction of the differences steer the size). NaN when no
    candidate has two scored pairs."""
    ran = scores[scores["seed"] < pilot].dropna(subset=["score"])
    if ran.empty:
        return float("nan")
    pairs = verdict.differences_against(ran, plan["candidates"], plan["default"], min_pairs=2)
    return max((float(np.sqrt(np.mean(d**2))) for d in pairs.values()), default=float("nan"))


def sd_under_effect(rms: float, effect: float) -> float:
    """The paired standard deviation the pilot implies if the candidate is better by ``effect``
    (the alternative the power is for): the mean square of the differences is then effect**2
    plus the variance, so sqrt(rms**2 - effect**2), 0 when the pilot's differences are smaller
    than the effect itself. ``effect`` is fixed in advance, so this too ignores the signs."""
    return float(np.sqrt(max(rms**2 - effect**2, 0.0)))


def upper_bound_factor(pairs: int, confidence: float = PILOT_CONFIDENCE) -> float:
    """How much a standard deviation estimated from ``pairs`` pairs is raised to its one-sided
    ``confidence`` upper bound (chi-square with ``pairs`` degrees of freedom: the mean square
    is taken around the effect, not re-centred). Without it a pilot of 6 pairs too often
    under-sizes: simulated at quick's screen spread (0.11) and effect (0.117), 67% power; with
    it 79%, at 13.9 seeds on average (at most 20)."""
    return float(np.sqrt(pairs / stats.chi2.ppf(1 - confidence, pairs)))


def seeds_on_spread(effect: float, sd: float, m: int, pilot: int, most: int) -> int:
    """The fewest seeds, from ``pilot`` to ``most``, at which the simulated sign-flip test over a
    family of ``m`` detects ``effect`` with the power aimed at, given the paired ``sd``;
    ``most`` when none does."""
    for n in range(pilot, most + 1):
        if verdict.detectable_difference(sd, n, m) <= effect:
            return n
    return most


def resize_on_pilot(scores: pd.DataFrame, plan: dict, pilot: int, most: int) -> dict:
    """The confirmation's size again from the ``pilot`` seeds run so far: the seeds the same
    power analysis asks for at the standard deviation their spread implies under the effect
    sought (``pilot_spread``, ``sd_under_effect``), raised to its upper bound at
    ``PILOT_CONFIDENCE`` (``upper_bound_factor``), never fewer than the pilot's nor more than
    ``most``; the screen's sizing when the pilot scored nothing. The size depends on the pairs'
    magnitudes only, never on their signs: given the size, the sign-flip test is exact, so
    under no difference it rejects at most at its level."""
    rms = pilot_spread(scores, plan, pilot)
    m = len(plan["candidates"])
    if np.isfinite(rms):
        sd = sd_under_effect(rms, plan["effect"])
        planned = sd * upper_bound_factor(pilot)
        seeds = seeds_on_spread(plan["effect"], planned, m, pilot, most)
        power = verdict.simulated_power(plan["effect"], planned, seeds, plan["level"])
    else:
        sd = planned = float("nan")
        seeds, power = plan["seeds"], plan["power"]
    return {
        "pilot_seeds": pilot,
        "paired_rms": rms,
        "sd_estimate": sd,
        "sd_planned": planned,
        "confidence": PILOT_CONFIDENCE,
        "screen_seeds": plan["seeds"],
        "screen_power": plan["power"],
        "seeds_after": int(seeds),
        "power_after": float(power),
    }


def pilot_line(plan: dict) -> str:
    """What the pilot changed, said before the rest of the confirmation runs."""
    p = plan["pilot"]
    more = plan["seeds"] - p["pilot_seeds"]
    if not np.isfinite(p["paired_rms"]):
        return "two-stage: the pilot scored no pair; the screen's sizing stands"
    if p["sd_estimate"] == 0:
        return (
            f"two-stage: over the first {p['pilot_seeds']} real seeds the paired differences' "
            f"root mean square is {p['paired_rms']:.3f}, below the effect sought "
            f"({plan['effect']:.3f}); were it real they would be larger: none more to run (the "
            f"screen asked for {p['screen_seeds']})"
        )
    return (
        f"two-stage: over the first {p['pilot_seeds']} real seeds the paired differences' root "
        f"mean square is {p['paired_rms']:.3f}, a standard deviation of {p['sd_estimate']:.3f} "
        f"if the effect sought is real (the screen's {plan['sd_used']:.3f}); sized on its "
        f"{p['confidence']:.0%} upper bound, {p['sd_planned']:.3f}: "
        f"{plan['seeds']} seeds ({plan['power']:.0%} power"
        + (", capped by --max-seeds" if plan["power"] < plan["power_target"] else "")
        + "), "
        + (f"{more} more to run" if more else "none more to run")
        + f" (the screen asked for {p['screen_seeds']})"
    )


def _ensure_recorded(experiment, opts: CompareOptions) -> None:
    """``record``'s default design, unless learning curves of a record run already exist."""
    try:
        learning_curves(opts.results_dir, experiment.name)
    except UserError:  # no record yet: make one
        record(experiment, results_dir=opts.results_dir, device=opts.device,
               progress=opts.progress)  # fmt: skip


def confirmation_plan(screen, opts: TwoStageOptions, reeval_seeds: int) -> dict:
    """From a replayed ``screen`` (an Analysis): the strategies to confirm, the paired spread
    and effect the power analysis used, the seeds it asks for and their simulated power, and
    the estimated minutes of the real confirmation."""
    default = verdict.TEAM_DEFAULT
    candidates = screen_candidates(screen, opts.confirm)
    family = [default, *candidates]
    scores = screen.scores.pivot_table(index="seed", columns="strategy", values="score")
    spreads = {c: float((scores[c] - scores[default]).std(ddof=1)) for c in candidates}
    v4 = protocol.v4_per_seed(screen.results.warm_rungs(), screen.results.n_rungs).mean()
    effect = float(opts.margin * v4)
    sd = max(spreads.values()) if spreads else float("nan")
    seeds, power = verdict.seeds_for_power(effect, sd, len(candidates), most=opts.max_seeds)
    seconds = _seconds_per_run(screen, family, reeval_seeds)
    return {
        "default": default,
        "candidates": candidates,
        "family": family,
        "screen": _screen_table(screen, family),
        "surrogate_trusted": bool(_surrogate_trusted(screen)),
        "effect": effect,
        "effect_share": opts.margin,
        "v4_mae": float(v4),
        "paired_sd": spreads,
        "sd_used": sd,
        "level": verdict.ALPHA / max(len(candidates), 1),
        "seeds": int(seeds),
        "power": float(power),
        "power_target": verdict.POWER,
        "estimated_minutes": float(sum(seconds.values()) * seeds / 60),
    }


def screen_candidates(screen, k: int) -> list[str]:
    """The screen's ``k`` best night-ready strategies by median re-evaluated score (an exact
    tie broken by the mean score, then by the compute spent, not by name), never the default,
    a strategy identical to it by construction, or a cold twin; of strategies identical to
    each other, one stands for its group (confirming it confirms them all)."""
    default = verdict.TEAM_DEFAULT
    twins = verdict.twins_of(default, screen.identical)
    traits = screen.traits
    by = screen.scores.groupby("strategy")["score"]
    order = pd.DataFrame({"median": by.median(), "mean": by.mean()}).dropna()
    order["compute"] = [traits[s].compute for s in order.index]
    chosen: list[str] = []
    for s in order.sort_values(["median", "mean", "compute"], kind="stable").index:
        if s in twins or s.endswith(COLD_SUFFIX) or not traits[s].night_ready:
            continue
        if any(s in verdict.twins_of(c, screen.identical) for c in chosen):
            continue
        chosen.append(s)
    return chosen[: max(0, min(k, 2))]


def _surrogate_trusted(screen) -> bool:
    ev = surrogate_evidence(screen.results_dir, screen.results.experiment["name"]) or {}
    return bool(ev.get("trusted", False))


def _screen_table(screen, family: list[str]) -> list[dict]:
    """Per strategy of the screen: median re-evaluated score, and its test against the
    default (Holm over the screen's comparisons)."""
    median = screen.scores.groupby("strategy")["score"].median()
    tests = screen.tests[screen.tests["control"] == verdict.TEAM_DEFAULT].set_index("strategy")
    rows = []
    for s in median.sort_values().index:
        t = tests.loc[s] if s in tests.index else None
        rows.append(
            {
                "strategy": s,
                "median_score": float(median[s]),
                "diff_vs_default": None if t is None else float(t["mean_diff"]),
                "p_holm": None if t is None else float(t["p_holm"]),
                "verdict": None if t is None else str(t["verdict"]),
                "confirmed": s in family,
            }
        )
    return rows


def _seconds_per_run(screen, family: list[str], reeval_seeds: int) -> dict[str, float]:
    """Seconds one real run of each family strategy should take, from the replay's simulated
    clock (the surrogate prices rungs at the cost recorded on this machine) plus its incumbent's
    re-evaluations (each a full unpruned climb)."""
    trials = screen.results.trials
    per_run = trials.groupby(["strategy", "seed"])["wall_seconds"].sum().groupby("strategy")
    complete = trials[trials["state"] == "COMPLETE"]
    full_trial = float(complete["train_seconds"].median() + complete["eval_seconds"].median())
    return {s: float(per_run.median().get(s, np.nan)) + reeval_seeds * full_trial for s in family}


def plan_line(plan: dict) -> str:
    """The confirmation's size and cost, said before it runs."""
    family = ", ".join(plan["candidates"]) or "nothing"
    short = (
        f" (--max-seeds {plan['seeds']} is too few for {plan['power_target']:.0%} power: this "
        "confirmation can hardly reject)"
        if plan["power"] < plan["power_target"]
        else ""
    )
    return (
        f"two-stage: the screen confirms {family} against {plan['default']}: "
        f"{plan['seeds']} real seeds detect {plan['effect_share']:.0%} of v4 "
        f"({plan['effect']:.3f} bikes) with {plan['power']:.0%} power at level "
        f"{plan['level']:.3g} (paired sd {plan['sd_used']:.3f}, simulated sign-flip test); "
        f"about {plan['estimated_minutes']:.0f} min of real training on this machine{short}"
    )
