"""The confirmation's sizing: sized again on a real pilot, and checked after it ran against the
real paired spread."""

import numpy as np
import pandas as pd

from harness.analysis import verdict
from harness.analysis.two_stage_section import sizing_check
from harness.two_stage import resize_on_pilot


def _scores(sd: float, n: int = 10) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    base = rng.normal(4.0, 0.2, n)
    rows = [{"strategy": "tpe_median", "seed": k, "score": base[k]} for k in range(n)]
    rows += [
        {"strategy": "tpe_asha", "seed": k, "score": base[k] + rng.normal(0, sd)} for k in range(n)
    ]
    return pd.DataFrame(rows)


PLAN = {"default": "tpe_median", "candidates": ["tpe_asha"], "effect": 0.12, "sd_used": 0.11}


def test_a_real_spread_smaller_than_the_screens_asks_for_fewer_seeds():
    quiet, loud = sizing_check(_scores(0.03), PLAN), sizing_check(_scores(0.12), PLAN)
    assert "times the screen's" in quiet and "would have asked for" in quiet
    seeds = [int(t.split("asked for ")[1].split()[0]) for t in (quiet, loud)]
    assert seeds[0] < seeds[1]


def test_too_few_real_pairs_say_nothing():
    assert sizing_check(_scores(0.1, n=2), PLAN) == ""


def _pilot_scores(diffs: np.ndarray) -> pd.DataFrame:
    rows = [{"strategy": "tpe_median", "seed": k, "score": 4.0} for k in range(len(diffs))]
    rows += [{"strategy": "tpe_asha", "seed": k, "score": 4.0 + d} for k, d in enumerate(diffs)]
    return pd.DataFrame(rows, columns=["strategy", "seed", "score"])


SCREEN = {**PLAN, "seeds": 10, "power": 0.84, "level": 0.05}
MOST = 12  # simulating the exact test is cheap up to 12 pairs (2**12 sign patterns)


def test_a_pilot_sizes_the_confirmation_on_the_real_spread():
    pilot = verdict.fewest_pairs(SCREEN["level"])
    assert pilot == 6  # 2 / 2**6 is the first p at or under 0.05
    signs = np.tile([1.0, -1.0], pilot // 2)
    quiet = resize_on_pilot(_pilot_scores(0.03 * signs), SCREEN, pilot, MOST)  # spread 0.03
    loud = resize_on_pilot(_pilot_scores(0.2 * signs), SCREEN, pilot, MOST)  # the screen's: 0.11
    assert quiet["seeds_after"] == pilot and quiet["power_after"] >= verdict.POWER
    assert quiet["seeds_after"] < SCREEN["seeds"] < loud["seeds_after"] <= MOST
    assert quiet["screen_seeds"] == SCREEN["seeds"] and quiet["pilot_seeds"] == pilot
    # the standard deviation if the effect sought is real: mean square = effect^2 + variance
    assert np.isclose(loud["paired_rms"], 0.2) and np.isclose(
        loud["sd_estimate"], np.sqrt(0.2**2 - SCREEN["effect"] ** 2)
    )
    assert quiet["sd_estimate"] == 0  # differences smaller than the effect itself
    # only the pilot's seeds are read, whatever else the folder holds
    more = _pilot_scores(np.r_[0.03 * signs, np.full(4, 5.0)])
    assert resize_on_pilot(more, SCREEN, pilot, MOST)["seeds_after"] == pilot
    # a pilot with nothing scored keeps the screen's sizing
    assert resize_on_pilot(_pilot_scores(np.array([])), SCREEN, pilot, MOST)["seeds_after"] == 10


def _all_signs(n: int) -> np.ndarray:
    return 1.0 - 2.0 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)


def test_the_size_ignores_the_signs_so_the_exact_test_keeps_its_level():
    """Enumerated, not simulated: for fixed magnitudes of the differences, every sign pattern of
    the pilot asks for the same size, and over every sign pattern of the pairs at that size the
    test rejects at most at its level (under no difference with symmetric errors, each pattern
    is equally likely). A rule that stops early on a rejecting pilot fails the same check."""
    level, pilot = SCREEN["level"], verdict.fewest_pairs(SCREEN["level"])
    rng = np.random.default_rng(3)
    sizes = set()
    for scale in (0.05, 0.13, 0.16):  # a quiet, a middling and a loud pilot
        magnitudes = np.abs(rng.normal(0, scale, MOST))
        asked = {
            resize_on_pilot(_pilot_scores(magnitudes[:pilot] * flips), SCREEN, pilot, MOST)[
                "seeds_after"
            ]
            for flips in _all_signs(pilot)
        }
        assert len(asked) == 1  # the same size whichever way the pilot's pairs point
        n = asked.pop()
        sizes.add(n)
        p = verdict.sign_flip_pvalues(_all_signs(n) * magnitudes[:n])
        assert (p <= level).mean() <= level
    assert len(sizes) > 1  # the pilot did move the size
    # the contrast: stop at the pilot when it rejects, else run every seed
    magnitudes = np.abs(rng.normal(0, 0.1, MOST))
    patterns = _all_signs(MOST) * magnitudes
    early = verdict.sign_flip_pvalues(patterns[:, :pilot]) <= level
    late = verdict.sign_flip_pvalues(patterns) <= level
    assert (early | late).mean() > level
