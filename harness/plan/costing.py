"""What the night costs and where that figure comes from: a probe on the night's machine
(``probe_costing``), or the cost model fitted to the recorded rungs and extrapolated to the
night's scale (``model_costing``), with its interval and extrapolation warning."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from harness.analysis.analyze import Analysis
from harness.experiment import Experiment
from harness.plan.cost import COST_FEATURES, LEVEL, CostModel
from harness.plan.night_space import reduced_space
from harness.plan.probe import Probe, probe_configs, run_probe
from harness.plan.projection import (
    COST_COLUMNS,
    extrapolation,
    model_rung_costs,
    sample_scale,
    times,
)


@dataclass
class Costing:
    """The recorded rungs costed at the night's scale (``COST_COLUMNS``), where the figures
    come from (``source``), what their low-high range is, sentences for the summary, the device
    factor that puts the cost model's per-configuration minutes on the night's machine (the
    ceiling reads them), warnings, whether the cost was measured at the night's scale, and
    the plan.json entries (cost_model, extrapolation, probe)."""

    rungs: pd.DataFrame
    source: str
    range_is: str
    text: str
    factor: float
    warnings: list[str] = field(default_factory=list)
    scale_measured: bool = False
    record: dict = field(default_factory=dict)


def model_costing(
    a: Analysis, model: CostModel, night: Experiment, *, device_factor: float
) -> Costing:
    """The night's cost from the cost model, scaled by samples to the night's data and
    ladder (and by ``device_factor``), with its ``LEVEL`` interval; a warning when that
    extrapolates past ``EXTRAPOLATION_LIMIT`` times the largest measured rung."""
    r = a.results
    scale = sample_scale(r.experiment, night)
    ext = extrapolation(model, float(r.rungs["samples"].max()) * scale)
    factor_text = f", device factor {device_factor:.3g}" if device_factor != 1 else ""
    text = (
        f"{model.describe()} Scaled {times(scale)} to {night.name}'s data and ladder{factor_text}."
    )
    measured = r.experiment["data"] == asdict(night.data) and list(
        r.experiment["ladder"]["epochs"]
    ) == list(night.ladder.epochs)
    verb = "scaled" if measured else "extrapolated"
    source = (
        f"the cost model of rungs recorded on {recorded_devices(a)}, {verb} {times(scale)} to "
        f"{night.name}; not measured on the night's machine"
    )
    return Costing(
        rungs=model_rung_costs(a, model, night, device_factor=device_factor),
        source=source,
        range_is=f"{LEVEL:.0%} prediction interval",
        text=text + (f" {ext['warning']}" if ext["warning"] else ""),
        factor=device_factor,
        warnings=[ext["warning"]] if ext["warning"] else [],
        scale_measured=measured,
        record={
            "cost_model": {
                **model.as_record(),
                "cost_scale": scale,
                "device_factor": device_factor,
            },
            "extrapolation": ext,
            "probe": None,
        },
    )


def probe_costing(
    a: Analysis, model: CostModel, night: Experiment, *, samples: int, device: str | None
) -> Costing:
    """The night's cost from a probe on this machine (``run_probe``) of the night's defaults,
    v4, and configurations of the reduced space; its range runs from the cheapest to the
    dearest probed configuration. The cost model is kept only to rank recorded configurations
    for a ceiling, anchored to the probe's measured defaults."""
    space, fixed = reduced_space(a, night)
    probe = run_probe(night, probe_configs(night, space, fixed), samples=samples, device=device)
    factor = probe_anchor(probe, model, night)
    return Costing(
        rungs=probe_rung_costs(a, probe),
        source=f"probe on {probe.device}",
        range_is="cheapest to dearest probed configuration",
        text=probe.describe(),
        factor=factor,
        scale_measured=True,
        record={
            "cost_model": {
                **model.as_record(),
                "cost_scale": sample_scale(a.results.experiment, night),
                "device_factor": factor,
            },
            "extrapolation": None,
            "probe": probe.as_record(),
        },
    )


def probe_rung_costs(a: Analysis, probe: Probe) -> pd.DataFrame:
    """Every recorded rung with the probe's seconds for that rung of the night (mean, cheapest
    and dearest probed configuration): each recorded trial's climb priced on this machine."""
    rungs = a.results.rungs.copy()
    costs = probe.rung_costs()
    at = np.minimum(rungs["rung"].to_numpy(int), costs.shape[1]) - 1
    for row, column in enumerate(COST_COLUMNS):
        rungs[column] = costs[row, at]
    return rungs


def probe_anchor(probe: Probe, model: CostModel, night: Experiment) -> float:
    """Measured over predicted training seconds of a full trial of the night's defaults: the
    device factor that puts the cost model's predictions on the probed machine."""
    defaults = probe.configs[0]
    config = night.base_config()
    cfg = pd.DataFrame({name: [getattr(config, name)] for name in COST_FEATURES})
    predicted = sum(float(model.predict([n], cfg)[0]) for n in probe.rung_samples)
    measured = defaults.train_seconds / probe.samples * sum(probe.rung_samples)
    return measured / predicted


def recorded_devices(a: Analysis) -> str:
    """The devices the records were trained on, e.g. "cpu (x86_64)"."""
    names = {
        f"{m.get('device', '?')} ({m.get('device_name') or 'unknown'})"
        for m in a.results.meta.values()
    }
    return ", ".join(sorted(names))
