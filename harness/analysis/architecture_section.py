"""The report's answers to the brief's architecture questions, as `architecture` measured them
from record's and random search's learning curves."""

from __future__ import annotations

import pandas as pd

from harness.analysis.render import fmt_number


def _effect(e: dict) -> str:
    return f"{e['effect']:+.3f} ({fmt_number(e['low'])} .. {fmt_number(e['high'])})"


def _reading(answer: dict) -> str:
    """The answer in words: what the question names does, by how much, or why it is not told."""
    if "recorded" not in answer:
        return answer["verdict"]
    if answer["verdict"] != "separable":
        return answer["verdict"]
    effect = answer["surrogate"]["effect"]
    return f"separable: {'better' if effect < 0 else 'worse'} by {abs(effect):.3f} bikes"


def architecture_blocks(inputs) -> list:
    """Report blocks for ``a.architecture``; one sentence saying how to measure it when absent."""
    a = inputs.analysis
    arch = a.architecture
    heading = ("h2", "The architecture questions")
    experiment = a.results.experiment["name"]
    if not arch:
        return [
            heading,
            (
                "p",
                "Not measured for this experiment. `python -m harness architecture --experiment "
                f"{experiment}` answers them from the curves `record` (and random search) "
                "trained; `experiments/architecture.toml` searches every parameter they name.",
            ),
        ]
    table = pd.DataFrame(
        [
            {
                "topic": x["topic"],
                "contrast (negative: the first side does better)": x["question"],
                "recorded, bikes (95% interval)": _effect(x["recorded"]) if "recorded" in x else "",
                "surrogate, bikes (95% interval)": (
                    _effect(x["surrogate"]) if "surrogate" in x else ""
                ),
                "answer": _reading(x),
            }
            for x in arch["answers"]
        ]
    )
    v4 = f" v4 reached {fmt_number(arch['v4_mae'])} bikes there." if arch.get("v4_mae") else ""
    surrogate = arch["surrogate"]
    text = (
        f"Each contrast is a difference of mean top-rung validation MAE, in bikes, over "
        f"{arch['configurations']} configurations ({arch['trainings']} trainings) that no "
        "sampler chose by looking at results (`record`'s Sobol points and v4, random search's "
        "trials), the other parameters spread as the space spreads them.{v4} Recorded: the "
        "configurations' own means, bootstrap interval over configurations. Surrogate: the "
        f"replay's learner ({surrogate['kind']}, held-out Spearman "
        f"{fmt_number(surrogate['spearman'])}) predicting a Sobol sample of the space, interval "
        "from refits on resampled configurations. The noise floor, what two trainings of one "
        f"configuration differ by, is {fmt_number(arch['noise_floor'])} bikes"
        + ("" if arch["noise_supported"] else " (not measured: too few repeats)")
        + ". An effect is separable when both intervals exclude zero on the same side and it "
        "exceeds the noise floor; real but below the floor when only the first holds."
    ).replace("{v4}", v4)
    return [heading, ("p", text), ("table", table)]
