"""Nested, stratified training subsamples: the fidelities a trial climbs.

Each training window gets a seeded random rank inside its stratum (station x weekday/
weekend x part of day). The subsample at fraction f keeps, in every stratum, the
ceil(f * size) windows of lowest rank: every stratum is present at every fraction, and
a smaller fraction is a subset of a larger one because the ranks never change.
"""

from __future__ import annotations

import numpy as np

from model.windows import ForecastData


class FidelitySampler:
    """Nested subsamples of the training windows, stratified by station and part of the week:
    the windows at a smaller fraction are always among those at a larger one."""

    def __init__(self, data: ForecastData, seed: int = 0) -> None:
        train = data.splits["train"]
        ts = data.hours[train.end_hour]
        part_of_week = (ts.day_of_week.to_numpy() >= 5) * 4 + ts.hour.to_numpy() // 6
        self.strata = train.station * 8 + part_of_week
        rng = np.random.default_rng(seed)
        order = np.lexsort((rng.random(len(self.strata)), self.strata))
        sorted_strata = self.strata[order]
        starts = np.flatnonzero(np.r_[True, sorted_strata[1:] != sorted_strata[:-1]])
        sizes = np.diff(np.r_[starts, len(order)])
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order)) - np.repeat(starts, sizes)
        self._rank = rank
        self._stratum_size = np.repeat(sizes, sizes)[np.argsort(order)]
        self._cache: dict[float, np.ndarray] = {}

    def indices(self, fraction: float) -> np.ndarray:
        """Sorted training-window indices of the subsample at ``fraction`` (0 < f <= 1)."""
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        if fraction not in self._cache:
            keep = self._rank < np.ceil(fraction * self._stratum_size - 1e-9)
            self._cache[fraction] = np.flatnonzero(keep)
        return self._cache[fraction]
