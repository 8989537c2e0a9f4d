"""The overnight plan: a cost model fitted to measured rung times, projections per strategy for
a 12-18 hour night at the scale of the experiment the night runs, and a runnable experiment
file for the night.

- ``cost``: the cost model (log training seconds against the inputs that varied in the
  records), with held-out R² and prediction intervals;
- ``probe``: ``plan --probe``, real rungs of the night's data timed on the night's machine;
- ``costing``: the night's cost from the probe, or from the cost model extrapolated (with its
  interval and a warning past 10x the measured scale);
- ``projection``: per-strategy projections for the night and the cost ceiling;
- ``night_space``: the reduced search space (and grid points for a grid strategy);
- ``ranges``: what the reduced space's ranges rest on: a good region outside the night's range
  (said, with the widening that would contain it) and each range's leave-one-seed-out stability;
- ``horizon``: a longer top rung proposed when horizon trust is weak;
- ``overnight``: the night's experiment file, written as TOML;
- ``make``: ``make_plan``, which puts them together into ``plan.json``;
- ``device_factor``: the device factor (``--calibrate``); it and the probe are the only parts
  that touch torch, and only when called.
"""
