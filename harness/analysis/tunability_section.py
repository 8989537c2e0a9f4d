"""The report's answer to the brief's key question: which parameters to search, and how many,
as `tunability` measured them on the replay."""

from __future__ import annotations

import pandas as pd

from harness.analysis.render import fmt_number


def tunability_blocks(inputs) -> list:
    """Report blocks for ``a.tunability``; one sentence saying how to measure it when absent."""
    a = inputs.analysis
    t = a.tunability
    heading = ("h2", "Which parameters, and how many")
    if not t:
        return [
            heading,
            (
                "p",
                "Not measured: the night's space below comes from importance alone. "
                f"`python -m harness tunability --experiment {a.results.experiment['name']}` "
                "measures it on the replay.",
            ),
        ]
    risk = {r["param"]: r for r in t["tuning_risk"]}
    table = pd.DataFrame(
        [
            {
                "param": r["param"],
                "tunability: gain over v4, tuned alone": fmt_number(r["mean"]),
                "95% interval": f"{fmt_number(r['low'])} .. {fmt_number(r['high'])}",
                "tuning risk: loss if fixed at v4": fmt_number(risk[r["param"]]["mean"]),
                "95% interval ": (
                    f"{fmt_number(risk[r['param']]['low'])} .. "
                    f"{fmt_number(risk[r['param']]['high'])}"
                ),
                "safe to fix at v4": "yes" if risk[r["param"]]["safe_to_fix"] else "no",
            }
            for r in t["tunability"]
        ]
    )
    nested = pd.DataFrame(
        {
            f"{n['trials']} trials": [fmt_number(s["mean"]) for s in n["spaces"]]
            for n in t["nested"]
        },
        index=[f"top {s['size']}: {', '.join(s['params'])}" for s in t["nested"][0]["spaces"]],
    ).reset_index(names="space searched (the rest at v4)")
    sizes = "; ".join(
        f"at {n['trials']} trials, {n['preferred_size']} (the best mean: {n['best_size']})"
        for n in t["nested"]
    )
    text = (
        f"Measured on the replay with {t['strategy']} over {t['seeds']} seeds, each incumbent "
        f"re-evaluated on fresh seeds shared by every space (paired by seed). Tunability is the "
        f"gain over v4 ({fmt_number(t['v4_score'])} bikes) from tuning one parameter alone; "
        f"tuning risk is the loss from fixing it at v4 while the others are tuned, safe when "
        f"its 95% interval stays under {fmt_number(t['margin'])} bikes "
        f"({t['margin'] / t['v4_score']:.0%} of v4); both at "
        f"{t['judged_at']} trials, bootstrap intervals. Higher gains mean more worth searching."
    )
    size_text = (
        "Nested spaces, the top parameters by tunability searched and the rest at v4 "
        f"(mean re-evaluated MAE, on {t['seeds']} other seeds than those that ordered them). "
        "The size the evidence prefers is the smallest space not "
        f"significantly worse than the best one (paired bootstrap 95%): {sizes}. With few "
        "seeds every interval is wide and small spaces pass: the preference is only as sure "
        f"as the {t['seeds']} seeds behind it."
    )
    return [heading, ("p", text), ("table", table), ("p", size_text), ("table", nested)]
