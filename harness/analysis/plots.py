"""Comparison plots (PNG and SVG), each readable without the write-up."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

from harness.analysis.measures import rung_table  # noqa: E402
from harness.sidefiles import replace_atomic  # noqa: E402

LEGEND_SEARCH_POINTS = 2000
# every figure a report may draw, each saved as <name>.png and <name>.svg
FIGURES = (
    "anytime",
    "time_to_target",
    "savings",
    "fidelity_trust",
    "importance",
    "learning_curves",
    "rank_over_time",
    "pareto",
)


def _colors(strategies):
    cmap = plt.get_cmap("tab10")
    return {s: cmap(i % 10) for i, s in enumerate(sorted(strategies))}


def _legend(ax, points: int, **kwargs) -> None:
    """The legend where it hides least, searched only when the plot is small: over a replayed
    screen's tens of thousands of points the search took seconds, so it goes to a fixed corner."""
    ax.legend(loc="best" if points <= LEGEND_SEARCH_POINTS else "upper right", **kwargs)


def remove_figures(out: Path, keep: set[str] = frozenset()) -> int:
    """Deletes the figures in ``out`` other than ``keep`` (names in FIGURES), and the folder
    once empty: a report does not sit beside figures it does not show, drawn from other data.
    Anything else in the folder stays; a file that cannot be removed is named in a warning.
    Returns how many files went."""
    gone = 0
    for name in sorted(set(FIGURES) - set(keep)):
        for path in (out / f"{name}.png", out / f"{name}.svg"):
            try:
                path.unlink()
                gone += 1
            except FileNotFoundError:
                pass
            except OSError as exc:
                print(f"warning: {path}: not removed ({exc.strerror or exc})", file=sys.stderr)
    with contextlib.suppress(OSError):  # not empty, not there, or not a folder: left as it is
        out.rmdir()
    return gone


def _save(fig, out: Path, name: str) -> str:
    """Save ``fig`` as ``name``.png and .svg in ``out``, each by an atomic replace; a write that
    fails (a full disk) is one UserError naming the file, the previous plot kept."""
    assert name in FIGURES, f"{name} is not in FIGURES (remove_figures would leave it stale)"
    fig.tight_layout()
    try:
        for ext in ("png", "svg"):
            replace_atomic(
                out / f"{name}.{ext}",
                lambda tmp, ext=ext: fig.savefig(tmp, format=ext, dpi=120),
                " the plot",
            )
    finally:
        plt.close(fig)
    return f"{name}.png"


def anytime_plot(bands: pd.DataFrame, out: Path, mae_target: float) -> str:
    """Median and quartile band of best MAE so far against wall-clock per strategy, from
    ``anytime_bands``, with the MAE target as a line; returns the PNG's file name in ``out``."""
    fig, ax = plt.subplots(figsize=(8, 5))
    colors = _colors(bands["strategy"].unique())
    for strategy, b in bands.groupby("strategy"):
        ax.plot(b["elapsed"], b["median"], label=strategy, color=colors[strategy], lw=2)
        ax.fill_between(b["elapsed"], b["q25"], b["q75"], color=colors[strategy], alpha=0.15)
    ax.axhline(mae_target, color="k", ls=":", lw=1, label="target (fixed before the runs)")
    ax.set(
        xlabel="wall-clock (s)",
        ylabel="best validation MAE so far (bikes)",
        title="Anytime performance: median over seeds, band = quartiles",
    )
    ax.legend(fontsize=8, ncol=2)
    return _save(fig, out, "anytime")


def time_to_target_plot(ttt: pd.DataFrame, out: Path) -> str:
    """Kaplan-Meier median compute (TFLOP of training) to the target per strategy, with how
    many runs reached it; returns the PNG's file name in ``out``."""
    t = ttt.assign(order=ttt["median_flops"] / 1e12).sort_values("order", na_position="last")
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(t) + 1.5))
    y = np.arange(len(t))
    widths = np.nan_to_num(t["order"].to_numpy(dtype=float), nan=0.0)
    colors = _colors(t["strategy"])
    ax.barh(y, widths, color=[colors[s] for s in t["strategy"]])
    for yi, w, r, n in zip(y, widths, t["reached"], t["runs"]):
        runs = "?" if pd.isna(n) else int(n)
        note = "" if w > 0 else " (median: not reached)"
        ax.text(w, yi, f"  {int(r)}/{runs} runs reached{note}", va="center", fontsize=8)
    ax.set_yticks(y, t["strategy"])
    ax.invert_yaxis()
    ax.set_xlim(0, max(widths.max(initial=0.0), 1e-9) * 1.6)
    ax.set(
        xlabel="median training TFLOP to reach the target (Kaplan-Meier; runs that ended first "
        "censored)",
        title="Time to target (fixed before the runs)",
    )
    return _save(fig, out, "time_to_target")


def savings_plot(saved: pd.DataFrame, out: Path) -> str:
    """Compute saved and share of trials pruned per strategy (``compute_saved``'s table);
    returns the PNG's file name in ``out``."""
    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.arange(len(saved))
    ax.bar(x - 0.2, saved[("saved_share", "median")] * 100, 0.4, label="compute saved vs unpruned")
    ax.bar(x + 0.2, saved[("pruned_share", "median")] * 100, 0.4, label="trials pruned")
    ax.set_xticks(x, saved["strategy"], rotation=30, ha="right")
    ax.set(ylabel="% (median over seeds)", title="What pruning saves")
    ax.legend()
    return _save(fig, out, "savings")


def trust_scatter(rungs: pd.DataFrame, n_rungs: int, out: Path) -> str:
    """MAE at each low rung against MAE at the last of ``n_rungs``, one panel per rung;
    returns the PNG's file name in ``out``."""
    wide = rung_table(rungs)
    low = [r for r in range(1, n_rungs) if r in wide.columns]
    fig, axes = plt.subplots(1, max(1, len(low)), figsize=(5 * max(1, len(low)), 4), squeeze=False)
    for ax, rung in zip(axes[0], low):
        both = wide.dropna(subset=[rung, n_rungs]) if n_rungs in wide.columns else wide.iloc[0:0]
        ax.scatter(both[rung], both[n_rungs], s=14, alpha=0.6)
        rho = both[[rung, n_rungs]].corr(method="spearman").iloc[0, 1] if len(both) >= 3 else np.nan
        ax.set(
            xlabel=f"validation MAE at rung {rung}",
            ylabel=f"validation MAE at rung {n_rungs} (full)",
            title=f"Fidelity trust, rung {rung}: Spearman {rho:.2f} (n={len(both)})",
        )
    return _save(fig, out, "fidelity_trust")


def importance_plot(importances: dict[str, pd.Series], out: Path) -> str:
    """One bar panel per labelled importance series; returns the PNG's file name in ``out``."""
    fig, axes = plt.subplots(1, len(importances), figsize=(5 * len(importances), 4), squeeze=False)
    for ax, (label, imp) in zip(axes[0], importances.items()):
        if len(imp):
            ax.barh(imp.index[::-1], imp.values[::-1])
        ax.set(xlabel="importance (optuna.importance, PED-ANOVA)", title=label)
    return _save(fig, out, "importance")


def learning_curves_plot(rungs: pd.DataFrame, trials: pd.DataFrame, out: Path) -> str:
    """Every trial's MAE per step, completed and pruned in two colours; returns the PNG's
    file name in ``out``. Each colour is one line collection: a replayed screen has tens of
    thousands of curves, which one artist per curve took most of a minute to draw."""
    keys = ["strategy", "seed", "trial"]
    done = trials.loc[trials["state"] == "COMPLETE", keys].drop_duplicates()
    rows = rungs[[*keys, "step", "val_mae"]].merge(done.assign(completed=True), on=keys, how="left")
    rows = rows.assign(completed=rows["completed"].fillna(False).astype(bool))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for completed, color, alpha, label in (
        (True, "tab:blue", 0.35, "completed"),
        (False, "tab:red", 0.25, "pruned"),
    ):
        part = rows[rows["completed"] == completed].sort_values([*keys, "step"])
        if part.empty:
            ax.plot([], [], color=color, label=label)
            continue
        points = part[["step", "val_mae"]].to_numpy(float)
        # log10 steps on a linear axis: a log axis transformed every curve one by one (seconds)
        points[:, 0] = np.log10(points[:, 0])
        starts = np.flatnonzero(part[keys].ne(part[keys].shift()).any(axis=1).to_numpy())
        curves = np.split(points, starts[1:])
        # rasterized: an SVG of one path per curve is megabytes and slow to draw
        ax.add_collection(
            LineCollection(curves, colors=color, alpha=alpha, lw=1, label=label, rasterized=True)
        )
        ax.scatter(points[:, 0], points[:, 1], color=color, alpha=alpha, s=4, lw=0, rasterized=True)
    ax.set(
        xlabel="budget (units of the first rung, log scale)",
        ylabel="validation MAE (bikes)",
        title="Learning curves: pruned against completed trials",
    )
    steps = np.sort(rungs["step"].dropna().unique())
    ax.set_xticks(np.log10(steps), [f"{s:g}" for s in steps])
    ax.autoscale_view()
    _legend(ax, len(rows))
    return _save(fig, out, "learning_curves")


def rank_over_time_plot(bands: pd.DataFrame, out: Path) -> str:
    """Rank of each strategy's median best MAE over wall-clock (``anytime_bands``); returns
    the PNG's file name in ``out``."""
    pivot = bands.pivot_table(index="elapsed", columns="strategy", values="median")
    ranks = pivot.rank(axis=1, method="average")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colors = _colors(pivot.columns)
    for s in ranks.columns:
        ax.plot(ranks.index, ranks[s], label=s, color=colors[s], lw=2)
    ax.set(
        xlabel="wall-clock (s)",
        ylabel="rank of median best MAE (1 = best)",
        title="Rank of each strategy over time",
    )
    ax.invert_yaxis()
    ax.legend(fontsize=8, ncol=2)
    return _save(fig, out, "rank_over_time")


_PARETO_POINTS = (  # (extrapolated?, scatter style)
    (False, {"alpha": 0.5, "label": "trials (measured at full fidelity)"}),
    (
        True,
        {
            "alpha": 0.4,
            "marker": "x",
            "label": "pruned trials (time extrapolated, MAE at their last rung)",
        },
    ),
)


def pareto_plot(costs: pd.DataFrame, fronts: dict[str, pd.DataFrame], out: Path) -> str:
    """MAE against full-fidelity training time and against parameter count (``trial_costs``),
    each with its Pareto front from ``fronts``; returns the PNG's file name in ``out``."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, (cost, label) in zip(
        axes,
        (("full_train_seconds", "full-fidelity training time (s)"), ("parameters", "parameters")),
    ):
        for extrapolated, style in _PARETO_POINTS:
            points = costs[costs["extrapolated"] == extrapolated]
            ax.scatter(points[cost], points["val_mae"], s=12, rasterized=True, **style)
        front = fronts[cost]
        ax.step(
            front[cost], front["val_mae"], where="post", color="k", lw=1.5, label="Pareto front"
        )
        ax.set(
            xscale="log",
            xlabel=label,
            ylabel="validation MAE (bikes)",
            title=f"MAE against {label}",
        )
        _legend(ax, len(costs), fontsize=7)
    return _save(fig, out, "pareto")
