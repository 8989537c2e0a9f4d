"""How far replayed and real verdicts agree on the same experiment (strategy ranking, time to
target)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from harness.analysis import measures, protocol, verdict
from harness.analysis.loading import Results, load_results
from harness.layout import REPLAY_SUFFIX
from harness.replay.learners import CANDIDATES
from harness.replay.surrogate import TRUSTED_SPEARMAN
from harness.sidefiles import read_json_guarded


def agreement(
    results_dir: str | Path, experiment: str, loaded: Results | None = None
) -> dict | None:
    """Compares the real and replayed runs of ``experiment`` (with or without ``.replay``) on
    what the verdict ranks: re-evaluated incumbents (recorded bests where none exist), and only
    the real runs the surrogate was not fitted to (``surrogate.json``'s ``fitted_on``).
    ``loaded``: ``experiment``'s runs as the caller already read them (the report's analysis),
    so that only the other side is read.

    None unless both sides hold a common strategy. Returns the summary sentence, Kendall's tau
    of the strategies' median scores (NaN under three strategies), and a table per strategy:
    median scores, and against the default the paired mean difference on each side with the
    real one's bootstrap 95% interval and whether the replay's lies inside it."""
    base = experiment.removesuffix(REPLAY_SUFFIX)

    def runs_of(name: str) -> Results:
        if loaded is not None and name == experiment:
            return loaded
        # Quiet: the report has printed the warnings of the runs it analyses once already.
        return load_results(results_dir, name, echo=False)

    try:
        real, replay = runs_of(base), runs_of(base + REPLAY_SUFFIX)
    except Exception:  # one side missing: nothing to compare
        return None
    evidence = surrogate_evidence(results_dir, base)
    seen = set((evidence or {}).get("fitted_on", []))
    real_scores = _scores(real)
    unseen = [
        f"{s}/seed-{int(k)}" not in seen for s, k in zip(real_scores.strategy, real_scores.seed)
    ]
    real_scores = real_scores[np.array(unseen, dtype=bool)]
    replay_scores = _scores(replay)
    common = sorted(set(real_scores["strategy"]) & set(replay_scores["strategy"]))
    if not common:
        return None
    medians = {
        side: sc.groupby("strategy")["score"].median()[common]
        for side, sc in (("real", real_scores), ("replay", replay_scores))
    }
    tau = (
        stats.kendalltau(medians["real"], medians["replay"]).statistic
        if len(common) >= 3
        else float("nan")
    )
    table = pd.DataFrame(
        {
            "strategy": common,
            "real median score": medians["real"].to_numpy(),
            "replay median score": medians["replay"].to_numpy(),
            "real seeds (unseen)": real_scores.groupby("strategy")["seed"].nunique()[common],
        }
    ).reset_index(drop=True)
    table = table.merge(_paired_gaps(real_scores, replay_scores, common), on="strategy", how="left")
    return {
        "summary": _summary(tau, table, len(seen), real_scores),
        "kendall_tau": float(tau),
        "table": table,
        "surrogate": evidence,
    }


def _scores(res: Results) -> pd.DataFrame:
    """One score per run: the re-evaluated incumbent, else the recorded best."""
    return protocol.incumbent_scores(measures.final_best(res.trials), res.reeval)


def _paired_gaps(real: pd.DataFrame, replay: pd.DataFrame, common: list[str]) -> pd.DataFrame:
    """Against the team's default, per strategy: the replay's paired mean difference, the real
    one with a bootstrap 95% interval over seeds, and whether the replay's lies inside."""
    default = verdict.TEAM_DEFAULT
    if default not in common:
        return pd.DataFrame(columns=["strategy"])
    rows = []
    wide = {side: sc.pivot_table(index="seed", columns="strategy", values="score")
            for side, sc in (("real", real), ("replay", replay))}  # fmt: skip
    for s in common:
        if s == default:
            continue
        rep = (wide["replay"][s] - wide["replay"][default]).dropna()
        diffs = (wide["real"][s] - wide["real"][default]).dropna().to_numpy()
        low = high = float("nan")
        if len(diffs) >= 3 and np.ptp(diffs) > 0:
            ci = stats.bootstrap((diffs,), np.mean, n_resamples=2000, rng=0, method="percentile")
            low, high = ci.confidence_interval
        rows.append(
            {
                "strategy": s,
                f"replay gap vs {default}": float(rep.mean()) if len(rep) else float("nan"),
                f"real gap vs {default}": float(diffs.mean()) if len(diffs) else float("nan"),
                "real 95% interval": f"{low:.3f} .. {high:.3f}" if np.isfinite(low) else "n/a",
                "replay inside": bool(low <= rep.mean() <= high) if np.isfinite(low) else None,
            }
        )
    return pd.DataFrame(rows)


def _summary(tau: float, table: pd.DataFrame, n_seen: int, real_scores: pd.DataFrame) -> str:
    """The agreement in one paragraph."""
    inside = table.get("replay inside", pd.Series(dtype=object)).dropna()
    gaps = (
        f"the replay's paired gap to {verdict.TEAM_DEFAULT} lies inside the real 95% interval "
        f"for {int(inside.sum())} of {len(inside)} strategies"
        if len(inside)
        else f"no paired gap to {verdict.TEAM_DEFAULT} could be checked (too few real seeds)"
    )
    tau_text = f"{tau:.2f}" if np.isfinite(tau) else "not measured (fewer than 3 strategies)"
    scored = "re-evaluated incumbents" if real_scores["reevaluated"].any() else "recorded bests"
    return (
        f"Replay against real runs the surrogate did not see ({len(real_scores)} runs; the "
        f"surrogate was fitted to {n_seen} run folders), scored on {scored}: Kendall's tau of "
        f"the strategies' median scores {tau_text}; {gaps}. The replay's MAE scale need not be "
        "the real one; its gaps and ranks are what carry over."
    )


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
        f"trusted to screen (held-out Spearman >= {TRUSTED_SPEARMAN})"
        if ev.get("trusted")
        else f"below the {TRUSTED_SPEARMAN} a screen needs to decide: it informs, real runs decide"
    )
    ceiling = ev.get("noise_ceiling")
    # what seed noise alone lets a perfect model score
    if ceiling is not None and np.isfinite(ceiling):
        spread = (
            f" ({ev['noise_ceiling_low']:.2f}-{ev['noise_ceiling_high']:.2f} from draw to draw)"
            if ev.get("noise_ceiling_low") is not None
            else ""
        )
        trust += (
            f"; with this seed noise, a perfect model would score about {ceiling:.2f} held out"
            f"{spread}"
        )
    return (
        f"The surrogate was fitted to {ev['rungs_fitted']} rungs of {ev['curves']} learning curves "
        f"({ev['configs']} configurations, {ev['configs_at_top']} at the top rung; pruned trials' "
        f"partial curves included) from {len(ev['sources'])} run folders; {noise}{calibration}. "
        f"Each candidate was scored on held-out folds ({ev['folds']}); {ev['chosen']} was "
        "chosen, "
        f"{trust}:"
    )
