"""The report's answers to the brief's architecture questions, as `architecture` measured them
from record's and random search's learning curves."""

from __future__ import annotations

import pandas as pd

from harness.analysis.render import fmt_number


def _interval(e: dict) -> str:
    return f"{e['effect']:+.3f} ({e['low']:+.3f} .. {e['high']:+.3f})"


def reading(answer: dict) -> str:
    """The answer in words: the verdict, and for a real effect which side wins by how much."""
    if "recorded" not in answer:
        return answer["verdict"]
    said = answer["verdict"]
    if said == "separable" or said.startswith("real"):
        e = answer["recorded"]
        said += f": {answer['says'][0 if e['effect'] < 0 else 1]} by {abs(e['effect']):.2f} bikes"
    agrees = "same sign" if answer["surrogate_agrees"] else "sign not confirmed"
    return f"{said} (surrogate: {agrees})"


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
                "contrast (negative: the side named first does better)": x["question"],
                "recorded, bikes (95% interval)": _interval(x["recorded"])
                if "recorded" in x
                else "",
                "surrogate, bikes (range over refits)": (
                    _interval(x["surrogate"]) if "surrogate" in x else ""
                ),
                "answer": reading(x),
            }
            for x in arch["answers"]
        ]
    )
    floor = arch["noise_floor"]
    v4 = f" v4 reached {fmt_number(arch['v4_mae'])} bikes there." if arch.get("v4_mae") else ""
    surrogate = arch["surrogate"]
    text = (
        f"Each contrast is a difference of mean top-rung validation MAE, in bikes, over "
        f"{arch['configurations']} configurations ({arch['trainings']} trainings) that no "
        "sampler chose by looking at results (`record`'s Sobol points and v4, random search's "
        "trials), the other parameters spread as the space spreads them; where another "
        f"parameter would confound it, within strata of that parameter.{v4} The answer is read "
        "from the recorded estimate: the configurations' own means, with a bootstrap interval "
        "over configurations. The surrogate, the replay's learner "
        f"({surrogate['kind']}, held-out Spearman {fmt_number(surrogate['spearman'])}) "
        "predicting a Sobol sample of the space, only corroborates the sign: its range over "
        "refits leaves out its own bias, which shrinks effects. The noise floor, the standard "
        "deviation of the difference between two trainings of one configuration, is "
        + (f"{fmt_number(floor)} bikes" if floor is not None else "not measured (no repeats)")
        + ". Separable: the whole interval lies beyond the floor; real, size uncertain: it "
        "excludes zero but reaches inside the floor; below the noise floor: it lies within it; "
        "undetermined: it holds zero and reaches past the floor. Eight contrasts are read at "
        "once, unadjusted: were none real, at least one interval would exclude zero about a "
        "third of the time (1 - 0.95^8, if they were independent)."
    )
    caveat = (
        "What this cannot tell you: the data are the experiment's (`architecture`: 100 "
        "synthetic stations x 28 days, a top rung of one epoch), so the answers hold for short "
        "training. At a fixed number of epochs a larger batch takes fewer steps, so learning "
        "rate against batch size is partly a step-count effect. Whether to clip at all is not "
        "asked: a continuous clip norm never draws 0 (off)."
    )
    return [heading, ("p", text), ("table", table), ("p", caveat)]
