import json

from harness.cli import main


def test_data_json(capsys):
    assert main(["data", "--stations", "6", "--days", "10", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_stations"] == 6
    assert set(info["n_windows"]) == {"train", "val", "test"} and all(
        v > 0 for v in info["n_windows"].values()
    )
    assert set(info["persistence_mae"]) == {"h1", "h2", "h3", "overall"}


def test_data_text_source_with_rejections(tmp_path, capsys):
    import pandas as pd

    ts = pd.date_range("2024-09-02", periods=24 * 14, freq="h")
    df = pd.DataFrame(
        {"timestamp": ts, "station_id": "s1", "bikes": 5, "capacity": 10, "lat": 48.8, "lon": 2.3}
    )
    df.loc[3, "bikes"] = 50  # above capacity
    path = tmp_path / "tidy.csv"
    df.to_csv(path, index=False)
    assert main(["data", "--source", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["rejected"]["above_capacity"] == 1 and info["n_stations"] == 1


def test_bad_source_is_one_line_and_nonzero(tmp_path, capsys):
    assert main(["data", "--source", str(tmp_path / "missing.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "missing.csv" in err and "\n" not in err
