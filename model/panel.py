"""The hourly panel: one bikes-available series per station, the form every source becomes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

TIDY_COLUMNS = ("timestamp", "station_id", "bikes", "capacity", "lat", "lon")


@dataclass
class HourlyPanel:
    """Bikes available per station and hour.

    Attributes:
        bikes: (S, T) float32, NaN where the hour is missing (outage, not renting).
        hours: (T,) consecutive hourly timestamps.
        stations: one row per station: station_id (str), capacity, lat, lon.
        source: a short description of where the data came from.
    """

    bikes: np.ndarray
    hours: pd.DatetimeIndex
    stations: pd.DataFrame
    source: str
    rejected: dict[str, int] = field(default_factory=dict)

    @property
    def n_stations(self) -> int:
        """How many stations (rows)."""
        return self.bikes.shape[0]

    @property
    def n_hours(self) -> int:
        """How many hours (columns)."""
        return self.bikes.shape[1]

    def missing_share(self) -> float:
        """The share of station-hours with no reading (NaN bikes)."""
        return float(np.isnan(self.bikes).mean())


def panel_from_tidy(
    tidy: pd.DataFrame, source: str, rejected: dict[str, int] | None = None
) -> HourlyPanel:
    """Resample a tidy table (TIDY_COLUMNS) to hourly values: the last reading in each hour."""
    if tidy.empty:
        raise ValueError(f"{source}: no valid readings left after validation")
    df = tidy.assign(
        hour=tidy["timestamp"].dt.floor("h"), station_id=tidy["station_id"].astype(str)
    )
    df = df.sort_values(["station_id", "timestamp"], kind="stable")
    last = df.groupby(["station_id", "hour"], sort=True).last(
        skipna=False
    )  # a closing not-renting reading makes the hour missing
    station_ids = np.array(sorted(df["station_id"].unique()))
    hours = pd.date_range(df["hour"].min(), df["hour"].max(), freq="h")
    grid = last["bikes"].unstack("hour").reindex(index=station_ids, columns=hours)
    info = df.groupby("station_id")[["capacity", "lat", "lon"]].last().reindex(station_ids)
    stations = info.reset_index().rename(columns={"index": "station_id"})
    return HourlyPanel(
        bikes=grid.to_numpy(dtype=np.float32),
        hours=hours,
        stations=stations,
        source=source,
        rejected=dict(rejected or {}),
    )
