"""Building the data an experiment trains on, once per process, and describing it."""

from __future__ import annotations

from harness.errors import UserError
from harness.experiment import DataSpec  # noqa: F401  (re-exported)
from model.loaders import DataSourceError, load_source
from model.metrics import persistence_metrics
from model.synthetic import generate_panel
from model.windows import HORIZONS, SPLITS, ForecastData, build_windows

_CACHE: dict[DataSpec, ForecastData] = {}


def load_data(spec: DataSpec) -> ForecastData:
    """Build (or reuse, within this process) the windows of ``spec``."""
    if spec not in _CACHE:
        try:
            panel = (
                load_source(spec.source)
                if spec.source
                else generate_panel(spec.stations, spec.days, spec.seed)
            )
            data = build_windows(panel)
        except DataSourceError as exc:
            raise UserError(str(exc)) from None
        except ValueError as exc:
            raise UserError(f"data: {exc}") from None
        _CACHE.clear()
        _CACHE[spec] = data
    return _CACHE[spec]


def describe(data: ForecastData) -> dict:
    """A summary of a data set, persistence MAE measured on the test split."""
    test = persistence_metrics(data.splits["test"])
    return {
        "source": data.source,
        "n_stations": data.n_stations,
        "n_hours": len(data.hours),
        "first_hour": str(data.hours[0]),
        "last_hour": str(data.hours[-1]),
        "n_windows": {name: len(data.splits[name]) for name in SPLITS},
        "missing_share": round(data.missing_share, 4),
        "persistence_mae": {
            **{f"h{h}": round(test[f"mae_h{h}"], 3) for h in HORIZONS},
            "overall": round(test["mae"], 3),
        },
        "persistence_r2": {f"h{h}": round(test[f"r2_h{h}"], 3) for h in HORIZONS},
        "rejected": data.rejected,
    }


def format_description(info: dict) -> str:
    """``describe``'s summary as aligned lines of text (rejection reasons that occurred only)."""
    n = info["n_windows"]
    total = sum(n.values())
    lines = [
        f"source        {info['source']}",
        f"stations      {info['n_stations']:,}",
        f"hours         {info['n_hours']:,} ({info['first_hour']} .. {info['last_hour']})",
        f"windows       train {n['train']:,} / val {n['val']:,} / test {n['test']:,} "
        f"(total {total:,})",
        f"missing       {info['missing_share']:.2%} of station-hours",
        "persistence   test MAE "
        + ", ".join(
            f"T+{k[1:]}h {v:.3f}" for k, v in info["persistence_mae"].items() if k != "overall"
        )
        + f" (overall {info['persistence_mae']['overall']:.3f} bikes)",
    ]
    rejected = {k: v for k, v in info["rejected"].items() if v}
    if rejected:
        lines.append("rejected rows " + ", ".join(f"{k} {v:,}" for k, v in rejected.items()))
    return "\n".join(lines)
