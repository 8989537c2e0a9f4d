"""Loaders for real data: GBFS snapshots, Paris open-data CSV snapshots, tidy tables.

Every loader produces raw readings that go through ``clean_readings``, which counts each
rejected row by reason (never dropping one silently), then ``panel_from_tidy`` resamples
them to hourly values. A file that cannot be read or has the wrong shape raises
``DataSourceError`` with one line naming the file and what is wrong.

Sanity rules (each a reason in REJECT_REASONS; a row is counted once, under the first):
timestamps must fall in [2000, 2100) and carry a time of day; counts (bikes, capacity) must
be whole numbers, not booleans; coordinates must lie within lat [-90, 90], lon [-180, 180];
every reading needs a station_id. A station seen with several capacities keeps its most
recent one; the readings (or GBFS station entries) that said otherwise are counted as
``conflicting_capacity`` (kept, not dropped). After cleaning, one source may span at most
MAX_SPAN_DAYS: a longer span means stray timestamps, and is an error naming the file.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
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
    "non_integer_count",  # bikes or capacity a boolean or a fraction
    "bad_coordinates",  # outside lat [-90, 90] / lon [-180, 180], or a boolean
    "time_out_of_range",  # before EARLIEST or from LATEST on
    "date_without_time",  # a date (Parquet date32, "2024-09-02"): no hour to place it in
    "missing_station_id",
    "malformed_entry",  # a GBFS station entry that is not an object
    "conflicting_capacity",  # kept; the station's most recent capacity is used
)
EARLIEST, LATEST = pd.Timestamp("2000-01-01"), pd.Timestamp("2100-01-01")
MAX_COUNT = 10_000  # bikes or docks at one station: the largest stations hold about 100
MAX_SPAN_DAYS = 731  # two years: one source spanning more holds stray timestamps
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")

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
    reasons = ", ".join(f"{k} {v}" for k, v in rejected.items() if v) or "no rows"
    if tidy["bikes"].notna().sum() == 0:
        raise DataSourceError(
            f"{path}: no usable readings ({reasons}); check the columns' units "
            "(bikes as counts, timestamps as ISO dates or POSIX seconds)"
        )
    first, last = tidy["timestamp"].min(), tidy["timestamp"].max()
    if last - first > pd.Timedelta(days=MAX_SPAN_DAYS):
        raise DataSourceError(
            f"{path}: readings span {first} .. {last} ({(last - first).days} days), more than "
            f"the {MAX_SPAN_DAYS} days one source may cover: look for stray timestamps "
            f"(rejected so far: {reasons if any(rejected.values()) else 'none'})"
        )
    return panel_from_tidy(tidy, source=f"{kind}: {path}", rejected=rejected)


def clean_readings(raw: pd.DataFrame, source: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """Validate raw readings; return the tidy table and the count of rejected rows per reason.

    ``raw`` has TIDY_COLUMNS (values may be strings), optionally a boolean ``renting`` and a
    ``reject`` column: the reason a reader already found a row unusable (None when fine).
    Rows of stations not renting stay, with bikes missing, so their hours become missing.
    """
    counts: Counter = Counter({reason: 0 for reason in REJECT_REASONS})
    df = raw.copy()
    if "reject" in df:
        counts.update(df["reject"].dropna().value_counts().to_dict())
        df = df[df["reject"].isna()]
    df = _drop(df, _missing_id(df["station_id"]), "missing_station_id", counts)
    df["station_id"] = df["station_id"].astype(str).str.strip().str.removesuffix(".0")
    df = _drop(df, _date_only(df["timestamp"]), "date_without_time", counts)
    df["timestamp"] = _parse_times(df["timestamp"])
    df = _drop(df, df["timestamp"].isna(), "unparsable_time", counts)
    out_of_range = (df["timestamp"] < EARLIEST) | (df["timestamp"] >= LATEST)
    df = _drop(df, out_of_range, "time_out_of_range", counts)
    df = _clean_numbers(df, counts)
    _refuse_absurd_counts(df, source)
    above = df["capacity"].notna() & (df["bikes"] > df["capacity"])
    df = _drop(df, above, "above_capacity", counts)
    df = _drop(df, df.duplicated(["station_id", "timestamp"], keep="first"), "duplicate", counts)
    if "renting" in df:
        not_renting = ~df["renting"].astype(bool)
        counts["not_renting"] += int(not_renting.sum())
        df.loc[not_renting, "bikes"] = np.nan
    df["capacity"] = _resolve_capacity(df, counts)
    return df[list(TIDY_COLUMNS)].reset_index(drop=True), dict(counts)


def _drop(df: pd.DataFrame, mask: pd.Series, reason: str, counts: Counter) -> pd.DataFrame:
    """``df`` without the rows of ``mask``, counted under ``reason``."""
    counts[reason] += int(mask.sum())
    return df[~mask].copy()


def _clean_numbers(df: pd.DataFrame, counts: Counter) -> pd.DataFrame:
    """Counts must be whole non-negative numbers (not booleans), coordinates on the globe."""
    flags = {col: _booleans(df[col]) for col in ("bikes", "capacity", "lat", "lon")}
    for col, flag in flags.items():
        df[col] = pd.to_numeric(df[col].where(~flag) if flag.any() else df[col], errors="coerce")
    df = _drop(df, flags["bikes"] | flags["capacity"], "non_integer_count", counts)
    df = _drop(df, (flags["lat"] | flags["lon"])[df.index], "bad_coordinates", counts)
    bikes, cap = df["bikes"], df["capacity"]
    bad_number = (
        bikes.isna()
        | (bikes < 0)
        | ~np.isfinite(bikes)
        | (cap < 0)
        | np.isinf(cap)
        | df[["lat", "lon"]].isna().any(axis=1)
    )
    df = _drop(df, bad_number, "bad_number", counts)
    fraction = (df["bikes"] % 1 != 0) | (df["capacity"].notna() & (df["capacity"] % 1 != 0))
    df = _drop(df, fraction, "non_integer_count", counts)
    off_globe = ~df["lat"].between(-90, 90) | ~df["lon"].between(-180, 180)
    return _drop(df, off_globe, "bad_coordinates", counts)


def _refuse_absurd_counts(df: pd.DataFrame, source: str) -> None:
    """A count above MAX_COUNT is no station's: the column holds something else (another unit,
    an identifier); a DataSourceError naming the source and the column, not a silent panel."""
    for col in ("bikes", "capacity"):
        above = df[col] > MAX_COUNT
        if above.any():
            raise DataSourceError(
                f"{source}: {int(above.sum())} reading(s) with {col} above {MAX_COUNT:,} "
                f"(largest {df.loc[above, col].max():.4g}): not a count at one station; check "
                "the column's units"
            )


def _duplicated_columns(path: Path, columns: list) -> None:
    """Refuse a table naming one of TIDY_COLUMNS twice: which copy is meant is unknown (pandas
    would silently read the second as ``bikes.1``)."""
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8", errors="replace") as handle:
            columns = next(csv.reader(handle), [])
    seen = Counter(str(c).strip() for c in columns)
    twice = [c for c in TIDY_COLUMNS if seen[c] > 1]
    if twice:
        raise DataSourceError(
            f"{path}: column {twice[0]!r} appears {seen[twice[0]]} times; keep one"
        )


def _resolve_capacity(df: pd.DataFrame, counts: Counter) -> pd.Series:
    """Each station's most recent capacity for every row; rows that said otherwise are counted.
    A station with no capacity at all gets the largest number of bikes seen there."""
    known = df.dropna(subset=["capacity"]).sort_values("timestamp", kind="stable")
    latest = df["station_id"].map(known.groupby("station_id")["capacity"].last())
    conflict = df["capacity"].notna() & (df["capacity"] != latest)
    counts["conflicting_capacity"] += int(conflict.sum())
    return latest.fillna(df.groupby("station_id")["bikes"].transform("max")).fillna(0)


def _booleans(values: pd.Series) -> pd.Series:
    """Where a value is a boolean (True, numpy's bool, or the text "true"/"false")."""
    if pd.api.types.is_bool_dtype(values):
        return pd.Series(True, index=values.index)
    if pd.api.types.is_numeric_dtype(values):
        return pd.Series(False, index=values.index)
    text = _as_text(values)
    if text is not None:  # CSV columns: vectorised
        return text.str.strip().str.lower().isin(["true", "false"]).fillna(False).astype(bool)
    return values.map(
        lambda v: (
            isinstance(v, (bool, np.bool_))
            or (isinstance(v, str) and v.strip().lower() in ("true", "false"))
        )
    ).astype(bool)


def _missing_id(ids: pd.Series) -> pd.Series:
    text = _as_text(ids)
    if text is not None:
        return (text.isna() | text.str.strip().eq("")).fillna(True).astype(bool)
    blank = ids.map(lambda v: isinstance(v, str) and not v.strip()).astype(bool)
    return (ids.isna() | blank).astype(bool)


def _date_only(values: pd.Series) -> pd.Series:
    """Dates with no time of day: datetime.date objects (Parquet date32) or "YYYY-MM-DD" text."""
    if pd.api.types.is_datetime64_any_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return pd.Series(False, index=values.index)
    text = _as_text(values)
    if text is not None:
        return text.str.strip().str.fullmatch(_DATE_ONLY.pattern).fillna(False).astype(bool)
    return values.map(
        lambda v: (
            (isinstance(v, dt.date) and not isinstance(v, dt.datetime))
            or (isinstance(v, str) and _DATE_ONLY.fullmatch(v.strip()) is not None)
        )
    ).astype(bool)


def _as_text(values: pd.Series) -> pd.Series | None:
    """The column as pandas strings when every value present is text (None otherwise)."""
    if isinstance(values.dtype, pd.StringDtype):
        return values
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        return values.astype("string")
    return None


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
    """A tidy .csv or .parquet table of station readings; an unreadable file is a
    DataSourceError."""
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
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        raise DataSourceError(
            f"{path}: cannot be read as a table ({type(exc).__name__}: {first_line})"
        ) from None
    _duplicated_columns(path, list(df.columns))
    missing = [c for c in TIDY_COLUMNS if c not in df.columns]
    if missing:
        raise DataSourceError(
            f"{path}: missing column(s) {missing}; a tidy table needs {list(TIDY_COLUMNS)}"
        )
    return df


def read_paris_csv_dir(files: list[Path]) -> pd.DataFrame:
    """Paris open-data ';'-separated CSV snapshots, concatenated; an unreadable file is a
    DataSourceError."""
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
    """station_information and station_status files, recognised by their content.

    Several information snapshots merge, each station keeping its most recent entry. Entries
    that are not objects, have no station_id, or (statuses) name no known station come back
    as rows with a ``reject`` reason, so that ``clean_readings`` counts them.
    """
    infos, statuses, rejects = [], [], []
    for order, path in enumerate(files):
        doc = _read_json(path)
        stations = (
            doc.get("data", {}).get("stations") if isinstance(doc.get("data"), dict) else None
        )
        if not isinstance(stations, list):
            raise DataSourceError(f"{path}: not a GBFS feed (no data.stations list)")
        entries = [s for s in stations if isinstance(s, dict)]
        rejects += ["malformed_entry"] * (len(stations) - len(entries))
        if not entries and stations:
            continue  # nothing usable; its entries are counted
        if any(_bikes_of(s) is not _NO_BIKES for s in entries):
            statuses += [_status_row(s, doc.get("last_updated")) for s in entries]
        elif any("lat" in s for s in entries):
            infos += [_info_row(s, doc.get("last_updated"), order) for s in entries]
        else:
            raise DataSourceError(f"{path}: GBFS stations have neither lat/lon nor bikes available")
    if not infos:
        raise DataSourceError(
            f"{files[0].parent}: no station_information file among the JSON files"
        )
    if not statuses:
        raise DataSourceError(f"{files[0].parent}: no station_status file among the JSON files")
    info, info_rejects = _station_information(pd.DataFrame(infos))
    status = pd.DataFrame(statuses)
    merged = status.merge(info, on="station_id", how="left", indicator=True)
    unknown = merged["reject"].isna() & (merged.pop("_merge") != "both")
    merged.loc[unknown, "reject"] = "unknown_station"
    return pd.concat(
        [merged, pd.DataFrame({"reject": rejects + info_rejects}, dtype=object)],
        ignore_index=True,
    )


def _status_row(s: dict, last_updated) -> dict:
    sid = _station_id(s)
    return {
        "station_id": sid,
        "timestamp": s.get("last_reported", last_updated),
        "bikes": _bikes_of(s),
        "renting": bool(s.get("is_installed", True)) and bool(s.get("is_renting", True)),
        "reject": None if sid else "missing_station_id",
    }


def _info_row(s: dict, last_updated, order: int) -> dict:
    return {
        "station_id": _station_id(s),
        "lat": s.get("lat"),
        "lon": s.get("lon"),
        "capacity": s.get("capacity"),
        "updated": last_updated,
        "order": order,
    }


def _station_information(info: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """One row per station (its most recent entry) and the reasons of the entries set aside:
    no station_id, or a capacity other than the one kept."""
    missing = info["station_id"].eq("")
    rejects = ["missing_station_id"] * int(missing.sum())
    info = info[~missing].assign(updated=_parse_times(info.loc[~missing, "updated"]))
    info = info.sort_values(["updated", "order"], kind="stable", na_position="first")
    latest = info.drop_duplicates("station_id", keep="last").set_index("station_id")
    kept = info["station_id"].map(latest["capacity"])
    differs = info["capacity"].astype(object).ne(kept.astype(object))
    differs &= info["capacity"].notna() | kept.notna()
    rejects += ["conflicting_capacity"] * int(differs.sum())
    return latest[["lat", "lon", "capacity"]].reset_index(), rejects


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
    if sid is None or isinstance(sid, (bool, dict, list)):
        return ""
    return str(sid).strip().removesuffix(".0")


_NO_BIKES = object()  # a status entry without any bikes-available field


def _bikes_of(s: dict):
    """Bikes available under every name the feeds use (v1/v2, Vélib's camelCase, v3 vehicles).

    The value comes back as given (null, text or a boolean included) for ``clean_readings``
    to judge; a per-type list or object is summed only when every count is a number.
    """
    for key in ("num_bikes_available", "numBikesAvailable", "num_vehicles_available"):
        if key in s:
            return s[key]
    types = s.get("num_bikes_available_types", s.get("vehicle_types_available"))
    if isinstance(types, dict) and types:
        return _total(list(types.values()))
    if isinstance(types, list) and types:
        # Vélib: [{"mechanical": n}, {"ebike": m}]; v3: [{"vehicle_type_id": .., "count": n}]
        counts = []
        for item in types:
            if not isinstance(item, dict):
                return None
            counts += [item.get("count")] if "count" in item else list(item.values())
        return _total(counts)
    return _NO_BIKES


def _total(counts: list):
    """The sum of per-type counts. A boolean among them comes back instead (rejected as
    ``non_integer_count``), anything else that is not a number as None (``bad_number``)."""
    for c in counts:
        if isinstance(c, bool):
            return c
        if not isinstance(c, (int, float)):
            return None
    return sum(counts)
