"""The comparison's numbers, each a function of the recorded tables."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pandas as pd
from scipy import stats

from harness.analysis.loading import Results
from harness.records import is_param_column, param_column, param_columns, param_name
from harness.summary import rung_samples, trial_costs_table, unpruned_per_trial

IMPORTANCE_TRIALS = 3000  # trials fANOVA ranks parameters on (a seeded sample beyond)


def anytime(trials: pd.DataFrame) -> pd.DataFrame:
    """Per run and trial: elapsed wall-clock and best COMPLETE validation MAE so far.

    Where a run's trials carry their finishing time (real clocks), trials are taken in the
    order they finished and elapsed is the run's real span: the union of the trials' busy
    intervals up to then, so workers that overlap are not counted twice and the idle gap of a
    resumed run is not counted at all. Otherwise (replay, older records) elapsed is the sum
    of wall_seconds in trial order."""
    rows = []
    for (strategy, seed), run in trials.groupby(["strategy", "seed"]):
        spans = _has_finish_times(run)
        run = _with_finish_times(run) if spans else run.sort_values("trial")
        # An unknown wall time (a trial finished by a process that died) adds nothing known.
        wall = run["wall_seconds"].fillna(0.0)
        elapsed = _busy_span(run["finished_at"], wall) if spans else wall.cumsum().to_numpy()
        # cummin leaves NaN at pruned trials
        best = run["val_mae"].where(run["state"] == "COMPLETE").cummin().ffill()
        rows.append(
            pd.DataFrame(
                {
                    "strategy": strategy,
                    "seed": seed,
                    "trial_index": np.arange(1, len(run) + 1),
                    "elapsed": elapsed,
                    "best": best.to_numpy(),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def _has_finish_times(run: pd.DataFrame) -> bool:
    if "finished_at" not in run:
        return False
    return bool(pd.to_numeric(run["finished_at"], errors="coerce").notna().any())


def _with_finish_times(run: pd.DataFrame) -> pd.DataFrame:
    """The run in finishing order. A row with no finish time (a trial whose process died,
    recorded later as failed) takes the finish time of the trial numbered before it and no
    busy time, so one such row does not switch the whole run to another clock."""
    run = run.sort_values("trial")
    finished = pd.to_numeric(run["finished_at"], errors="coerce")
    known = finished.notna()
    run = run.assign(
        finished_at=finished.ffill().bfill(),
        wall_seconds=run["wall_seconds"].where(known, 0.0),
    )
    return run.sort_values(["finished_at", "trial"], kind="stable")


def _busy_span(finished_at: pd.Series, wall: pd.Series) -> np.ndarray:
    """At each trial's finish (``finished_at`` sorted): the length of the union of every
    trial's interval [finish - wall, finish] up to that moment."""
    end = pd.to_numeric(finished_at).to_numpy(dtype=float)
    start = end - wall.to_numpy(dtype=float)
    order = np.argsort(start)
    out = []
    for t in end:
        covered, reach = 0.0, -np.inf
        for a, b in zip(start[order], np.minimum(end[order], t)):
            if a >= t:
                break
            if b > reach:
                covered += b - max(a, reach)
                reach = b
        out.append(covered)
    return np.array(out)


def anytime_bands(curve: pd.DataFrame, n_points: int = 60) -> pd.DataFrame:
    """Median and quartiles over seeds of best-so-far MAE on a common time grid."""
    grid = np.linspace(0, curve["elapsed"].max(), n_points)[1:]
    rows = []
    for strategy, runs in curve.groupby("strategy"):
        at = []
        for _, run in runs.groupby("seed"):
            idx = np.searchsorted(run["elapsed"].to_numpy(), grid, side="right") - 1
            values = np.where(idx >= 0, run["best"].to_numpy()[np.clip(idx, 0, None)], np.nan)
            at.append(values)
        at = np.array(at)
        with np.errstate(all="ignore"):
            q = np.nanpercentile(np.where(np.isnan(at), np.inf, at), [25, 50, 75], axis=0)
        rows.append(
            pd.DataFrame(
                {"strategy": strategy, "elapsed": grid, "q25": q[0], "median": q[1], "q75": q[2]}
            )
        )
    out = pd.concat(rows, ignore_index=True)
    return out.replace(np.inf, np.nan)


def final_best(trials: pd.DataFrame) -> pd.DataFrame:
    """Best COMPLETE validation MAE of every run at the end of its budget."""
    done = trials[trials["state"] == "COMPLETE"]
    best = done.groupby(["strategy", "seed"])["val_mae"].min()
    runs = trials.groupby(["strategy", "seed"]).size().rename("trials")
    return pd.concat([best.rename("best"), runs], axis=1).reset_index()


def compute_saved(results: Results) -> pd.DataFrame:
    """Per strategy: median, min and max over seeds of the share of compute saved against
    the unpruned run, and of the share of trials pruned (two-level columns)."""
    keys = ["strategy", "seed", "trial"]
    costs = trial_costs_table(
        results.rungs, rung_samples(results.rungs), results.n_rungs, tuple(keys)
    )
    pruned = results.trials.loc[results.trials["state"] == "PRUNED", keys]
    is_pruned = costs.index.isin(pd.MultiIndex.from_frame(pruned))
    unpruned = unpruned_per_trial(costs, is_pruned, results.n_rungs)
    runs = ["strategy", "seed"]
    unknown = unpruned.isna().groupby(level=runs).any()  # one unknown trial: the run's is unknown
    unpruned = unpruned.groupby(level=runs).sum().mask(unknown).to_dict()
    rows = []
    for (strategy, seed), trials in results.trials.groupby(["strategy", "seed"]):
        spent = float(trials["train_seconds"].sum() + trials["eval_seconds"].sum())
        full = unpruned.get((strategy, seed), spent)  # a run without rungs saved nothing
        rows.append(
            {
                "strategy": strategy,
                "seed": seed,
                "spent": spent,
                "unpruned": full,
                "saved_share": 1 - spent / full if full else 0.0,
                "pruned_share": float((trials["state"] == "PRUNED").mean()),
            }
        )
    per_run = pd.DataFrame(rows)
    return (
        per_run.groupby("strategy")[["saved_share", "pruned_share"]]
        .agg(["median", "min", "max"])
        .reset_index()
    )


def rung_table(rungs: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, trial), a column of validation MAE per rung (NaN where not reached)."""
    wide = rungs.pivot_table(index=["strategy", "seed", "trial"], columns="rung", values="val_mae")
    params = rungs.groupby(["strategy", "seed", "trial"])[param_columns(rungs)].first()
    return wide.join(params)


def distinct(frame: pd.DataFrame, values: list) -> pd.DataFrame:
    """The rows of ``frame`` with each trained trial once: a row with the same seed, trial
    number, parameters and ``values`` (its MAE columns) as an earlier one is a copy of the same
    training (strategies that share a sampler's start-up, or random streams, record it in
    several runs) and is dropped."""
    ids = [c for c in ("seed", "trial") if c in frame.columns]
    params = param_columns(frame)
    return frame.drop_duplicates([*ids, *params, *values])


def fidelity_trust(results: Results) -> pd.DataFrame:
    """Spearman rank correlation of MAE at each rung with MAE at the last rung, and which
    numeric parameters each rung's ranking favours (Spearman of parameter with MAE), over
    distinct trained trials (``distinct``): a trial recorded by several runs counts once, in
    the correlations and in the counts."""
    wide = rung_table(results.rungs).reset_index()
    last = results.n_rungs
    numeric = [
        c
        for c in wide.columns
        if is_param_column(c) and pd.api.types.is_numeric_dtype(wide[c]) and wide[c].nunique() > 2
    ]
    rows = []
    for rung in range(1, last + 1):
        if rung not in wide.columns:
            continue
        both = wide.dropna(subset=[rung, last]) if last in wide.columns else wide.iloc[0:0]
        both = distinct(both, [rung, last])
        rho = _spearman(both[rung], both[last])
        at_rung = distinct(wide.dropna(subset=[rung]), [rung])
        row = {
            "rung": rung,
            "trials_at_rung": len(at_rung),
            "trials_with_final": len(both),
            "spearman_with_final": rho,
        }
        for col in numeric:
            ok = at_rung[[col, rung]].dropna()
            row[f"rho_{param_name(col)}"] = _spearman(ok[col], ok[rung])
        rows.append(row)
    columns = ["rung", "trials_at_rung", "trials_with_final", "spearman_with_final"]
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=columns)  # no rungs recorded


def _spearman(a: pd.Series, b: pd.Series) -> float:
    """Spearman's rho; NaN where it is undefined (fewer than 3 pairs, or a constant side)."""
    if len(a) < 3 or a.nunique() < 2 or b.nunique() < 2:
        return float("nan")
    return float(stats.spearmanr(a, b).statistic)


def ranking(scores: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Strategies by median score over seeds (lower is better), with the mean and its
    percentile-bootstrap 95% CI. Descriptive only: tests and the verdict live in
    ``harness.analysis.verdict``. Ties in the order are broken by the mean, never by name
    alone (equal rows share a rank).

    Takes one row per run with columns strategy, score; returns one row per strategy."""
    rows = []
    for strategy, runs in scores.groupby("strategy"):
        values = runs["score"].dropna().to_numpy()
        ci = _bootstrap_ci(values, seed)
        rows.append(
            {
                "strategy": strategy,
                "median": np.median(values) if len(values) else np.nan,
                "mean": values.mean() if len(values) else np.nan,
                "ci_low": ci[0],
                "ci_high": ci[1],
                "seeds": len(values),
            }
        )
    table = pd.DataFrame(rows).sort_values(["median", "mean"], na_position="last")
    table["rank"] = table[["median", "mean"]].apply(tuple, axis=1).rank(method="min").astype(int)
    return table.reset_index(drop=True)


def _bootstrap_ci(values: np.ndarray, seed: int) -> tuple[float, float]:
    """Percentile bootstrap 95% CI of the mean; a point where the values do not vary."""
    if len(values) >= 2 and np.ptp(values) > 0:
        res = stats.bootstrap(
            (values,),
            np.mean,
            confidence_level=0.95,
            n_resamples=2000,
            method="percentile",
            random_state=seed,
        )
        return (res.confidence_interval.low, res.confidence_interval.high)
    if len(values):
        return (values.mean(), values.mean())
    return (np.nan, np.nan)


def importance(results: Results, rung: int | None = None) -> pd.Series:
    """optuna.importance over the pooled trials: COMPLETE trials at the last rung, or every trial
    that reached ``rung`` with its MAE there (far more data when pruning is aggressive); a
    seeded sample of IMPORTANCE_TRIALS of them where there are more (fANOVA's forest on tens of
    thousands of replayed trials took most of a report's time, for the same ranking)."""
    space = {p.name: p for p in results.space()}
    if rung is None:
        params = results.trials[results.trials["state"] == "COMPLETE"]
    else:
        params = results.rungs[results.rungs["rung"] == rung]
    params = distinct(params, ["val_mae"])  # a trial shared by several runs counts once
    if len(params) > IMPORTANCE_TRIALS:  # 50 replayed seeds hold tens of thousands
        params = params.sample(n=IMPORTANCE_TRIALS, random_state=0)
    values = params["val_mae"].to_numpy()
    if len(params) < 4:
        return pd.Series(dtype=float)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize")
    for (_, row), value in zip(params.iterrows(), values):
        p = {name: _native(row[param_column(name)], space[name]) for name in space}
        if all(space[n].contains(v) for n, v in p.items()) and math.isfinite(value):
            study.add_trial(
                optuna.trial.create_trial(
                    params=p,
                    distributions={n: space[n].distribution() for n in p},
                    value=float(value),
                )
            )
    added = study.get_trials(deepcopy=False)  # study.trials deep-copies them all at each call
    varying = [n for n in space if len({t.params[n] for t in added}) > 1]
    if len(added) < 4 or not varying:
        return pd.Series(dtype=float)
    imp = optuna.importance.get_param_importances(study, params=varying)
    return pd.Series(imp, dtype=float).sort_values(ascending=False)


def good_ranges(
    results: Results, top_share: float = 0.2, trials: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Where the best ``top_share`` of distinct COMPLETE trials (of ``trials``, default all;
    a trial recorded by several runs counts once, see ``distinct``) lie: one row per parameter
    (good values or range, low, high, searched range)."""
    trials = results.trials if trials is None else trials
    done = distinct(trials[trials["state"] == "COMPLETE"], ["val_mae"]).sort_values("val_mae")
    top = done.head(max(3, int(math.ceil(top_share * len(done)))))
    rows = []
    for p in results.space():
        col = top[param_column(p.name)]
        if p.type == "categorical":
            rows.append(
                {
                    "param": p.name,
                    "good": ", ".join(str(v) for v in col.value_counts().index[:2]),
                    "low": np.nan,
                    "high": np.nan,
                    "searched": ", ".join(map(str, p.choices)),
                }
            )
        else:
            rows.append(
                {
                    "param": p.name,
                    "good": f"{col.min():.4g} .. {col.max():.4g}",
                    "low": float(col.min()),
                    "high": float(col.max()),
                    "searched": f"{p.low:g} .. {p.high:g}{' (log)' if p.log else ''}",
                }
            )
    return pd.DataFrame(rows)


def false_prunes(audit: pd.DataFrame | None) -> dict:
    """How many audited pruned trials would have beaten their run's best survivor (a dict)."""
    if audit is None or audit.empty:
        return {"audited": 0, "would_have_won": 0, "share": float("nan")}
    won = int(audit["would_have_won"].sum())
    return {"audited": len(audit), "would_have_won": won, "share": won / len(audit)}


def _native(value, param):
    if param.type == "int":
        return int(value)
    if param.type == "float":
        return float(value)
    choice = param.choice_of(value)
    return value if choice is None else choice
