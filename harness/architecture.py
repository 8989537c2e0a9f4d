"""The brief's architecture questions, answered from recorded learning curves.

Each question is a contrast of top-rung validation MAE between two parts of the space (two LSTM
layers against one, layer 2 narrower than layer 1 against as wide, ...): the mean MAE of the
configurations on one side minus the mean on the other, in bikes; negative means the side the
question names does better. Two estimates, each with a 95% interval:

- **recorded**: the configurations trained without a sampler looking at results (record's
  Sobol points and v4, random search's trials), each at its mean over its trainings; the
  interval is a bootstrap over configurations.
- **surrogate**: the learner the replay would choose, fitted to the same curves, predicts a
  dense Sobol sample of the space, which fills the corners few recorded configurations reach;
  the interval refits it on bootstrap resamples of the configurations.

The noise floor is what two trainings of one configuration differ by at the top rung (the
repeats' standard deviation). An effect is *separable* from it when both intervals exclude
zero on the same side and the effect is larger than the noise floor: one trial of the night
could then see it. Both are marginal effects, averaged over the other parameters as the space
spreads them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.stats import qmc
from tqdm import tqdm

from harness.defaults import SURROGATE_REFITS
from harness.errors import UserError
from harness.records import param_column
from harness.replay.learners import make_learner
from harness.replay.surrogate import Surrogate, config_means, observations, repeat_noise
from strategies.registry import RECORD_PREFIX
from strategies.space import Param, SearchSpace

UNGUIDED_STRATEGY = "random"  # its trials, like record's, sample the space blind to results
SURROGATE_SAMPLE = 2048  # Sobol points of the space the surrogate predicts
BOOTSTRAP = 2000  # resamples of the recorded configurations
MIN_PER_SIDE = 3  # recorded configurations each side of a contrast needs

# A contrast: terms (weight, named side, other side); the effect is the weighted sum of
# mean MAE on the named side minus mean MAE on the other.
Terms = list[tuple[float, np.ndarray, np.ndarray]]


class Columns:
    """A table of configurations (param columns) as the questions read it: values, and whether
    each lies in the upper half of its parameter's range."""

    def __init__(self, frame: pd.DataFrame, space: SearchSpace) -> None:
        self.frame, self.space = frame, space

    def value(self, name: str) -> np.ndarray:
        return self.frame[param_column(name)].to_numpy(float)

    def upper(self, name: str) -> np.ndarray:
        """Log-aware; a categorical parameter's upper half of its choices, as listed."""
        param, values = self.space.param(name), self.frame[param_column(name)]
        if param.type == "categorical":
            last = max(len(param.choices) - 1, 1)
            where = {str(c): i / last for i, c in enumerate(param.choices)}
            return np.array([where[str(v)] >= 0.5 for v in values])
        return np.array([param.to_unit(float(v)) >= 0.5 for v in values])


@dataclass(frozen=True)
class Question:
    """One of the brief's questions: ``terms`` reads the configurations' columns into the
    contrast's sides (negative effect: what ``text`` names does better)."""

    topic: str
    text: str
    needs: tuple[str, ...]
    terms: Callable[[Columns], Terms]


def effect(terms: Terms, mae: np.ndarray, rows: np.ndarray | None = None) -> float:
    """The contrast's value on ``mae`` (the rows ``rows`` only, repeats allowed); nan when a
    side holds fewer than MIN_PER_SIDE configurations."""
    total = 0.0
    for weight, named, other in terms:
        if rows is not None:
            named, other, y = named[rows], other[rows], mae[rows]
        else:
            y = mae
        if named.sum() < MIN_PER_SIDE or other.sum() < MIN_PER_SIDE:
            return float("nan")
        total += weight * (y[named].mean() - y[other].mean())
    return float(total)


def _layers(a: int, b: int) -> Callable[[Columns], Terms]:
    def terms(c: Columns) -> Terms:
        layers = c.value("num_layers")
        return [(1.0, layers == b, layers == a)]

    return terms


def _narrower_layer_2(c: Columns) -> Terms:
    deep = c.value("num_layers") >= 2
    h1, h2 = c.value("hidden_1"), c.value("hidden_2")
    return [(1.0, deep & (h2 < h1), deep & (h2 >= h1))]


def _deep_narrow_vs_shallow_wide(c: Columns) -> Terms:
    deep, wide = c.value("num_layers") >= 2, c.upper("hidden_1")
    return [(1.0, deep & ~wide, ~deep & wide)]


def _lr_follows_batch(c: Columns) -> Terms:
    """What a high learning rate gains with a large batch, minus what it gains with a small."""
    high, big = c.upper("learning_rate"), c.upper("batch_size")
    return [(1.0, high & big, ~high & big), (-1.0, high & ~big, ~high & ~big)]


def _upper_half(name: str) -> Callable[[Columns], Terms]:
    def terms(c: Columns) -> Terms:
        upper = c.upper(name)
        return [(1.0, upper, ~upper)]

    return terms


QUESTIONS = (
    Question("layers", "2 LSTM layers against 1", ("num_layers",), _layers(1, 2)),
    Question("layers", "3 LSTM layers against 2", ("num_layers",), _layers(2, 3)),
    Question(
        "layer 2 against layer 1",
        "layer 2 narrower than layer 1, against as wide or wider (2-3 layers)",
        ("num_layers", "hidden_1", "hidden_2"),
        _narrower_layer_2,
    ),
    Question(
        "size against depth",
        "deep and narrow (2-3 layers, hidden_1 in its lower half) against shallow and wide "
        "(1 layer, upper half)",
        ("num_layers", "hidden_1"),
        _deep_narrow_vs_shallow_wide,
    ),
    Question(
        "learning rate against batch size",
        "what a learning rate in its upper half gains with a batch in its upper half, minus "
        "what it gains with a small batch (negative: larger batches want larger rates)",
        ("learning_rate", "batch_size"),
        _lr_follows_batch,
    ),
    Question(
        "clipping",
        "gradient clip norm in the upper half of its range (looser) against the lower half",
        ("grad_clip",),
        _upper_half("grad_clip"),
    ),
    Question(
        "dense size", "dense layer in the upper half of its range", ("dense",), _upper_half("dense")
    ),  # fmt: skip
    Question(
        "dropout", "dropout in the upper half of its range", ("dropout",), _upper_half("dropout")
    ),  # fmt: skip
)


def unguided(curves: pd.DataFrame) -> pd.DataFrame:
    """The curves of configurations no sampler chose by looking at results: record's and
    random search's."""
    source = curves["source"].astype(str) if "source" in curves else pd.Series("", curves.index)
    keep = source.str.startswith(RECORD_PREFIX) | (curves["strategy"] == UNGUIDED_STRATEGY)
    return curves[keep]


def _percentile_interval(draws) -> tuple[float, float]:
    """The 2.5-97.5 percentiles of ``draws``; nan when over a tenth of them had a side with too
    few configurations (nan) to contrast."""
    draws = np.asarray(draws, float)
    finite = draws[np.isfinite(draws)]
    if len(finite) < 0.9 * len(draws):
        return float("nan"), float("nan")
    return float(np.percentile(finite, 2.5)), float(np.percentile(finite, 97.5))


def _recorded(frame: pd.DataFrame, space: SearchSpace, question: Question) -> dict:
    terms, mae = question.terms(Columns(frame, space)), frame["mae"].to_numpy(float)
    point = effect(terms, mae)
    low = high = float("nan")
    if np.isfinite(point):
        with warnings.catch_warnings():  # scipy warns of the nan resamples handled below
            warnings.simplefilter("ignore", stats.DegenerateDataWarning)
            draws = stats.bootstrap(
                (np.arange(len(frame)),),
                lambda rows: effect(terms, mae, rows.astype(int)),
                vectorized=False,
                n_resamples=BOOTSTRAP,
                method="percentile",
                rng=np.random.default_rng(0),
            ).bootstrap_distribution  # percentiles taken here: resamples with a thin side are nan
        low, high = _percentile_interval(draws)
    return {"effect": point, "low": low, "high": high}


def _space_sample(space: SearchSpace) -> pd.DataFrame:
    """A scrambled Sobol sample of the space, as param columns."""
    units = qmc.Sobol(len(space.params), scramble=True, seed=0).random(SURROGATE_SAMPLE)
    return pd.DataFrame(
        {param_column(p.name): [p.from_unit(u) for u in units[:, i]]
         for i, p in enumerate(space.params)}
    )  # fmt: skip


class _SurrogateEffects:
    """The surrogate's learner fitted to every configuration's mean curve, and refitted on
    bootstrap resamples of the configurations; each predicts the top rung of one Sobol sample."""

    def __init__(
        self, space: SearchSpace, obs: pd.DataFrame, surrogate: Surrogate, refits: int, bar: bool
    ) -> None:
        params: list[Param] = list(space.params)
        rungs = sorted(int(r) for r in obs["rung"].unique())
        table = config_means(obs, params, rungs)
        sample = _space_sample(space)
        x = surrogate.top_rung_features(sample)
        self.sample, self.kind = sample, surrogate.kind
        self.fitted = self._predict(surrogate.model, x, surrogate)
        configs = np.unique(table["config"])
        rng = np.random.default_rng(0)
        self.refits = []
        for _ in tqdm(range(refits), desc="surrogate refits", disable=not bar, leave=False):
            chosen = rng.choice(configs, len(configs))
            rows = np.concatenate([np.flatnonzero(table["config"] == c) for c in chosen])
            model = make_learner(self.kind, len(rows)).fit(table["x"][rows], table["y"][rows])
            self.refits.append(self._predict(model, x, surrogate))

    @staticmethod
    def _predict(model, x: np.ndarray, surrogate: Surrogate) -> np.ndarray:
        return np.clip(model.predict(x), surrogate.low[-1], surrogate.high[-1])

    def effect(self, space: SearchSpace, question: Question) -> dict:
        terms = question.terms(Columns(self.sample, space))
        low, high = _percentile_interval([effect(terms, y) for y in self.refits])
        return {"effect": effect(terms, self.fitted), "low": low, "high": high}


def _verdict(recorded: dict, modelled: dict, floor: float) -> str:
    def side(e: dict) -> int:
        return 1 if e["low"] > 0 else -1 if e["high"] < 0 else 0

    bounds = (recorded["low"], recorded["high"], modelled["low"], modelled["high"])
    if not all(np.isfinite(bounds)):
        return "too few configurations on one side"
    r, m = side(recorded), side(modelled)
    if r == 0 or m == 0 or r != m:
        return "not separable"
    if min(abs(recorded["effect"]), abs(modelled["effect"])) < floor:
        return "real, below the noise floor"
    return "separable"


def measure(
    space: SearchSpace,
    curves: pd.DataFrame,
    kind: str | None = None,
    refits: int = SURROGATE_REFITS,
    progress: bool = False,
) -> dict:
    """Every question whose parameters ``space`` searches, answered from ``curves`` (rungs.csv
    rows with a ``source`` column, as replay.prepare.learning_curves pools them). ``kind``:
    the surrogate's learner (default: chosen on held-out evidence, as the replay chooses)."""
    curves = unguided(curves)
    params = list(space.params)
    obs = observations(curves, params)
    if obs.empty:
        raise UserError("no recorded or random-search learning curves for these parameters")
    rungs = sorted(int(r) for r in obs["rung"].unique())
    top = obs[obs["rung"] == rungs[-1]]
    frame = top.groupby("config", as_index=False).agg(
        mae=("val_mae", "mean"), **{param_column(p.name): (param_column(p.name), "first")
                                     for p in params}
    )  # fmt: skip
    if len(frame) < 4 * MIN_PER_SIDE:
        raise UserError(
            f"{len(frame)} configurations reached the top rung; the architecture questions need "
            f"at least {4 * MIN_PER_SIDE}: record more ('record --configs')"
        )
    noise = repeat_noise(obs, rungs)
    floor = float(np.hypot(noise["trial"], noise["rung"][-1])) if noise["supported"] else 0.0
    surrogate = Surrogate.fit(params, curves, kind)
    searched = {p.name for p in params}
    asked = [q for q in QUESTIONS if set(q.needs) <= searched]
    modelled = _SurrogateEffects(space, obs, surrogate, refits, progress)
    answers = []
    for q in QUESTIONS:
        row = {"topic": q.topic, "question": q.text}
        if q not in asked:
            missing = sorted(set(q.needs) - searched)
            answers.append({**row, "verdict": f"not measured: {', '.join(missing)} not searched"})
            continue
        rec, mod = _recorded(frame, space, q), modelled.effect(space, q)
        answers.append({**row, "recorded": rec, "surrogate": mod,
                        "verdict": _verdict(rec, mod, floor)})  # fmt: skip
    return {
        "configurations": len(frame),
        "trainings": int(top["obs"].nunique()),
        "noise_floor": floor,
        "noise_supported": bool(noise["supported"]),
        "repeated_configs": int(noise["repeated_configs"]),
        "surrogate": {"kind": surrogate.kind,
                      "spearman": surrogate.evidence.get(surrogate.kind, {}).get("spearman")},
        "v4_mae": _v4_mae(frame, space),
        "answers": answers,
    }  # fmt: skip


def _v4_mae(frame: pd.DataFrame, space: SearchSpace) -> float | None:
    """v4's recorded top-rung MAE (record trains it first), if it is among the configurations."""
    match = np.ones(len(frame), bool)
    for p in space.params:
        match &= frame[param_column(p.name)].astype(str) == str(p.default)
    return float(frame.loc[match, "mae"].iloc[0]) if match.any() else None


def summary_lines(result: dict) -> list[str]:
    """A few lines for the terminal."""
    lines = [
        f"{result['configurations']} configurations ({result['trainings']} trainings); "
        f"noise floor {result['noise_floor']:.3f} bikes"
    ]
    for a in result["answers"]:
        if "recorded" not in a:
            lines.append(f"{a['question']}: {a['verdict']}")
            continue
        r, m = a["recorded"], a["surrogate"]
        lines.append(
            f"{a['question']}: recorded {r['effect']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}], "
            f"surrogate {m['effect']:+.3f} [{m['low']:+.3f}, {m['high']:+.3f}]: {a['verdict']}"
        )
    return lines
