"""A surrogate of the objective: for any configuration and rung, a validation MAE (with noise
matching the spread between repeats) and a cost, fitted to every learning curve recorded for
the experiment.

One model predicts a whole learning curve: the rung is an input beside the parameters, so
pruned trials' partial curves teach it too. The model is chosen on held-out evidence: each
candidate (nearest neighbours, ridge on quadratic features with interactions, extra trees,
gradient-boosted trees, a Gaussian process with one length scale per input) is scored on folds
grouped by configuration (no configuration is ever on both sides), by the rank correlation of
its top-rung predictions with the configurations' measured top-rung MAE, with a bootstrap
interval over configurations. The scores are kept with the surrogate so that reports can show
them. No torch here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from harness.records import param_column
from harness.replay.learners import CANDIDATES, make_learner
from strategies.space import Param

FOLDS = 5  # grouped by configuration
BOOTSTRAP = 1000  # resamples of the held-out configurations for the Spearman interval
MIN_REPEATED = 3  # configurations with repeats needed before noise is estimated from them
TRUSTED_SPEARMAN = 0.9  # below this held-out rank correlation the screen informs, not decides


def param_features(space: list[Param], frame: pd.DataFrame) -> np.ndarray:
    """Numeric parameters as their position in [0, 1]; categorical ones one-hot."""
    cols = []
    for p in space:
        values = frame[param_column(p.name)]
        if p.type == "categorical":
            cols += [np.array([str(v) == str(c) for v in values], float) for c in p.choices]
        else:
            cols.append(np.array([p.to_unit(float(v)) for v in values]))
    return np.column_stack(cols)


def _small_sample_correction(n: float) -> float:
    """Bessel's factor for a std over ``n`` repeats (1 when there is one)."""
    return np.sqrt(n / max(n - 1, 1))


def observations(curves: pd.DataFrame, space: list[Param]) -> pd.DataFrame:
    """``curves`` (rungs.csv rows, any runs) with one row per distinct trained rung: copies of
    one trial in several strategies' runs (shared start-up draws) count once. Adds ``config``
    (one id per distinct configuration) and ``obs`` (one id per trained curve)."""
    params = [param_column(p.name) for p in space]
    curves = curves.dropna(subset=["val_mae", *params])
    curves = curves[np.isfinite(curves["val_mae"].to_numpy(float))]
    keys = ["seed", "trial", "rung", "val_mae", *params]
    curves = curves.drop_duplicates(subset=keys).copy()
    curves["config"] = curves.groupby(params, sort=False).ngroup()
    curves["obs"] = curves.groupby(["source", "strategy", "seed", "trial"], sort=False).ngroup()
    return curves


def repeat_noise(obs: pd.DataFrame, rungs: list[int]) -> dict:
    """Noise from configurations trained more than once at a rung: the std of a curve's offset
    shared by all its rungs, and the remaining std at each rung; zero (and ``supported`` False)
    when fewer than ``MIN_REPEATED`` configurations were repeated."""
    counts = obs.groupby(["config", "rung"])["obs"].transform("nunique")
    rep = obs[counts > 1]
    n_configs = int(rep["config"].nunique())
    if n_configs < MIN_REPEATED:
        return {"supported": False, "repeated_configs": n_configs, "trial": 0.0,
                "rung": [0.0] * len(rungs), "repeats": 1.0}  # fmt: skip
    dev = rep["val_mae"] - rep.groupby(["config", "rung"])["val_mae"].transform("mean")
    offset = dev.groupby(rep["obs"]).transform("mean")
    n_rep = float(rep.groupby(["config", "rung"])["obs"].nunique().mean())
    corr = _small_sample_correction(n_rep)
    per_rung = ((dev - offset).groupby(rep["rung"]).std() * corr).reindex(rungs).fillna(0)
    return {
        "supported": True,
        "repeated_configs": n_configs,
        "trial": float(offset.std() * corr),
        "rung": per_rung.tolist(),
        "repeats": n_rep,
    }


@dataclass
class Surrogate:
    """Learning curves and costs of unseen configurations, predicted from recorded ones by the
    learner chosen on held-out evidence (``kind``), with the repeats' noise."""

    space: list[Param]
    rungs: list[int]
    model: object  # a fitted scikit-learn regressor on (parameters, rung position)
    low: np.ndarray  # (R,) lowest mean MAE measured at each rung (predictions are clamped)
    high: np.ndarray  # (R,) highest
    x_cost: np.ndarray  # (C, F) configurations that climbed every rung, for costs
    train_seconds: np.ndarray  # (C, R) their mean training seconds per rung
    eval_seconds: np.ndarray  # (C, R)
    samples: np.ndarray  # (R,) training samples per rung
    noise_trial: float  # std of a curve's offset shared by all its rungs
    noise_rung: np.ndarray  # (R,) remaining std per rung
    kind: str = "forest"
    evidence: dict = field(default_factory=dict)
    _memo: dict = field(default_factory=dict, repr=False)

    @classmethod
    def fit(cls, space: list[Param], curves: pd.DataFrame, kind: str | None = None) -> Surrogate:
        """``curves``: rungs.csv rows of any runs (a ``source`` column names the run folder),
        pruned trials included. ``kind`` names the learner instead of choosing it, and only its
        held-out evidence is computed. Raises ValueError when fewer than 4 configurations
        reached the last rung."""
        curves = curves.assign(source=curves["source"] if "source" in curves else "record")
        obs = observations(curves, space)
        rungs = sorted(int(r) for r in obs["rung"].unique())
        top = max(rungs)
        if obs.loc[obs["rung"] == top, "config"].nunique() < 4:
            raise ValueError(
                "a surrogate needs at least 4 recorded configurations that reached the last rung"
            )
        table = config_means(obs, space, rungs)
        noise = repeat_noise(obs, rungs)
        evidence = {k: _held_out(table, k) for k in ((kind,) if kind else CANDIDATES)}
        chosen = kind or max(
            CANDIDATES, key=lambda k: (evidence[k]["spearman"], -evidence[k]["mae"])
        )
        model = make_learner(chosen, len(table)).fit(table["x"], table["y"])
        x_cost, train, ev = _costs(obs, space, rungs)
        means = obs.groupby(["config", "rung"])["val_mae"].mean().unstack()
        surrogate = cls(
            space=space,
            rungs=rungs,
            model=model,
            low=means.min().reindex(rungs).to_numpy(),
            high=means.max().reindex(rungs).to_numpy(),
            x_cost=x_cost,
            train_seconds=train,
            eval_seconds=ev,
            samples=obs.groupby("rung")["samples"].max().reindex(rungs).to_numpy(float),
            noise_trial=noise["trial"],
            noise_rung=np.array(noise["rung"]),
            kind=chosen,
        )
        surrogate.evidence = _evidence(evidence, chosen, obs, noise, table, top)
        surrogate.evidence["calibration"] = _calibration(
            table, obs, evidence[chosen]["predictions"], noise
        )
        for k in evidence:
            evidence[k].pop("predictions")
        return surrogate

    def _features(self, params: dict) -> np.ndarray:
        """One row per rung: the configuration's features and the rung's position in [0, 1]."""
        row = []
        for p in self.space:
            v = params[p.name]
            if p.type == "categorical":
                row += [float(str(v) == str(c)) for c in p.choices]
            else:
                row.append(p.to_unit(float(v)))
        return np.column_stack(
            [np.tile(row, (len(self.rungs), 1)), _rung_position(np.array(self.rungs))]
        )

    def top_rung_features(self, frame: pd.DataFrame) -> np.ndarray:
        """The learner's inputs for every configuration (param columns) of ``frame`` at the top
        rung: for predicting many configurations in one call."""
        return np.column_stack([param_features(self.space, frame), np.ones(len(frame))])

    def predict(self, params: dict) -> np.ndarray:
        """Mean validation MAE at every rung, (R,), never outside what was measured at each
        rung: samplers otherwise exploit a model's extrapolation."""
        key = tuple(sorted((k, str(v)) for k, v in params.items()))
        if key not in self._memo:
            raw = self.model.predict(self._features(params))
            self._memo[key] = np.clip(raw, self.low, self.high)
        return self._memo[key]

    def sample(self, params: dict, rng: np.random.Generator) -> np.ndarray:
        """One noisy learning curve for ``params``: the prediction plus a trial offset and per-rung
        noise drawn from ``rng``, (R,)."""
        return (
            self.predict(params)
            + rng.normal(0, self.noise_trial)
            + rng.normal(0, 1, len(self.noise_rung)) * self.noise_rung
        )

    def reevaluate(self, params: dict, fresh_seed: int) -> float:
        """The top-rung MAE a retrain of ``params`` with training seed ``fresh_seed`` gives: the
        same configuration and seed give the same value in every run (common random numbers,
        as a real re-evaluation trains a configuration once per seed)."""
        text = repr(sorted((k, str(v)) for k, v in params.items())) + f"|{fresh_seed}"
        digest = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        return float(self.sample(params, np.random.default_rng(digest))[-1])

    def cost(self, params: dict) -> tuple[np.ndarray, np.ndarray]:
        """Training and evaluation seconds at every rung: inverse-distance mean of the nearest
        configurations that climbed every rung."""
        x = self._features(params)[0, :-1]
        d = np.linalg.norm(self.x_cost - x, axis=1)
        idx = np.argsort(d)[:3]
        w = 1 / (d[idx] + 1e-6)
        w /= w.sum()
        return w @ self.train_seconds[idx], w @ self.eval_seconds[idx]


def _rung_position(rungs: np.ndarray) -> np.ndarray:
    """Rungs 1..R as positions 0..1 (a single-rung ladder sits at 1)."""
    top = rungs.max()
    return (rungs - 1) / (top - 1) if top > 1 else np.ones(len(rungs))


def config_means(obs: pd.DataFrame, space: list[Param], rungs: list[int]) -> dict:
    """The learners' table: one row per (configuration, rung) with the mean MAE over its curves."""
    params = [param_column(p.name) for p in space]
    grouped = obs.groupby(["config", "rung"], as_index=False).agg(
        y=("val_mae", "mean"), n=("obs", "nunique"), **{c: (c, "first") for c in params}
    )
    x = np.column_stack(
        [param_features(space, grouped), _rung_position(grouped["rung"].to_numpy(float))]
    )
    return {
        "x": x,
        "y": grouped["y"].to_numpy(float),
        "config": grouped["config"].to_numpy(),
        "rung": grouped["rung"].to_numpy(),
        "n": grouped["n"].to_numpy(),
        "top": max(rungs),
    }


def _folds(configs: np.ndarray, k: int) -> np.ndarray:
    """A fold number per row, every row of one configuration in the same fold (seeded)."""
    unique = np.unique(configs)
    order = np.random.default_rng(0).permutation(len(unique))
    fold_of = dict(zip(unique[order], np.arange(len(unique)) % k))
    return np.array([fold_of[c] for c in configs])


def _held_out(table: dict, kind: str) -> dict:
    """One candidate's held-out evidence: each fold's configurations predicted by a learner fitted
    on the others; the top rung's Spearman (with a bootstrap 95% interval over configurations)
    and mean absolute error against the configurations' measured mean."""
    folds = _folds(table["config"], min(FOLDS, len(np.unique(table["config"]))))
    pred = np.empty(len(table["y"]))
    for f in np.unique(folds):
        train = folds != f
        learner = make_learner(kind, int(train.sum())).fit(table["x"][train], table["y"][train])
        pred[~train] = learner.predict(table["x"][~train])
    top = table["rung"] == table["top"]
    real, guess = table["y"][top], pred[top]
    low, high = _bootstrap_spearman(guess, real)
    return {
        "spearman": float(stats.spearmanr(guess, real).statistic),
        "spearman_low": low,
        "spearman_high": high,
        "mae": float(np.abs(guess - real).mean()),
        "real_spread": float(real.std()),
        "predictions": pred,
    }


def _bootstrap_spearman(guess: np.ndarray, real: np.ndarray) -> tuple[float, float]:
    """A percentile 95% interval of Spearman's rho, resampling configurations."""
    rng = np.random.default_rng(0)
    i = rng.integers(0, len(real), (BOOTSTRAP, len(real)))  # the same draws as row by row
    g, r = guess[i], real[i]
    varied = (np.ptp(g, axis=1) > 0) & (np.ptp(r, axis=1) > 0)
    if not varied.any():
        return float("nan"), float("nan")
    draws = _rowwise_spearman(g[varied], r[varied])
    return float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def _rowwise_spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row pair (Pearson's r of average ranks, as scipy computes it)."""
    ra, rb = stats.rankdata(a, axis=1), stats.rankdata(b, axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    return (ra * rb).sum(axis=1) / np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))


def _calibration(table: dict, obs: pd.DataFrame, pred: np.ndarray, noise: dict) -> dict:
    """How well the replay's noise matches held-out curves: the share of held-out top-rung
    observations inside the surrogate's 90% band (held-out prediction +- 1.645 x the modelled
    seed noise), against the nominal 90%."""
    top = table["top"]
    at_top = pd.Series(pred[table["rung"] == top], index=table["config"][table["rung"] == top])
    rows = obs[obs["rung"] == top]
    sd = float(np.hypot(noise["trial"], noise["rung"][-1]))
    if not noise["supported"] or sd == 0 or rows.empty:
        return {"supported": False, "nominal": 0.9, "coverage": float("nan"), "n": 0}
    inside = (rows["val_mae"] - at_top.reindex(rows["config"]).to_numpy()).abs() <= 1.645 * sd
    return {"supported": True, "nominal": 0.9, "coverage": float(inside.mean()), "n": len(rows)}


def noise_ceiling(table: dict, noise: dict, draws: int = 500) -> tuple[float, float, float]:
    """The held-out Spearman a perfect model could expect at the top rung, where each
    configuration's measured mean carries seed noise (nan without a noise model). Simulated on
    ranks, not from a variance ratio: configurations bunched within the noise of each other
    swap ranks even when a few outliers make the spread look large. The truth is taken as the
    measured means shrunk by their noise share; each draw adds the modelled noise of a mean of
    that configuration's repeats. Returns the expected value and the 2.5-97.5% range of the
    draws (the noise estimate's own error, from a few dozen repeats, is not in that range). A
    held-out score near it is as good as these data allow."""
    top = table["rung"] == table["top"]
    real, n = table["y"][top], table["n"][top]
    if not noise["supported"] or len(real) < 3 or real.var() == 0:
        return float("nan"), float("nan"), float("nan")
    sd = np.hypot(noise["trial"], noise["rung"][-1]) / np.sqrt(n)
    signal = np.sqrt(max(0.0, 1.0 - (sd**2).mean() / real.var()))
    if signal == 0:  # the measured spread is all noise: no model can rank these
        return 0.0, 0.0, 0.0
    truth = real.mean() + (real - real.mean()) * signal
    rng = np.random.default_rng(0)
    noisy = truth + rng.normal(0, sd, (draws, len(truth)))
    rhos = _rowwise_spearman(np.broadcast_to(truth, noisy.shape), noisy)
    return float(np.mean(rhos)), float(np.percentile(rhos, 2.5)), float(np.percentile(rhos, 97.5))


def _costs(obs: pd.DataFrame, space: list[Param], rungs: list[int]) -> tuple:
    """Per configuration that reached the top rung: features, mean train and eval seconds per
    rung, over every timed row of that configuration. Taken per configuration, not per curve:
    a trial shared by two runs keeps one copy of each rung (``observations``), so the run that
    finished it may hold no row for the rung the other run pruned it at. Rows without timings
    (re-evaluations) never price a cost, and a configuration missing a rung's timing is left
    out: a NaN cost fails every replayed trial near it."""
    params = [param_column(p.name) for p in space]
    timed = obs.dropna(subset=["train_seconds", "eval_seconds"])
    full = timed[timed.groupby("config")["rung"].transform("max") == max(rungs)]

    def mean(col: str) -> pd.DataFrame:
        table = full.pivot_table(index="config", columns="rung", values=col, aggfunc="mean")
        return table.reindex(columns=rungs)

    train = mean("train_seconds")
    ev = mean("eval_seconds").reindex(train.index)
    every_rung = train.notna().all(axis=1) & ev.notna().all(axis=1)
    train, ev = train[every_rung], ev[every_rung]
    if train.empty:
        raise ValueError("a surrogate needs a recorded configuration timed at every rung")
    firsts = full.groupby("config")[params].first().loc[train.index]
    return param_features(space, firsts), train.to_numpy(), ev.to_numpy()


def _evidence(
    candidates: dict, chosen: str, obs: pd.DataFrame, noise: dict, table: dict, top: int
) -> dict:
    """What the report shows about the fit: each candidate's held-out scores, the chosen one,
    what it was fitted to, and the noise model."""
    reached = obs[obs["rung"] == top]
    return {
        **candidates,
        "chosen": chosen,
        "trusted": candidates[chosen]["spearman"] >= TRUSTED_SPEARMAN,
        "trusted_at": TRUSTED_SPEARMAN,
        "folds": f"{min(FOLDS, len(np.unique(table['config'])))}, grouped by configuration",
        "configs": int(obs["config"].nunique()),
        "configs_at_top": int(reached["config"].nunique()),
        "curves": int(obs["obs"].nunique()),
        "rungs_fitted": int(len(obs)),
        "sources": sorted(obs["source"].unique().tolist()),
        "repeats_per_config": noise["repeats"],
        "noise_supported": noise["supported"],
        "repeated_configs": noise["repeated_configs"],
        "noise_trial": noise["trial"],
        "noise_rung": noise["rung"],
        **dict(
            zip(
                ("noise_ceiling", "noise_ceiling_low", "noise_ceiling_high"),
                noise_ceiling(table, noise),
            )
        ),
    }
