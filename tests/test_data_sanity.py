"""Data sanity before windows are built: bad rows are dropped and counted by reason (never a
traceback, never silent); a source that cannot give windows is one line naming it and why."""

import datetime as dt
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.cli import main
from model import windows
from model.loaders import MAX_SPAN_DAYS, REJECT_REASONS, DataSourceError, load_source
from model.synthetic import generate_panel
from model.windows import MAX_STATION_HOURS, build_windows, memory_problem

T0 = 1725260400  # 2024-09-02 09:00 Paris (07:00 UTC)


def _tidy(hours: int = 6, stations=("a", "b")) -> pd.DataFrame:
    ts = pd.date_range("2024-09-02", periods=hours, freq="h")
    return pd.DataFrame(
        {
            "timestamp": [t for _ in stations for t in ts],
            "station_id": [s for s in stations for _ in ts],
            "bikes": 5,
            "capacity": 20,
            "lat": 48.8,
            "lon": 2.3,
        }
    )


def _load_csv(tmp_path, df: pd.DataFrame, name: str = "tidy.csv"):
    path = tmp_path / name
    df.to_csv(path, index=False)
    return load_source(path)


def _nonzero(rejected: dict) -> dict:
    assert set(rejected) == set(REJECT_REASONS)
    return {k: v for k, v in rejected.items() if v}


# (what is wrong in one row of a 12-row tidy CSV, the change, the reason it is counted under)
BAD_ROWS = [
    ("a reading in 1970", {"timestamp": "1970-01-01T10:00:00"}, "time_out_of_range"),
    ("a reading in 2200", {"timestamp": "2200-01-01T10:00:00"}, "time_out_of_range"),
    ("POSIX seconds in 2200", {"timestamp": "7258118400"}, "time_out_of_range"),
    ("a reading in 1999", {"timestamp": "1999-12-31T23:00:00"}, "time_out_of_range"),
    ("a date without a time", {"timestamp": "2024-09-02"}, "date_without_time"),
    ("latitude 999", {"lat": 999}, "bad_coordinates"),
    ("latitude -90.5", {"lat": -90.5}, "bad_coordinates"),
    ("longitude 200", {"lon": 200}, "bad_coordinates"),
    ("longitude -180.1", {"lon": -180.1}, "bad_coordinates"),
    ("latitude 'true'", {"lat": "true"}, "bad_coordinates"),
    ("bikes 'True'", {"bikes": "True"}, "non_integer_count"),
    ("bikes 'false'", {"bikes": "false"}, "non_integer_count"),
    ("bikes 2.5", {"bikes": 2.5}, "non_integer_count"),
    ("capacity 20.5", {"capacity": 20.5}, "non_integer_count"),
    ("capacity 'TRUE'", {"capacity": "TRUE"}, "non_integer_count"),
    ("capacity -3", {"capacity": -3}, "bad_number"),
    ("bikes inf", {"bikes": "inf"}, "bad_number"),
    ("an empty station_id", {"station_id": ""}, "missing_station_id"),
    ("a blank station_id", {"station_id": "   "}, "missing_station_id"),
]


@pytest.mark.parametrize("what, change, reason", BAD_ROWS, ids=[b[0] for b in BAD_ROWS])
def test_one_bad_row_is_dropped_and_counted(tmp_path, what, change, reason):
    df = _tidy().astype({"bikes": object, "capacity": object, "lat": object, "lon": object})
    df["timestamp"] = df["timestamp"].astype(str)
    for col, value in change.items():
        df.loc[3, col] = value
    panel = _load_csv(tmp_path, df)
    assert _nonzero(panel.rejected) == {reason: 1}
    assert panel.n_hours == 6  # the stray row did not stretch the span
    assert np.nansum(panel.bikes) == 5 * 11  # the eleven good readings, no more


def test_parquet_datetime_columns(tmp_path):
    df = _tidy(stations=("a",))
    df["timestamp"] = df["timestamp"].astype("datetime64[us]")
    df.loc[5, "timestamp"] = pd.Timestamp("2200-01-01")  # a far-future date, as a date
    df.to_parquet(tmp_path / "t.parquet")
    panel = load_source(tmp_path / "t.parquet")
    assert _nonzero(panel.rejected) == {"time_out_of_range": 1} and panel.n_hours == 5


def test_parquet_timezone_aware_datetimes_become_paris_time(tmp_path):
    df = _tidy(stations=("a",))
    df["timestamp"] = df["timestamp"].dt.tz_localize("UTC")
    df.to_parquet(tmp_path / "t.parquet")
    panel = load_source(tmp_path / "t.parquet")
    assert panel.hours[0] == pd.Timestamp("2024-09-02 02:00")  # UTC+2 in September


def test_parquet_date32_column_is_not_hourly_data(tmp_path):
    df = _tidy(hours=48, stations=("a",))
    table = pa.table(
        {
            "timestamp": pa.array([t.date() for t in df["timestamp"]], pa.date32()),
            **{c: df[c].to_numpy() for c in ("station_id", "bikes", "capacity", "lat", "lon")},
        }
    )
    pq.write_table(table, tmp_path / "dates.parquet")
    with pytest.raises(DataSourceError, match=r"dates\.parquet: no usable readings") as err:
        load_source(tmp_path / "dates.parquet")
    assert "date_without_time 48" in str(err.value)


def test_a_span_longer_than_two_years_names_the_file(tmp_path):
    df = _tidy().astype({"timestamp": str})
    df.loc[0, "timestamp"] = "2021-01-01T10:00:00"  # inside [2000, 2100), far from the rest
    with pytest.raises(DataSourceError, match=r"tidy\.csv: readings span 2021-01-01 10:00:00"):
        _load_csv(tmp_path, df)
    with pytest.raises(DataSourceError, match=f"more than the {MAX_SPAN_DAYS} days"):
        _load_csv(tmp_path, df)


def test_a_stray_reading_that_leaves_no_validation_windows(tmp_path, capsys):
    # 14 good days plus one reading 300 days before: within the span limit, but the hours
    # between are empty, so no validation window has its inputs: one line, exit 2, not NaN MAE.
    df = _tidy(hours=24 * 14, stations=("a",))
    stray = df.iloc[[0]].assign(timestamp=pd.Timestamp("2023-11-07 10:00"))
    path = tmp_path / "stray.csv"
    pd.concat([stray, df]).to_csv(path, index=False)
    with pytest.raises(DataSourceError, match=r"stray\.csv: no (train|val) windows left"):
        build_windows(load_source(path))
    assert main(["data", "--source", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "stray.csv" in err and "windows left" in err and "\n" not in err


@pytest.mark.parametrize("split", ["val", "test"])
def test_an_outage_over_a_whole_split(split):
    panel = generate_panel(3, 14, seed=0)
    base = build_windows(panel)
    first = base.splits[split].first_hour().min()
    last = base.splits[split].last_hour().max()
    panel.bikes[:, first : last + 1] = np.nan
    with pytest.raises(DataSourceError, match=rf"synthetic.*: no {split} windows left") as err:
        build_windows(panel)
    assert "miss a target hour" in str(err.value) and "\n" not in str(err.value)


def test_memory_estimate_refuses_a_panel_this_machine_cannot_hold(monkeypatch):
    assert memory_problem(1498, 24 * 28) is None  # the full network, four weeks
    assert "this machine has 1 GB" in memory_problem(1498, 24 * 365 * 2, memory_bytes=10**9)
    assert memory_problem(MAX_STATION_HOURS + 1, 1, memory_bytes=2**62) is not None
    monkeypatch.setattr(windows, "machine_memory", lambda: 10**5)
    with pytest.raises(DataSourceError, match=r"synthetic.*need about .* GB to build windows"):
        build_windows(generate_panel(2, 14, seed=0))


def _write(path, doc):
    path.write_text(json.dumps(doc))


def _info(stations, updated=T0):
    return {"last_updated": updated, "data": {"stations": stations}}


def _status(stations, updated=T0):
    return {"last_updated": updated, "data": {"stations": stations}}


GOOD_INFO = [
    {"station_id": "a", "lat": 48.8, "lon": 2.3, "capacity": 20},
    {"station_id": "b", "lat": 48.9, "lon": 2.4, "capacity": 10},
]


def _reading(sid="a", **fields):
    return {"station_id": sid, "num_bikes_available": 3, "last_reported": T0, **fields}


# (a bad GBFS status entry beside a good one, the reason it is counted under)
BAD_ENTRIES = [
    (
        {
            "station_id": "b",
            "last_reported": T0,
            "vehicle_types_available": [{"vehicle_type_id": "bike", "count": None}],
        },
        "bad_number",
    ),
    (
        {
            "station_id": "b",
            "last_reported": T0,
            "num_bikes_available_types": [{"mechanical": True}],
        },
        "non_integer_count",
    ),
    (
        {
            "station_id": "b",
            "last_reported": T0,
            "num_bikes_available_types": [{"mechanical": "3"}, {"ebike": 1}],
        },
        "bad_number",
    ),
    ({"station_id": "b", "last_reported": T0, "num_bikes_available_types": [5]}, "bad_number"),
    (
        {
            "station_id": "b",
            "last_reported": T0,
            "num_bikes_available_types": {"mechanical": 1, "ebike": False},
        },
        "non_integer_count",
    ),
    (_reading("b", num_bikes_available=None), "bad_number"),
    (_reading("b", num_bikes_available=True), "non_integer_count"),
    (_reading("b", num_bikes_available=1.5), "non_integer_count"),
    (_reading("", num_bikes_available=2), "missing_station_id"),
    (_reading(None, num_bikes_available=2), "missing_station_id"),
    (_reading("b", last_reported=None), "unparsable_time"),
    (_reading("b", last_reported=0), "unparsable_time"),
    (_reading("b", last_reported=7258118400), "time_out_of_range"),
    (7, "malformed_entry"),
    ("b", "malformed_entry"),
    (None, "malformed_entry"),
    ([1, 2], "malformed_entry"),
]


@pytest.mark.parametrize("entry, reason", BAD_ENTRIES, ids=[r for _, r in BAD_ENTRIES])
def test_gbfs_bad_entry_is_counted_not_a_traceback(tmp_path, entry, reason):
    _write(tmp_path / "info.json", _info(GOOD_INFO))
    _write(tmp_path / "status.json", _status([_reading("a"), entry]))
    panel = load_source(tmp_path)
    assert _nonzero(panel.rejected) == {reason: 1}
    assert list(panel.stations["station_id"]) == ["a"] and panel.bikes[0, 0] == 3


def test_gbfs_information_entries_counted(tmp_path):
    _write(tmp_path / "info.json", _info([*GOOD_INFO, 3, {"station_id": "", "lat": 1, "lon": 1}]))
    _write(tmp_path / "status.json", _status([_reading("a"), _reading("b")]))
    panel = load_source(tmp_path)
    assert _nonzero(panel.rejected) == {"malformed_entry": 1, "missing_station_id": 1}
    assert panel.n_stations == 2


def test_gbfs_station_coordinates_off_the_globe(tmp_path):
    info = [GOOD_INFO[0], {**GOOD_INFO[1], "lat": 999}]
    _write(tmp_path / "info.json", _info(info))
    _write(tmp_path / "status.json", _status([_reading("a"), _reading("b")]))
    assert _nonzero(load_source(tmp_path).rejected) == {"bad_coordinates": 1}


def test_gbfs_file_of_only_malformed_entries(tmp_path):
    _write(tmp_path / "info.json", _info(GOOD_INFO))
    _write(tmp_path / "status.json", _status([_reading("a")]))
    _write(tmp_path / "weird.json", _status([1, 2, 3]))
    assert _nonzero(load_source(tmp_path).rejected) == {"malformed_entry": 3}


def test_gbfs_two_capacities_keep_the_most_recent(tmp_path):
    # The newer snapshot sorts first by name: recency comes from last_updated, not file order.
    _write(tmp_path / "a_new.json", _info([{**GOOD_INFO[0], "capacity": 25}], updated=T0 + 86400))
    _write(tmp_path / "b_old.json", _info(GOOD_INFO, updated=T0))
    _write(tmp_path / "status.json", _status([_reading("a"), _reading("b")]))
    panel = load_source(tmp_path)
    assert _nonzero(panel.rejected) == {"conflicting_capacity": 1}
    caps = panel.stations.set_index("station_id")["capacity"]
    assert caps["a"] == 25 and caps["b"] == 10  # b's only entry is in the older file


def test_tidy_two_capacities_keep_the_most_recent(tmp_path):
    df = _tidy()
    df.loc[(df["station_id"] == "a") & (df.index < 2), "capacity"] = 30  # two early readings
    panel = _load_csv(tmp_path, df)
    assert _nonzero(panel.rejected) == {"conflicting_capacity": 2}
    assert panel.stations.set_index("station_id").loc["a", "capacity"] == 20
    assert np.nansum(panel.bikes) == 5 * 12  # conflicting readings are kept, not dropped


def test_boolean_bikes_column_in_parquet(tmp_path):
    df = _tidy(stations=("a",))
    df["bikes"] = True
    df.to_parquet(tmp_path / "b.parquet")
    with pytest.raises(DataSourceError, match=r"b\.parquet: no usable readings") as err:
        load_source(tmp_path / "b.parquet")
    assert "non_integer_count 6" in str(err.value)


def test_paris_snapshot_coordinates_off_the_globe(tmp_path):
    from tests.test_loaders import PARIS_HEADER

    rows = [
        "1;A;OUI;20;10;5;2;3;OUI;OUI;2024-09-02T09:10:00+02:00;48.86, 2.27;Paris",
        "2;B;OUI;20;10;5;2;3;OUI;OUI;2024-09-02T09:10:00+02:00;999, 2.27;Paris",
    ]
    (tmp_path / "snap.csv").write_text("\n".join([PARIS_HEADER, *rows]), encoding="utf-8")
    panel = load_source(tmp_path)
    assert _nonzero(panel.rejected) == {"bad_coordinates": 1} and panel.n_stations == 1


def test_datetime_date_objects_in_an_object_column():
    df = _tidy(stations=("a",)).astype({"timestamp": object})
    df.loc[2, "timestamp"] = dt.date(2024, 9, 2)
    from model.loaders import clean_readings

    _, rejected = clean_readings(df, "hand-made")
    assert _nonzero(rejected) == {"date_without_time": 1}


def test_a_duplicated_bikes_column_is_refused_naming_the_file_and_column(tmp_path, capsys):
    path = tmp_path / "dup.csv"
    df = _tidy()
    df.insert(3, "bikes_again", 7)
    df.to_csv(path, index=False)
    text = path.read_text().replace("bikes_again", "bikes", 1)
    path.write_text(text)  # pandas would read the second copy as 'bikes.1', silently
    with pytest.raises(DataSourceError, match=r"dup\.csv: column 'bikes' appears 2 times"):
        load_source(path)
    assert main(["data", "--source", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "dup.csv: column 'bikes' appears 2 times; keep one" in err and "\n" not in err


@pytest.mark.parametrize("column", ["bikes", "capacity"])
def test_absurdly_large_counts_refuse_the_file(tmp_path, capsys, column):
    df = _tidy()
    df[column] = df[column].astype(float)
    df.loc[3, column] = 1e37
    with pytest.raises(DataSourceError) as err:
        _load_csv(tmp_path, df, "huge.csv")
    assert f"huge.csv: 1 reading(s) with {column} above 10,000 (largest 1e+37)" in str(err.value)
    assert main(["data", "--source", str(tmp_path / "huge.csv")]) == 2
    assert "huge.csv: 1 reading(s)" in capsys.readouterr().err


def test_counts_up_to_the_bound_are_kept(tmp_path):
    df = _tidy()
    df["capacity"] = 10_000
    df.loc[3, "bikes"] = 10_000
    panel = _load_csv(tmp_path, df)
    assert np.nanmax(panel.bikes) == 10_000 and not _nonzero(panel.rejected)
