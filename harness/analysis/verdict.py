"""The verdict: paired, corrected tests against declared controls, a tie rule stated in
advance, identical-by-construction strategies, and how stable the pick is.

Everything here works on one score per (strategy, seed) run (lower is better: the validation
MAE a user would get from the run's incumbent) and on each strategy's declared traits; no
name order, no registry order and no strategy name other than the declared controls can
change the result.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.records import param_columns
from harness.team import TEAM_DEFAULT  # the declared preference

CONTROLS = (TEAM_DEFAULT, "random")  # every strategy is tested against these two
ALPHA = 0.05  # significance: family-wise over the verdict's comparisons (Holm); final's one test
POWER = 0.8  # for the smallest detectable difference

BETTER, WORSE, NOT_SEPARATED, IDENTICAL = "better", "worse", "not separated", "identical"

NIGHT_READY = "one objective and no fixed grid"  # Traits.night_ready, in words

TIE_RULE = (
    f"Each strategy is compared with the declared controls ({', '.join(CONTROLS)}) on the "
    "runs' re-evaluated incumbents, paired by seed (exact sign-flip permutation test of the "
    f"mean difference, two-sided), with Holm's correction over all comparisons (family-wise "
    f"error {ALPHA:.0%}). The recommendation is the team's default ({TEAM_DEFAULT}) unless "
    "strategies are significantly better than it; among those, the lowest median score. A "
    f"strategy that cannot run a night as planned (night-ready means {NIGHT_READY}: a "
    "multi-objective search or a fixed grid is not) is recommended only if it is also "
    "significantly better than every night-ready strategy; whether a strategy prunes plays no "
    "part. Remaining ties go to the strategy that spent the least compute; strategies "
    "identical by construction are named together. Names and run order never decide."
)


@dataclass(frozen=True)
class Traits:
    """What the tie rule may use about a strategy besides its scores."""

    night_ready: bool  # NIGHT_READY: it can run a night as planned
    compute: float  # median compute its runs spent (the cheaper wins a remaining tie)


EXACT_PAIRS = 16  # up to 2**16 sign patterns are enumerated; 50 replayed seeds would be 2**50
RANDOM_FLIPS = 19_999  # beyond: this many random sign patterns, seeded (p resolution 1e-4)
POWER_SIMULATIONS = 2000  # simulated experiments behind each power figure


@functools.lru_cache(maxsize=64)
def _sign_patterns(n: int) -> np.ndarray:
    """The test's sign patterns for ``n`` pairs, (K, n): all 2**n up to EXACT_PAIRS, else
    RANDOM_FLIPS seeded random ones."""
    if n <= EXACT_PAIRS:
        bits = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
        return 1.0 - 2.0 * bits
    return np.random.default_rng(0).choice([-1.0, 1.0], size=(RANDOM_FLIPS, n))


def sign_flip_pvalues(diffs: np.ndarray) -> np.ndarray:
    """Two-sided p-values of the paired sign-flip test of mean = 0, one per row of ``diffs``
    (S, n): exact up to ``EXACT_PAIRS`` pairs (as scipy.stats.permutation_test computes it),
    else from ``RANDOM_FLIPS`` seeded random sign patterns (observed pattern counted once).
    Rows that are all zero, or fewer than two pairs, give 1."""
    diffs = np.atleast_2d(np.asarray(diffs, float))
    n = diffs.shape[1]
    if n < 2:
        return np.ones(len(diffs))
    patterns = _sign_patterns(n)
    # Every pattern's negation is enumerated too, so the exact null is symmetric: the smaller
    # tail is the count at or beyond |observed|, and half the patterns (last sign +) give it.
    half = patterns[: len(patterns) // 2] if n <= EXACT_PAIRS else None
    observed = diffs.mean(axis=1)
    tol = 1e-12 * np.maximum(1.0, np.abs(observed))
    out = np.empty(len(diffs))
    for lo in range(0, len(diffs), 256):  # bounded memory: (K, 256) null means at a time
        block = diffs[lo : lo + 256]
        t, eps = observed[lo : lo + 256], tol[lo : lo + 256]
        if half is not None:
            null, beyond = half @ block.T / n, np.abs(t) - eps
            tail = (null >= beyond).sum(axis=0) + (null <= -beyond).sum(axis=0)
            p = 2 * tail / len(patterns)
        else:
            null = patterns @ block.T / n
            greater = (null >= t - eps).sum(axis=0)
            less = (null <= t + eps).sum(axis=0)
            p = 2 * (np.minimum(greater, less) + 1) / (len(patterns) + 1)
        out[lo : lo + 256] = np.minimum(p, 1.0)
    out[~np.any(diffs, axis=1)] = 1.0
    return out


def sign_flip_p(diffs: np.ndarray) -> float:
    """Two-sided p-value of the paired sign-flip test of mean(diffs) = 0 (see
    ``sign_flip_pvalues``)."""
    return float(sign_flip_pvalues(np.asarray(diffs, float)[None, :])[0])


def min_attainable_p(n_pairs: int) -> float:
    """The smallest two-sided p the sign-flip test can give with ``n_pairs`` pairs (exact:
    both all-same-sign patterns; random flips: the resolution of their count)."""
    if n_pairs < 2:
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


def simulated_power(
    effect: float, sd: float, n_pairs: int, level: float, sims: int = POWER_SIMULATIONS, seed=0
) -> float:
    """The share of simulated experiments in which the sign-flip test actually used rejects at
    ``level`` in the right direction, when the paired differences are normal with mean
    ``-effect`` (the strategy better by ``effect``) and standard deviation ``sd``."""
    if n_pairs < 2 or min_attainable_p(n_pairs) > level:
        return 0.0
    if not sd > 0:
        return 1.0 if effect > 0 else 0.0
    z = np.random.default_rng(seed).standard_normal((sims, n_pairs))
    diffs = -effect + sd * z
    p = sign_flip_pvalues(diffs)
    return float(np.mean((p <= level) & (diffs.mean(axis=1) < 0)))


_STANDARD_DETECTABLE: dict[tuple[int, float], float] = {}


def detectable_difference(sd: float, n_pairs: int, m: int) -> float:
    """Smallest true mean difference the paired sign-flip test detects with power POWER at
    Holm's strictest level (ALPHA / m), found by simulating the test (power depends only on
    difference / sd, so one search per pair count and level). inf when the test cannot reach
    that level at all with ``n_pairs`` pairs."""
    level = ALPHA / max(m, 1)
    if n_pairs < 2 or min_attainable_p(n_pairs) > level or not np.isfinite(sd):
        return float("inf")
    if sd == 0:
        return 0.0
    key = (n_pairs, level)
    if key not in _STANDARD_DETECTABLE:
        lo, hi = 0.0, 8.0
        while simulated_power(hi, 1.0, n_pairs, level) < POWER and hi < 1e3:
            lo, hi = hi, hi * 2
        for _ in range(10):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if simulated_power(mid, 1.0, n_pairs, level) < POWER else (lo, mid)
        _STANDARD_DETECTABLE[key] = hi
    return float(_STANDARD_DETECTABLE[key] * sd)


def fewest_pairs(level: float) -> int:
    """The fewest pairs with which the sign-flip test can reject at ``level`` at all."""
    n = 2
    while min_attainable_p(n) > level:
        n += 1
    return n


def seeds_for_power(effect: float, sd: float, m: int, most: int = 100) -> tuple[int, float]:
    """The fewest paired seeds at which the sign-flip test, at Holm's strictest level over a
    family of ``m`` tests, detects a true ``effect`` with power POWER (simulated), and that
    power; (``most``, its power) when even ``most`` seeds fall short."""
    level = ALPHA / max(m, 1)
    n = min(fewest_pairs(level), most)
    power = simulated_power(effect, sd, n, level)
    while power < POWER and n < most:
        n += 1
        power = simulated_power(effect, sd, n, level)
    return n, power


def paired_tests(
    scores: pd.DataFrame, identical: list[frozenset[str]], controls: tuple[str, ...] = CONTROLS
) -> pd.DataFrame:
    """Every strategy against every one of ``controls`` present, paired by seed.

    ``scores``: columns strategy, seed, score. Returns one row per comparison: strategy,
    control, pairs, mean_diff (strategy - control; negative is better), p, p_holm,
    min_p, detectable, verdict.
    """
    return _tests(_by_seed(scores), identical, controls, power=True)


def _by_seed(scores: pd.DataFrame) -> pd.DataFrame:
    """``scores`` (strategy, seed, score) as seeds x strategies, both sorted (the mean where a
    seed has several); a strategy with no score at all is left out."""
    return scores.pivot_table(index="seed", columns="strategy", values="score")


def _tests(
    wide: pd.DataFrame, identical: list[frozenset[str]], controls, power: bool = False
) -> pd.DataFrame:
    """``paired_tests`` on scores already laid out by ``_by_seed``; ``power=False`` leaves out
    min_p and detectable, which no verdict reads (the detectable difference is simulated
    afresh for each new number of pairs: the pick's bootstrap meets many)."""
    controls = [c for c in controls if c in wide.columns]
    rows, diffs = [], []
    for control in controls:
        for strategy in sorted(wide.columns):
            if strategy == control:
                continue
            d = _paired_differences(wide, strategy, control)
            diffs.append(d)
            rows.append(
                {
                    "strategy": strategy,
                    "control": control,
                    "pairs": len(d),
                    "mean_diff": float(d.mean()) if len(d) else float("nan"),
                    "sd_diff": float(d.std(ddof=1)) if len(d) > 1 else float("nan"),
                    "identical": any({strategy, control} <= g for g in identical),
                }
            )
    table = pd.DataFrame(
        rows, columns=["strategy", "control", "pairs", "mean_diff", "sd_diff", "identical"]
    )
    table.insert(5, "p", _pvalues(diffs))
    if table.empty:
        power_columns = dict(min_p=[], detectable=[]) if power else {}
        return table.assign(p_holm=[], **power_columns, verdict=[])
    table["p_holm"] = holm(table["p"].to_numpy())
    if power:
        table["min_p"] = [min_attainable_p(n) for n in table["pairs"]]
        table["detectable"] = [
            detectable_difference(sd, n, len(table))
            for sd, n in zip(table["sd_diff"], table["pairs"])
        ]
    table["verdict"] = [_verdict(r) for r in table.itertuples()]
    return table


def _paired_differences(wide: pd.DataFrame, strategy: str, control: str) -> np.ndarray:
    """``strategy`` minus ``control`` on the seeds where both have a score."""
    d = wide[strategy].to_numpy(float) - wide[control].to_numpy(float)
    return d[~np.isnan(d)]


def differences_against(
    scores: pd.DataFrame, strategies: list[str], control: str, min_pairs: int
) -> dict[str, np.ndarray]:
    """Each of ``strategies`` minus ``control``, paired by seed (``scores``: strategy, seed,
    score), for those with at least ``min_pairs`` pairs."""
    wide = scores.pivot_table(index="seed", columns="strategy", values="score")
    if control not in wide:
        return {}
    pairs = {s: _paired_differences(wide, s, control) for s in strategies if s in wide}
    return {s: d for s, d in pairs.items() if len(d) >= min_pairs}


def _pvalues(diffs: list[np.ndarray]) -> np.ndarray:
    """``sign_flip_p`` of each array of paired differences, those with the same number of pairs
    in one batch (the bootstrap of the pick runs every comparison hundreds of times)."""
    out = np.ones(len(diffs))
    for n in {len(d) for d in diffs}:
        same = [i for i, d in enumerate(diffs) if len(d) == n]
        out[same] = sign_flip_pvalues(np.array([diffs[i] for i in same]).reshape(len(same), n))
    return out


def _verdict(row) -> str:
    if row.identical:
        return IDENTICAL
    if row.p_holm < ALPHA:
        return BETTER if row.mean_diff < 0 else WORSE
    return NOT_SEPARATED


def pick(
    scores: pd.DataFrame,
    traits: dict[str, Traits],
    identical: list[frozenset[str]],
    controls: tuple[str, ...] = CONTROLS,
) -> tuple[str, str]:
    """The recommended strategy and the reason, by the rule in TIE_RULE."""
    median = scores.groupby("strategy")["score"].median()
    return _pick(_by_seed(scores), median, traits, identical, controls)


def _pick(wide, median, traits, identical, controls) -> tuple[str, str]:
    """``pick`` on the scores laid out by ``_by_seed`` and each strategy's median score."""
    tests = _tests(wide, identical, controls)
    present = set(median.index)
    reference = next((c for c in controls if c in present), None)
    if reference is None:
        best = _cheapest(lowest(median, present), traits)
        return best, "no declared control ran: lowest median score, no test possible"
    beats = tests[(tests["control"] == reference) & (tests["verdict"] == BETTER)]
    candidates = set(beats["strategy"])
    if not candidates:
        return reference, f"no strategy separated from {reference} (the declared preference)"
    ready = {s for s in candidates if traits[s].night_ready}
    chosen = _cheapest(lowest(median, ready or candidates), traits)
    if not traits[chosen].night_ready and not _beats_all_ready(chosen, wide, traits):
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


def _beats_all_ready(strategy: str, wide: pd.DataFrame, traits: dict[str, Traits]) -> bool:
    ready = [s for s in wide.columns if traits[s].night_ready]
    if not ready:
        return True
    pairs = [_paired_differences(wide, strategy, r) for r in ready]
    adjusted = holm(_pvalues(pairs))
    diffs = [d.mean() if len(d) else np.nan for d in pairs]
    return bool(all(a < ALPHA and d < 0 for a, d in zip(adjusted, diffs)))


def pick_stability(
    scores: pd.DataFrame,
    traits: dict[str, Traits],
    identical: list[frozenset[str]],
    chosen: str,
    *,
    controls: tuple[str, ...] = CONTROLS,
    resamples: int = 200,
    seed: int = 0,
) -> float:
    """Share of bootstrap resamples of the seeds (pairs kept together) whose pick is
    ``chosen`` or a strategy identical to it."""
    seeds = np.array(sorted(scores["seed"].unique()))
    rows_of = scores.reset_index(drop=True).groupby("seed").indices  # seed -> row positions
    # Laid out once, every seed a row: a resample's layout is its drawn rows, in draw order
    # (as _by_seed lays out the drawn seeds renumbered 0..n-1), less the strategies it left
    # without a score.
    wide = _by_seed(scores).reindex(seeds)
    same = twins_of(chosen, identical)
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(resamples):
        draw = rng.choice(seeds, size=len(seeds), replace=True)
        rows = scores.iloc[np.concatenate([rows_of[s] for s in draw])]
        median = rows.groupby("strategy")["score"].median()
        drawn = wide.iloc[np.searchsorted(seeds, draw)].reset_index(drop=True)
        drawn = drawn.loc[:, drawn.notna().any()]
        hits += _pick(drawn, median, traits, identical, controls)[0] in same
    return hits / resamples


def twins_of(strategy: str, identical: list[frozenset[str]]) -> frozenset[str]:
    """``strategy``'s group of strategies identical by construction (itself alone if none)."""
    return next((g for g in identical if strategy in g), frozenset({strategy}))


def named_with_twins(chosen: str, identical: list[frozenset[str]]) -> str:
    """``chosen``, or its whole group when strategies identical to it by construction exist
    ("random = tpe"): no name in the group is more the winner than another."""
    return " = ".join(sorted(twins_of(chosen, identical)))


def can_reject(tests: pd.DataFrame) -> bool:
    """Whether any comparison could have been significant at Holm's strictest level with the
    pairs it had: without it, a verdict is the declared default by construction."""
    if not len(tests):
        return False
    return bool((tests["min_p"] <= ALPHA / len(tests)).any())


def identical_groups(rungs: pd.DataFrame) -> list[frozenset[str]]:
    """Strategies whose runs trained the same configurations to the same results at every
    rung, on every seed they share (common random numbers, nothing pruned differently):
    identical by construction, to be reported together and never ranked."""
    params = sorted(param_columns(rungs))
    signature: dict[str, tuple] = {}
    for strategy, runs in rungs.groupby("strategy"):
        ordered = runs.sort_values(["seed", "trial", "rung"])
        rows = ordered[["seed", "trial", "rung", "val_mae", *params]].astype(str)
        signature[strategy] = tuple(map(tuple, rows.to_numpy()))
    groups: dict[tuple, set[str]] = {}
    for strategy, sig in signature.items():
        groups.setdefault(sig, set()).add(strategy)
    return [frozenset(g) for g in groups.values() if len(g) > 1]
