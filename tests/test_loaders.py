"""Each loader on small hand-made fixtures: formats, Vélib quirks, and every kind of bad row."""

import json

import numpy as np
import pandas as pd
import pytest

from model.loaders import REJECT_REASONS, DataSourceError, load_source

T0 = 1725260400  # 2024-09-02 09:00 Paris (07:00 UTC)


def _write(path, doc):
    path.write_text(json.dumps(doc))


def _info(stations, last_updated=T0):
    return {"last_updated": last_updated, "data": {"stations": stations}}


def _write_velib_snapshots(tmp_path):
    """Station information and two status snapshots with Vélib's quirks: station_id as a JSON
    number, camelCase duplicates, stationCode, bike types as a list of one-key objects."""
    _write(
        tmp_path / "a.json",
        _info(
            [
                {
                    "station_id": 213688169,
                    "stationCode": "16107",
                    "name": "Benjamin Godard",
                    "lat": 48.865,
                    "lon": 2.275,
                    "capacity": 35,
                },
                {
                    "station_id": 653222953,
                    "stationCode": "6015",
                    "name": "Mazarine",
                    "lat": 48.853,
                    "lon": 2.339,
                    "capacity": 20,
                },
            ]
        ),
    )
    _write_velib_status(tmp_path)


def _write_velib_status(tmp_path):
    """Two status snapshots an hour apart, one station not renting in the second."""
    _write(
        tmp_path / "b.json",
        _info(
            [
                {
                    "station_id": 213688169,
                    "stationCode": "16107",
                    "num_bikes_available": 4,
                    "numBikesAvailable": 4,
                    "num_bikes_available_types": [{"mechanical": 1}, {"ebike": 3}],
                    "is_installed": 1,
                    "is_renting": 1,
                    "last_reported": T0,
                },
                {
                    "station_id": 653222953,
                    "stationCode": "6015",
                    "num_bikes_available_types": [{"mechanical": 5}, {"ebike": 2}],
                    "is_installed": 1,
                    "is_renting": 1,
                    "last_reported": T0 + 60,
                },
            ]
        ),
    )
    _write(
        tmp_path / "c.json",
        _info(
            [
                {
                    "station_id": 213688169,
                    "numBikesAvailable": 6,
                    "is_installed": 1,
                    "is_renting": 1,
                    "last_reported": T0 + 3600,
                },
                {
                    "station_id": 653222953,
                    "num_bikes_available": 9,
                    "is_installed": 1,
                    "is_renting": 0,
                    "last_reported": T0 + 3660,
                },
            ],
            last_updated=T0 + 3600,
        ),
    )


def test_gbfs_velib_quirks(tmp_path):
    _write_velib_snapshots(tmp_path)
    panel = load_source(tmp_path)
    assert list(panel.stations["station_id"]) == [
        "213688169",
        "653222953",
    ]  # numbers joined as strings
    assert panel.hours[0] == pd.Timestamp("2024-09-02 09:00")  # POSIX seconds -> Paris local time
    np.testing.assert_array_equal(panel.bikes[0], [4, 6])  # camelCase duplicate read once
    assert panel.bikes[1, 0] == 7  # total from the bike-type list when no total is given
    assert np.isnan(panel.bikes[1, 1])  # not renting -> missing hour, not a value
    assert panel.rejected["not_renting"] == 1
    assert list(panel.stations["capacity"]) == [35, 20]


def test_gbfs_v3_names(tmp_path):
    _write(
        tmp_path / "info.json",
        {
            "last_updated": "2024-09-02T09:00:00+02:00",
            "version": "3.0",
            "data": {
                "stations": [
                    {
                        "station_id": "s1",
                        "name": [{"text": "Gare", "language": "fr"}],
                        "lat": 48.8,
                        "lon": 2.3,
                        "capacity": 12,
                    },
                ]
            },
        },
    )
    _write(
        tmp_path / "status.json",
        {
            "last_updated": "2024-09-02T10:05:00+02:00",
            "version": "3.0",
            "data": {
                "stations": [
                    {
                        "station_id": "s1",
                        "num_vehicles_available": 3,
                        "vehicle_types_available": [{"vehicle_type_id": "bike", "count": 3}],
                        "is_installed": True,
                        "is_renting": True,
                        "last_reported": "2024-09-02T10:05:00+02:00",
                    },
                ]
            },
        },
    )
    panel = load_source(tmp_path)
    assert panel.hours[0] == pd.Timestamp("2024-09-02 10:00")  # RFC 3339 with offset -> local hour
    assert panel.bikes[0, 0] == 3


def test_gbfs_unknown_station_counted(tmp_path):
    _write(
        tmp_path / "info.json",
        _info([{"station_id": "a", "lat": 48.8, "lon": 2.3, "capacity": 10}]),
    )
    _write(
        tmp_path / "status.json",
        {
            "last_updated": T0,
            "data": {
                "stations": [
                    {"station_id": "a", "num_bikes_available": 2, "last_reported": T0},
                    {"station_id": "zz", "num_bikes_available": 2, "last_reported": T0},
                ]
            },
        },
    )
    assert load_source(tmp_path).rejected["unknown_station"] == 1


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("broken.json", "{not json", "not valid JSON"),
        ("list.json", "[1, 2]", "top level is not an object"),
        ("other.json", '{"data": {"bikes": []}}', "no data.stations list"),
    ],
)
def test_gbfs_bad_files_name_the_file(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(DataSourceError, match=message) as err:
        load_source(tmp_path)
    assert name in str(err.value) and "\n" not in str(err.value)


def test_gbfs_without_information_file(tmp_path):
    _write(
        tmp_path / "status.json",
        {"data": {"stations": [{"station_id": "a", "num_bikes_available": 1}]}},
    )
    with pytest.raises(DataSourceError, match="no station_information"):
        load_source(tmp_path)


PARIS_HEADER = (
    "Identifiant station;Nom station;Station en fonctionnement;Capacité de la station;"
    "Nombre bornettes libres;"
    "Nombre total vélos disponibles;Vélos mécaniques disponibles;Vélos électriques disponibles;"
    "Borne de paiement disponible;Retour vélib possible;Actualisation de la donnée;"
    "Coordonnées géographiques;"
    "Nom communes équipées"
)


def test_paris_csv_snapshots_and_every_bad_row(tmp_path):
    t9 = "2024-09-02T09:00:00+02:00"
    rows_1 = [
        "16107;Benjamin Godard;OUI;35;30;5;2;3;OUI;OUI;2024-09-02T09:10:00+02:00;48.865, 2.275;"
        "Paris",
        "6015;Mazarine;OUI;20;11;9;4;5;OUI;OUI;2024-09-02T09:12:00+02:00;48.853, 2.339;Paris",
        f"7001;Closed;NON;20;0;0;0;0;NON;NON;{t9};48.85, 2.33;Paris",  # not renting
        f"7002;Negative;OUI;20;0;-3;0;0;OUI;OUI;{t9};48.85, 2.33;Paris",  # bad number
        f"7003;Text;OUI;20;0;beaucoup;0;0;OUI;OUI;{t9};48.85, 2.33;Paris",  # bad number
        f"7004;Over;OUI;20;0;25;0;0;OUI;OUI;{t9};48.85, 2.33;Paris",  # above capacity
        "7005;Time;OUI;20;0;5;0;0;OUI;OUI;hier soir;48.85, 2.33;Paris",  # unparsable time
    ]
    again = "16107;Benjamin Godard;OUI;35;28;7;2;5;OUI;OUI;2024-09-02T10:10:00+02:00;48.865, 2.275;"
    again += "Paris"
    rows_2 = [again, again]  # the second is a duplicate
    (tmp_path / "snap1.csv").write_text("\n".join([PARIS_HEADER, *rows_1]), encoding="utf-8")
    (tmp_path / "snap2.csv").write_text("\n".join([PARIS_HEADER, *rows_2]), encoding="utf-8")
    panel = load_source(tmp_path)
    assert set(panel.rejected) == set(REJECT_REASONS)  # every reason reported, zeros included
    assert {k: v for k, v in panel.rejected.items() if v} == {
        "bad_number": 2,
        "above_capacity": 1,
        "unparsable_time": 1,
        "duplicate": 1,
        "not_renting": 1,
    }
    ids = list(panel.stations["station_id"])
    np.testing.assert_array_equal(panel.bikes[ids.index("16107")], [5, 7])
    assert panel.stations.set_index("station_id").loc["6015", "lat"] == pytest.approx(
        48.853
    )  # "lat, lon" string split


def test_paris_csv_wrong_columns(tmp_path):
    (tmp_path / "x.csv").write_text("a;b\n1;2\n")
    with pytest.raises(DataSourceError, match=r"x\.csv: not a Paris open-data snapshot"):
        load_source(tmp_path)


def _tidy_frame():
    ts = pd.date_range("2024-09-02", periods=4, freq="30min")
    return pd.DataFrame(
        {
            "timestamp": list(ts) * 2,
            "station_id": ["a"] * 4 + ["b"] * 4,
            "bikes": [1, 2, 3, 4, 5, 6, 7, 8],
            "capacity": 10,
            "lat": 48.8,
            "lon": 2.3,
        }
    )


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_tidy_table_resampled_to_last_reading_per_hour(tmp_path, suffix):
    path = tmp_path / f"tidy.{suffix}"
    df = _tidy_frame()
    df.to_csv(path, index=False) if suffix == "csv" else df.to_parquet(path)
    panel = load_source(path)
    np.testing.assert_array_equal(panel.bikes, [[2, 4], [6, 8]])  # the last reading in each hour


def test_tidy_missing_columns(tmp_path):
    path = tmp_path / "t.csv"
    _tidy_frame().drop(columns=["lat"]).to_csv(path, index=False)
    with pytest.raises(DataSourceError, match=r"t\.csv: missing column\(s\) \['lat'\]"):
        load_source(path)


def test_tidy_corrupt_parquet(tmp_path):
    path = tmp_path / "t.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataSourceError, match=r"t\.parquet: cannot be read as a table"):
        load_source(path)


def test_missing_path():
    with pytest.raises(DataSourceError, match="no such file"):
        load_source("/definitely/not/here")


def test_wrong_units_millisecond_timestamps(tmp_path):
    path = tmp_path / "ms.csv"
    df = _tidy_frame()
    df["timestamp"] = (
        (df["timestamp"] - pd.Timestamp("1970-01-01")) // pd.Timedelta("1ms")
    ).astype(str)  # ms, not s
    df.to_csv(path, index=False)
    with pytest.raises(
        DataSourceError,
        match=r"ms\.csv: no usable readings \(unparsable_time 8\); check the columns' units",
    ):
        load_source(path)
