"""The report's two-stage section: what the replayed screen found, how the confirmation was
sized, and what the real confirmation decided."""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.analysis import verdict
from harness.analysis.render import fmt_number
from harness.replay.surrogate import TRUSTED_SPEARMAN


def two_stage_blocks(a) -> list:
    """Report blocks for ``a.two_stage`` (the plan ``compare --two-stage`` wrote); empty when
    the comparison was not run in two stages."""
    plan = a.two_stage
    if not plan:
        return []
    screen = pd.DataFrame(plan["screen"]).rename(
        columns={
            "median_score": "median re-evaluated MAE (replay)",
            "diff_vs_default": f"mean difference vs {plan['default']}",
            "p_holm": "p (Holm, screen)",
        }
    )
    trusted = (
        f"the surrogate's held-out rank correlation reaches {TRUSTED_SPEARMAN}, so the screen may "
        "decide which strategies are worth confirming"
        if plan["surrogate_trusted"]
        else f"the surrogate's held-out rank correlation is below {TRUSTED_SPEARMAN}: the screen "
        "informs which strategies to confirm, it decides nothing"
    )
    pilot = plan.get("pilot")
    seeds, power = (
        (pilot["screen_seeds"], pilot["screen_power"]) if pilot else (plan["seeds"], plan["power"])
    )
    sizing = (
        f"Confirmation sized before it ran: {', '.join(plan['candidates']) or 'nothing'} against "
        f"{plan['default']}; the effect to detect is {plan['effect_share']:.0%} of v4 "
        f"({fmt_number(plan['effect'])} bikes); the largest paired standard deviation in the "
        f"screen was {fmt_number(plan['sd_used'])}; simulating the exact sign-flip test at "
        f"level {plan['level']:.3g} (Holm's strictest over {len(plan['candidates'])} test(s)), "
        f"{seeds} real seeds give {power:.0%} power (target {plan['power_target']:.0%})"
    )
    if pilot:
        sizing += ". " + _pilot_sentence(plan, pilot)
    sizing += f"; estimated {plan['estimated_minutes']:.0f} min of real training"
    took = plan.get("wall_seconds")
    if took:
        sizing += (
            f"; measured: record {took['record'] / 60:.1f} min, screen {took['screen'] / 60:.1f}"
            f" min, confirmation {took['confirm'] / 60:.1f} min, total {took['total'] / 60:.1f}"
            " min"
        )
    decided = _decided(a, plan)
    check = sizing_check(a.scores, plan)
    if check:
        sizing += f". {check}"
    return [
        ("h2", "Two stages: a replayed screen, a real confirmation"),
        (
            "p",
            f"Stage 1, the screen ({plan['options']['screen_seeds']} replayed seeds): {trusted}.",
        ),
        ("table", screen),
        ("p", sizing + "."),
        ("p", decided),
    ]


LEVEL_KEPT = (
    "The size follows the differences' magnitudes, never their signs, so the test keeps its level"
)


def _pilot_sentence(plan: dict, pilot: dict) -> str:
    """How the real pilot re-sized the confirmation, in one sentence."""
    first = (
        f"Sized again on a real pilot: the first {pilot['pilot_seeds']} seeds (the fewest with "
        f"which the test can reject at Holm's strictest level)"
    )
    if not np.isfinite(pilot["paired_rms"]):
        return f"{first} scored no pair, so the screen's sizing stood"
    if pilot["sd_estimate"] == 0:
        return (
            f"{first} gave paired differences with a root mean square of "
            f"{fmt_number(pilot['paired_rms'])}, below the effect sought itself: were the effect "
            f"real they would be larger, so the fewest seeds ({plan['seeds']}) were kept. "
            f"{LEVEL_KEPT}"
        )
    capped = (
        f", capped by --max-seeds {plan['options']['max_seeds']}"
        if plan["power"] < plan["power_target"] and "options" in plan
        else ""
    )
    return (
        f"{first} gave paired differences with a root mean square of "
        f"{fmt_number(pilot['paired_rms'])}, a standard deviation of "
        f"{fmt_number(pilot['sd_estimate'])} if the effect sought is real "
        f"({pilot['sd_estimate'] / plan['sd_used']:.1f} times the screen's); at its "
        f"{pilot['confidence']:.0%} upper bound ({fmt_number(pilot['sd_planned'])}) the same "
        f"analysis asked for {plan['seeds']} seeds ({plan['power']:.0%} power) in all{capped}. "
        f"{LEVEL_KEPT}"
    )


def sizing_check(scores: pd.DataFrame, plan: dict) -> str:
    """After the confirmation: the real paired standard deviation over every seed against the
    screen's, and the seeds the same power analysis asks for on it."""
    pairs = verdict.differences_against(scores, plan["candidates"], plan["default"], min_pairs=3)
    if not pairs:
        return ""
    real = max(float(d.std(ddof=1)) for d in pairs.values())
    seeds, power = verdict.seeds_for_power(plan["effect"], real, max(len(plan["candidates"]), 1))
    return (
        f"Checked after it ran: the largest real paired standard deviation was "
        f"{fmt_number(real)}, {real / plan['sd_used']:.1f} times the screen's; sized on it, the "
        f"same analysis would have asked for {seeds} real seeds ({power:.0%} power)"
    )


def _decided(a, plan: dict) -> str:
    """Which stage decided the verdict, in one sentence."""
    family = a.tests[a.tests["strategy"].isin(plan["candidates"])]
    better = family[family["verdict"] == "better"]
    if len(better):
        return (
            f"Stage 2 decided: {', '.join(better['strategy'])} confirmed better than "
            f"{plan['default']} in real paired runs (Holm over the family of {len(family)})."
        )
    return (
        f"Stage 2 decided: no confirmed strategy beat {plan['default']} in the real paired runs "
        f"(Holm over the family of {len(family)}), so the default stands; the screen's ranking "
        "is not a verdict."
    )
