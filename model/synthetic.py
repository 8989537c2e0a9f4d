"""A deterministic, Vélib-like generator: the embedded default data set.

Built from the network figures in shared/DATA.md: station archetypes with their
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

# Fill (bikes / usable docks) by hour, weekday and weekend, per archetype.
_WEEKDAY_FILL = {
    "residential": [
        0.62,
        0.63,
        0.64,
        0.64,
        0.64,
        0.63,
        0.58,
        0.45,
        0.30,
        0.21,
        0.19,
        0.21,
        0.23,
        0.24,
        0.24,
        0.25,
        0.27,
        0.31,
        0.38,
        0.45,
        0.52,
        0.57,
        0.60,
        0.61,
    ],
    "business": [
        0.22,
        0.21,
        0.21,
        0.21,
        0.21,
        0.22,
        0.26,
        0.40,
        0.62,
        0.74,
        0.77,
        0.76,
        0.73,
        0.73,
        0.75,
        0.75,
        0.70,
        0.55,
        0.38,
        0.30,
        0.26,
        0.24,
        0.23,
        0.22,
    ],
    "flat": [
        0.42,
        0.42,
        0.42,
        0.42,
        0.42,
        0.42,
        0.41,
        0.39,
        0.36,
        0.37,
        0.39,
        0.40,
        0.40,
        0.40,
        0.40,
        0.40,
        0.39,
        0.36,
        0.33,
        0.35,
        0.38,
        0.40,
        0.41,
        0.42,
    ],
    "tourist": [
        0.45,
        0.45,
        0.45,
        0.45,
        0.45,
        0.45,
        0.44,
        0.42,
        0.40,
        0.40,
        0.41,
        0.42,
        0.40,
        0.38,
        0.38,
        0.39,
        0.40,
        0.40,
        0.41,
        0.42,
        0.43,
        0.44,
        0.45,
        0.45,
    ],
}
_WEEKEND_FILL = {
    "residential": [
        0.60,
        0.61,
        0.62,
        0.62,
        0.62,
        0.62,
        0.61,
        0.59,
        0.55,
        0.50,
        0.46,
        0.44,
        0.43,
        0.43,
        0.44,
        0.46,
        0.48,
        0.51,
        0.54,
        0.56,
        0.58,
        0.59,
        0.60,
        0.60,
    ],
    "business": [
        0.30,
        0.30,
        0.30,
        0.30,
        0.30,
        0.30,
        0.30,
        0.31,
        0.33,
        0.36,
        0.38,
        0.39,
        0.40,
        0.40,
        0.39,
        0.38,
        0.36,
        0.34,
        0.32,
        0.31,
        0.30,
        0.30,
        0.30,
        0.30,
    ],
    "flat": [
        0.40,
        0.40,
        0.40,
        0.40,
        0.40,
        0.40,
        0.40,
        0.40,
        0.39,
        0.38,
        0.38,
        0.38,
        0.38,
        0.38,
        0.38,
        0.38,
        0.38,
        0.38,
        0.39,
        0.39,
        0.40,
        0.40,
        0.40,
        0.40,
    ],
    "tourist": [
        0.50,
        0.50,
        0.50,
        0.50,
        0.50,
        0.50,
        0.50,
        0.49,
        0.47,
        0.43,
        0.38,
        0.33,
        0.28,
        0.24,
        0.22,
        0.22,
        0.24,
        0.28,
        0.33,
        0.38,
        0.42,
        0.46,
        0.48,
        0.49,
    ],
}
# Activity by hour: scales the noise, so peaks are noisier than nights.
_WEEKDAY_ACTIVITY = [
    0.42,
    0.30,
    0.20,
    0.17,
    0.17,
    0.24,
    0.55,
    0.90,
    1.0,
    0.92,
    0.80,
    0.78,
    0.82,
    0.82,
    0.80,
    0.82,
    0.88,
    0.98,
    1.0,
    0.92,
    0.80,
    0.70,
    0.60,
    0.52,
]
_WEEKEND_ACTIVITY = [
    0.50,
    0.40,
    0.28,
    0.20,
    0.17,
    0.17,
    0.22,
    0.35,
    0.50,
    0.65,
    0.75,
    0.82,
    0.86,
    0.88,
    0.90,
    0.90,
    0.88,
    0.84,
    0.78,
    0.70,
    0.64,
    0.58,
    0.55,
    0.52,
]
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
