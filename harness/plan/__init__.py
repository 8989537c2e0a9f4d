"""The overnight plan: a cost model fitted to measured rung times, projections per strategy for
a 12-18 hour night at the scale of the experiment the night runs, and a runnable experiment
file for the night.

- ``cost``: the cost model (log training seconds against the inputs that varied in the
  records), with held-out R² and prediction intervals;
- ``probe``: ``plan --probe``, real rungs of the night's data timed on the night's machine;
- ``costing``: the night's cost from the probe, or from the cost model extrapolated (with its
  interval and a warning past 10x the measured scale);
- ``projection``: per-strategy projections for the night and the cost ceiling;
- ``space``: the reduced search space (and grid points for a grid strategy);
- ``ranges``: what the reduced space's ranges rest on: a good region outside the night's range
  (said, with the widening that would contain it) and each range's leave-one-seed-out stability;
- ``overnight``: the night's experiment file, written as TOML;
- ``make``: ``make_plan``, which puts them together into ``plan.json``;
- ``calibrate``: the device factor (``--calibrate``); it and the probe are the only parts
  that touch torch, and only when called.
"""

from harness.plan.calibrate import calibrate_device_factor
from harness.plan.cost import CostModel, fit_cost_model, fit_cost_rows
from harness.plan.make import make_plan
from harness.plan.overnight import toml_value, write_overnight
from harness.plan.projection import EXTRAPOLATION_LIMIT, NIGHT_HOURS, apply_ceiling, extrapolation
from harness.plan.space import add_grid_values, reduced_space

__all__ = [
    "EXTRAPOLATION_LIMIT",
    "NIGHT_HOURS",
    "CostModel",
    "add_grid_values",
    "apply_ceiling",
    "calibrate_device_factor",
    "extrapolation",
    "fit_cost_model",
    "fit_cost_rows",
    "make_plan",
    "reduced_space",
    "toml_value",
    "write_overnight",
]
