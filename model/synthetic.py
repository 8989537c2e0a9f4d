"""A deterministic, Vélib-like generator: the embedded default data set.

Built from the network figures listed in the README ("The synthetic default"): station
archetypes with their
24-hour fill curves, a log-normal capacity distribution, broken docks, a shared
daily weather and a seasonal factor, an AR(1) deviation whose noise follows the
hour's activity, rebalancing jumps, and feed outages (missing hours and stuck
values). Calibrated so that persistence gives a T+1h MAE of about 3.1 bikes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from model.panel import HourlyPanel

ARCHETYPES = ("residential", "business", "flat", "tourist")
ARCHETYPE_SHARES = (0.45, 0.28, 0.22, 0.05)

# Hourly tables in hundredths, hours 0..23, one row each: written as text so that a row is
# one line; _hourly parses them into lists of floats (62 -> 0.62, exactly the same float).
# Fill (bikes / usable docks) by hour, weekday and weekend, per archetype.
_FILL_TABLE = """
residential weekday 62 63 64 64 64 63 58 45 30 21 19 21 23 24 24 25 27 31 38 45 52 57 60 61
business    weekday 22 21 21 21 21 22 26 40 62 74 77 76 73 73 75 75 70 55 38 30 26 24 23 22
flat        weekday 42 42 42 42 42 42 41 39 36 37 39 40 40 40 40 40 39 36 33 35 38 40 41 42
tourist     weekday 45 45 45 45 45 45 44 42 40 40 41 42 40 38 38 39 40 40 41 42 43 44 45 45
residential weekend 60 61 62 62 62 62 61 59 55 50 46 44 43 43 44 46 48 51 54 56 58 59 60 60
business    weekend 30 30 30 30 30 30 30 31 33 36 38 39 40 40 39 38 36 34 32 31 30 30 30 30
flat        weekend 40 40 40 40 40 40 40 40 39 38 38 38 38 38 38 38 38 38 39 39 40 40 40 40
tourist     weekend 50 50 50 50 50 50 50 49 47 43 38 33 28 24 22 22 24 28 33 38 42 46 48 49
"""
# Activity by hour: scales the noise, so peaks are noisier than nights.
_ACTIVITY_TABLE = """
weekday 42 30 20 17 17 24 55 90 100 92 80 78 82 82 80 82 88 98 100 92 80 70 60 52
weekend 50 40 28 20 17 17 22 35 50 65 75 82 86 88 90 90 88 84 78 70 64 58 55 52
"""


def _hourly(table: str) -> dict[tuple[str, ...], list[float]]:
    """Rows of ``<key words> <24 hundredths>`` -> {key words: 24 floats}."""
    out = {}
    for line in table.strip().splitlines():
        words = line.split()
        out[tuple(words[:-24])] = [int(w) / 100 for w in words[-24:]]
    return out


_FILL = _hourly(_FILL_TABLE)
_WEEKDAY_FILL = {a: _FILL[(a, "weekday")] for a in ARCHETYPES}
_WEEKEND_FILL = {a: _FILL[(a, "weekend")] for a in ARCHETYPES}
_WEEKDAY_ACTIVITY = _hourly(_ACTIVITY_TABLE)[("weekday",)]
_WEEKEND_ACTIVITY = _hourly(_ACTIVITY_TABLE)[("weekend",)]
# Amplitude of daily swings by month (Jan..Dec): fewer rides in winter.
_SEASON_AMPLITUDE = [0.75, 0.78, 0.88, 0.95, 1.05, 1.10, 1.00, 0.90, 1.08, 1.00, 0.88, 0.78]

PARIS_LAT = (48.816, 48.902)
PARIS_LON = (2.255, 2.415)
DEFAULT_START = "2024-09-02"  # a Monday in September, the month the team's figures come from

# Two deviations from the expected fill: a fast one (riders coming and going, strongly
# mean-reverting, so part of each hour's change is predictable) and a slow one (a
# station's level drifting over days). NOISE_SCALE sets the persistence MAE.
NOISE_SCALE = 0.185  # fast innovation std (share of usable docks) at peak activity
AR_COEF = 0.5
SLOW_SCALE = 0.03
SLOW_AR_COEF = 0.95


def generate_panel(
    n_stations: int = 1498, n_days: int = 28, seed: int = 0, start: str = DEFAULT_START
) -> HourlyPanel:
    """Generate ``n_stations`` hourly series over ``n_days`` days, deterministic by ``seed``."""
    if n_stations < 1:
        raise ValueError(f"n_stations must be >= 1, got {n_stations}")
    if n_days < 3:
        raise ValueError(
            f"n_days must be >= 3 (windows need 27 hours and splits need room), got {n_days}"
        )
    rng = np.random.default_rng(seed)
    hours = pd.date_range(start, periods=n_days * 24, freq="h")
    stations, archetype = _stations(rng, n_stations)
    usable = np.maximum(
        1.0, np.round(stations["capacity"].to_numpy() * (1 - rng.uniform(0, 0.15, n_stations)))
    )

    fill = _expected_fill(rng, archetype, hours)  # (S, T)
    deviation = _ar_deviation(rng, fill, hours)  # (S, T)
    bikes = np.clip(np.round((fill + deviation) * usable[:, None]), 0, usable[:, None]).astype(
        np.float32
    )
    _inject_outages(rng, bikes)
    stations["archetype"] = np.asarray(ARCHETYPES)[archetype]
    return HourlyPanel(
        bikes=bikes,
        hours=hours,
        stations=stations,
        source=f"synthetic(stations={n_stations}, days={n_days}, seed={seed})",
    )


def _stations(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, np.ndarray]:
    # log-normal with median 29 and sigma 0.35 gives mean ~31 and 5-95% ~16-52 docks.
    capacity = np.clip(np.round(rng.lognormal(np.log(29), 0.35, n)), 1, 105).astype(int)
    archetype = rng.choice(len(ARCHETYPES), size=n, p=ARCHETYPE_SHARES)
    stations = pd.DataFrame(
        {
            "station_id": [f"{100001 + i}" for i in range(n)],
            "capacity": capacity,
            "lat": rng.uniform(*PARIS_LAT, n).round(6),
            "lon": rng.uniform(*PARIS_LON, n).round(6),
        }
    )
    return stations, archetype


def _expected_fill(
    rng: np.random.Generator, archetype: np.ndarray, hours: pd.DatetimeIndex
) -> np.ndarray:
    n = archetype.size
    weekday = np.array([_WEEKDAY_FILL[a] for a in ARCHETYPES])[archetype]  # (S, 24)
    weekend = np.array([_WEEKEND_FILL[a] for a in ARCHETYPES])[archetype]
    shift = rng.integers(-1, 2, n)  # stations peak up to an hour apart
    hod = (hours.hour.to_numpy()[None, :] - shift[:, None]) % 24  # (S, T)
    is_weekend = (hours.day_of_week.to_numpy() >= 5)[None, :]
    rows = np.arange(n)[:, None]
    base = np.where(is_weekend, weekend[rows, hod], weekday[rows, hod])
    mean = base.mean(axis=1, keepdims=True)

    days = (hours - hours[0]).days.to_numpy()
    weather = np.clip(1 + 0.15 * rng.standard_normal(days.max() + 1), 0.6, 1.3)[
        days
    ]  # shared by all stations
    season = np.asarray(_SEASON_AMPLITUDE)[hours.month.to_numpy() - 1]
    amplitude = rng.uniform(0.7, 1.2, n)[:, None] * (weather * season)[None, :]
    offset = rng.normal(0, 0.12, n)[:, None]
    return np.clip(mean + offset + amplitude * (base - mean), 0.02, 0.98)


def _ar_deviation(
    rng: np.random.Generator, fill: np.ndarray, hours: pd.DatetimeIndex
) -> np.ndarray:
    n, t = fill.shape
    hod = hours.hour.to_numpy()
    activity = np.where(
        hours.day_of_week.to_numpy() >= 5,
        np.asarray(_WEEKEND_ACTIVITY)[hod],
        np.asarray(_WEEKDAY_ACTIVITY)[hod],
    )
    season = np.asarray(_SEASON_AMPLITUDE)[hours.month.to_numpy() - 1]
    station_noise = rng.uniform(0.7, 1.3, n)
    sigma = NOISE_SCALE * station_noise[:, None] * (activity * season)[None, :]  # (S, T)
    shocks = sigma * rng.standard_normal((n, t))
    # Rebalancing trucks: rare daytime jumps that pull the station back toward half full.
    truck = (rng.random((n, t)) < 0.004) & ((hod >= 6) & (hod <= 22))[None, :]
    slow_shocks = SLOW_SCALE * rng.standard_normal((n, t))
    dev = np.zeros((n, t))
    d, slow = np.zeros(n), np.zeros(n)
    for k in range(t):
        slow = SLOW_AR_COEF * slow + slow_shocks[:, k]
        d = AR_COEF * d + shocks[:, k] + (1 - AR_COEF) * slow
        level = fill[:, k] + d
        d = np.where(truck[:, k], d + 0.6 * (0.5 - level), d)
        d = np.clip(
            d, -fill[:, k] - 0.1, 1.1 - fill[:, k]
        )  # keep the latent level near the physical range
        dev[:, k] = d
    return dev


def _inject_outages(rng: np.random.Generator, bikes: np.ndarray) -> None:
    """Feed outages: missing spans (NaN) and stuck sensors (a value repeated), in place."""
    n, t = bikes.shape
    for kind, rate, min_len, max_len in (("missing", 1 / 400, 1, 12), ("stuck", 1 / 900, 6, 36)):
        starts = np.argwhere(rng.random((n, t)) < rate)
        lengths = rng.integers(min_len, max_len + 1, len(starts))
        for (s, k), length in zip(starts, lengths):
            end = min(t, k + length)
            if kind == "missing":
                bikes[s, k:end] = np.nan
            elif k > 0 and not np.isnan(bikes[s, k - 1]):
                bikes[s, k:end] = bikes[s, k - 1]
