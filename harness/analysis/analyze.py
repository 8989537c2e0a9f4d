"""Every number the comparison reports, gathered once from the records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harness.analysis import metrics, plots
from harness.analysis.loading import Results, load_results
from harness.errors import UserError

MAX_PARAMS_TO_SEARCH = 6


@dataclass
class Analysis:
    results: Results
    tolerance: float
    curve: pd.DataFrame
    bands: pd.DataFrame
    best: pd.DataFrame
    ranking: pd.DataFrame
    ttt: pd.DataFrame
    target: float
    saved: pd.DataFrame
    trust: pd.DataFrame
    floor: float
    false_prunes: dict
    importance_final: pd.Series
    importance_rung1: pd.Series
    good_ranges: pd.DataFrame
    choice: str
    choice_reason: str
    results_dir: str = "results"

    @property
    def replayed(self) -> bool:
        return any(m.get("backend") == "replay" for m in self.results.meta.values())

    def params_to_search(self) -> list[str]:
        """The most important parameters (at most 6), from final-rung importance, else rung 1's."""
        imp = self.importance_final if len(self.importance_final) else self.importance_rung1
        return list(imp.index[:MAX_PARAMS_TO_SEARCH])


def analyze(results_dir: str | Path, experiment: str, tolerance: float = 0.01) -> Analysis:
    results = load_results(results_dir, experiment)
    if not (results.trials["state"] == "COMPLETE").any():
        counts = results.trials["state"].value_counts().to_dict()
        raise UserError(
            f"{Path(results_dir) / experiment}: no run has a complete trial yet "
            f"({', '.join(f'{n} {s.lower()}' for s, n in counts.items())}); "
            "run more trials before comparing"
        )
    curve = metrics.anytime(results.trials)
    best = metrics.final_best(results.trials)
    floor = metrics.noise_floor(results.noise)
    ranking = metrics.ranking(best, floor)
    ttt, target = metrics.time_to_target(curve, tolerance)
    choice, reason = choose_strategy(ranking, ttt)
    return Analysis(
        results=results,
        tolerance=tolerance,
        curve=curve,
        bands=metrics.anytime_bands(curve),
        best=best,
        ranking=ranking,
        ttt=ttt,
        target=target,
        saved=metrics.compute_saved(results),
        trust=metrics.fidelity_trust(results),
        floor=floor,
        false_prunes=metrics.false_prunes(results.audit),
        importance_final=metrics.importance(results),
        importance_rung1=metrics.importance(results, rung=1),
        good_ranges=metrics.good_ranges(results),
        choice=choice,
        choice_reason=reason,
        results_dir=str(results_dir),
    )


def choose_strategy(ranking: pd.DataFrame, ttt: pd.DataFrame) -> tuple[str, str]:
    """Among the strategies the data cannot separate from the best (a tie within the noise floor
    or no significant difference), pick the fastest to the target; break ties by median MAE."""
    candidates = ranking[
        ranking["verdict"].isin(["winner", "not separated", "tie (within the noise floor)"])
    ]
    merged = candidates.merge(
        ttt[["strategy", "median"]].rename(columns={"median": "ttt"}), on="strategy"
    )
    merged = merged.assign(ttt=merged["ttt"].replace(np.nan, np.inf)).sort_values(["ttt", "median"])
    pick = merged.iloc[0]
    winner = ranking.iloc[0]
    if pick["strategy"] == winner["strategy"]:
        reason = (
            f"{pick['strategy']} has the lowest median final validation MAE "
            f"({pick['median']:.4f}) and is also the fastest of the {len(merged)} strategies "
            "the data cannot separate from the best"
        )
    else:
        reason = (
            f"{winner['strategy']} has the lowest median final MAE ({winner['median']:.4f}), "
            f"but {pick['strategy']} ({pick['median']:.4f}) is not separated from it (verdict: "
            f"{pick['verdict']}) and reaches the target fastest (median {pick['ttt']:.0f} s)"
        )
    return str(pick["strategy"]), reason


def write_plots(a: Analysis, out: Path) -> dict[str, str]:
    r = a.results
    return {
        "anytime": plots.anytime_plot(a.bands, out, a.target),
        "time_to_target": plots.time_to_target_plot(a.ttt, out),
        "savings": plots.savings_plot(a.saved, out),
        "fidelity_trust": plots.trust_scatter(r.rungs, r.n_rungs, out),
        "importance": plots.importance_plot(
            {
                "last rung, complete trials": a.importance_final,
                "rung 1, every trial": a.importance_rung1,
            },
            out,
        ),
        "learning_curves": plots.learning_curves_plot(r.rungs, r.trials, out),
        "rank_over_time": plots.rank_over_time_plot(a.bands, out),
    }
