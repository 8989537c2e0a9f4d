"""``plan --probe``: the night sized from real rungs of its own data timed on this machine.

A few configurations the night will train (its defaults, v4 in velib_overnight, the reduced
space's default and draws from the reduced space) each train one epoch on a capped sample of
the night's training windows and evaluate once on its validation split, after the same
warm-up a run does. Within one configuration training time is linear in samples (a fixed
number of steps per sample), so each probed epoch scales to the night's rungs; what the probe
cannot know is which configurations the night will pick, so it reports the range from the
cheapest to the dearest probed one. torch is imported only when a probe runs."""

from __future__ import annotations

import math
import platform
import time
from dataclasses import asdict, dataclass

import numpy as np

from harness.errors import UserError
from harness.experiment import Experiment
from harness.plan.night_space import entry_param
from model.config import ModelConfig

PROBE_DRAWS = 2  # configurations drawn from the reduced space, beside the defaults and its own
# What sets a configuration's cost: its network's shape and its batch (v4's, or not).
SHAPE = ("hidden_1", "hidden_2", "num_layers", "dense", "embedding_dim", "batch_size")
WARM_BATCHES = 4  # untimed steps per configuration first (its kernels' first-call costs)


@dataclass
class ProbedConfig:
    """One configuration's measured epoch and its cost at each of the night's rungs."""

    name: str
    config: dict
    train_seconds: float  # one epoch of the probe's samples
    eval_seconds: float  # one evaluation of the night's whole validation split
    rung_seconds: list[float]  # training scaled to each night rung's samples, plus evaluation
    train_flops: float = 0.0  # the timed epoch's training FLOPs (0: a probe of an earlier version)
    train_steps: int = 0  # its optimizer steps

    @property
    def trial_seconds(self) -> float:
        """A full-ladder trial of this configuration on the night's machine."""
        return float(sum(self.rung_seconds))


@dataclass
class Probe:
    """What ``run_probe`` measured: on ``device``, ``samples`` per timed epoch, the night's
    samples per rung (windows x epochs), each probed configuration, and its own wall-clock."""

    device: str
    night: str
    samples: int
    rung_samples: list[int]
    configs: list[ProbedConfig]
    seconds: float

    def rung_costs(self) -> np.ndarray:
        """Seconds per night rung (columns) as (mean, cheapest, dearest) over the probed
        configurations (rows)."""
        table = np.array([c.rung_seconds for c in self.configs])
        return np.vstack([table.mean(0), table.min(0), table.max(0)])

    def as_record(self) -> dict:
        """The probe as plain JSON values."""
        return {**asdict(self), "trial_seconds": {c.name: c.trial_seconds for c in self.configs}}

    def describe(self) -> str:
        """Sentences: what was timed, how it scales, and the trial cost by configuration."""
        trials = [c.trial_seconds / 60 for c in self.configs]
        return (
            f"Probe on {self.device}: {len(self.configs)} configurations of the night "
            f"({', '.join(c.name for c in self.configs)}) each trained one epoch of "
            f"{self.samples:,} samples of {self.night}'s data and evaluated once on its "
            f"validation split ({self.seconds:.1f} s in all, data and warm-up included). "
            "Training time scaled linearly in samples to the night's rungs "
            f"({', '.join(f'{n:,}' for n in self.rung_samples)} samples): a full trial takes "
            f"{min(trials):.3g}-{max(trials):.3g} min by configuration."
        )


def probe_configs(
    night: Experiment, space: dict, fixed: dict, draws: int = PROBE_DRAWS, seed: int = 0
) -> dict[str, ModelConfig]:
    """The configurations to probe, by name: the night's defaults ("defaults (v4)" where they
    have v4's shape and batch; what a warm start trains first), the reduced space's default
    (the best recorded values), and ``draws`` seeded draws from the reduced space
    (``reduced_space``'s entries, with ``fixed``)."""
    base = night.base_config()
    v4 = all(getattr(base, n) == getattr(ModelConfig(), n) for n in SHAPE)
    out = {"defaults (v4)" if v4 else "defaults": base}
    planned = base.with_params(fixed)
    out["best recorded"] = planned.with_params({n: e["default"] for n, e in space.items()})
    rng = np.random.default_rng(seed)
    for k in range(draws):
        values = {n: entry_param(n, e).from_unit(rng.random()) for n, e in space.items()}
        out[f"draw {k + 1}"] = planned.with_params(values)
    return out


def run_probe(
    night: Experiment, configs: dict[str, ModelConfig], *, samples: int, device: str | None
) -> Probe:
    """Builds the night's data, warms up ``device`` (the night's own where None) as a run
    does, and times each of ``configs`` on up to ``samples`` training windows."""
    from harness.datasets import load_data
    from model.runtime import resolve_device
    from model.train import warm_up

    start = time.perf_counter()
    try:
        dev = resolve_device(device or night.device)
    except ValueError as exc:
        raise UserError(f"plan --probe: {exc}") from None
    data = load_data(night.data)
    fidelity = night.fidelity_sampler(data)
    ladder = night.ladder
    rung_samples = list(ladder.samples(fidelity).values())
    windows = fidelity.indices(1.0)
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(windows, min(samples, len(windows)), replace=False))
    warm_up(data, dev, night.precision)
    probed = [
        _time_config(night, data, name, cfg, idx, rung_samples, str(dev))
        for name, cfg in configs.items()
    ]
    return Probe(
        _device_text(dev), night.name, len(idx), rung_samples, probed, time.perf_counter() - start
    )


def _time_config(night, data, name, cfg, idx, rung_samples, device: str) -> ProbedConfig:
    """One configuration: a few untimed steps, then one timed epoch on ``idx`` and one timed
    evaluation; training seconds per sample scaled to each rung's samples."""
    from harness.climb import build_trainer

    trainer = build_trainer(night, data, cfg, seed=0, device=device)
    try:
        trainer.train(idx[: WARM_BATCHES * cfg.batch_size], 1)
        train = trainer.train(idx, 1)
        evaluation = trainer.evaluate("val")
    finally:
        trainer.release()
    per_sample = train.seconds / max(train.samples, 1)
    rungs = [per_sample * n + evaluation.seconds for n in rung_samples]
    from model.flops import training_flops

    params = {k: getattr(cfg, k) for k in SHAPE}
    flops, steps = training_flops(cfg, train.samples), math.ceil(train.samples / cfg.batch_size)
    return ProbedConfig(name, params, train.seconds, evaluation.seconds, rungs, flops, steps)


def _device_text(device) -> str:
    """The device's readable name: the GPU's, or the CPU's with its thread count."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    return f"CPU ({cpu}, {torch.get_num_threads()} threads)"
