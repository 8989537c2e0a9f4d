"""The surrogate's candidate learners, from scikit-learn, each predicting a rung's validation
MAE from (parameters in [0, 1], rung position in [0, 1]).

Every candidate but nearest neighbours can learn interactions (between parameters, and between
a parameter and the rung: a learning rate that helps early and not late). Seeds are fixed, so a
fit is reproducible.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.ensemble import ExtraTreesRegressor, GradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
from sklearn.linear_model import Ridge
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures

CANDIDATES = ("knn5", "ridge", "forest", "boosting", "gp")
GP_MAX_ROWS = 250  # exact GP fits are cubic in rows: beyond, a seeded subsample (400: 68 s)


class _CappedGP:
    """A Gaussian process with one length scale per input (Matern 5/2 plus a noise term), fitted
    on at most ``GP_MAX_ROWS`` rows (a seeded subsample beyond)."""

    def __init__(self) -> None:
        self.gp = None

    def fit(self, x, y):
        if len(x) > GP_MAX_ROWS:
            keep = np.random.default_rng(0).choice(len(x), GP_MAX_ROWS, replace=False)
            x, y = x[keep], y[keep]
        kernel = ConstantKernel(1.0) * Matern(
            length_scale=np.ones(x.shape[1]), length_scale_bounds=(1e-2, 1e3), nu=2.5
        ) + WhiteKernel(1e-2, noise_level_bounds=(1e-6, 1e1))
        with warnings.catch_warnings():  # a length scale at its bound is an answer, not a fault
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.gp = GaussianProcessRegressor(
                kernel, normalize_y=True, n_restarts_optimizer=1, random_state=0
            ).fit(x, y)
        return self

    def predict(self, x):
        return self.gp.predict(x)


def make_learner(kind: str, n_rows: int):
    """An unfitted learner of ``kind`` (one of CANDIDATES) for a table of ``n_rows`` rows."""
    if kind == "knn5":
        return KNeighborsRegressor(n_neighbors=min(5, max(n_rows, 1)), weights="distance")
    if kind == "ridge":
        return make_pipeline(PolynomialFeatures(2), Ridge(alpha=1e-2))
    if kind == "forest":
        return ExtraTreesRegressor(n_estimators=60, min_samples_leaf=2, random_state=0)
    if kind == "boosting":
        return GradientBoostingRegressor(
            n_estimators=300, max_depth=3, learning_rate=0.05, subsample=0.8, random_state=0
        )
    if kind == "gp":
        return _CappedGP()
    raise ValueError(f"unknown surrogate learner {kind!r}; known: {', '.join(CANDIDATES)}")
