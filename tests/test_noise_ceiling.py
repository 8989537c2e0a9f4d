"""The surrogate's noise ceiling: what seed noise alone lets a perfect model score held out."""

import numpy as np
from scipy import stats

from harness.replay.surrogate import _rowwise_spearman, noise_ceiling


def _table(y, n):
    y = np.asarray(y, float)
    return {"y": y, "n": np.asarray(n, float), "rung": np.full(len(y), 3), "top": 3}


def _noise(sd, supported=True):
    return {"supported": supported, "trial": sd, "rung": [0.0, 0.0, 0.0]}


def test_the_ceiling_falls_as_noise_grows_against_the_spread_of_configurations():
    y = np.linspace(3.9, 4.4, 40)
    quiet, loud = (
        noise_ceiling(_table(y, [1] * 40), _noise(0.01)),
        noise_ceiling(_table(y, [1] * 40), _noise(0.2)),
    )
    assert quiet[0] > 0.99 and loud[0] < 0.8 and quiet[0] > loud[0]
    assert loud[1] <= loud[0] <= loud[2]  # the range of the draws around the expectation


def test_repeats_raise_the_ceiling():
    y = np.linspace(3.9, 4.4, 40)
    once = noise_ceiling(_table(y, [1] * 40), _noise(0.15))[0]
    four = noise_ceiling(_table(y, [4] * 40), _noise(0.15))[0]
    assert four > once


def test_outliers_do_not_hide_noise_among_bunched_configurations():
    # 38 configurations within 0.1 of each other, two far off: a variance ratio would call the
    # data reliable (spread 0.5), but most ranks are set by noise.
    y = np.r_[np.linspace(4.0, 4.1, 38), 5.5, 6.0]
    assert noise_ceiling(_table(y, [1] * 40), _noise(0.1))[0] < 0.7


def test_no_noise_model_no_ceiling():
    assert np.isnan(noise_ceiling(_table([4.0, 4.1, 4.2], [1, 1, 1]), _noise(0.1, False))[0])


def test_the_report_states_the_ceiling_beside_the_score():
    from harness.analysis.agreement import surrogate_text

    ev = {
        "rungs_fitted": 262, "curves": 89, "configs": 65, "configs_at_top": 63,
        "sources": ["record-64x2/seed-0"], "noise_supported": True, "repeated_configs": 24,
        "noise_trial": 0.104, "noise_rung": [0.0, 0.0, 0.061], "folds": "5, grouped",
        "chosen": "boosting", "trusted": False, "noise_ceiling": 0.86,
    }  # fmt: skip
    assert "a perfect model would score about 0.86 held out" in surrogate_text(ev)
    ranged = surrogate_text({**ev, "noise_ceiling_low": 0.79, "noise_ceiling_high": 0.92})
    assert "(0.79-0.92 from draw to draw)" in ranged
    assert "perfect model" not in surrogate_text({**ev, "noise_ceiling": None})


def test_the_batched_spearman_is_scipys_row_by_row_ties_included():
    """The bootstrap and the ceiling rank every draw in one call; each row must be exactly what
    scipy.stats.spearmanr gives it (average ranks for ties, as a bootstrap's repeats make)."""
    rng = np.random.default_rng(1)
    a = rng.integers(0, 6, (50, 12)).astype(float)  # many ties
    b = a + rng.normal(0, 2, a.shape)
    b[:, :3] = b[:, [3]]  # ties on the other side too
    expected = [stats.spearmanr(x, y).statistic for x, y in zip(a, b)]
    assert np.allclose(_rowwise_spearman(a, b), expected, rtol=0, atol=1e-12)
