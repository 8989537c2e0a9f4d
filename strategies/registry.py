"""The strategy registry: one mapping from the name typed on the command line to a factory.

Every sampler and pruner setting is spelled out, because Optuna 5 changed defaults
(multivariate TPE, constant liar) and will change more. Report steps count budget in
units of the first rung (``Ladder.steps``), so Hyperband and successive-halving rungs
fall exactly on the fidelity ladder and median pruning compares trials at equal budget.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.pruners import HyperbandPruner, MedianPruner, NopPruner, SuccessiveHalvingPruner
from optuna.samplers import CmaEsSampler, GridSampler, QMCSampler, RandomSampler, TPESampler
from optuna.trial import FrozenTrial

from strategies.base import Strategy, StrategyInputs
from strategies.seeding import PerTrialSeeded

# The learning curves `record` trains for the replay live in results/<experiment>/record-<N>x<R>/;
# they are not competitors, so readers of a comparison leave these folders out.
RECORD_PREFIX = "record-"
TPE_STARTUP_TRIALS = 10  # counts COMPLETE and PRUNED trials of the whole study
MEDIAN_STARTUP_TRIALS = 5  # counts COMPLETE trials only: nothing is pruned before 5 trials finish


def _tpe(inputs: StrategyInputs) -> TPESampler:
    return TPESampler(
        n_startup_trials=TPE_STARTUP_TRIALS,
        n_ei_candidates=24,
        multivariate=True,
        group=False,
        constant_liar=True,  # parallel workers do not all sample the same point
        seed=inputs.seed,
    )


def _median(inputs: StrategyInputs) -> MedianPruner:
    # Steps start at 1, so n_warmup_steps=0 lets the first rung prune.
    return MedianPruner(
        n_startup_trials=MEDIAN_STARTUP_TRIALS, n_warmup_steps=0, interval_steps=1, n_min_trials=1
    )


def _hyperband(inputs: StrategyInputs) -> HyperbandPruner:
    # max_resource explicit: with 'auto' nothing is pruned until a trial completes, and the
    # last bracket's rung would sit one step past the last report and never prune.
    return HyperbandPruner(
        min_resource=1,
        max_resource=inputs.ladder.max_step,
        reduction_factor=inputs.ladder.reduction_factor,
        bootstrap_count=0,
    )


def _asha(inputs: StrategyInputs) -> SuccessiveHalvingPruner:
    return SuccessiveHalvingPruner(
        min_resource=1,
        reduction_factor=inputs.ladder.reduction_factor,
        min_early_stopping_rate=0,
        bootstrap_count=0,
    )


def _cmaes(inputs: StrategyInputs) -> CmaEsSampler:
    # CMA-ES cannot sample categorical parameters: they go to the seeded random sampler.
    # consider_pruned_trials=False suits this strategy, which has no pruner.
    return CmaEsSampler(
        n_startup_trials=1,
        independent_sampler=RandomSampler(seed=inputs.seed),
        warn_independent_sampling=False,
        seed=inputs.seed,
        consider_pruned_trials=False,
        restart_strategy=None,
        with_margin=False,
    )


class NumberedQMCSampler(QMCSampler):
    """Trial n takes point n of the scrambled Sobol sequence. Optuna's own QMC sampler counts
    its draws in the study instead: a trial killed after it drew, and drawn again on resume,
    would take the next point and shift every later trial's."""

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        self._number = trial.number
        return super().sample_relative(study, trial, search_space)

    def _find_sample_id(self, study: optuna.Study, search_space: dict) -> int:
        return self._number  # overrides a private method; the pinned Optuna 5.x has it


def _qmc(inputs: StrategyInputs) -> QMCSampler:
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", optuna.exceptions.ExperimentalWarning
        )  # QMCSampler is stable in practice
        return NumberedQMCSampler(
            qmc_type="sobol",
            scramble=True,
            seed=inputs.seed,
            independent_sampler=RandomSampler(seed=inputs.seed),
            warn_independent_sampling=False,
        )


def _grid(inputs: StrategyInputs) -> GridSampler:
    return GridSampler(inputs.space.reduced_grid(), seed=inputs.seed)


def _grid_points(inputs: StrategyInputs) -> list[dict]:
    """Every point of the reduced grid, in a seeded order. Enqueued points are popped atomically
    by the storage, so several workers never evaluate a point twice (GridSampler alone can)."""
    grid = inputs.space.reduced_grid()
    points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    order = np.random.default_rng(inputs.seed).permutation(len(points))
    return [points[i] for i in order]


def _random(inputs: StrategyInputs) -> RandomSampler:
    return RandomSampler(seed=inputs.seed)


def _nop(inputs: StrategyInputs) -> NopPruner:
    return NopPruner()


def _registered(
    name: str, summary: str, rationale: str, sampler: Callable, pruner: Callable, **extra
) -> Strategy:
    """A registry entry: its factory pairs ``sampler(inputs)`` with ``pruner(inputs)``, it prunes
    unless the pruner is ``_nop``, and ``rationale`` is a paragraph (white space folded)."""
    return Strategy(
        name,
        summary,
        " ".join(rationale.split()),
        lambda inputs: (PerTrialSeeded(sampler(inputs), inputs.seed), pruner(inputs)),
        prunes=pruner is not _nop,
        **extra,
    )


_STRATEGIES = (
    _registered(
        "tpe_median",
        "TPE sampler + median pruning",
        f"""
        Stops a trial whose best MAE so far is worse than the median of completed trials at the same
        rung. Cheap and robust; its start-up counts COMPLETE trials only, so at 40-70 trials the
        first {MEDIAN_STARTUP_TRIALS} run to the end and savings start late.
        """,
        _tpe,
        _median,
    ),
    _registered(
        "tpe_hyperband",
        "TPE sampler + Hyperband over the fidelity ladder",
        """
        Runs successive halving in several brackets that trade exploration for trust in low rungs:
        saves most when low rungs rank trials like full data. TPE models all trials, not only its
        bracket's.
        """,
        _tpe,
        _hyperband,
    ),
    _registered(
        "tpe_asha",
        "TPE sampler + asynchronous successive halving",
        """
        Keeps the top 1/reduction_factor of trials at each rung, asynchronously: the most aggressive
        saver, and the most exposed to low rungs that favour fast learners over good ones.
        """,
        _tpe,
        _asha,
    ),
    _registered(
        "tpe",
        "TPE sampler, no pruning",
        """
        Tree-structured Parzen estimator (multivariate, constant liar) on full-fidelity results:
        separates the sampler's effect from the pruner's.
        """,
        _tpe,
        _nop,
    ),
    _registered(
        "random",
        "random search, no pruning (the control)",
        """
        Every other strategy must beat this to justify its complexity; strong when few parameters
        matter.
        """,
        _random,
        _nop,
    ),
    _registered(
        "random_median",
        "random search + median pruning",
        """
        Measures what median pruning alone buys, with no model-based sampling.
        """,
        _random,
        _median,
    ),
    _registered(
        "cmaes",
        "CMA-ES, no pruning",
        """
        Evolution strategy adapting a Gaussian over continuous and integer parameters; categorical
        ones are sampled at random. Shines on smooth continuous spaces with a budget of many trials.
        """,
        _cmaes,
        _nop,
    ),
    _registered(
        "qmc",
        "scrambled Sobol sequence, no pruning",
        """
        Quasi-random points that cover the space more evenly than random search at small budgets.
        """,
        _qmc,
        _nop,
    ),
    _registered(
        "mo_tpe",
        "multi-objective TPE over validation MAE and training time",
        """
        Searches accuracy and cost together and returns a Pareto front rather than one best trial;
        Optuna's pruners do not work on multi-objective studies, so every trial climbs the whole
        ladder (its low-rung MAEs are recorded, not used to stop it). For a night that must also buy
        a cheap model.
        """,
        _tpe,
        _nop,
        objectives=2,
    ),
    _registered(
        "grid",
        "grid over the reduced space, no pruning",
        """
        Tries every combination of the few values given for the important parameters (the rest at
        defaults), then stops by itself. Transparent and exhaustive, but its cost grows
        multiplicatively.
        """,
        _grid,
        _nop,
        queue=_grid_points,
    ),
)

STRATEGIES: dict[str, Strategy] = {s.name: s for s in _STRATEGIES}


@dataclass(frozen=True)
class RecordSetting:
    """What ``record`` trains: ``configs`` scrambled-Sobol configurations plus the space's
    defaults (v4), each ``repeats`` times with different training seeds."""

    configs: int
    repeats: int

    @property
    def name(self) -> str:
        """The record run's strategy name, record-<configs>x<repeats>."""
        return f"{RECORD_PREFIX}{self.configs}x{self.repeats}"


def record_strategy(setting: RecordSetting) -> Strategy:
    """Not a competitor: the learning curves of ``setting``'s design, every rung, no pruning."""

    def queue(inputs: StrategyInputs) -> list[dict]:
        from scipy.stats import qmc

        params = inputs.space.params
        with warnings.catch_warnings():
            # balance wants a power of 2; any count is a fine design
            warnings.simplefilter("ignore", UserWarning)
            units = qmc.Sobol(len(params), scramble=True, seed=inputs.seed).random(setting.configs)
        configs = [inputs.space.defaults()] + [
            {p.name: p.from_unit(u) for p, u in zip(params, row)} for row in units
        ]
        # repeat-major: a partial record still spans the space
        return [c for _ in range(setting.repeats) for c in configs]

    return Strategy(
        setting.name,
        "learning curves of a space-filling design, for the replay surrogate",
        "Sobol points plus v4, every rung, no pruning, repeated with other training seeds.",
        lambda i: (PerTrialSeeded(RandomSampler(seed=i.seed), i.seed), NopPruner()),
        prunes=False,
        queue=queue,
        record=setting,
    )


COLD_SUFFIX = ".cold"  # a strategy's cold-start twin: <strategy>.cold
V4_WEIGHTS_SUFFIX = ".v4w"  # its twin whose trials start from v4's trained weights
SEARCH_SUFFIX = ".search-"  # <strategy>.search-<p1>+<p2>: its twin searching those alone


def cold_start(strategy: Strategy) -> Strategy:
    """``strategy`` without the warm start (v4 is not evaluated first), under its own name.

    A strategy with a fixed queue (grid, record) never warm-starts and comes back unchanged."""
    if strategy.queue is not None or not strategy.warm_start:
        return strategy
    weights = V4_WEIGHTS_SUFFIX if strategy.v4_weights else ""  # the order get_strategy reads
    name = strategy.name.removesuffix(weights) + COLD_SUFFIX + weights
    return replace(strategy, name=name, warm_start=False)


def from_v4_weights(strategy: Strategy) -> Strategy:
    """``strategy`` with every trial started from v4's trained weights, under its own name."""
    return replace(strategy, name=strategy.name + V4_WEIGHTS_SUFFIX, v4_weights=True)


def searching(strategy: Strategy, params: tuple[str, ...]) -> Strategy:
    """``strategy`` searching ``params`` alone, the rest at v4's values, under its own name."""
    name = f"{strategy.name}{SEARCH_SUFFIX}{'+'.join(params)}"
    return replace(strategy, name=name, searched=tuple(params))


def _search_twin_problem(name: str) -> str | None:
    base, _, listed = name.partition(SEARCH_SUFFIX)
    if problem := strategy_problem(base):
        return problem
    params = listed.split("+")
    if not listed or not all(p.isidentifier() for p in params):
        return f"strategy {name!r}: name the parameters after {SEARCH_SUFFIX!r}, '+'-separated"
    if len(set(params)) < len(params):
        return f"strategy {name!r}: names a parameter twice"
    if STRATEGIES[base].queue is not None:
        return f"strategy {name!r}: {base} runs a fixed queue, not a search of a smaller space"
    return None


def strategy_problem(name: str) -> str | None:
    """Why ``name`` is not a registered strategy (or a registered strategy's
    ``.search-`` twin), listing the known ones (None when it is)."""
    if name in STRATEGIES:
        return None
    if SEARCH_SUFFIX in name:
        return _search_twin_problem(name)
    return f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}"


def get_strategy(name: str) -> Strategy:
    """The registered strategy ``name`` (``<name>.cold``: its cold-start twin; ``<name>.v4w``:
    its twin started from v4's weights); an unknown name is a ValueError listing the known
    ones."""
    if name.endswith(V4_WEIGHTS_SUFFIX):
        return from_v4_weights(get_strategy(name.removesuffix(V4_WEIGHTS_SUFFIX)))
    if SEARCH_SUFFIX in name:
        if problem := _search_twin_problem(name):
            raise ValueError(problem)
        base, _, listed = name.partition(SEARCH_SUFFIX)
        return searching(get_strategy(base), tuple(p for p in listed.split("+") if p))
    base = name.removesuffix(COLD_SUFFIX)
    if strategy_problem(base):  # named as given, .cold included
        raise ValueError(strategy_problem(name))
    strategy = STRATEGIES[base]
    if base == name:
        return strategy
    if strategy.queue is not None:
        raise ValueError(f"strategy {name!r}: {base} runs a fixed queue and has no warm start")
    return cold_start(strategy)
