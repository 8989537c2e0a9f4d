"""A longer top rung for the night when the ladder's top rung ranks configurations unlike
training to convergence (`compare --converge K` measured horizon trust weak)."""

from __future__ import annotations

import math

import numpy as np

from harness.analysis.analyze import Analysis
from harness.analysis.protocol import WEAK_TRUST


def longer_top_rung(a: Analysis, ladder) -> dict | None:
    """The proposal for ``ladder`` (the night's) where horizon trust is weak, else None.

    The top rung gets at least twice its epochs, or the median epoch count at which the
    converged configurations stopped when that is longer; the proposal says what a trial that
    climbs the whole ladder then costs relative to now. It is a proposal, not applied: the
    night's trial budget is priced on the ladder as it is."""
    trust = a.horizon
    if trust.get("n", 0) < 3 or not trust["spearman"] < WEAK_TRUST:
        return None
    converge = a.results.converge
    stopped = float(np.median(converge["epochs"])) if converge is not None else float("nan")
    top = max(2 * ladder.epochs[-1], math.ceil(stopped) if np.isfinite(stopped) else 0)
    longer = ladder.with_top_epochs(top)
    proposed = list(longer.epochs)
    factor = longer.budget / ladder.budget
    return {
        "spearman": trust["spearman"],
        "n": trust["n"],
        "regret": trust["regret"],
        "epochs": proposed,
        "cost_factor": factor,
        "text": (
            f"Horizon trust is weak (Spearman {trust['spearman']:.2f} over {trust['n']} "
            f"configurations; converged runs stopped after a median of {stopped:.0f} epochs): "
            f"consider a longer top rung, [ladder] epochs = {proposed} instead of "
            f"{list(ladder.epochs)}, "
            f"which makes a trial that climbs the whole ladder cost about x{factor:.2f} "
            "(fewer trials in the night; not applied to the budget above)."
        ),
    }
