"""The overnight plan: a cost model fitted to measured rung times, projections per strategy for
a 12-18 hour night at the target scale, and a runnable experiment file for the night.

Only ``--calibrate`` touches torch (it times a few training steps on this machine)."""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harness.analysis import metrics
from harness.analysis.analyze import Analysis
from harness.errors import UserError
from harness.experiment import load_experiment, parse_experiment, resolve_experiment_path
from model.config import ModelConfig, count_parameters
from strategies import get_strategy
from strategies.space import Param

NIGHT_HOURS = (12, 15, 18)
COST_FEATURES = ("hidden_1", "hidden_2", "num_layers", "batch_size")


@dataclass
class CostModel:
    """log(train seconds) = w . [1, log samples, log hidden_1, log hidden_2 if layers > 1, layers, log batch]."""

    weights: np.ndarray
    r2: float
    n_rows: int

    @staticmethod
    def features(samples, cfg: pd.DataFrame) -> np.ndarray:
        layers = cfg["num_layers"].to_numpy(float)
        return np.column_stack(
            [
                np.ones(len(cfg)),
                np.log(np.asarray(samples, float)),
                np.log(cfg["hidden_1"].to_numpy(float)),
                np.log(cfg["hidden_2"].to_numpy(float)) * (layers > 1),
                layers,
                np.log(cfg["batch_size"].to_numpy(float)),
            ]
        )

    def predict(self, samples, cfg: pd.DataFrame) -> np.ndarray:
        return np.exp(self.features(samples, cfg) @ self.weights)


def configs_of(rows: pd.DataFrame, meta: dict) -> pd.DataFrame:
    """Each row's value of the cost-driving parameters: searched (param_*) or the run's fixed base."""
    out = {}
    for name in COST_FEATURES:
        col = f"param_{name}"
        if col in rows:
            out[name] = rows[col].to_numpy(float)
        else:
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


def fit_cost_model(a: Analysis) -> CostModel:
    rungs = a.results.rungs[a.results.rungs["train_seconds"] > 0]
    if len(rungs) < 8:
        raise UserError("plan: fewer than 8 recorded rungs; run compare first")
    x = CostModel.features(rungs["samples"], configs_of(rungs, a.results.meta))
    y = np.log(rungs["train_seconds"].to_numpy())
    w, *_ = np.linalg.lstsq(x, y, rcond=None)
    r2 = 1 - np.sum((y - x @ w) ** 2) / max(np.sum((y - y.mean()) ** 2), 1e-12)
    return CostModel(w, float(r2), len(rungs))


def _windows_scale(recorded: dict, target) -> float:
    """Training windows at the target scale relative to the recorded one (same share kept per station-hour)."""
    if recorded["source"] or target.data.source:
        return 1.0
    per = lambda st, days: st * (days * 24 - 26)
    return per(target.data.stations, target.data.days) / per(recorded["stations"], recorded["days"])


def _sample_scale(recorded_experiment: dict, target) -> float:
    """Training samples per rung at the target scale over the recorded ones: data size x epochs."""
    return _windows_scale(recorded_experiment["data"], target) * _ladder_scale(
        recorded_experiment["ladder"], target.ladder
    )


def project(
    a: Analysis, model: CostModel, target, device_factor: float
) -> tuple[pd.DataFrame, dict]:
    """Per strategy: trials, trials reaching full fidelity, and expected best MAE in 12/15/18 hours."""
    r = a.results
    scale = _sample_scale(r.experiment, target)
    rungs = r.rungs.copy()
    rungs["target_seconds"] = (
        model.predict(rungs["samples"] * scale, configs_of(rungs, r.meta)) * device_factor
        + rungs["eval_seconds"] * _windows_scale(r.experiment["data"], target) * device_factor
    )
    per_trial = rungs.groupby(["strategy", "seed", "trial"])["target_seconds"].sum().reset_index()
    cost = (
        per_trial.groupby(["strategy", "seed"])["target_seconds"]
        .mean()
        .groupby("strategy")
        .median()
    )
    complete = r.trials.assign(c=r.trials["state"] == "COMPLETE").groupby("strategy")["c"].mean()
    rows = []
    for strategy in r.strategies:
        row = {
            "strategy": strategy,
            "minutes per trial": cost[strategy] / 60,
            "complete share": complete[strategy],
        }
        for hours in NIGHT_HOURS:
            n = int(hours * 3600 // cost[strategy])
            row[f"trials {hours}h"] = n
            row[f"full fidelity {hours}h"] = int(round(n * complete[strategy]))
            row[f"expected best MAE {hours}h"] = _best_after(a.curve, strategy, n)
        rows.append(row)
    return pd.DataFrame(rows), {"cost_scale": scale, "device_factor": device_factor}


def _ladder_scale(recorded: dict, target_ladder) -> float:
    """Same fractions assumed; epochs per rung may differ (the target's total over the recorded total)."""
    return sum(target_ladder.epochs) / sum(recorded["epochs"])


def _best_after(curve: pd.DataFrame, strategy: str, n: int) -> str:
    """Median over seeds of the best MAE after n trials, from the recorded curves (no extrapolation)."""
    runs = curve[curve["strategy"] == strategy]
    observed = int(runs.groupby("seed")["trial_index"].max().min())
    at = min(n, observed)
    value = runs[runs["trial_index"] == at]["best"].median() if at >= 1 else float("nan")
    text = "n/a" if not math.isfinite(value) else f"{value:.4f}"
    return text if n <= observed else f"<= {text} (recorded up to {observed} trials)"


def add_grid_values(space: dict) -> int:
    """For a grid strategy: both ends and the middle of every narrowed range (or the kept choices)
    become the grid; returns its size."""
    size = 1
    for name, entry in space.items():
        if entry["type"] == "categorical":
            values = list(entry["choices"])
        else:
            p = Param(
                name,
                entry["type"],
                entry["default"],
                low=entry["low"],
                high=entry["high"],
                log=entry.get("log", False),
                step=entry.get("step"),
            )
            values = sorted({p.from_unit(u) for u in (0.0, 0.5, 1.0)})
        entry["grid"] = values
        size *= len(values)
    return size


def reduced_space(a: Analysis, target, allowed: pd.DataFrame | None = None) -> tuple[dict, dict]:
    """The target's space cut to the most important measured parameters, ranges narrowed to where
    the best trials lie (widened by a quarter on each side); the rest fixed at the best values.
    ``allowed``: only these trials count (those under a cost ceiling)."""
    measured = {p.name: p for p in a.results.space()}
    keep = [n for n in a.params_to_search() if n in {p.name for p in target.space.params}]
    pool = a.results.trials if allowed is None else allowed
    good = metrics.good_ranges(a.results, trials=pool).set_index("param")
    best_row = pool[pool["state"] == "COMPLETE"].sort_values("val_mae").iloc[0]
    best = {n: _py(best_row[f"param_{n}"]) for n in measured}
    space, fixed = {}, {}
    for p in target.space.params:
        if p.name not in keep:
            fixed[p.name] = best.get(p.name, p.default)
            continue
        entry = {"type": p.type}
        if p.type == "categorical":
            top = [c for c in p.choices if str(c) in good.loc[p.name, "good"].split(", ")] or list(
                p.choices
            )
            entry.update(choices=top, default=best[p.name] if best[p.name] in top else top[0])
        else:
            lo, hi = _widen(good.loc[p.name, "low"], good.loc[p.name, "high"], p)
            if p.type == "int":
                step = int(p.step or 1)
                lo, hi = (
                    int(p.low + step * math.floor((lo - p.low) / step)),
                    int(p.low + step * math.ceil((hi - p.low) / step)),
                )
                hi = min(hi, int(p.high))
                lo, hi = (lo, hi) if lo < hi else (int(p.low), int(p.high))
                entry.update(low=lo, high=hi, step=step) if p.step else entry.update(
                    low=lo, high=hi
                )
            else:
                entry.update(low=lo, high=hi, log=p.log) if not p.step else entry.update(
                    low=lo, high=hi, step=p.step
                )
            value = best[p.name]
            entry["default"] = min(max(value, entry["low"]), entry["high"])
            if p.type == "int":
                entry["default"] = int(entry["default"])
        space[p.name] = entry
    return space, fixed


def _widen(lo: float, hi: float, p) -> tuple[float, float]:
    if p.log:
        llo, lhi = math.log(lo), math.log(hi)
        pad = max((lhi - llo) * 0.25, 0.1)
        lo, hi = math.exp(llo - pad), math.exp(lhi + pad)
    else:
        pad = max((hi - lo) * 0.25, (p.high - p.low) * 0.05)
        lo, hi = lo - pad, hi + pad
    lo, hi = max(lo, p.low), min(hi, p.high)
    return (float(lo), float(hi)) if lo < hi else (float(p.low), float(p.high))


def _py(v):
    return v.item() if isinstance(v, np.generic) else v


def write_overnight(
    path: Path,
    target_path: Path,
    strategy: str,
    n_trials: int,
    hours: float,
    space: dict,
    fixed: dict,
    reason: str,
) -> None:
    doc = tomllib.loads(target_path.read_text())
    lines = [
        f"# Written by 'python -m harness plan': {reason}.",
        f"# Run it with: python -m harness run --experiment {path}",
        f'description = "Overnight plan from {doc.get("name", target_path.stem)}: {strategy}, {len(space)} parameters, '
        f'{n_trials} trials or {hours:g} hours."',
        "",
    ]
    doc.pop("description", None)
    doc.pop("space", None)
    doc.setdefault("run", {})["strategy"] = strategy
    doc["budget"] = {"n_trials": n_trials, "timeout_minutes": float(hours * 60)}
    doc["model"] = {**doc.get("model", {}), **fixed}
    for table, values in doc.items():
        if isinstance(values, dict):
            lines.append(f"[{table}]")
            lines += [f"{k} = {_toml(v)}" for k, v in values.items()]
            lines.append("")
        else:
            lines.insert(3, f"{table} = {_toml(values)}")
    for name, entry in space.items():
        lines.append(f"[space.{name}]")
        lines += [f"{k} = {_toml(v)}" for k, v in entry.items()]
        lines.append("")
    path.write_text("\n".join(lines))


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return json.dumps(str(v))


def trial_minutes_and_size(
    a: Analysis, model: CostModel, target, device_factor: float
) -> pd.DataFrame:
    """Complete trials with their predicted full-ladder training minutes at the target scale and their size."""
    r = a.results
    done = r.trials[r.trials["state"] == "COMPLETE"].copy()
    cfg = configs_of(done, r.meta)
    scale = _sample_scale(r.experiment, target)
    samples = r.rungs.groupby("rung")["samples"].max().to_numpy(float)
    seconds = (
        sum(model.predict(np.full(len(done), s * scale), cfg) for s in samples) * device_factor
    )
    done["target_minutes"] = seconds / 60
    done["parameters"] = [
        count_parameters(
            ModelConfig(
                **{
                    **r.meta[(s, int(sd))]["base_config"],
                    **{n: _py(row[f"param_{n}"]) for n in (p.name for p in r.space())},
                }
            ),
            target.data.stations,
        )
        for (_, row), s, sd in zip(done.iterrows(), done["strategy"], done["seed"])
    ]
    return done


def apply_ceiling(
    done: pd.DataFrame, max_minutes: float | None, max_params: int | None
) -> tuple[pd.DataFrame, dict]:
    keep = np.ones(len(done), bool)
    if max_minutes is not None:
        keep &= done["target_minutes"].to_numpy() <= max_minutes
    if max_params is not None:
        keep &= done["parameters"].to_numpy() <= max_params
    allowed = done[keep]
    if allowed.empty:
        raise UserError(
            f"plan: no recorded configuration meets the ceiling (the cheapest needs "
            f"{done['target_minutes'].min():.1f} min per trial, the smallest {done['parameters'].min():,} parameters)"
        )
    best, capped = done["val_mae"].min(), allowed["val_mae"].min()
    return allowed, {
        "max_trial_minutes": max_minutes,
        "max_params": max_params,
        "allowed": int(len(allowed)),
        "complete": int(len(done)),
        "best_mae": float(best),
        "best_mae_under_ceiling": float(capped),
        "mae_cost": float(capped - best),
        "mae_cost_share": float(capped / best - 1),
        "mean_minutes_under_ceiling": float(allowed["target_minutes"].mean()),
    }


def make_plan(
    a: Analysis,
    out_dir: Path,
    target_name: str,
    hours: float,
    device_factor: float,
    max_trial_minutes: float | None = None,
    max_params: int | None = None,
) -> dict:
    if not NIGHT_HOURS[0] <= hours <= NIGHT_HOURS[-1]:
        raise UserError(f"--hours must be within {NIGHT_HOURS[0]}-{NIGHT_HOURS[-1]}, got {hours}")
    target_path = resolve_experiment_path(target_name)
    target = load_experiment(str(target_path))
    model = fit_cost_model(a)
    table, scales = project(a, model, target, device_factor)
    chosen = table.set_index("strategy").loc[a.choice]
    cost = chosen["minutes per trial"] * 60
    ceiling, allowed = None, None
    if max_trial_minutes is not None or max_params is not None:
        allowed, ceiling = apply_ceiling(
            trial_minutes_and_size(a, model, target, device_factor), max_trial_minutes, max_params
        )
        cost = min(
            cost, ceiling["mean_minutes_under_ceiling"] * 60
        )  # configurations under the ceiling are cheaper
    n_trials = max(1, int(hours * 3600 // cost))
    space, fixed = reduced_space(a, target, allowed)
    grid_note = ""
    if (
        get_strategy(a.choice).queue is not None
    ):  # a grid runs its points and stops: budget = grid size
        grid_size = add_grid_values(space)
        grid_note = (
            f" The grid has {grid_size} points; {min(n_trials, grid_size)} fit in the night"
            + (
                " (all of them)."
                if n_trials >= grid_size
                else ", so it will not finish: consider fewer parameters."
            )
        )
        n_trials = min(n_trials, grid_size)
    path = out_dir / "overnight.toml"
    write_overnight(path, target_path, a.choice, n_trials, hours, space, fixed, a.choice_reason)
    parse_experiment(tomllib.loads(path.read_text()), str(path))  # the written file must load
    summary = (
        f"Cost model: log training seconds on log samples, hidden sizes, layers and batch size, fitted to "
        f"{model.n_rows} recorded rungs (R² {model.r2:.2f} on the log scale); scaled x{scales['cost_scale']:.1f} to "
        f"{target.name}'s data and ladder, device factor {device_factor:.3g}. Recommended: {a.choice} with "
        f"{n_trials} trials or {hours:g} hours ({cost / 60:.1f} min per trial on average, "
        f"{chosen['complete share']:.0%} of trials reaching full fidelity), searching {', '.join(space)}; "
        f"written to {path}.{grid_note}"
    )
    if ceiling:
        limits = " and ".join(
            x
            for x in (
                f"at most {max_trial_minutes:g} min per trial" if max_trial_minutes else "",
                f"at most {max_params:,} parameters" if max_params else "",
            )
            if x
        )
        summary += (
            f" Cost ceiling ({limits}): {ceiling['allowed']} of {ceiling['complete']} complete trials meet it; the "
            f"best of them reaches MAE {ceiling['best_mae_under_ceiling']:.4f} against {ceiling['best_mae']:.4f} "
            f"without the ceiling, so the ceiling costs {ceiling['mae_cost']:.4f} bikes ({ceiling['mae_cost_share']:+.1%})."
        )
    plan = {
        "summary": summary,
        "strategy": a.choice,
        "n_trials": n_trials,
        "hours": hours,
        "experiment_file": str(path),
        "cost_model": {
            "weights": model.weights.tolist(),
            "r2": model.r2,
            "rows": model.n_rows,
            **scales,
        },
        "space": space,
        "fixed": fixed,
        "ceiling": ceiling,
        "projections": json.loads(table.round(3).to_json(orient="records")),
    }
    (out_dir / "plan.json").write_text(json.dumps(plan, indent=1))
    return plan


def calibrate_device_factor(a: Analysis, model: CostModel | None = None) -> float:
    """Time v4 training steps on this machine against the cost model's prediction for the recorded device."""
    from harness.datasets import DataSpec, load_data
    from model.network import ModelConfig
    from model.train import Trainer

    model = model or fit_cost_model(a)
    data = load_data(DataSpec(stations=60, days=14, seed=0))
    idx = np.arange(min(8192, len(data.splits["train"])))
    trainer = Trainer(data, ModelConfig(), seed=0)
    trainer.train(idx[:1024], 1)  # warm-up
    measured = trainer.train(idx, 1).seconds
    v4 = pd.DataFrame({"hidden_1": [128], "hidden_2": [64], "num_layers": [2], "batch_size": [128]})
    return float(measured / model.predict([len(idx)], v4)[0])
