"""The final check: retrain the recommended configuration and v4 at full fidelity with early
stopping under the same training seeds, evaluate once on the test set, compare with persistence."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from tqdm import tqdm

from harness.analysis.analyze import Analysis, recommended_candidates
from harness.analysis.verdict import ALPHA
from harness.checkpoints import save_checkpoint
from harness.climb import train_to_convergence
from harness.datasets import load_data
from harness.defaults import FINAL_MAX_EPOCHS, FINAL_PATIENCE, FINAL_SEEDS, FINAL_TOP_K
from harness.errors import UserError
from harness.experiment import Experiment
from harness.fingerprint import differences, fingerprint, fingerprint_of, listed_changes
from harness.retrain import params_of
from harness.sidefiles import write_json_atomic, write_text_atomic
from harness.team import GAP_GUARD, TARGET_MARGIN
from harness.v4_weights import v4_state
from model.config import ModelConfig
from model.metrics import forecast_metrics, persistence_metrics
from model.runtime import resolve_device
from model.windows import HORIZONS

FINAL_FILE = "final.json"
TEAM_TARGET = -TARGET_MARGIN  # the team wants more than this MAE reduction against v4


def _fit(experiment, data, config, seed, device, max_epochs, patience, init_state=None):
    trainer, history, evals = train_to_convergence(
        experiment, data, config, seed=seed, device=device, max_epochs=max_epochs,
        patience=patience, init_state=init_state,
    )  # fmt: skip
    if history.diverged and not evals:
        raise UserError(
            f"final: training diverged at epoch {history.diverged_at_epoch} with seed {seed} "
            f"({history.diverged_reason or 'non-finite loss'})"
        )
    val = min(e.metrics["mae"] for e in evals)
    test = forecast_metrics(trainer.predict("test"), data.splits["test"].target_bikes)
    return trainer, val, test, len(evals)


def final_check(
    a: Analysis,
    experiment: Experiment,
    out_dir: Path,
    seeds: int = FINAL_SEEDS,
    top_k: int = FINAL_TOP_K,
    max_epochs: int = FINAL_MAX_EPOCHS,
    patience: int = FINAL_PATIENCE,
    device: str = "auto",
    progress: bool = True,
    v4_weights: bool = False,
) -> dict:
    """Retrain the analysis's recommended configuration (the best of its ``top_k`` on
    validation) and v4 with ``seeds`` seeds and early stopping, test each once, save the
    recommended weights under ``out_dir``/final; returns the summary and table (also written
    to final.json with the strategy it was made for). ``v4_weights``: the recommended
    configuration is also trained from v4's trained weights on the same seeds, and the two
    starts compared at convergence."""
    if seeds < 2:
        raise UserError(f"final: --seeds must be >= 2 for a spread and a test, got {seeds}")
    check_definition(a, experiment)
    device = _usable_device(device)
    data = load_data(experiment.data)
    fit = (max_epochs, patience)
    chosen = _best_on_validation(a, experiment, data, top_k, device, fit, progress)
    v4 = ModelConfig()
    weights_dir = out_dir / "final"
    state = v4_state(experiment, data, device, out_dir) if v4_weights else None
    models = [("recommended", chosen, None), ("v4", v4, None)]
    models += [(FROM_V4_WEIGHTS, chosen, state)] if state is not None else []
    rows = []
    for seed in tqdm(range(seeds), desc="final check", disable=not progress):
        for name, cfg, start in models:
            trainer, val, test, epochs = _fit(experiment, data, cfg, seed, device, *fit, start)
            rows.append(
                {
                    "model": name,
                    "seed": seed,
                    "epochs": epochs,
                    "val_mae": val,
                    **{f"test_{k}": v for k, v in test.items()},
                }
            )
            if name == "recommended":
                _save_weights(trainer, cfg, data, rows[-1], weights_dir / f"model-seed-{seed}.pt")
    per_seed = pd.DataFrame(rows)
    write_text_atomic(out_dir / "final_runs.csv", per_seed.to_csv(index=False))
    inherited = per_seed[per_seed["model"] == FROM_V4_WEIGHTS]
    per_seed = per_seed[per_seed["model"] != FROM_V4_WEIGHTS]
    result = {
        "strategy": a.choice,  # what it was made for: report shows it only while still chosen
        **_summarize(per_seed, persistence_metrics(data.splits["test"]), chosen, out_dir),
    }
    if len(inherited):
        result["v4_weights"] = weights_at_convergence(per_seed, inherited)
        result["summary"] += " " + result["v4_weights"]["summary"]
    write_json_atomic(out_dir / FINAL_FILE, result)
    return result


def _best_on_validation(a, experiment, data, top_k, device, fit, progress) -> ModelConfig:
    """The recommended strategy's configuration: of its ``top_k`` candidates, the best on
    validation (seed 0; ``fit`` is max epochs and patience)."""
    configs = [
        experiment.base_config().with_params(params_of(row, experiment.space.names))
        for _, row in recommended_candidates(a, top_k).iterrows()
    ]
    if len(configs) == 1:
        return configs[0]
    scores = [
        _fit(experiment, data, c, 0, device, *fit)[1]
        for c in tqdm(configs, desc="top-k", disable=not progress)
    ]
    return configs[int(np.argmin(scores))]


def check_definition(a: Analysis, experiment: Experiment) -> None:
    """Refuse (one line naming the changes) when ``experiment``'s data, ladder, space, fixed
    model values or precision are not those its recorded runs were made under: the
    configuration retrained would come from one definition and be measured on another."""
    changes = differences(fingerprint_of(a.results.experiment), fingerprint(experiment))
    if changes:
        raise UserError(
            f"final: experiment {experiment.name} changed since its runs were recorded: "
            f"{listed_changes(changes)}; restore the experiment file, or compare again under a new "
            "experiment name or --results folder"
        )


def _usable_device(device: str) -> str:
    """``device`` checked against this machine before any training (one line if absent)."""
    try:
        resolve_device(device)
    except ValueError as exc:
        raise UserError(f"final: --device: {exc}") from None
    return device


def _save_weights(trainer, cfg: ModelConfig, data, metrics: dict, path: Path) -> None:
    """The trained weights with what is needed to use them: configuration, scaling, metrics;
    saved by an atomic replace (a full disk is one UserError naming the file)."""
    checkpoint = {
        "state_dict": trainer.cpu_state_dict(),
        "config": asdict(cfg),
        "n_stations": data.n_stations,
        "bikes_mean": data.bikes_mean,
        "bikes_std": data.bikes_std,
        "metrics": metrics,
    }

    save_checkpoint(path, checkpoint)


def _summarize(
    per_seed: pd.DataFrame, persistence: dict, chosen: ModelConfig, out_dir: Path
) -> dict:
    """The table (mean ± sd per model), the team's test at T+1h and overall, the overfitting
    guard, as final.json records them."""
    table = _table(per_seed, persistence)
    rec = per_seed[per_seed["model"] == "recommended"].sort_values("seed")
    base = per_seed[per_seed["model"] == "v4"].sort_values("seed")
    tests = {m: shifted_test(rec[m].to_numpy(), base[m].to_numpy()) for m in TESTED}
    gaps = {
        name: float(((runs["test_mae"] - runs["val_mae"]) / runs["val_mae"]).abs().max())
        for name, runs in (("recommended", rec), ("v4", base))
    }
    h1, overall = tests["test_mae_h1"], tests["test_mae"]
    meets = h1["p"] < ALPHA
    guard = gaps["recommended"] <= GAP_GUARD
    factor = f"{1 + TEAM_TARGET:.2f}"
    summary = (
        f"Recommended configuration against v4 over {len(rec)} training seeds (same seeds, "
        f"test split touched once). T+1h: {h1['mean']:.4f} against {h1['v4_mean']:.4f} "
        f"({h1['change']:+.1%}, 95% CI {h1['ci_low']:+.1%}..{h1['ci_high']:+.1%}); overall: "
        f"{overall['mean']:.4f} against {overall['v4_mean']:.4f} ({overall['change']:+.1%}); "
        f"persistence {persistence['mae']:.4f}. The team's target (T+1h below "
        f"{factor} x v4; one-sided paired t-test of recommended - {factor} x v4, p = "
        f"{h1['p']:.3g}): "
        f"{'met' if meets else 'not shown'}. Overfitting guard (validation and test within "
        f"{GAP_GUARD:.0%} on every seed): {'held' if guard else 'broken'} (largest gap "
        f"{gaps['recommended']:.1%}). Weights saved in {out_dir / 'final'}."
    )
    result = {
        "summary": summary,
        "table": table,
        "tests": tests,
        "meets_target": bool(meets),
        "gap_guard_held": bool(guard),
        "largest_gap": gaps,
        "change_vs_v4": overall["change"],
        "p_value": h1["p"],
        "config": asdict(chosen),
    }
    return result


FROM_V4_WEIGHTS = "recommended, from v4's weights"  # final --v4-weights's third model


def weights_at_convergence(per_seed: pd.DataFrame, inherited: pd.DataFrame) -> dict:
    """The recommended configuration from v4's weights against from fresh weights, paired by
    seed at convergence: validation and test MAE, epochs to converge, a paired t interval of
    the test MAE difference."""
    fresh = per_seed[per_seed["model"] == "recommended"].set_index("seed").sort_index()
    warm = inherited.set_index("seed").loc[fresh.index]
    diff = warm["test_mae"] - fresh["test_mae"]
    low, high = stats.ttest_rel(warm["test_mae"], fresh["test_mae"]).confidence_interval()
    out = {
        "seeds": len(diff),
        "val_mae": [float(warm["val_mae"].mean()), float(fresh["val_mae"].mean())],
        "test_mae": [float(warm["test_mae"].mean()), float(fresh["test_mae"].mean())],
        "epochs": [float(warm["epochs"].mean()), float(fresh["epochs"].mean())],
        "test_diff": float(diff.mean()),
        "test_diff_ci": [float(low), float(high)],
    }
    out["summary"] = (
        f"From v4's weights against fresh, the recommended configuration at convergence "
        f"({out['seeds']} paired seeds): test MAE {out['test_mae'][0]:.4f} against "
        f"{out['test_mae'][1]:.4f} ({out['test_diff']:+.4f}, 95% CI {low:+.4f}..{high:+.4f}), "
        f"{out['epochs'][0]:.1f} epochs against {out['epochs'][1]:.1f}."
    )
    return out


TESTED = ("test_mae_h1", "test_mae")  # the team's target is at T+1h; overall shown beside it


def shifted_test(recommended: np.ndarray, v4: np.ndarray, margin: float = -TEAM_TARGET) -> dict:
    """Is the recommended MAE below (1 - margin) x v4's, paired by seed? A one-sided paired
    t-test of recommended - (1 - margin) x v4 < 0, with the relative change and its 95% CI
    (t interval of the per-seed changes)."""
    shifted = recommended - (1 - margin) * v4
    change = recommended / v4 - 1
    if np.ptp(shifted) > 0:
        p = float(stats.ttest_1samp(shifted, 0.0, alternative="less").pvalue)
    else:
        p = 0.0 if shifted.mean() < 0 else 1.0  # no spread: the sign alone decides
    if np.ptp(change) > 0:
        ci = stats.ttest_1samp(change, 0.0).confidence_interval(0.95)
        low, high = float(ci.low), float(ci.high)
    else:
        low = high = float(change.mean())
    return {
        "mean": float(recommended.mean()),
        "v4_mean": float(v4.mean()),
        "change": float(recommended.mean() / v4.mean() - 1),
        "ci_low": low,
        "ci_high": high,
        "p": p,
        "seeds": int(len(recommended)),
    }


def _table(per_seed: pd.DataFrame, persistence: dict) -> list[dict]:
    cols = ["test_mae", *(f"test_mae_h{h}" for h in HORIZONS), "test_r2", "val_mae"]
    table = []
    for name, runs in per_seed.groupby("model", sort=False):
        row = {"model": name}
        for c in cols:
            row[c] = f"{runs[c].mean():.4f} ± {runs[c].std(ddof=1):.4f}"
        row["val-test gap"] = f"{(runs['test_mae'] - runs['val_mae']).mean():+.4f}"
        table.append(row)
    persisted = {
        f"test_{k}": f"{persistence[k]:.4f}"
        for k in ("mae", *(f"mae_h{h}" for h in HORIZONS), "r2")
    }
    table.append({"model": "persistence", **persisted, "val_mae": "", "val-test gap": ""})
    return table
