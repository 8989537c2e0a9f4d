"""Which strategies the replayed screen sends to a real confirmation."""

from types import SimpleNamespace

import pandas as pd

from harness.analysis.verdict import Traits
from harness.two_stage import screen_candidates


def _screen(medians: dict[str, list[float]], identical=(), compute=None):
    rows = [
        {"strategy": s, "seed": k, "score": v}
        for s, vs in medians.items()
        for k, v in enumerate(vs)
    ]
    compute = compute or {}
    traits = {s: Traits(night_ready=True, compute=compute.get(s, 1.0)) for s in medians}
    return SimpleNamespace(
        scores=pd.DataFrame(rows), identical=[frozenset(g) for g in identical], traits=traits
    )


def test_an_exact_median_tie_is_broken_by_the_scores_not_the_name():
    screen = _screen(
        {"tpe_median": [5, 5, 5], "aaa": [4, 4.2, 4.4], "zzz": [3.9, 4.2, 4.3]}
    )  # equal medians (4.2); zzz has the lower mean
    assert screen_candidates(screen, 1) == ["zzz"]
    renamed = _screen({"tpe_median": [5, 5, 5], "zzz": [4, 4.2, 4.4], "aaa": [3.9, 4.2, 4.3]})
    assert screen_candidates(renamed, 1) == ["aaa"]


def test_twins_take_one_slot_and_the_default_and_its_twins_none():
    screen = _screen(
        {
            "tpe_median": [3, 3, 3],
            "tpe_twin": [3, 3, 3],
            "random": [4, 4, 4],
            "tpe": [4, 4, 4],
            "qmc": [4.5, 4.5, 4.5],
        },
        identical=[{"tpe_median", "tpe_twin"}, {"random", "tpe"}],
    )
    picked = screen_candidates(screen, 2)
    assert len(picked) == 2 and picked[1] == "qmc" and picked[0] in {"random", "tpe"}
