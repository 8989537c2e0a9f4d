"""The brief's architecture questions, answered from recorded learning curves.

Each question is a contrast of top-rung validation MAE between two parts of the space (two LSTM
layers against one, a narrower layer 2 against as wide, ...): the mean MAE of the configurations
on the side the question names minus the mean on the other, in bikes; negative means the named
side does better. Where another parameter would confound the contrast (layer 2's width with
layer 1's, depth with the number of weights), it is taken within strata of that parameter and
averaged. Two estimates:

- **recorded**: the configurations trained without a sampler looking at results (record's
  Sobol points and v4, random search's trials), each at its mean over its trainings, with a
  95% bootstrap interval over configurations. The verdict is read from this one.
- **surrogate**: the learner the replay would choose, fitted to the same curves, predicts a
  dense Sobol sample of the space (it fills corners few recorded configurations reach). Its
  range over refits on resampled configurations shows how stable the learner is, not a
  confidence interval (it leaves out the learner's bias, which shrinks effects): it
  corroborates the sign, nothing more.

The noise floor is what two trainings of one configuration differ by at the top rung: the
standard deviation of their difference, sqrt(2) x the repeats' standard deviation. An effect
is *separable* when its whole interval lies beyond the floor, *real, size uncertain* when the
interval excludes zero but reaches inside the floor, *below the noise floor* when it lies
within it, and *undetermined* when it holds zero and reaches past the floor. These are
marginal effects, averaged over the other parameters as the space spreads them, and eight
of them are read at once, unadjusted: were none real, at least one interval would exclude
zero about a third of the time (1 - 0.95^8, if they were independent).
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

from harness.analysis.architecture_section import reading
from harness.defaults import SURROGATE_REFITS
from harness.errors import UserError
from harness.records import param_column
from harness.replay.learners import make_learner
from harness.replay.surrogate import Surrogate, config_means, observations, repeat_noise
from model.config import lstm_weights
from strategies.registry import COLD_SUFFIX, RECORD_PREFIX
from strategies.space import Param, SearchSpace

# Random search's trials, like record's, sample the space blind to results (v4 first or not).
UNGUIDED_STRATEGIES = ("random", "random" + COLD_SUFFIX)
SURROGATE_SAMPLE = 2048  # Sobol points of the space the surrogate predicts
BOOTSTRAP = 2000  # resamples of the recorded configurations
MIN_PER_SIDE = 3  # recorded configurations each side of a contrast needs

# A contrast: terms (weight, named side, other side); the effect is the weighted sum of
# mean MAE on the named side minus mean MAE on the other. A stratified question's terms are
# its strata, weighted by the configurations they hold.
Terms = list[tuple[float, np.ndarray, np.ndarray]]


class Columns:
    """A table of configurations (param columns) as the questions read it: values, and whether
    each lies in the upper half of its parameter's range."""

    def __init__(self, frame: pd.DataFrame, space: SearchSpace) -> None:
        self.frame, self.space = frame, space

    def value(self, name: str) -> np.ndarray:
        return self.frame[param_column(name)].to_numpy(float)

    def upper(self, name: str) -> np.ndarray:
        """Log-aware; a categorical parameter's upper half of its choices, as listed. A value
        on the midpoint (v4's learning rate, 1e-3 on 1e-4..1e-2) counts as upper."""
        param, values = self.space.param(name), self.frame[param_column(name)]
        if param.type == "categorical":
            last = max(len(param.choices) - 1, 1)
            return np.array([_choice_index(param, v) / last >= 0.5 for v in values])
        return np.array([round(param.to_unit(float(v)), 9) >= 0.5 for v in values])

    def lstm_weights(self) -> np.ndarray:
        """The LSTM layers' trainable weights (the depth and widths the questions weigh)."""
        layers, h1, h2 = self.value("num_layers"), self.value("hidden_1"), self.value("hidden_2")
        deeper = (layers >= 2) * lstm_weights(h1, h2)
        return lstm_weights(1, h1) + deeper + np.maximum(layers - 2, 0) * lstm_weights(h2, h2)


def _choice_index(param: Param, value) -> int:
    """Where ``value`` is among ``param``'s choices (a float column's 128.0 is choice 128)."""
    choice = param.choice_of(value)
    if choice is None:
        raise ValueError(f"{param.name}: {value!r} is not one of {param.choices}")
    return param.choices.index(choice)


@dataclass(frozen=True)
class Question:
    """One of the brief's questions: ``terms`` reads the configurations' columns into the
    contrast's sides; ``stratified``: the terms are strata, averaged where both sides are
    present; ``says``: the answer in words when the effect is negative, and when positive."""

    topic: str
    text: str
    needs: tuple[str, ...]
    terms: Callable[[Columns], Terms]
    says: tuple[str, str]
    stratified: bool = False


def effect(
    terms: Terms, mae: np.ndarray, rows: np.ndarray | None = None, stratified: bool = False
) -> float:
    """The contrast's value on ``mae`` (the rows ``rows`` only, repeats allowed); nan when a
    side holds fewer than MIN_PER_SIDE configurations (over the strata used, if stratified)."""
    parts = []
    for weight, named, other in terms:
        y = mae
        if rows is not None:
            named, other, y = named[rows], other[rows], mae[rows]
        parts.append((weight, named, other, y))
    if stratified:
        parts = [(n.sum() + o.sum(), n, o, y) for _, n, o, y in parts if n.any() and o.any()]
        total = sum(w for w, *_ in parts)
        if not parts or sum(n.sum() for _, n, _, _ in parts) < MIN_PER_SIDE:
            return float("nan")
        if sum(o.sum() for _, _, o, _ in parts) < MIN_PER_SIDE:
            return float("nan")
        return float(sum(w * (y[n].mean() - y[o].mean()) for w, n, o, y in parts) / total)
    total = 0.0
    for weight, named, other, y in parts:
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
    """Within each hidden_1 (a narrower layer 2 is likelier under a wide layer 1)."""
    deep = c.value("num_layers") >= 2
    h1, h2 = c.value("hidden_1"), c.value("hidden_2")
    return [
        (1.0, deep & (h1 == v) & (h2 < h1), deep & (h1 == v) & (h2 >= h1)) for v in np.unique(h1)
    ]


MATCH_FACTOR = 1.5  # a deeper configuration is matched to a 1-layer size within this factor


def _depth_at_equal_weights(c: Columns) -> Terms:
    """Each 1-layer size (one per hidden_1) against the 2-3 layer configurations whose LSTM
    weights are nearest to it in ratio, within MATCH_FACTOR (depth adds weights)."""
    weights, deep = np.log(c.lstm_weights()), c.value("num_layers") >= 2
    sizes = np.unique(weights[~deep])
    if not len(sizes):
        return [(1.0, deep & False, ~deep & False)]
    nearest = np.abs(weights[:, None] - sizes[None, :]).argmin(axis=1)
    close = np.abs(weights - sizes[nearest]) < np.log(MATCH_FACTOR)
    return [(1.0, deep & close & (nearest == i), ~deep & (weights == size))
            for i, size in enumerate(sizes)]  # fmt: skip


def _lr_follows_batch(c: Columns) -> Terms:
    """What a high learning rate gains with a large batch, minus what it gains with a small."""
    high, big = c.upper("learning_rate"), c.upper("batch_size")
    return [(1.0, high & big, ~high & big), (-1.0, high & ~big, ~high & ~big)]


def _upper_half(name: str) -> Callable[[Columns], Terms]:
    def terms(c: Columns) -> Terms:
        upper = c.upper(name)
        return [(1.0, upper, ~upper)]

    return terms


def _looser_clip(c: Columns) -> Terms:
    """Among clipped configurations: 0 turns clipping off (v4), a continuous range never
    draws it, so whether to clip at all is not what this space can ask."""
    clipped, upper = c.value("grad_clip") > 0, c.upper("grad_clip")
    return [(1.0, clipped & upper, clipped & ~upper)]


QUESTIONS = (
    Question("layers", "2 LSTM layers against 1", ("num_layers",), _layers(1, 2),
             ("2 layers do better", "1 layer does better")),
    Question("layers", "3 LSTM layers against 2", ("num_layers",), _layers(2, 3),
             ("3 layers do better", "2 layers do better")),
    Question(
        "layer 2 against layer 1",
        "layer 2 narrower than layer 1, against as wide or wider (2-3 layers, within each "
        "hidden_1)",
        ("num_layers", "hidden_1", "hidden_2"),
        _narrower_layer_2,
        ("a narrower layer 2 does better", "a layer 2 as wide does better"),
        stratified=True,
    ),
    Question(
        "size against depth",
        "2-3 layers against 1 at equal LSTM weights (each 1-layer size against deeper "
        "configurations within 1.5x its weights)",
        ("num_layers", "hidden_1", "hidden_2"),
        _depth_at_equal_weights,
        ("depth does better than width", "width does better than depth"),
        stratified=True,
    ),
    Question(
        "learning rate against batch size",
        "what a learning rate in its upper half gains with a batch of 256-512, minus what it "
        "gains with 64-128",
        ("learning_rate", "batch_size"),
        _lr_follows_batch,
        ("larger batches want larger learning rates", "larger batches want smaller ones"),
    ),
    Question(
        "clipping",
        "clip norm 2.5-5 against 0-2.5, clipped configurations only",
        ("grad_clip",),
        _looser_clip,
        ("looser clipping does better", "tighter clipping does better"),
    ),
    Question("dense size", "dense layer in the upper half of its range", ("dense",),
             _upper_half("dense"), ("a larger dense layer does better",
                                    "a smaller dense layer does better")),
    Question("dropout", "dropout in the upper half of its range", ("dropout",),
             _upper_half("dropout"), ("more dropout does better", "less dropout does better")),
)  # fmt: skip


def unguided(curves: pd.DataFrame) -> pd.DataFrame:
    """The curves of configurations no sampler chose by looking at results: record's and
    random search's."""
    source = curves["source"].astype(str) if "source" in curves else pd.Series("", curves.index)
    keep = source.str.startswith(RECORD_PREFIX) | curves["strategy"].isin(UNGUIDED_STRATEGIES)
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
    strata = question.stratified
    point = effect(terms, mae, stratified=strata)
    low = high = float("nan")
    if np.isfinite(point):
        with warnings.catch_warnings():  # scipy warns of the nan resamples handled below
            warnings.simplefilter("ignore", stats.DegenerateDataWarning)
            draws = stats.bootstrap(
                (np.arange(len(frame)),),
                lambda rows: effect(terms, mae, rows.astype(int), strata),
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
        terms, strata = question.terms(Columns(self.sample, space)), question.stratified
        low, high = _percentile_interval([effect(terms, y, None, strata) for y in self.refits])
        return {"effect": effect(terms, self.fitted, None, strata), "low": low, "high": high}


def verdict(recorded: dict, floor: float | None) -> str:
    """The recorded interval read against zero and the noise floor (None: not measured)."""
    low, high = recorded["low"], recorded["high"]
    if not (np.isfinite(low) and np.isfinite(high)):
        return "too few configurations on one side"
    excludes_zero = low > 0 or high < 0
    if floor is None:
        return "real, noise floor unknown" if excludes_zero else "undetermined, noise floor unknown"
    if low > floor or high < -floor:
        return "separable"
    if excludes_zero:
        return "real, size uncertain"
    if -floor < low and high < floor:
        return "below the noise floor"
    return "undetermined"


def corroborated(recorded: dict, modelled: dict) -> bool:
    """Whether the surrogate's range over refits excludes zero on the recorded effect's side."""
    sign = np.sign(recorded["effect"])
    return bool(sign > 0 and modelled["low"] > 0 or sign < 0 and modelled["high"] < 0)


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
    one = float(np.hypot(noise["trial"], noise["rung"][-1]))
    floor = np.sqrt(2) * one if noise["supported"] else None  # sd of two trainings' difference
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
        answers.append({**row, "recorded": rec, "surrogate": mod, "says": list(q.says),
                        "verdict": verdict(rec, floor),
                        "surrogate_agrees": corroborated(rec, mod)})  # fmt: skip
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
        values = frame[param_column(p.name)]
        if p.type == "categorical":
            match &= np.array([_choice_index(p, v) == p.choices.index(p.default) for v in values])
        else:
            match &= np.isclose(values.to_numpy(float), float(p.default))
    return float(frame.loc[match, "mae"].mean()) if match.any() else None


def summary_lines(result: dict) -> list[str]:
    """A few lines for the terminal."""
    floor = result["noise_floor"]
    lines = [
        f"{result['configurations']} configurations ({result['trainings']} trainings); noise "
        + (f"floor {floor:.3f} bikes" if floor is not None else "floor not measured (no repeats)")
    ]
    for a in result["answers"]:
        if "recorded" not in a:
            lines.append(f"{a['question']}: {a['verdict']}")
            continue
        r, m = a["recorded"], a["surrogate"]
        lines.append(
            f"{a['question']}: recorded {r['effect']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}], "
            f"surrogate {m['effect']:+.3f} (refits {m['low']:+.3f}..{m['high']:+.3f}): "
            f"{reading(a)}"
        )
    return lines
