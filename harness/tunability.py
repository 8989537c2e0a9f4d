"""Which parameters are worth searching, and how many, measured on the replay.

Two measured answers to "is this parameter worth searching":

- **Tunability** (Probst, Boulesteix and Bischl, JMLR 2019): the gain over v4 from tuning
  that parameter alone, the others at v4's values.
- **Tuning risk** (Weerts, Mueller and Vanschoren, 2020): the loss from fixing it at v4's
  value while the others are tuned, judged against a non-inferiority margin.

Then the question of size: the strategy searches nested spaces (the top 1, 2, 3, ... parameters
by tunability, the rest at v4's values) at the night's trial counts. The smallest space that
is not worse than the best one, within the seeds' noise, is the size the evidence prefers.

Every study is a real Optuna study (the strategy's own sampler and pruner) on the replay
surrogate. Its first trial is v4 (the warm start), and it counts COMPLETE and PRUNED trials
as a run's trial budget does. It is scored as the comparison scores: the incumbent at each
trial count is re-evaluated on fresh seeds shared by every space on that seed (common random
numbers), so each comparison is paired by seed. One study to the largest count gives every
smaller count too: a sampler does not know its budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import optuna
from scipy import stats
from tqdm import tqdm

from harness.defaults import REEVAL_SEEDS  # fresh seeds per incumbent, as compare's default
from harness.errors import UserError
from harness.parallel import forked_map
from harness.replay.surrogate import Surrogate
from harness.team import NIGHT_TRIAL_COUNTS
from strategies import SearchSpace, Strategy, StrategyInputs
from strategies.space import Ladder

BUDGETS = NIGHT_TRIAL_COUNTS  # the night's trial counts the brief asks about
NONINFERIORITY = 0.01  # fixing a parameter at v4 is safe if it costs under 1% of v4's MAE


def check_strategy(strategy: Strategy) -> None:
    """Only a single-objective strategy that samples (not a fixed queue) can search a space."""
    if strategy.searched is not None:
        raise UserError(
            f"--strategy {strategy.name}: tunability chooses the parameters itself; "
            "give the strategy without its .search- suffix"
        )
    if strategy.objectives > 1 or strategy.queue is not None:
        raise UserError(
            f"--strategy {strategy.name}: tunability needs a strategy that samples one "
            "objective (not a fixed queue or a two-objective search)"
        )


@dataclass(frozen=True)
class Setting:
    """What every replayed study shares: the surrogate, the full space, the ladder, the
    strategy and the trial counts at which incumbents are scored."""

    surrogate: Surrogate
    space: SearchSpace
    ladder: Ladder
    strategy: Strategy
    budgets: tuple[int, ...] = BUDGETS


def fresh_seeds(seed: int) -> list[int]:
    """The re-evaluation seeds of replay seed ``seed``: shared by every space on that seed."""
    return [1_000_003 * (seed + 1) + j for j in range(REEVAL_SEEDS)]


def score(surrogate: Surrogate, params: dict, seed: int) -> float:
    """``params``' re-evaluated top-rung MAE on replay seed ``seed``'s fresh seeds."""
    return float(np.mean([surrogate.reevaluate(params, f) for f in fresh_seeds(seed)]))


def replay_study(setting: Setting, searched: Sequence[str], seed: int) -> list[float]:
    """The strategy on the space of ``searched`` (the others at v4's values), one seed: the
    re-evaluated incumbent after each of ``setting.budgets`` trials. Nothing searched: v4."""
    defaults = setting.space.defaults()
    if not searched:
        return [score(setting.surrogate, defaults, seed)] * len(setting.budgets)
    sub = SearchSpace(tuple(p for p in setting.space.params if p.name in set(searched)))
    sampler, pruner = setting.strategy.make(StrategyInputs(sub, setting.ladder, seed))
    study = optuna.create_study(sampler=sampler, pruner=pruner)
    if setting.strategy.warm_start:
        study.enqueue_trial(sub.defaults())  # v4 first, as every run of the harness
    steps, last = setting.ladder.steps, len(setting.ladder) - 1

    def objective(trial: optuna.Trial) -> float:
        params = {**defaults, **sub.suggest(trial)}
        curve = setting.surrogate.sample(params, np.random.default_rng((seed, trial.number)))
        for k, step in enumerate(steps):
            trial.report(float(curve[k]), step)
            if k < last and trial.should_prune():
                raise optuna.TrialPruned()
        return float(curve[-1])

    scores, best = [], (np.inf, defaults)  # every trial counts (none fails on the surrogate)

    def snapshot(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        nonlocal best
        if trial.state == optuna.trial.TrialState.COMPLETE and trial.value < best[0]:
            best = (trial.value, {**defaults, **trial.params})
        if trial.number + 1 in setting.budgets:
            scores.append(score(setting.surrogate, best[1], seed))

    study.optimize(objective, n_trials=max(setting.budgets), callbacks=[snapshot])
    return scores


def tunability_order(gains: dict[str, np.ndarray]) -> list[str]:
    """Parameters by mean tunability, largest first (a tie broken by the smaller spread)."""
    return sorted(gains, key=lambda p: (-float(np.mean(gains[p])), float(np.std(gains[p]))))


def interval(diffs: np.ndarray) -> tuple[float, float]:
    """A 95% bootstrap interval of the mean of paired differences (BCa, seeded)."""
    if len(diffs) < 3 or np.ptp(diffs) == 0:
        m = float(np.mean(diffs))
        return m, m
    res = stats.bootstrap(
        (diffs,), np.mean, confidence_level=0.95, n_resamples=2000, random_state=0
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _task(setting: Setting, job: tuple[tuple[str, ...], int]) -> list[float]:
    return replay_study(setting, *job)


def run_studies(
    setting: Setting,
    spaces: list[tuple[str, ...]],
    seeds: int,
    progress: bool = True,
    first_seed: int = 0,
) -> dict[tuple[str, ...], np.ndarray]:
    """Every space x seed (``first_seed`` onwards), on the machine's cores: (seeds, budgets)
    scores per space."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # one line per trial otherwise
    jobs = [(s, first_seed + k) for s in spaces for k in range(seeds)]
    out = {s: np.empty((seeds, len(setting.budgets))) for s in spaces}
    bar = tqdm(total=len(jobs), desc="replayed studies", unit="study", disable=not progress)
    for (searched, seed), scores in zip(jobs, forked_map(_task, setting, jobs, chunksize=4)):
        out[searched][seed - first_seed] = scores
        bar.update()
    bar.close()
    return out


def measure(setting: Setting, seeds: int, progress: bool = True) -> dict:
    """Tunability and tuning risk of every parameter (at the middle trial count), then the
    nested spaces by tunability at every trial count, and the size each count prefers.

    The nested spaces (and v4 beside them) run on other seeds than the ones that ordered them:
    scored on the same seeds, the first parameters would look better than they are. Each is
    compared with a reference fixed in advance, searching every parameter, never with the best
    of the lot (whose choice would bias every difference to it)."""
    names = setting.space.names
    full = tuple(names)
    first = [(), full, *((p,) for p in names), *(tuple(n for n in names if n != p) for p in names)]
    scores = run_studies(setting, list(dict.fromkeys(first)), seeds, progress)
    at = len(setting.budgets) // 2  # the middle count judges single parameters
    v4 = scores[()][:, at]
    gains = {p: v4 - scores[(p,)][:, at] for p in names}
    order = tunability_order(gains)
    nested = [tuple(n for n in names if n in order[:k]) for k in range(1, len(names) + 1)]
    held_out = run_studies(setting, [(), *nested], seeds, progress, first_seed=seeds)
    margin = NONINFERIORITY * float(np.mean(v4))

    def risk(p: str) -> dict:
        loss = scores[tuple(n for n in names if n != p)][:, at] - scores[full][:, at]
        row = _row(p, loss)
        return {**row, "safe_to_fix": bool(row["high"] < margin)}

    return {
        "strategy": setting.strategy.name,
        "seeds": seeds,
        "budgets": list(setting.budgets),
        "judged_at": setting.budgets[at],
        "v4_score": float(np.mean(v4)),
        "margin": margin,
        "tunability": [_row(p, gains[p]) for p in order],
        "tuning_risk": [risk(p) for p in order],
        "nested": _nested(setting.budgets, nested, held_out, margin),
        "nested_seeds": [seeds, 2 * seeds - 1],
    }


def _row(param: str, diffs: np.ndarray) -> dict:
    low, high = interval(diffs)
    return {"param": param, "mean": float(np.mean(diffs)), "low": low, "high": high}


def _nested(budgets, nested, scores, margin: float) -> list[dict]:
    """Per trial count: each nested space's mean score, its paired difference to searching
    every parameter and to v4, and the preferred size: the smallest space that is, with 95%
    confidence (one-sided), at most ``margin`` worse than searching every parameter (the full
    space where none is)."""
    out = []
    for b, count in enumerate(budgets):
        full, v4 = scores[nested[-1]][:, b], scores[()][:, b]
        rows = []
        for k, s in enumerate(nested):
            vs_full, vs_v4 = interval(scores[s][:, b] - full), interval(scores[s][:, b] - v4)
            rows.append({"size": k + 1, "params": list(s), "mean": float(scores[s][:, b].mean()),
                         "vs_full_low": vs_full[0], "vs_full_high": vs_full[1],
                         "vs_v4_low": vs_v4[0], "vs_v4_high": vs_v4[1],
                         "non_inferior": bool(vs_full[1] < margin)})  # fmt: skip
        means = [r["mean"] for r in rows]
        preferred = next(r["size"] for r in rows if r["non_inferior"] or r is rows[-1])
        out.append({"trials": count, "v4": float(v4.mean()), "best_size": int(np.argmin(means)) + 1,
                    "preferred_size": preferred, "spaces": rows})  # fmt: skip
    return out


def summary_lines(result: dict) -> list[str]:
    """What `tunability` prints: the order, the risky parameters and the preferred sizes."""
    at = result["judged_at"]
    gains = ", ".join(f"{r['param']} {r['mean']:+.3f}" for r in result["tunability"])
    safe = [r["param"] for r in result["tuning_risk"] if r["safe_to_fix"]]
    sizes = "; ".join(
        f"{n['trials']} trials: {n['preferred_size']} (lowest mean at {n['best_size']})"
        for n in result["nested"]
    )
    return [
        f"tunability at {at} trials ({result['strategy']}, {result['seeds']} replayed seeds; "
        f"gain over v4 in bikes, tuned alone): {gains}",
        f"safe to fix at v4 alone (losing under {result['margin']:.3f} bikes, one-sided 97.5%): "
        + (", ".join(safe) or "none"),
        f"parameters to search, by trial count: {sizes}",
    ]
