"""The overnight plan: a cost model fitted to measured rung times, projections per strategy for
a 12-18 hour night at the scale of the experiment the night runs, and a runnable experiment
file for the night.

- ``cost``: the cost model (log training seconds against samples and model size);
- ``projection``: per-strategy projections for the night and the cost ceiling;
- ``space``: the reduced search space (and grid points for a grid strategy);
- ``overnight``: the night's experiment file, written as TOML;
- ``make``: ``make_plan``, which puts them together into ``plan.json``;
- ``calibrate``: the device factor, the only part that touches torch (``--calibrate``),
  and only when called.
"""

from harness.plan.calibrate import calibrate_device_factor
from harness.plan.cost import CostModel, fit_cost_model
from harness.plan.make import make_plan
from harness.plan.overnight import toml_value, write_overnight
from harness.plan.projection import NIGHT_HOURS, apply_ceiling
from harness.plan.space import add_grid_values, reduced_space

__all__ = [
    "NIGHT_HOURS",
    "CostModel",
    "add_grid_values",
    "apply_ceiling",
    "calibrate_device_factor",
    "fit_cost_model",
    "make_plan",
    "reduced_space",
    "toml_value",
    "write_overnight",
]
