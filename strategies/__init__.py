"""Pluggable HPO strategies: a name -> (sampler, pruner) factory registry."""

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
