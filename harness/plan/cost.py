"""The cost model: log training seconds as a linear function of a rung's sample count and the
configuration's size, fitted to the recorded rungs.

Only inputs that varied in the records enter it (a constant input has no slope to fit); its
fit is scored on held-out runs, not only in-sample, and every prediction carries a 90%
prediction interval on the log scale."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from harness.analysis.analyze import Analysis
from harness.errors import UserError
from harness.records import param_column

COST_FEATURES = ("hidden_1", "hidden_2", "num_layers", "batch_size")
# The model's inputs, in design-matrix order (after the intercept).
INPUTS = ("samples", "hidden_1", "num_layers", "hidden_2", "batch_size")
MIN_ROWS = 8
LEVEL = 0.90  # the prediction interval's coverage
RUN = "run"  # the column naming each row's run (the held-out unit)


@dataclass
class CostModel:
    """log(train seconds) = w . [1, inputs kept], where the inputs are log samples, log
    hidden_1, layers, log hidden_2 if layers > 1 and log batch, and only those that varied are
    kept (``dropped``: name -> why). ``r2`` in-sample and ``r2_heldout`` (``heldout`` says
    how) on the log scale over ``n_rows`` rungs; ``sigma`` is the residual spread behind the
    interval (the larger of in-sample and held-out), with ``df`` degrees of freedom."""

    weights: np.ndarray
    kept: tuple[str, ...]
    dropped: dict[str, str]
    r2: float
    r2_heldout: float
    heldout: str
    n_rows: int
    sigma: float
    df: int
    gram_inv: np.ndarray = field(repr=False)
    max_samples: float = 0.0  # the largest measured samples per rung

    @staticmethod
    def inputs(samples, cfg: pd.DataFrame) -> pd.DataFrame:
        """Every candidate input (``INPUTS``) per sample count and configuration row."""
        layers = cfg["num_layers"].to_numpy(float)
        return pd.DataFrame(
            {
                "samples": np.log(np.asarray(samples, float)),
                "hidden_1": np.log(cfg["hidden_1"].to_numpy(float)),
                "num_layers": layers,
                "hidden_2": np.log(cfg["hidden_2"].to_numpy(float)) * (layers > 1),
                "batch_size": np.log(cfg["batch_size"].to_numpy(float)),
            }
        )

    def design(self, samples, cfg: pd.DataFrame) -> np.ndarray:
        """The design matrix over the kept inputs: [1, kept...] per row."""
        x = self.inputs(samples, cfg)[list(self.kept)].to_numpy(float)
        return np.column_stack([np.ones(len(x)), x])

    def predict(self, samples, cfg: pd.DataFrame) -> np.ndarray:
        """Predicted training seconds for each sample count and configuration row."""
        return np.exp(self.design(samples, cfg) @ self.weights)

    def half_width(self, samples, cfg: pd.DataFrame) -> np.ndarray:
        """Each row's ``LEVEL`` prediction interval half-width on the log scale: the prediction
        times exp(-h) to exp(+h). It grows with the row's distance from the fitted rows."""
        x = self.design(samples, cfg)
        leverage = np.einsum("ij,jk,ik->i", x, self.gram_inv, x)
        return t_quantile(self.df) * self.sigma * np.sqrt(1 + leverage)

    def as_record(self) -> dict:
        """The fitted model as plain JSON values."""
        return {
            "inputs": ["intercept", *self.kept],
            "weights": self.weights.tolist(),
            "dropped": self.dropped,
            "r2": self.r2,
            "r2_heldout": self.r2_heldout,
            "heldout": self.heldout,
            "rows": self.n_rows,
            "sigma_log": self.sigma,
            "interval_level": LEVEL,
            "max_samples_per_rung": self.max_samples,
        }

    def describe(self) -> str:
        """One sentence: the inputs, what was dropped and why, the fit in and out of sample."""
        dropped = "; ".join(f"{name} ({why})" for name, why in self.dropped.items())
        return (
            f"Cost model: log training seconds on {', '.join(self.kept) or 'nothing'}"
            f"{f' (dropped: {dropped})' if dropped else ''}, fitted to {self.n_rows} recorded "
            f"rungs: R² {self.r2:.2f} in-sample, {self.r2_heldout:.2f} held out "
            f"({self.heldout}); {LEVEL:.0%} prediction interval x/÷"
            f"{np.exp(t_quantile(self.df) * self.sigma):.2f} at the recorded scale."
        )


def t_quantile(df: int) -> float:
    """The two-sided ``LEVEL`` quantile of Student's t with ``df`` degrees of freedom."""
    return float(stats.t.ppf(0.5 + LEVEL / 2, max(df, 1)))


def configs_of(rows: pd.DataFrame, meta: dict) -> pd.DataFrame:
    """Each row's value of the cost-driving parameters: searched (its ``param_column``) or the
    run's fixed base (from ``meta``, keyed by (strategy, seed)); one column per
    ``COST_FEATURES``."""
    out = {}
    for name in COST_FEATURES:
        col = param_column(name)
        if col in rows:
            out[name] = rows[col].to_numpy(float)
            continue
        try:
            out[name] = np.array(
                [
                    meta[(s, int(sd))]["base_config"][name]
                    for s, sd in zip(rows["strategy"], rows["seed"])
                ],
                float,
            )
        except KeyError:
            raise UserError(
                "plan: these records predate base_config in metadata.json; "
                "run the same compare again to refresh them"
            ) from None
    return pd.DataFrame(out, index=rows.index)


def cost_table(a: Analysis) -> pd.DataFrame:
    """Every recorded rung of ``a`` that trained: samples, ``COST_FEATURES``, train_seconds and
    its run ("strategy/seed", the held-out unit)."""
    rungs = a.results.rungs[a.results.rungs["train_seconds"] > 0]
    table = configs_of(rungs, a.results.meta)
    table["samples"] = rungs["samples"].to_numpy(float)
    table["train_seconds"] = rungs["train_seconds"].to_numpy(float)
    table[RUN] = (rungs["strategy"].astype(str) + "/" + rungs["seed"].astype(str)).to_numpy()
    return table.reset_index(drop=True)


def fit_cost_model(a: Analysis) -> CostModel:
    """The cost model fitted to every recorded rung of ``a`` that trained."""
    return fit_cost_rows(cost_table(a))


def fit_cost_rows(table: pd.DataFrame) -> CostModel:
    """Least squares on ``table`` (``cost_table``'s columns; at least ``MIN_ROWS`` rows) over
    the inputs that varied in it, scored in-sample and on held-out runs."""
    if len(table) < MIN_ROWS:
        raise UserError(f"plan: fewer than {MIN_ROWS} recorded rungs; run compare first")
    candidates = CostModel.inputs(table["samples"], table)
    kept, dropped = select_inputs(candidates)
    x = np.column_stack([np.ones(len(table)), candidates[kept].to_numpy(float)])
    y = np.log(table["train_seconds"].to_numpy(float))
    w, *_ = np.linalg.lstsq(x, y, rcond=None)
    residual = y - x @ w
    df = max(len(y) - x.shape[1], 1)
    heldout, how = heldout_predictions(x, y, table[RUN].to_numpy())
    s_in = float(np.sqrt(np.sum(residual**2) / df))
    s_out = float(np.sqrt(np.mean((y - heldout) ** 2)))
    return CostModel(
        weights=w,
        kept=tuple(kept),
        dropped=dropped,
        r2=_r2(y, x @ w),
        r2_heldout=_r2(y, heldout),
        heldout=how,
        n_rows=len(y),
        sigma=max(s_in, s_out),
        df=df,
        gram_inv=np.linalg.pinv(x.T @ x),
        max_samples=float(table["samples"].max()),
    )


def select_inputs(candidates: pd.DataFrame) -> tuple[list[str], dict[str, str]]:
    """The inputs that varied and add something (in ``INPUTS`` order), and the dropped ones
    with why: "constant" (one value in every row) or "collinear" (a combination of the
    inputs kept before it)."""
    kept, dropped = [], {}
    for name in INPUTS:
        values = candidates[name].to_numpy(float)
        if np.ptp(values) <= 1e-9 * max(1.0, float(np.abs(values).max())):
            dropped[name] = "constant"
            continue
        x = np.column_stack([np.ones(len(values)), candidates[kept + [name]].to_numpy(float)])
        if np.linalg.matrix_rank(x) < x.shape[1]:
            dropped[name] = "collinear"
            continue
        kept.append(name)
    return kept, dropped


def heldout_predictions(x: np.ndarray, y: np.ndarray, runs: np.ndarray) -> tuple[np.ndarray, str]:
    """Each row's prediction from a fit that did not see it: leave one run out where there are
    at least 3 runs, else 5-fold over rows (seeded). Returns the predictions and how."""
    groups = pd.factorize(runs)[0]
    n_runs = int(groups.max()) + 1 if len(groups) else 0
    if n_runs >= 3:
        folds, how = groups, f"leave-one-run-out over {n_runs} runs"
    else:
        k = min(5, len(y))
        folds = np.random.default_rng(0).permutation(len(y)) % k
        how = f"{k}-fold over rows ({n_runs} run{'s' if n_runs != 1 else ''})"
    out = np.empty(len(y))
    for fold in np.unique(folds):
        test = folds == fold
        w, *_ = np.linalg.lstsq(x[~test], y[~test], rcond=None)
        out[test] = x[test] @ w
    return out, how


def _r2(y: np.ndarray, predicted: np.ndarray) -> float:
    return float(1 - np.sum((y - predicted) ** 2) / max(np.sum((y - y.mean()) ** 2), 1e-12))
