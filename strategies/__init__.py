"""Pluggable HPO strategies: a name -> (sampler, pruner) factory registry."""

from strategies.base import Strategy, StrategyInputs
from strategies.registry import STRATEGIES, get_strategy
from strategies.space import Ladder, Param, SearchSpace

__all__ = [
    "STRATEGIES",
    "Ladder",
    "Param",
    "SearchSpace",
    "Strategy",
    "StrategyInputs",
    "get_strategy",
]
