import numpy as np

from model.synthetic import generate_panel


def test_same_seed_same_data_and_other_seed_differs():
    a, b, c = (
        generate_panel(20, 7, seed=1),
        generate_panel(20, 7, seed=1),
        generate_panel(20, 7, seed=2),
    )
    np.testing.assert_array_equal(a.bikes, b.bikes)
    assert not np.array_equal(np.nan_to_num(a.bikes), np.nan_to_num(c.bikes))


def test_shape_ranges_and_outages():
    p = generate_panel(300, 14, seed=0)
    assert p.bikes.shape == (300, 14 * 24) and p.bikes.dtype == np.float32
    cap = p.stations["capacity"].to_numpy()[:, None]
    assert np.nanmin(p.bikes) >= 0 and (np.nan_to_num(p.bikes) <= cap).all()  # physical range
    assert 0.003 < p.missing_share() < 0.05  # outages leave missing hours, but not many
    stuck = np.diff(p.bikes, axis=1) == 0
    runs6 = np.lib.stride_tricks.sliding_window_view(stuck, 6, axis=1).all(-1).any()
    assert runs6  # stuck sensors repeat a value for hours
    assert 27 <= cap.mean() <= 35 and 26 <= np.median(cap) <= 32  # Vélib: mean ~31, median ~29


def test_weekday_rush_hours_are_noisier_than_nights():
    p = generate_panel(300, 14, seed=0)
    change = np.abs(np.diff(p.bikes, axis=1))
    hour = p.hours.hour.to_numpy()[1:]
    weekday = p.hours.day_of_week.to_numpy()[1:] < 5
    assert np.nanmean(change[:, weekday & (hour == 8)]) > 2.5 * np.nanmean(
        change[:, weekday & (hour == 4)]
    )
