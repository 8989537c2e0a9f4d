"""Pluggable HPO strategies: a name -> (sampler, pruner) factory registry.

- ``base``: ``Strategy`` and what every strategy receives (``StrategyInputs``);
- ``registry``: every registered strategy by name, its sampler and pruner settings, and
  cold-start twins;
- ``space``: the search space and the fidelity ladder, as strategies see them;
- ``seeding``: a sampler's random numbers for trial n's parameter p drawn from (seed, n, p).
"""

from strategies.base import Strategy, StrategyInputs
from strategies.registry import STRATEGIES, cold_start, get_strategy
from strategies.space import Ladder, Param, SearchSpace

__all__ = [
    "STRATEGIES",
    "Ladder",
    "Param",
    "SearchSpace",
    "Strategy",
    "StrategyInputs",
    "cold_start",
    "get_strategy",
]
