import numpy as np
import pytest

from model.synthetic import generate_panel
from model.windows import MAX_MISSING_INPUTS, PURGE_GAP, SEQ_LEN, STATIC_FEATURES, build_windows


def test_shapes_and_dtypes(tiny_data):
    for split in tiny_data.splits.values():
        n = len(split)
        assert split.seq.shape == (n, SEQ_LEN) and split.seq.dtype == np.float32
        assert split.static.shape == (n, len(STATIC_FEATURES)) and split.static.dtype == np.float32
        assert split.target.shape == split.target_bikes.shape == (n, 3)
        assert split.station.dtype == np.int64
        assert (
            np.isfinite(split.seq).all() and np.isfinite(split.target).all()
        )  # missing values are handled


def test_no_hour_shared_between_splits(tiny_data):
    s = tiny_data.splits
    assert s["train"].last_hour().max() < s["val"].first_hour().min()
    assert s["val"].last_hour().max() < s["test"].first_hour().min()
    # the gap is the purge, not wider than needed
    assert s["val"].first_hour().min() - s["train"].last_hour().max() <= 2


def test_every_station_in_every_split(tiny_data):
    for split in tiny_data.splits.values():
        assert set(np.unique(split.station)) == set(range(tiny_data.n_stations))


def test_scaler_is_fitted_on_train_only():
    panel = generate_panel(10, 14, seed=0)
    base = build_windows(panel)
    val_start = base.splits["val"].first_hour().min()
    panel.bikes[:, val_start:] += 1000  # wildly different future
    moved = build_windows(panel)
    assert moved.bikes_mean == base.bikes_mean and moved.bikes_std == base.bikes_std
    np.testing.assert_array_equal(moved.splits["train"].seq, base.splits["train"].seq)


def test_missing_targets_dropped_and_long_gaps_excluded():
    panel = generate_panel(4, 14, seed=0)
    panel.bikes[0, 100] = np.nan  # one missing hour of station 0
    panel.bikes[1, 150 : 150 + MAX_MISSING_INPUTS + 1] = np.nan  # a long outage of station 1
    data = build_windows(panel)
    tr = data.splits["train"]
    ends0 = tr.end_hour[tr.station == 0]
    assert not np.isin(100, ends0 + 1) and not np.isin(
        100, ends0 + 3
    )  # no window targets the missing hour
    assert np.isin(100 + 5, ends0)  # but windows whose inputs cover it stay (carried forward)
    ends1 = tr.end_hour[tr.station == 1]
    assert not np.isin(150 + MAX_MISSING_INPUTS, ends1)  # too many missing inputs


def test_static_features_at_window_end(tiny_data):
    tr = tiny_data.splits["train"]
    raw = tr.static * 0  # undo scaling via the known hour column: scaled values vary with hour only
    hour_col = STATIC_FEATURES.index("hour")
    hours = tiny_data.hours[tr.end_hour].hour.to_numpy()
    assert np.corrcoef(tr.static[:, hour_col], hours)[0, 1] == pytest.approx(1.0)
    assert raw.shape == tr.static.shape


@pytest.mark.parametrize("days, message", [(3, "too short"), (8, "no val windows")])
def test_too_short_a_series_is_an_error(days, message):
    with pytest.raises(ValueError, match=message):
        build_windows(generate_panel(2, days, seed=0))


def test_purge_gap_matches_window_span():
    assert PURGE_GAP == SEQ_LEN + 3 - 1
