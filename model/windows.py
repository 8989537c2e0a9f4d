"""From an hourly panel to model-ready windows, split chronologically with purge gaps.

Missing values (documented in the README):
- targets: a window whose T+1h, T+2h or T+3h value is missing is dropped (nothing to score);
- inputs: missing hours are carried forward from the last reading of the same station
  (what a live system would know); hours before a station's first reading take its
  median over training hours; a window with more than ``MAX_MISSING_INPUTS`` missing
  input hours is dropped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from model.loaders import DataSourceError
from model.panel import HourlyPanel

SEQ_LEN = 24
HORIZONS = (1, 2, 3)
WINDOW_SPAN = SEQ_LEN + max(HORIZONS)  # 27 hours from first input to last target
PURGE_GAP = WINDOW_SPAN - 1  # 26 hours: no input or target hour crosses a split boundary
MAX_MISSING_INPUTS = 6
SPLIT_SHARES = (0.70, 0.15, 0.15)
STATIC_FEATURES = (
    "hour",
    "day_of_week",
    "capacity",
    "station_id",
    "lat",
    "lon",
    "part_of_day",
    "month",
    "season",
    "is_weekend",
    "is_rush_hour",
    "is_lunch_time",
)
SPLITS = ("train", "val", "test")
# Building the windows peaks at about 350 bytes per station-hour (measured on 150 and 600
# stations x 56 days); training holds its own copy, so count 500.
BYTES_PER_STATION_HOUR = 500
MAX_STATION_HOURS = 100_000_000  # 50 GB of windows: more than any one machine this targets


@dataclass
class Split:
    """One split's windows. Scaled arrays feed the network; raw bikes feed the metrics."""

    seq: np.ndarray  # (N, 24) float32, scaled bikes
    static: np.ndarray  # (N, 12) float32, scaled STATIC_FEATURES
    station: np.ndarray  # (N,) int64 station index, for the embedding
    target: np.ndarray  # (N, 3) float32, scaled bikes at T+1..3
    target_bikes: np.ndarray  # (N, 3) float32, raw bikes at T+1..3
    last_bikes: np.ndarray  # (N,) float32, raw last input value (the persistence forecast)
    end_hour: np.ndarray  # (N,) int32, panel hour index of the last input (time t)

    def __len__(self) -> int:
        return len(self.station)

    def first_hour(self) -> np.ndarray:
        """Panel hour index of each window's first input."""
        return self.end_hour - (SEQ_LEN - 1)

    def last_hour(self) -> np.ndarray:
        """Panel hour index of each window's last target."""
        return self.end_hour + max(HORIZONS)


@dataclass
class ForecastData:
    """Every split's windows with what is needed to read them: hours, stations, the bikes
    scaling, the source and its missing share."""

    splits: dict[str, Split]
    hours: pd.DatetimeIndex
    stations: pd.DataFrame
    bikes_mean: float
    bikes_std: float
    source: str
    missing_share: float
    rejected: dict[str, int]

    @property
    def n_stations(self) -> int:
        """How many stations."""
        return len(self.stations)

    def unscale(self, scaled: np.ndarray) -> np.ndarray:
        """Scaled values back in bikes."""
        return scaled * self.bikes_std + self.bikes_mean


def build_windows(
    panel: HourlyPanel, shares: tuple[float, float, float] = SPLIT_SHARES
) -> ForecastData:
    """Cut every station's series into windows and split them by their last target time.

    A panel too large for this machine's memory, or one that leaves a split without windows,
    is a DataSourceError naming the source and why.
    """
    end, split_of = _window_ends(panel, shares)
    n_per_station = len(end)
    train_hours = (end + max(HORIZONS))[split_of == 0].max()  # hours <= this are training hours

    raw = panel.bikes.astype(np.float32)
    filled = _fill_inputs(raw, train_hours)
    missing = np.isnan(raw)
    seq_view = np.lib.stride_tricks.sliding_window_view(filled, SEQ_LEN, axis=1)[
        :, :n_per_station
    ]  # (S, W, 24)
    miss_count = np.lib.stride_tricks.sliding_window_view(missing, SEQ_LEN, axis=1)[
        :, :n_per_station
    ].sum(-1)
    targets = np.stack([raw[:, end + h] for h in HORIZONS], axis=-1)  # (S, W, 3)
    keep = (
        ~np.isnan(targets).any(-1) & (miss_count <= MAX_MISSING_INPUTS) & (split_of >= 0)[None, :]
    )

    _check_windows_left(panel, keep, split_of, targets, miss_count)
    static_raw = _static_features(panel, end)  # (S, W, 12)
    train_keep = keep & (split_of == 0)[None, :]
    mean = float(seq_view[train_keep][:, -1].mean())
    std = float(seq_view[train_keep][:, -1].std()) or 1.0
    s_mean = static_raw[train_keep].mean(0)
    s_std = static_raw[train_keep].std(0)
    s_std[s_std == 0] = 1.0

    splits = {}
    for code, name in enumerate(SPLITS):
        st, w = np.nonzero(keep & (split_of == code)[None, :])
        seq = seq_view[st, w]
        tgt = targets[st, w]
        splits[name] = Split(
            seq=((seq - mean) / std).astype(np.float32),
            static=((static_raw[st, w] - s_mean) / s_std).astype(np.float32),
            station=st.astype(np.int64),
            target=((tgt - mean) / std).astype(np.float32),
            target_bikes=tgt.astype(np.float32),
            last_bikes=seq[:, -1].astype(np.float32),
            end_hour=end[w].astype(np.int32),
        )
    return ForecastData(
        splits=splits,
        hours=panel.hours,
        stations=panel.stations,
        bikes_mean=mean,
        bikes_std=std,
        source=panel.source,
        missing_share=panel.missing_share(),
        rejected=dict(panel.rejected),
    )


def _window_ends(panel: HourlyPanel, shares) -> tuple[np.ndarray, np.ndarray]:
    """Each window's end hour t and split label (-1 = purged); a panel that is too large for
    memory or too short for three splits is an error."""
    n_st, n_hours = panel.bikes.shape
    problem = memory_problem(n_st, n_hours)
    if problem:
        raise DataSourceError(f"{panel.source}: {problem}; use fewer stations or a shorter span")
    n_per_station = n_hours - WINDOW_SPAN + 1
    if n_per_station <= 2 * PURGE_GAP + 3:
        raise ValueError(
            f"{panel.source}: {n_hours} hours is too short; "
            f"need more than {WINDOW_SPAN + 2 * PURGE_GAP + 2}"
        )
    end = np.arange(SEQ_LEN - 1, SEQ_LEN - 1 + n_per_station)  # t for each window
    split_of = _split_labels(end + max(HORIZONS), shares)  # (W,) by last target hour
    for code, name in enumerate(SPLITS):
        if not (split_of == code).any():
            raise ValueError(
                f"{panel.source}: {n_hours} hours leave no {name} windows after the "
                f"{PURGE_GAP}-hour purge gaps; "
                f"need about {int(2 * PURGE_GAP / min(shares)) + WINDOW_SPAN} hours"
            )
    return end, split_of


def memory_problem(n_stations: int, n_hours: int, memory_bytes: int | None = None) -> str | None:
    """Why a panel of this size cannot become windows in ``memory_bytes`` (default: this
    machine's memory); None when it can."""
    need = n_stations * n_hours * BYTES_PER_STATION_HOUR
    have = machine_memory() if memory_bytes is None else memory_bytes
    if n_stations * n_hours <= MAX_STATION_HOURS and need <= have:
        return None
    return (
        f"{n_stations:,} stations x {n_hours:,} hours need about {need / 1e9:.3g} GB to build "
        f"windows; this machine has {have / 1e9:.3g} GB"
    )


def machine_memory() -> int:
    """Physical memory in bytes (a huge number where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**62


def _check_windows_left(panel, keep, split_of, targets, miss_count) -> None:
    """Every split needs windows; say why one has none (MAE would otherwise be NaN)."""
    for code, name in enumerate(SPLITS):
        in_split = (split_of == code)[None, :]
        if (keep & in_split).any():
            continue
        candidates = int(in_split.sum()) * panel.n_stations
        no_target = int((np.isnan(targets).any(-1) & in_split).sum())
        gappy = int(((miss_count > MAX_MISSING_INPUTS) & in_split).sum())
        raise DataSourceError(
            f"{panel.source}: no {name} windows left: of {candidates:,} candidates, {no_target:,} "
            f"miss a target hour and {gappy:,} miss more than {MAX_MISSING_INPUTS} of "
            f"{SEQ_LEN} input hours ({panel.missing_share():.0%} of station-hours are missing, "
            f"{panel.hours[0]} .. {panel.hours[-1]}); check for stray timestamps or outages"
        )


def _split_labels(last_target: np.ndarray, shares: tuple[float, float, float]) -> np.ndarray:
    lo, n = last_target[0], len(last_target)
    train_cut = lo + int(round(shares[0] * n))
    val_cut = lo + int(round((shares[0] + shares[1]) * n))
    labels = np.full(n, -1)
    labels[last_target < train_cut] = 0
    labels[(last_target >= train_cut + PURGE_GAP) & (last_target < val_cut)] = 1
    labels[last_target >= val_cut + PURGE_GAP] = 2
    return labels


def _fill_inputs(raw: np.ndarray, train_hours: int) -> np.ndarray:
    filled = np.array(pd.DataFrame(raw.T).ffill().to_numpy(dtype=np.float32).T, order="C")
    train = raw[:, : train_hours + 1]
    seen = ~np.isnan(train).all(axis=1)
    median = np.full(len(raw), np.nanmedian(raw), dtype=np.float32)
    median[seen] = np.nanmedian(train[seen], axis=1)
    leading = np.isnan(filled)
    filled[leading] = np.broadcast_to(median[:, None], filled.shape)[leading]
    return filled


def _static_features(panel: HourlyPanel, end: np.ndarray) -> np.ndarray:
    """The 12 static features at each window's end time t, shape (S, W, 12)."""
    ts = panel.hours[end]
    hour = ts.hour.to_numpy()
    dow = ts.day_of_week.to_numpy()
    month = ts.month.to_numpy()
    weekend = dow >= 5
    per_time = np.stack(
        [
            hour,
            dow,
            hour // 6,
            month,
            (month % 12) // 3,
            weekend,
            (~weekend) & (((hour >= 7) & (hour <= 9)) | ((hour >= 17) & (hour <= 19))),
            (hour >= 12) & (hour <= 13),
        ],
        axis=-1,
    ).astype(np.float32)  # (W, 8)
    st = panel.stations
    per_station = np.stack(
        [
            st["capacity"].to_numpy(np.float32),
            np.arange(len(st), dtype=np.float32),
            st["lat"].to_numpy(np.float32),
            st["lon"].to_numpy(np.float32),
        ],
        axis=-1,
    )  # (S, 4)
    s, w = per_station.shape[0], per_time.shape[0]
    out = np.empty((s, w, len(STATIC_FEATURES)), dtype=np.float32)
    out[:, :, [0, 1, 6, 7, 8, 9, 10, 11]] = per_time[None]
    out[:, :, [2, 3, 4, 5]] = per_station[:, None]
    return out
