"""The report's answer to the brief's key question: which parameters to search, and how many,
as `tunability` measured them on the replay."""

from __future__ import annotations

import pandas as pd

from harness.analysis.analyze import judged_nested, preferred_size, search_confirmations
from harness.analysis.render import fmt_number
from strategies.registry import SEARCH_SUFFIX


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
            **{
                f"{n['trials']} trials": [fmt_number(s["mean"]) for s in n["spaces"]]
                for n in t["nested"]
            },
            "v4 (same seeds)": [fmt_number(t["nested"][-1]["v4"])] * len(t["nested"][0]["spaces"]),
        },
        index=[f"top {s['size']}: {', '.join(s['params'])}" for s in t["nested"][0]["spaces"]],
    ).reset_index(names="space searched (the rest at v4)")
    sizes = "; ".join(
        f"at {n['trials']} trials, {n['preferred_size']} (lowest mean: {n['best_size']})"
        for n in t["nested"]
    )
    share = f"{t['margin'] / t['v4_score']:.0%} of v4"
    text = (
        f"Measured on the replay with {t['strategy']} over {t['seeds']} seeds, each incumbent "
        f"re-evaluated on fresh seeds (paired by seed). Tunability is the realised gain over v4 "
        f"({fmt_number(t['v4_score'])} bikes) of a search of that parameter alone, its best "
        f"trial re-evaluated; tuning risk is the loss from fixing it at v4 while the others are "
        f"searched, safe when the upper end of its 95% interval stays under "
        f"{fmt_number(t['margin'])} bikes ({share}; one parameter at a time, not all together). "
        f"Both at {t['judged_at']} trials, bootstrap intervals; gains whose interval holds 0 "
        "are noise, and their order is too."
    )
    size_text = (
        "Nested spaces, the top parameters by tunability searched and the rest at v4 "
        f"(mean re-evaluated MAE, on {t['seeds']} other seeds than those that ordered them, "
        "v4 beside them on the same seeds). The size the evidence prefers is the smallest "
        f"space that is, with 95% confidence, at most {fmt_number(t['margin'])} bikes "
        f"({share}) worse than searching every parameter (the full space where none is): "
        f"{sizes}."
    )
    blocks = [heading, ("p", text), ("table", table), ("p", size_text), ("table", nested)]
    twins = getattr(a, "search_scores", None)
    return blocks + [("p", line) for line in confirmation_lines(a.scores, twins, t)]


def confirmation_lines(scores: pd.DataFrame, twins: pd.DataFrame | None, t: dict) -> list[str]:
    """The real confirmation of a smaller space (``search_confirmations``), judged at the
    tunability margin; or how to run it."""
    at, size = judged_nested(t), preferred_size(t)
    preferred = "+".join(at["spaces"][size - 1]["params"])
    margin = fmt_number(t["margin"])
    lines = []
    for c in search_confirmations(scores, twins):
        if c["n"] < 3:
            lines.append(
                f"Real confirmation: {c['twin']} against {c['base']}: {c['n']} paired seed(s), "
                "3 needed."
            )
            continue
        if c["high"] < t["margin"]:
            judged = (
                f"Confirmed: searching {'+'.join(c['searched'])} alone is at most {margin} bikes "
                "worse (the tunability margin, 1% of v4's replayed MAE), with 95% confidence."
            )
        elif c["low"] > 0:
            judged = (
                f"Refuted: searching {'+'.join(c['searched'])} alone is worse than the full "
                "space, with 95% confidence; the plan searches every parameter instead."
            )
        else:
            judged = f"Not confirmed: the interval reaches past the {margin}-bike margin."
        lines.append(
            f"Real confirmation on {c['n']} paired seeds: {c['twin']} against {c['base']} on the "
            f"full space, {'re-evaluated incumbents' if c['reevaluated'] else 'recorded bests'}: "
            f"mean difference {c['diff']:+.3f} bikes (95% interval {c['low']:+.3f} .. "
            f"{c['high']:+.3f}; {c['lower']} of {c['n']} seeds lower). {judged}"
        )
    if not lines and size == len(at["spaces"]):
        lines.append("Nothing smaller to confirm: the full space is the size preferred.")
    elif not lines:
        lines.append(
            "Not confirmed with real runs yet: `python -m harness compare --strategies "
            f"{t['strategy']},{t['strategy']}{SEARCH_SUFFIX}{preferred}` runs the preferred "
            "space beside the full one, paired by seed."
        )
    return lines
