"""How far replayed and real verdicts agree on the same experiment (strategy ranking, time to
target)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from harness.analysis import metrics, protocol, verdict
from harness.analysis.loading import Results, load_results
from harness.layout import REPLAY_SUFFIX
from harness.replay.learners import CANDIDATES
from harness.sidefiles import read_json_guarded


def agreement(results_dir: str | Path, experiment: str) -> dict | None:
    """Compares the real and replayed runs of ``experiment`` (with or without ``.replay``).

    Both folders ``<experiment>`` and ``<experiment>.replay`` must hold runs of at least three
    common strategies; else None. Returns the summary sentence, Kendall's tau of the median
    final MAEs, Spearman of the times to target, whether the winners agree, a table per
    strategy and the surrogate's evidence (or None)."""
    base = experiment.removesuffix(REPLAY_SUFFIX)
    try:
        # Quiet: the report has printed the warnings of the runs it analyses once already.
        real = load_results(results_dir, base, echo=False)
        replay = load_results(results_dir, base + REPLAY_SUFFIX, echo=False)
    except Exception:  # one side missing: nothing to compare
        return None
    medians, ttts = {}, {}
    target = protocol.mae_target(real.warm_rungs(), real.n_rungs)  # one target for both sides
    for label, res in (("real", real), ("replay", replay)):
        medians[label], ttts[label] = _medians(res, target)
    finite = [set(m[np.isfinite(m)].index) for m in medians.values()]  # no complete trial: out
    common = sorted(finite[0] & finite[1])
    if len(common) < 3:
        return None
    real_mae, replay_mae = medians["real"][common], medians["replay"][common]
    tau = stats.kendalltau(real_mae, replay_mae).statistic
    rho_ttt = _ttt_spearman(ttts["real"][common], ttts["replay"][common])
    table = pd.DataFrame(
        {
            "strategy": common,
            "real median MAE": real_mae.to_numpy(),
            "replay median MAE": replay_mae.to_numpy(),
            "real rank": real_mae.rank().to_numpy(),
            "replay rank": replay_mae.rank().to_numpy(),
        }
    )
    real_seeds = real.trials.groupby("strategy")["seed"].nunique().median()
    replay_seeds = replay.trials.groupby("strategy")["seed"].nunique().median()
    winner_real, winner_replay = (verdict.lowest(m, set(common)) for m in (real_mae, replay_mae))
    summary = (
        f"Replayed ({replay_seeds:.0f} seeds) against real ({real_seeds:.0f} seeds) on "
        f"{len(common)} strategies: Kendall's tau of the strategies' median final MAE {tau:.2f}; "
        f"Spearman of their compute to the target {_ttt_text(rho_ttt)}; winner "
        f"{_names(winner_real)} (real) and {_names(winner_replay)} (replay). A tau near 1 means "
        "the replay can stand in for real runs here; below about 0.5 trust only the real ranking."
    )
    return {
        "summary": summary,
        "kendall_tau": float(tau),
        "ttt_spearman": float(rho_ttt),
        "same_winner": bool(winner_real & winner_replay),
        "table": table,
        "surrogate": surrogate_evidence(results_dir, base),
    }


def _ttt_text(rho: float) -> str:
    if np.isfinite(rho):
        return f"{rho:.2f}"
    return "not measured (fewer than 3 strategies reached the target on both sides)"


def _names(strategies: set[str]) -> str:
    return ", ".join(sorted(strategies))


def _medians(res: Results, target: float) -> tuple[pd.Series, pd.Series]:
    """Per strategy: median over seeds of the final best MAE, and the Kaplan-Meier median
    compute (training FLOPs) to ``target``."""
    best = metrics.final_best(res.trials)
    per_run = protocol.time_to_target(res.trials, target, clock="train_flops")
    ttt = protocol.kaplan_meier(per_run).set_index("strategy")["median"]
    return best.groupby("strategy")["best"].median(), ttt


def _ttt_spearman(real: pd.Series, replay: pd.Series) -> float:
    """Spearman of two sides' times to target, over strategies both reached (NaN under 3)."""
    t_real, t_rep = real.replace(np.inf, np.nan), replay.replace(np.inf, np.nan)
    ok = t_real.notna() & t_rep.notna()
    return stats.spearmanr(t_real[ok], t_rep[ok]).statistic if ok.sum() >= 3 else float("nan")


def surrogate_evidence(results_dir: str | Path, experiment: str) -> dict | None:
    """The surrogate's evidence of ``experiment`` (real name, without the replay suffix), as
    saved beside its replayed runs in ``surrogate.json``; None where there is none."""
    path = Path(results_dir) / (experiment + REPLAY_SUFFIX) / "surrogate.json"
    return read_json_guarded(path)


def surrogate_table(evidence: dict) -> pd.DataFrame:
    """The surrogate's held-out scores (``surrogate.json``), one row per candidate model."""
    return pd.DataFrame(
        [
            {
                "model": k,
                "Spearman, top rung (held-out configurations)": evidence[k]["spearman"],
                "95% interval": f"{evidence[k]['spearman_low']:.2f} .. "
                f"{evidence[k]['spearman_high']:.2f}",
                "mean abs. error (bikes)": evidence[k]["mae"],
                "spread of real MAE": evidence[k]["real_spread"],
                "chosen": "yes" if evidence["chosen"] == k else "",
            }
            for k in CANDIDATES
            if k in evidence
        ]
    )


def surrogate_text(ev: dict) -> str:
    """What the surrogate was fitted to, how it was chosen, its noise and its calibration."""
    cal = ev.get("calibration", {})
    noise = (
        f"seed noise from {ev['repeated_configs']} repeated configurations: "
        f"{ev['noise_trial']:.3f} bikes per curve, {ev['noise_rung'][-1]:.3f} more at the top rung"
        if ev.get("noise_supported")
        else "too few repeated configurations to model seed noise: replayed curves are noiseless"
    )
    calibration = (
        f"; {cal['coverage']:.0%} of {cal['n']} held-out top-rung observations fall inside the "
        f"90% noise band around the held-out prediction (a band that ignores model error)"
        if cal.get("supported")
        else ""
    )
    trust = (
        "trusted to screen (held-out Spearman >= 0.9)"
        if ev.get("trusted")
        else "below the 0.9 a screen needs to decide: it informs, real runs decide"
    )
    return (
        f"The surrogate was fitted to {ev['rungs_fitted']} rungs of {ev['curves']} learning curves "
        f"({ev['configs']} configurations, {ev['configs_at_top']} at the top rung; pruned trials' "
        f"partial curves included) from {len(ev['sources'])} run folders; {noise}{calibration}. "
        f"Each candidate was scored on {ev['folds']} folds; {ev['chosen']} was chosen, "
        f"{trust}:"
    )
