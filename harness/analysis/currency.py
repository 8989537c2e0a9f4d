"""The budget's currency and its limits.

A compute budget charges training FLOPs. FLOPs price training fairly where time grows with
them: on a CPU, and on a GPU busy with large batches. A GPU whose steps are launch-bound
charges per optimizer step instead, whatever the step's size. There, a strategy that drifts
to larger batches or smaller networks buys more than its FLOPs say, and one that drifts the
other way buys less. This module puts each strategy's spend in three prices (FLOPs, steps,
and the seconds this machine measured), each relative to the team's default. Where
`plan --probe` timed the night's device, it also says which price the device follows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.records import param_column
from harness.team import TEAM_DEFAULT

BATCH = param_column("batch_size")
AGREE = 0.10  # prices within 10% of each other: the currency does not change the comparison


def spend_by_strategy(rungs: pd.DataFrame, meta: dict) -> pd.DataFrame:
    """Per strategy, its mean spend per run in FLOPs, optimizer steps and measured training
    seconds, and the steps and seconds per FLOP relative to ``TEAM_DEFAULT`` (or the first
    strategy in name order where the default did not run). ``meta``: run metadata by (strategy,
    seed), for the batch size of runs that do not search it."""
    if rungs.empty or "train_flops" not in rungs:
        return pd.DataFrame()
    frame = rungs.dropna(subset=["train_flops", "samples"]).copy()
    frame["batch"] = _batches(frame, meta)
    frame = frame[frame["batch"] > 0]  # a rung whose batch is unknown prices nothing
    frame["steps"] = np.ceil(frame["samples"] / frame["batch"])
    runs = frame.groupby(["strategy", "seed"])[["train_flops", "steps", "train_seconds"]].sum()
    table = runs.groupby("strategy").mean()
    if table.empty or (table["train_flops"] <= 0).any():
        return pd.DataFrame()
    reference = TEAM_DEFAULT if TEAM_DEFAULT in table.index else sorted(table.index)[0]
    per_flop = table[["steps", "train_seconds"]].div(table["train_flops"], axis=0)
    relative = per_flop / per_flop.loc[reference]
    return pd.DataFrame(
        {
            "FLOPs per run": table["train_flops"],
            "steps per run": table["steps"],
            "steps per FLOP vs " + reference: relative["steps"],
            "seconds per FLOP vs " + reference: relative["train_seconds"],
        }
    ).reset_index()


def _batches(frame: pd.DataFrame, meta: dict) -> pd.Series:
    searched = frame[BATCH] if BATCH in frame else pd.Series(np.nan, index=frame.index)
    fixed = [
        meta.get((s, k), {}).get("base_config", {}).get("batch_size", np.nan)
        for s, k in zip(frame["strategy"], frame["seed"])
    ]
    return pd.to_numeric(searched, errors="coerce").fillna(pd.Series(fixed, index=frame.index))


def probed_prices(probe: dict | None) -> dict | None:
    """On the device ``plan --probe`` timed: each probed configuration's seconds per FLOP and
    per step, and how many times the dearest exceeds the cheapest in each price (the spread a
    fair price would not have); None without a probe of three or more configurations."""
    configs = (probe or {}).get("configs") or []
    rows = [
        (c["train_seconds"] / c["train_flops"], c["train_seconds"] / c["train_steps"])
        for c in configs
        if c.get("train_flops", 0) > 0 and c.get("train_steps", 0) > 0  # earlier probes: none
    ]
    if len(rows) < 3:  # two configurations cannot tell a price's spread from a warm-up
        return None
    per_flop, per_step = np.array(rows).T
    return {
        "device": probe.get("device", "?"),
        "configs": len(rows),
        "flop_spread": float(per_flop.max() / per_flop.min()),
        "step_spread": float(per_step.max() / per_step.min()),
    }


def currency_text(table: pd.DataFrame, probed: dict | None, replayed: bool = False) -> str:
    """The section's words, computed from the table and the probe."""
    if table.empty:
        return "No FLOPs were recorded: the budget's currency cannot be checked."
    steps = table.filter(like="steps per FLOP vs").iloc[:, 0]
    reference = steps.name.removeprefix("steps per FLOP vs ")
    worst = steps.sub(1).abs().idxmax()
    far = table.loc[worst]
    gap = steps.loc[worst] - 1
    words = (
        "The budget charges training FLOPs. FLOPs price CPU training fairly; a launch-bound GPU "
        "pays per optimizer step whatever its size. "
    )
    if abs(gap) <= AGREE:
        words += (
            f"Here every strategy's steps per FLOP lie within {AGREE:.0%} of {reference}'s "
            f"(at most {far['strategy']}, {gap:+.0%}): the currency does not change the "
            "comparison."
        )
    else:
        more = "fewer" if gap > 0 else "more"
        words += (
            f"{far['strategy']} takes {gap:+.0%} steps per FLOP against {reference}: on a "
            f"launch-bound GPU its budget would cost {steps.loc[worst]:.2f} times what the "
            f"FLOPs charge, relative to {reference}. A night of equal hours there would give it "
            f"{more} trials than this comparison did, so the comparison "
            + ("overstates" if gap > 0 else "understates")
            + " it for such a device."
        )
    seconds = table.filter(like="seconds per FLOP vs").iloc[:, 0]
    if replayed:
        words += " These runs were replayed: their seconds are the surrogate's, not measured."
    elif seconds.notna().all() and len(seconds) > 1:
        off = seconds.sub(1).abs().max()
        words += (
            f" On the machine these runs trained on, measured seconds per FLOP differ from "
            f"{reference}'s by at most {off:.0%}"
            + (
                ": FLOPs priced it fairly."
                if off <= AGREE
                else " (a busy machine's contention counts in that, as much as the price)."
            )
        )
    if probed:
        follows = "FLOPs" if probed["flop_spread"] <= probed["step_spread"] else "steps"
        words += (
            f" On {probed['device']} (timed by `plan --probe`), seconds per FLOP vary "
            f"{probed['flop_spread']:.1f}-fold across the {probed['configs']} probed "
            f"configurations and seconds per step {probed['step_spread']:.1f}-fold: that "
            f"device's time follows {follows} more closely."
        )
    else:
        words += (
            " No probe of the night's device: run `plan --probe` there to see which it follows."
        )
    return words


def currency_section(inputs) -> list:
    """Report blocks: the budget's currency, its limits and, where probed, the night's device."""
    a = inputs.analysis
    table = spend_by_strategy(a.results.rungs, a.results.meta)
    probe = (inputs.plan or {}).get("probe")  # plan --probe's record in plan.json
    blocks: list = [
        ("h2", "The budget's currency"),
        ("p", currency_text(table, probed_prices(probe))),
    ]
    if not table.empty:
        shown = table.copy()
        for c in shown.columns[1:3]:
            shown[c] = shown[c].map(lambda v: f"{v:.3g}")
        for c in shown.columns[3:]:
            shown[c] = shown[c].map(lambda v: f"{v:.2f}")
        blocks.append(("table", shown))
    return blocks
