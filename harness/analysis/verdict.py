"""The verdict: paired, corrected tests against declared controls, a tie rule stated in
advance, identical-by-construction strategies, and how stable the pick is.

Everything here works on one score per (strategy, seed) run (lower is better: the validation
MAE a user would get from the run's incumbent) and on each strategy's declared traits; no
name order, no registry order and no strategy name other than the declared controls can
change the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

TEAM_DEFAULT = "tpe_median"  # the team's current choice: kept unless the evidence beats it
CONTROLS = (TEAM_DEFAULT, "random")  # every strategy is tested against these two
ALPHA = 0.05  # family-wise error rate over all comparisons (Holm)
POWER = 0.8  # for the smallest detectable difference

BETTER, WORSE, NOT_SEPARATED, IDENTICAL = "better", "worse", "not separated", "identical"

TIE_RULE = (
    f"Each strategy is compared with the declared controls ({', '.join(CONTROLS)}) on the "
    "runs' re-evaluated incumbents, paired by seed (exact sign-flip permutation test of the "
    f"mean difference, two-sided), with Holm's correction over all comparisons (family-wise "
    f"error {ALPHA:.0%}). The recommendation is the team's default ({TEAM_DEFAULT}) unless "
    "strategies are significantly better than it; among those, the lowest median score; a "
    "strategy that cannot prune or whose plan is a fixed grid is recommended only if it is "
    "also significantly better than every strategy that can. Remaining ties go to the "
    "strategy that spent the least compute; strategies identical by construction are named "
    "together. Names and run order never decide."
)


@dataclass(frozen=True)
class Traits:
    """What the tie rule may use about a strategy besides its scores."""

    night_ready: bool  # single objective and not a fixed grid: it can run a night as planned
    compute: float  # median compute its runs spent (the cheaper wins a remaining tie)


EXACT_PAIRS = 16  # up to 2**16 sign patterns are enumerated; 50 replayed seeds would be 2**50
RANDOM_FLIPS = 19_999  # beyond: this many random sign patterns, seeded (p resolution 1e-4)


def sign_flip_p(diffs: np.ndarray) -> float:
    """Two-sided p-value of the paired permutation (sign-flip) test of mean(diffs) = 0: exact
    up to ``EXACT_PAIRS`` pairs, else from ``RANDOM_FLIPS`` seeded random sign patterns.
    All-zero differences, or fewer than two pairs, give 1."""
    diffs = np.asarray(diffs, float)
    if len(diffs) < 2 or not np.any(diffs):  # one pair cannot be tested
        return 1.0
    exact = len(diffs) <= EXACT_PAIRS
    res = stats.permutation_test(
        (diffs,),
        np.mean,
        permutation_type="samples",
        n_resamples=np.inf if exact else RANDOM_FLIPS,
        alternative="two-sided",
        rng=None if exact else np.random.default_rng(0),
    )
    return float(res.pvalue)


def min_attainable_p(n_pairs: int) -> float:
    """The smallest two-sided p the sign-flip test can give with ``n_pairs`` pairs (exact:
    both all-same-sign patterns; random flips: the resolution of their count)."""
    if not n_pairs:
        return 1.0
    if n_pairs > EXACT_PAIRS:
        return 2.0 / (RANDOM_FLIPS + 1)
    return min(1.0, 2.0 / 2**n_pairs)


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control)."""
    p = np.asarray(pvalues, float)
    order = np.argsort(p, kind="stable")
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def detectable_difference(sd: float, n_pairs: int, m: int) -> float:
    """Smallest true mean difference the paired comparison would detect with power POWER at
    Holm's strictest level (ALPHA / m); paired t approximation. inf when the exact test cannot
    reach that level at all with ``n_pairs`` pairs."""
    level = ALPHA / max(m, 1)
    if n_pairs < 2 or min_attainable_p(n_pairs) > level or not np.isfinite(sd):
        return float("inf")
    t = stats.t.ppf(1 - level / 2, n_pairs - 1) + stats.t.ppf(POWER, n_pairs - 1)
    return float(t * sd / np.sqrt(n_pairs))


def paired_tests(scores: pd.DataFrame, identical: list[frozenset[str]]) -> pd.DataFrame:
    """Every strategy against every declared control present, paired by seed.

    ``scores``: columns strategy, seed, score. Returns one row per comparison: strategy,
    control, pairs, mean_diff (strategy - control; negative is better), p, p_holm,
    min_p, detectable, verdict.
    """
    wide = scores.pivot_table(index="seed", columns="strategy", values="score")
    controls = [c for c in CONTROLS if c in wide.columns]
    rows = []
    for control in controls:
        for strategy in sorted(wide.columns):
            if strategy == control:
                continue
            both = wide[[strategy, control]].dropna()
            diffs = (both[strategy] - both[control]).to_numpy()
            rows.append(
                {
                    "strategy": strategy,
                    "control": control,
                    "pairs": len(diffs),
                    "mean_diff": float(diffs.mean()) if len(diffs) else float("nan"),
                    "sd_diff": float(diffs.std(ddof=1)) if len(diffs) > 1 else float("nan"),
                    "p": sign_flip_p(diffs),
                    "identical": any({strategy, control} <= g for g in identical),
                }
            )
    table = pd.DataFrame(
        rows, columns=["strategy", "control", "pairs", "mean_diff", "sd_diff", "p", "identical"]
    )
    if table.empty:
        return table.assign(p_holm=[], min_p=[], detectable=[], verdict=[])
    table["p_holm"] = holm(table["p"].to_numpy())
    table["min_p"] = [min_attainable_p(n) for n in table["pairs"]]
    table["detectable"] = [
        detectable_difference(sd, n, len(table)) for sd, n in zip(table["sd_diff"], table["pairs"])
    ]
    table["verdict"] = [_verdict(r) for r in table.itertuples()]
    return table


def _verdict(row) -> str:
    if row.identical:
        return IDENTICAL
    if row.p_holm < ALPHA:
        return BETTER if row.mean_diff < 0 else WORSE
    return NOT_SEPARATED


def pick(
    scores: pd.DataFrame, traits: dict[str, Traits], identical: list[frozenset[str]]
) -> tuple[str, str]:
    """The recommended strategy and the reason, by the rule in TIE_RULE."""
    tests = paired_tests(scores, identical)
    median = scores.groupby("strategy")["score"].median()
    present = set(median.index)
    reference = next((c for c in CONTROLS if c in present), None)
    if reference is None:
        best = _cheapest(lowest(median, present), traits)
        return best, "no declared control ran: lowest median score, no test possible"
    beats = tests[(tests["control"] == reference) & (tests["verdict"] == BETTER)]
    candidates = set(beats["strategy"])
    if not candidates:
        return reference, f"no strategy separated from {reference} (the declared preference)"
    ready = {s for s in candidates if traits[s].night_ready}
    chosen = _cheapest(lowest(median, ready or candidates), traits)
    if not traits[chosen].night_ready and not _beats_all_ready(chosen, scores, traits):
        fallback = ready or ({reference} if traits[reference].night_ready else set())
        if fallback:
            chosen = _cheapest(lowest(median, fallback), traits)
            return chosen, (
                f"significantly better than {reference}; the strategies ahead of it "
                "cannot run a night as planned and do not beat it significantly"
            )
    return chosen, f"significantly better than {reference} (Holm-adjusted paired test)"


def lowest(median: pd.Series, among: set[str]) -> set[str]:
    """The names in ``among`` at the lowest median, every one of them when tied (names never
    break a tie); all of ``among`` when none has a score."""
    values = median[sorted(among)].dropna()
    if values.empty:  # no score at all (every trial pruned or failed): all tied
        return set(among)
    return set(values[np.isclose(values, values.min(), rtol=0, atol=1e-12)].index)


def _cheapest(tied: set[str], traits: dict[str, Traits]) -> str:
    cost = min(traits[s].compute for s in tied)
    cheapest = sorted(s for s in tied if traits[s].compute == cost)
    return cheapest[0]  # several left only when identical in score and cost: named together


def _beats_all_ready(strategy: str, scores: pd.DataFrame, traits: dict[str, Traits]) -> bool:
    wide = scores.pivot_table(index="seed", columns="strategy", values="score")
    ready = [s for s in wide.columns if traits[s].night_ready]
    if not ready:
        return True
    p = [sign_flip_p((wide[strategy] - wide[r]).dropna().to_numpy()) for r in ready]
    diffs = [(wide[strategy] - wide[r]).mean() for r in ready]
    adjusted = holm(np.array(p))
    return bool(all(a < ALPHA and d < 0 for a, d in zip(adjusted, diffs)))


def pick_stability(
    scores: pd.DataFrame,
    traits: dict[str, Traits],
    identical: list[frozenset[str]],
    chosen: str,
    *,
    resamples: int = 200,
    seed: int = 0,
) -> float:
    """Share of bootstrap resamples of the seeds (pairs kept together) whose pick is
    ``chosen`` or a strategy identical to it."""
    seeds = np.array(sorted(scores["seed"].unique()))
    same = next((g for g in identical if chosen in g), frozenset({chosen}))
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(resamples):
        draw = rng.choice(seeds, size=len(seeds), replace=True)
        parts = [scores[scores["seed"] == s].assign(seed=k) for k, s in enumerate(draw)]
        hits += pick(pd.concat(parts), traits, identical)[0] in same
    return hits / resamples


def identical_groups(rungs: pd.DataFrame) -> list[frozenset[str]]:
    """Strategies whose runs trained the same configurations to the same results at every
    rung, on every seed they share (common random numbers, nothing pruned differently):
    identical by construction, to be reported together and never ranked."""
    params = sorted(c for c in rungs.columns if c.startswith("param_"))
    signature: dict[str, tuple] = {}
    for strategy, runs in rungs.groupby("strategy"):
        ordered = runs.sort_values(["seed", "trial", "rung"])
        rows = ordered[["seed", "trial", "rung", "val_mae", *params]].astype(str)
        signature[strategy] = tuple(map(tuple, rows.to_numpy()))
    groups: dict[tuple, set[str]] = {}
    for strategy, sig in signature.items():
        groups.setdefault(sig, set()).add(strategy)
    return [frozenset(g) for g in groups.values() if len(g) > 1]
