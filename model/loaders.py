"""Loaders for real data: GBFS snapshots, Paris open-data CSV snapshots, tidy tables.

Every loader produces raw readings that go through ``clean_readings``, which counts each
rejected row by reason (never dropping one silently), then ``panel_from_tidy`` resamples
them to hourly values. A file that cannot be read or has the wrong shape raises
``DataSourceError`` with one line naming the file and what is wrong.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from model.panel import TIDY_COLUMNS, HourlyPanel, panel_from_tidy

LOCAL_TZ = "Europe/Paris"
REJECT_REASONS = (
    "bad_number",
    "above_capacity",
    "unparsable_time",
    "duplicate",
    "not_renting",
    "unknown_station",
)

PARIS_COLUMNS = {
    "Identifiant station": "station_id",
    "Station en fonctionnement": "renting",
    "Capacité de la station": "capacity",
    "Nombre total vélos disponibles": "bikes",
    "Actualisation de la donnée": "timestamp",
    "Coordonnées géographiques": "coordinates",
}


class DataSourceError(ValueError):
    """A data file that cannot be used; the message names the file."""


def load_source(path: str | Path) -> HourlyPanel:
    """Load a tidy CSV/Parquet file, or a directory of GBFS JSON or Paris CSV snapshots."""
    path = Path(path)
    if not path.exists():
        raise DataSourceError(f"{path}: no such file or directory")
    if path.is_file():
        readings = read_tidy(path)
        kind = "tidy table"
    else:
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        if any(p.suffix.lower() == ".json" for p in files):
            readings, kind = (
                read_gbfs_dir([p for p in files if p.suffix.lower() == ".json"]),
                "GBFS snapshots",
            )
        elif any(p.suffix.lower() == ".csv" for p in files):
            readings, kind = (
                read_paris_csv_dir([p for p in files if p.suffix.lower() == ".csv"]),
                "Paris open-data snapshots",
            )
        else:
            raise DataSourceError(f"{path}: no .json (GBFS) or .csv (Paris open data) files found")
    tidy, rejected = clean_readings(readings, str(path))
    if tidy["bikes"].notna().sum() == 0:
        reasons = ", ".join(f"{k} {v}" for k, v in rejected.items() if v) or "no rows"
        raise DataSourceError(
            f"{path}: no usable readings ({reasons}); check the columns' units "
            "(bikes as counts, timestamps as ISO dates or POSIX seconds)"
        )
    return panel_from_tidy(tidy, source=f"{kind}: {path}", rejected=rejected)


def clean_readings(raw: pd.DataFrame, source: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """Validate raw readings; return the tidy table and the count of rejected rows per reason.

    ``raw`` has TIDY_COLUMNS (values may be strings) and optionally booleans ``renting``
    and ``known_station`` (a status row whose station has no station information).
    Rows of stations not renting stay, with bikes missing, so their hours become missing.
    """
    counts: Counter = Counter({reason: 0 for reason in REJECT_REASONS})
    df = raw.copy()
    if "known_station" in df:
        counts["unknown_station"] += int((~df["known_station"]).sum())
        df = df[df["known_station"]]
    df["station_id"] = df["station_id"].astype(str).str.strip().str.removesuffix(".0")
    df["timestamp"] = _parse_times(df["timestamp"])
    bad_time = df["timestamp"].isna()
    counts["unparsable_time"] += int(bad_time.sum())
    df = df[~bad_time]
    for col in ("bikes", "capacity", "lat", "lon"):
        df[col] = pd.to_numeric(df[col], errors="coerce")
    bad_number = (
        df["bikes"].isna()
        | (df["bikes"] < 0)
        | ~np.isfinite(df["bikes"])
        | df[["lat", "lon"]].isna().any(axis=1)
    )
    counts["bad_number"] += int(bad_number.sum())
    df = df[~bad_number]
    above = df["capacity"].notna() & (df["bikes"] > df["capacity"])
    counts["above_capacity"] += int(above.sum())
    df = df[~above]
    dup = df.duplicated(["station_id", "timestamp"], keep="first")
    counts["duplicate"] += int(dup.sum())
    df = df[~dup]
    if "renting" in df:
        not_renting = ~df["renting"].astype(bool)
        counts["not_renting"] += int(not_renting.sum())
        df.loc[not_renting, "bikes"] = np.nan
    # Unknown capacity: the largest number of bikes seen at the station.
    df["capacity"] = (
        df["capacity"].fillna(df.groupby("station_id")["bikes"].transform("max")).fillna(0)
    )
    return df[list(TIDY_COLUMNS)].reset_index(drop=True), dict(counts)


def _parse_times(values: pd.Series) -> pd.Series:
    """To naive Paris local time: datetimes, POSIX seconds, or ISO strings (with an offset, or naive
    meaning local already). Unparsable values become NaT."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return (
            values.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None)
            if values.dt.tz is not None
            else values
        )
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    numeric = pd.to_numeric(values, errors="coerce")
    posix = (numeric > 1e8) & (
        numeric < 1e10
    )  # 1973..2286 in seconds; milliseconds fall outside, unparsable
    out[posix] = _to_local(pd.to_datetime(numeric[posix], unit="s", utc=True))
    text = values[numeric.isna()].astype("string").str.strip()  # numbers outside the range stay NaT
    aware = text.str.contains(r"(?:[+-]\d\d:?\d\d|Z)$", regex=True).fillna(False)
    out[text.index[aware]] = _to_local(
        pd.to_datetime(text[aware], utc=True, errors="coerce", format="ISO8601")
    )
    out[text.index[~aware]] = pd.to_datetime(text[~aware], errors="coerce", format="ISO8601")
    return out


def _to_local(utc: pd.Series) -> pd.Series:
    return utc.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None)


def read_tidy(path: Path) -> pd.DataFrame:
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            df = pd.read_parquet(path)
        elif path.suffix.lower() == ".csv":
            df = pd.read_csv(path, dtype={"station_id": str})
        else:
            raise DataSourceError(f"{path}: expected a .csv or .parquet tidy table")
    except DataSourceError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many types for unreadable files
        raise DataSourceError(
            f"{path}: cannot be read as a table ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None
    missing = [c for c in TIDY_COLUMNS if c not in df.columns]
    if missing:
        raise DataSourceError(
            f"{path}: missing column(s) {missing}; a tidy table needs {list(TIDY_COLUMNS)}"
        )
    return df


def read_paris_csv_dir(files: list[Path]) -> pd.DataFrame:
    frames = []
    for path in files:
        try:
            df = pd.read_csv(path, sep=";", dtype=str, encoding="utf-8-sig")
        except Exception as exc:
            raise DataSourceError(
                f"{path}: cannot be read as ';'-separated CSV ({type(exc).__name__})"
            ) from None
        df.columns = [c.strip() for c in df.columns]
        missing = [c for c in PARIS_COLUMNS if c not in df.columns]
        if missing:
            raise DataSourceError(
                f"{path}: not a Paris open-data snapshot, missing column(s) {missing}"
            )
        df = df[list(PARIS_COLUMNS)].rename(columns=PARIS_COLUMNS)
        coords = df.pop("coordinates").str.split(",", n=1, expand=True).reindex(columns=[0, 1])
        df["lat"], df["lon"] = coords[0].str.strip(), coords[1].str.strip()
        df["renting"] = df["renting"].str.strip().str.upper() != "NON"
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def read_gbfs_dir(files: list[Path]) -> pd.DataFrame:
    """station_information and station_status files, recognised by their content."""
    info, statuses = None, []
    for path in files:
        doc = _read_json(path)
        stations = (
            doc.get("data", {}).get("stations") if isinstance(doc.get("data"), dict) else None
        )
        if not isinstance(stations, list):
            raise DataSourceError(f"{path}: not a GBFS feed (no data.stations list)")
        if any(_bikes_of(s) is not None for s in stations):
            statuses.append((path, doc.get("last_updated"), stations))
        elif any("lat" in s for s in stations):
            info = _station_information(path, stations)
        else:
            raise DataSourceError(f"{path}: GBFS stations have neither lat/lon nor bikes available")
    if info is None:
        raise DataSourceError(
            f"{files[0].parent}: no station_information file among the JSON files"
        )
    if not statuses:
        raise DataSourceError(f"{files[0].parent}: no station_status file among the JSON files")
    rows = [
        {
            "station_id": _station_id(s),
            "timestamp": s.get("last_reported", last_updated),
            "bikes": _bikes_of(s),
            "renting": bool(s.get("is_installed", True)) and bool(s.get("is_renting", True)),
        }
        for _, last_updated, stations in statuses
        for s in stations
    ]
    status = pd.DataFrame(rows)
    merged = status.merge(info, on="station_id", how="left", indicator=True)
    merged["known_station"] = merged.pop("_merge") == "both"
    return merged


def _read_json(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataSourceError(f"{path}: not valid JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(doc, dict):
        raise DataSourceError(f"{path}: not a GBFS feed (top level is not an object)")
    return doc


def _station_id(s: dict) -> str:
    sid = s.get("station_id", s.get("stationCode"))
    return str(sid).removesuffix(".0") if sid is not None else ""


def _station_information(path: Path, stations: list[dict]) -> pd.DataFrame:
    info = pd.DataFrame(
        {
            "station_id": _station_id(s),
            "lat": s.get("lat"),
            "lon": s.get("lon"),
            "capacity": s.get("capacity"),
        }
        for s in stations
    )
    if info["station_id"].eq("").any():
        raise DataSourceError(f"{path}: a station has no station_id")
    return info.drop_duplicates("station_id")


def _bikes_of(s: dict):
    """Bikes available under every name the feeds use (v1/v2, Vélib's camelCase, v3 vehicles)."""
    for key in ("num_bikes_available", "numBikesAvailable", "num_vehicles_available"):
        if key in s:
            return s[key]
    types = s.get("num_bikes_available_types", s.get("vehicle_types_available"))
    if isinstance(types, dict):
        return sum(v for v in types.values() if isinstance(v, (int, float)))
    if isinstance(types, list) and types:
        total = 0
        for item in (
            types
        ):  # Vélib: [{"mechanical": n}, {"ebike": m}]; v3: [{"vehicle_type_id": .., "count": n}]
            if isinstance(item, dict):
                total += (
                    item["count"]
                    if "count" in item
                    else sum(v for v in item.values() if isinstance(v, (int, float)))
                )
        return total
    return None
