"""How far replayed and real verdicts agree on the same experiment (strategy ranking, time to
target)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from harness.analysis import metrics
from harness.analysis.loading import load_results


def agreement(results_dir: str | Path, experiment: str) -> dict | None:
    """Both folders ``<experiment>`` and ``<experiment>.replay`` must hold runs; else None."""
    base = experiment.removesuffix(".replay")
    try:
        # Quiet: the report has printed the warnings of the runs it analyses once already.
        real = load_results(results_dir, base, echo=False)
        replay = load_results(results_dir, f"{base}.replay", echo=False)
    except Exception:  # one side missing: nothing to compare
        return None
    medians = {}
    ttts = {}
    for label, res in (("real", real), ("replay", replay)):
        best = metrics.final_best(res.trials)
        medians[label] = best.groupby("strategy")["best"].median()
        ttts[label] = metrics.time_to_target(metrics.anytime(res.trials))[0].set_index("strategy")[
            "median"
        ]
    common = sorted(set(medians["real"].index) & set(medians["replay"].index))
    if len(common) < 3:
        return None
    tau = stats.kendalltau(medians["real"][common], medians["replay"][common]).statistic
    t_real, t_rep = (
        ttts["real"][common].replace(np.inf, np.nan),
        ttts["replay"][common].replace(np.inf, np.nan),
    )
    ok = t_real.notna() & t_rep.notna()
    rho_ttt = stats.spearmanr(t_real[ok], t_rep[ok]).statistic if ok.sum() >= 3 else float("nan")
    table = pd.DataFrame(
        {
            "strategy": common,
            "real median MAE": medians["real"][common].to_numpy(),
            "replay median MAE": medians["replay"][common].to_numpy(),
            "real rank": medians["real"][common].rank().to_numpy(),
            "replay rank": medians["replay"][common].rank().to_numpy(),
        }
    )
    real_seeds = real.trials.groupby("strategy")["seed"].nunique().median()
    replay_seeds = replay.trials.groupby("strategy")["seed"].nunique().median()
    winner_real, winner_replay = (
        medians["real"][common].idxmin(),
        medians["replay"][common].idxmin(),
    )
    summary = (
        f"Replayed ({replay_seeds:.0f} seeds) against real ({real_seeds:.0f} seeds) on "
        f"{len(common)} strategies: Kendall's tau of the strategies' median final MAE {tau:.2f}; "
        f"Spearman of their time to target {rho_ttt:.2f}; winner {winner_real} (real) and "
        f"{winner_replay} (replay). A tau near 1 means the replay can stand in for real runs "
        "here; below about 0.5 trust only the real ranking."
    )
    surrogate = Path(results_dir) / f"{base}.replay" / "surrogate.json"
    return {
        "summary": summary,
        "kendall_tau": float(tau),
        "ttt_spearman": float(rho_ttt),
        "same_winner": bool(winner_real == winner_replay),
        "table": table,
        "surrogate": json.loads(surrogate.read_text()) if surrogate.is_file() else None,
    }


def surrogate_table(evidence: dict) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "model": k,
                "Spearman (held-out configs)": evidence[k]["spearman"],
                "mean abs. error (bikes)": evidence[k]["mae"],
                "spread of real MAE": evidence[k]["real_spread"],
                "chosen": "yes" if evidence["chosen"] == k else "",
            }
            for k in ("knn1", "knn5", "ridge")
        ]
    )
