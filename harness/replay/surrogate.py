"""A surrogate of the objective: for any configuration and rung, a validation MAE (with noise
matching the spread between repeats) and a cost, fitted to a recorded learning-curve table.

The model is chosen on evidence: each candidate is scored by leaving one recorded
configuration out at a time (rank correlation and error of its last-rung MAE against the
real curve), and the scores are kept with the surrogate so that reports can show them.
No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from strategies.space import Param

CANDIDATES = ("knn1", "knn5", "ridge")


def featurize(space: list[Param], frame: pd.DataFrame) -> np.ndarray:
    """Numeric parameters as their position in [0, 1]; categorical ones one-hot."""
    cols = []
    for p in space:
        values = frame[f"param_{p.name}"]
        if p.type == "categorical":
            cols += [np.array([str(v) == str(c) for v in values], float) for c in p.choices]
        else:
            cols.append(np.array([p.to_unit(float(v)) for v in values]))
    return np.column_stack(cols)


def _small_sample_correction(n: float) -> float:
    """Bessel's factor for a std over ``n`` repeats (1 when there is one)."""
    return np.sqrt(n / max(n - 1, 1))


def _quadratic(x: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones(len(x)), x, x**2])


def _repeat_noise(curves: pd.DataFrame, rungs: pd.Index) -> tuple[float, float, np.ndarray]:
    """Noise from the repeats in ``curves``: the mean repeats per configuration, the std of a
    repeat's offset shared by all its rungs, and the remaining std at each of ``rungs``."""
    # A trial offset (the repeat's mean deviation) plus a per-rung remainder.
    dev = curves["val_mae"] - curves.groupby(["config", "rung"])["val_mae"].transform("mean")
    offset = dev.groupby(curves["trial"]).transform("mean")
    repeated = curves.groupby("config")["trial"].transform("nunique") > 1
    n_rep = (
        curves.loc[repeated].groupby("config")["trial"].nunique().mean() if repeated.any() else 1
    )
    noise_trial = (
        float(offset[repeated].std() * _small_sample_correction(n_rep)) if repeated.any() else 0.0
    )
    noise_rung = (
        (
            (dev - offset)[repeated].groupby(curves.loc[repeated, "rung"]).std()
            * _small_sample_correction(n_rep)
        )
        .reindex(rungs)
        .fillna(0)
        .to_numpy()
        if repeated.any()
        else np.zeros(len(rungs))
    )
    return n_rep, noise_trial, noise_rung


@dataclass
class Surrogate:
    """Learning curves and costs of unseen configurations, predicted from recorded ones by
    nearest neighbours or ridge regression (``kind``), with the repeats' noise."""

    space: list[Param]
    x: np.ndarray  # (C, F) one row per recorded configuration
    mae: np.ndarray  # (C, R) mean validation MAE per rung over repeats
    train_seconds: np.ndarray  # (C, R) mean training seconds per rung
    eval_seconds: np.ndarray  # (C, R)
    samples: np.ndarray  # (R,) training samples per rung
    noise_trial: float  # std of a repeat's offset shared by all its rungs
    noise_rung: np.ndarray  # (R,) remaining std per rung
    kind: str = "knn5"
    evidence: dict = field(default_factory=dict)
    _ridge: np.ndarray | None = None

    @classmethod
    def fit(cls, space: list[Param], curves: pd.DataFrame, kind: str | None = None) -> Surrogate:
        """``curves``: rungs.csv rows of a record run (every configuration through every rung,
        repeated)."""
        params = [f"param_{p.name}" for p in space]
        curves = curves.assign(config=curves.groupby(params, sort=False).ngroup())
        full = curves.groupby("trial")["rung"].transform("max") == curves["rung"].max()
        curves = curves[full]  # only trials that climbed the whole ladder
        if curves["config"].nunique() < 4:
            raise ValueError(
                "a surrogate needs at least 4 recorded configurations that reached the last rung"
            )

        def mean(col: str) -> pd.DataFrame:
            return curves.pivot_table(index="config", columns="rung", values=col, aggfunc="mean")

        mae, train, ev = mean("val_mae"), mean("train_seconds"), mean("eval_seconds")
        firsts = curves.groupby("config")[params].first().loc[mae.index]
        n_rep, noise_trial, noise_rung = _repeat_noise(curves, mae.columns)
        base = cls(
            space=space,
            x=featurize(space, firsts),
            mae=mae.to_numpy(),
            train_seconds=train.to_numpy(),
            eval_seconds=ev.to_numpy(),
            samples=curves.groupby("rung")["samples"].max().to_numpy(float),
            noise_trial=noise_trial,
            noise_rung=noise_rung,
        )
        base.evidence = {k: base._leave_one_out(k) for k in CANDIDATES}
        base.evidence["repeats_per_config"] = float(n_rep)
        base.evidence["configs"] = int(len(firsts))
        base.evidence["noise_trial"], base.evidence["noise_rung"] = noise_trial, noise_rung.tolist()
        base.kind = kind or max(
            CANDIDATES, key=lambda k: (base.evidence[k]["spearman"], -base.evidence[k]["mae"])
        )
        base.evidence["chosen"] = base.kind
        return base

    def _predict_rows(self, x: np.ndarray, kind: str, keep: np.ndarray | None = None) -> np.ndarray:
        # Never outside what was measured at each rung: samplers otherwise exploit the model's
        # extrapolation (a quadratic's valley below every recorded configuration).
        xs, ys = (self.x, self.mae) if keep is None else (self.x[keep], self.mae[keep])
        return np.clip(self._raw_predict(x, kind, xs, ys, keep is None), ys.min(0), ys.max(0))

    def _raw_predict(
        self, x: np.ndarray, kind: str, xs: np.ndarray, ys: np.ndarray, full: bool
    ) -> np.ndarray:
        if kind == "ridge":
            if full and self._ridge is not None:
                return _quadratic(x) @ self._ridge  # fitted once on every configuration
            q = _quadratic(xs)
            w = np.linalg.solve(q.T @ q + 1e-2 * np.eye(q.shape[1]), q.T @ ys)
            if full:
                self._ridge = w
            return _quadratic(x) @ w
        k = 1 if kind == "knn1" else min(5, len(xs))
        d = np.linalg.norm(x[:, None, :] - xs[None, :, :], axis=-1)  # (N, C)
        idx = np.argsort(d, axis=1)[:, :k]
        w = 1 / (np.take_along_axis(d, idx, axis=1) + 1e-6)
        return np.einsum("nk,nkr->nr", w / w.sum(1, keepdims=True), ys[idx])

    def _leave_one_out(self, kind: str) -> dict:
        n = len(self.x)
        pred = np.array(
            [
                self._predict_rows(self.x[i : i + 1], kind, np.arange(n) != i)[0, -1]
                for i in range(n)
            ]
        )
        real = self.mae[:, -1]
        return {
            "spearman": float(stats.spearmanr(pred, real).statistic),
            "mae": float(np.abs(pred - real).mean()),
            "real_spread": float(real.std()),
        }

    def predict(self, params: dict) -> np.ndarray:
        """Mean validation MAE at every rung, (R,)."""
        return self._predict_rows(self._x(params), self.kind)[0]

    def sample(self, params: dict, rng: np.random.Generator) -> np.ndarray:
        """One noisy learning curve for ``params``: the prediction plus a trial offset and per-rung
        noise drawn from ``rng``, (R,)."""
        return (
            self.predict(params)
            + rng.normal(0, self.noise_trial)
            + rng.normal(0, 1, len(self.noise_rung)) * self.noise_rung
        )

    def cost(self, params: dict) -> tuple[np.ndarray, np.ndarray]:
        """Training and evaluation seconds at every rung: inverse-distance mean of the nearest
        recorded configurations."""
        x = self._x(params)
        d = np.linalg.norm(self.x - x, axis=1)
        idx = np.argsort(d)[:3]
        w = 1 / (d[idx] + 1e-6)
        w /= w.sum()
        return w @ self.train_seconds[idx], w @ self.eval_seconds[idx]

    def _x(self, params: dict) -> np.ndarray:
        """The features of one configuration (the hot path of replay: no DataFrame)."""
        row = []
        for p in self.space:
            v = params[p.name]
            if p.type == "categorical":
                row += [float(str(v) == str(c)) for c in p.choices]
            else:
                row.append(p.to_unit(float(v)))
        return np.array([row])
