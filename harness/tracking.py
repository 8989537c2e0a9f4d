"""Optional MLflow logging (`pip install -e ".[mlflow]"`): every trial of a run as an MLflow run,
and a comparison's plots and write-up as artifacts. It reads the harness's records, so it can be
run again safely: trials already logged are skipped.

The default store is SQLite under results/ (MLflow 3 keeps its plain file store in maintenance
mode and refuses it by default); artifacts go to results/mlflow-artifacts/.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd

from harness.errors import UserError
from harness.records import param_columns, param_name, read_rungs, read_trials
from harness.sidefiles import folder_problem, read_json_guarded
from harness.tables import UnusableTable

DEFAULT = "default"
TRACKING_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks")


def _mlflow():
    for name in (
        "mlflow",
        "alembic",
    ):  # their table-creation INFO lines would drown the harness's output
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        import mlflow  # noqa: F401
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise UserError("--mlflow needs the MLflow extra: pip install -e '.[mlflow]'") from None
    return MlflowClient


def resolve_uri(uri: str | None, results_dir: str | Path) -> str:
    """The MLflow tracking URI: ``uri``, or sqlite under ``results_dir`` by default."""
    if uri in (None, DEFAULT):
        return f"sqlite:///{(Path(results_dir) / 'mlflow.db').resolve()}"
    return uri


def uri_problem(uri: str) -> str | None:
    """Why ``uri`` cannot be an MLflow tracking store (None when it may be): MLflow 3 refuses a
    plain folder (a path or file:// URI); a database or server URI needs its scheme and place."""
    parsed = urlsplit(uri)
    scheme = parsed.scheme.split("+")[0].lower()
    if scheme in ("", "file") or len(scheme) == 1:  # a path (C:\\ on Windows) or file://
        return (
            "a path or file:// URI names a folder store, which MLflow 3 refuses; give a database "
            "URI such as sqlite:///results/mlflow.db, a server http(s)://host:port, or no URI "
            "for the default"
        )
    if scheme not in TRACKING_SCHEMES:
        return f"unknown scheme {scheme!r}; use one of {', '.join(TRACKING_SCHEMES)}"
    if scheme in ("http", "https") and not parsed.hostname:
        return "names no host"
    if scheme == "sqlite":
        if not parsed.path.strip("/"):
            return "names no database file (sqlite:///path/to/mlflow.db)"
        return folder_problem(str(Path(parsed.path[1:]).parent))
    return None


def _run_tables(run_dir: Path) -> tuple[dict, pd.DataFrame, pd.DataFrame] | None:
    """A run folder's metadata, rungs and trials, their unreadable lines dropped (the tolerant
    readers of the records); None when the folder cannot be used."""
    meta = read_json_guarded(run_dir / "metadata.json")
    if meta is None or not {"strategy", "seed", "study_name"} <= set(meta):
        return None
    try:
        rungs = read_rungs(run_dir / "rungs.csv").frame
        trials = read_trials(run_dir / "trials.csv").frame
    except (UnusableTable, OSError):
        return None
    return meta, rungs, trials


class MlflowLogger:
    """Logs runs' trials and reports to an MLflow experiment, each once (tags say what is
    already logged)."""

    def __init__(self, uri: str | None, experiment: str, results_dir: str | Path) -> None:
        client_cls = _mlflow()
        self.uri = resolve_uri(uri, results_dir)
        if uri_problem(self.uri):
            raise UserError(f"--mlflow {self.uri}: {uri_problem(self.uri)}")
        try:
            self.client = client_cls(tracking_uri=self.uri)
            found = self.client.get_experiment_by_name(experiment)
            artifacts = (Path(results_dir) / "mlflow-artifacts").resolve().as_uri()
            self.experiment_id = (
                found.experiment_id
                if found
                else self.client.create_experiment(experiment, artifact_location=artifacts)
            )
        except Exception as exc:  # MLflow raises its own types for unreachable or invalid stores
            raise UserError(f"mlflow {self.uri}: {str(exc).splitlines()[0][:200]}") from None

    def _logged(self, **tags) -> set[str]:
        query = " and ".join(f"tags.{k} = '{v}'" for k, v in tags.items())
        runs = self.client.search_runs(
            [self.experiment_id], filter_string=query, max_results=50_000
        )
        return {r.data.tags.get("trial") for r in runs}

    def log_run(self, run_dir: Path) -> int:
        """Log every trial of one run folder not logged yet; returns how many were logged."""
        from mlflow.entities import Metric, Param, RunTag

        tables = _run_tables(run_dir)
        if tables is None:
            return 0  # an unusable run folder: report's reader names it
        meta, rungs, trials = tables
        strategy, seed = meta["strategy"], str(meta["seed"])
        done = self._logged(strategy=strategy, seed=seed, study=meta["study_name"])
        now = int(time.time() * 1000)
        count = 0
        for _, t in trials.drop_duplicates("trial", keep="last").iterrows():
            if str(t["trial"]) in done:
                continue
            mine = rungs[rungs["trial"] == t["trial"]]
            params = [Param(param_name(c), str(t[c])) for c in param_columns(trials)]
            metrics = [
                Metric(name, float(r[col]), now, int(r["step"]))
                for _, r in mine.iterrows()
                for name, col in (
                    ("val_mae", "val_mae"),
                    ("train_seconds", "train_seconds"),
                    ("eval_seconds", "eval_seconds"),
                )
                if pd.notna(r[col])
            ]
            if pd.notna(t["val_mae"]) and t["val_mae"] != "":
                metrics.append(Metric("final_val_mae", float(t["val_mae"]), now, 0))
            metrics.append(Metric("wall_seconds", float(t["wall_seconds"]), now, 0))
            tags = {
                "strategy": strategy,
                "seed": seed,
                "trial": str(t["trial"]),
                "state": str(t["state"]),
                "study": meta["study_name"],
                "backend": meta.get("backend", "real"),
                "fail_reason": "" if pd.isna(t["fail_reason"]) else str(t["fail_reason"]),
            }
            run = self.client.create_run(
                self.experiment_id, run_name=f"{strategy}-seed{seed}-trial{t['trial']}", tags=tags
            )
            self.client.log_batch(
                run.info.run_id,
                metrics=metrics,
                params=params,
                tags=[RunTag(k, v) for k, v in tags.items()],
            )
            self.client.set_terminated(
                run.info.run_id, "FINISHED" if t["state"] != "FAIL" else "FAILED"
            )
            count += 1
        return count

    def log_report(self, folder: Path, plots: bool = True) -> str:
        """The comparison's plots and write-up as artifacts of one run named after the folder
        (``plots=False``: the write-up alone, for a report drawn without plots)."""
        run = self.client.create_run(
            self.experiment_id, run_name=f"report {folder.name}", tags={"kind": "report"}
        )
        for name in ("REPORT.md", "REPORT.html", "plan.json", "overnight.toml", "final.json"):
            if (folder / name).is_file():
                self.client.log_artifact(run.info.run_id, str(folder / name))
        if plots and (folder / "plots").is_dir():
            self.client.log_artifacts(run.info.run_id, str(folder / "plots"), "plots")
        self.client.set_terminated(run.info.run_id)
        return run.info.run_id
