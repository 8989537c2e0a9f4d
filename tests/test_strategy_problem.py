"""One check says whether a name is a registered strategy, for every place that asks."""

import pytest

from strategies import STRATEGIES, get_strategy
from strategies.registry import strategy_problem


def test_a_registered_name_has_no_problem_and_another_lists_the_known_ones():
    assert all(strategy_problem(name) is None for name in STRATEGIES)
    problem = strategy_problem("nope")
    assert problem == f"unknown strategy 'nope'; known: {', '.join(STRATEGIES)}"


def test_an_unknown_cold_twin_is_named_as_given():
    with pytest.raises(ValueError, match=r"unknown strategy 'nope\.cold'; known: "):
        get_strategy("nope.cold")
