"""The confirmation's sizing, checked after it ran against the real paired spread."""

import numpy as np
import pandas as pd

from harness.analysis.two_stage_section import sizing_check


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
