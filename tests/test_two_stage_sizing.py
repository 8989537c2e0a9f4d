"""The confirmation's sizing: sized again on a real pilot, and checked after it ran against the
real paired spread."""

import numpy as np
import pandas as pd

from harness.analysis import verdict
from harness.analysis.two_stage_section import sizing_check
from harness.two_stage import pilot_spread, resize_on_pilot, seeds_on_spread


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
    # only the pilot's seeds are read, whatever else the folder holds
    more = _pilot_scores(np.r_[0.03 * signs, np.full(4, 5.0)])
    assert resize_on_pilot(more, SCREEN, pilot, MOST)["seeds_after"] == pilot
    # a pilot with nothing scored keeps the screen's sizing
    assert resize_on_pilot(_pilot_scores(np.array([])), SCREEN, pilot, MOST)["seeds_after"] == 10


def test_the_size_ignores_the_signs_so_the_exact_test_keeps_its_level():
    """Under no difference, the pilot's spread cannot depend on which way the pairs point, so
    the test at the size it chose rejects at most at its level: the same differences with their
    signs flipped ask for the same size, and 2,000 simulated confirmations reject about 5% of
    the time."""
    rng = np.random.default_rng(2)
    plan = {**SCREEN, "effect": 1.5, "sd_used": 1.0}
    pilot = verdict.fewest_pairs(plan["level"])
    d = rng.normal(0, 1, pilot)
    same = [pilot_spread(_pilot_scores(x), plan, pilot) for x in (d, -d, d * np.tile([1, -1], 3))]
    assert same[0] == same[1] == same[2]
    rejected, sims, sized = 0, 2000, set()
    for _ in range(sims):
        d = rng.normal(0, 1, MOST)
        spread = float(np.sqrt(np.mean(d[:pilot] ** 2)))
        n = seeds_on_spread(plan["effect"], spread, 1, pilot, MOST)
        sized.add(n)
        rejected += verdict.sign_flip_p(d[:n]) <= plan["level"]
    assert len(sized) > 2  # the pilot did move the size
    assert rejected / sims <= plan["level"] + 2.5 * np.sqrt(0.05 * 0.95 / sims)
