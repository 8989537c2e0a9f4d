"""Trainer throughput (training samples per second): the project's trainer against the tutorial
reference, same model, data and machine, in the same run. Targets on a 2-core CPU: never slower
than the reference, and at least 1.5x at batch 1024 (see README for the measured figures)."""

import time

import numpy as np
import pytest

from harness.datasets import DataSpec, load_data
from model.network import ModelConfig
from model.train import Trainer
from tests.benchmarks.reference_trainer import reference_epoch

N_SAMPLES = 8192


@pytest.fixture(scope="module")
def bench_data():
    data = load_data(DataSpec(stations=100, days=28, seed=0))
    idx = np.sort(
        np.random.default_rng(0).choice(len(data.splits["train"]), N_SAMPLES, replace=False)
    )
    return data, idx


def _ours(data, idx, batch, precision="fp32"):
    trainer = Trainer(
        data, ModelConfig(batch_size=batch), seed=0, device="cpu", precision=precision
    )
    return lambda: trainer.train(idx, 1)


def _reference(data, idx, batch):
    cfg = ModelConfig(batch_size=batch)
    return lambda: reference_epoch(data, idx, cfg)


def _samples_per_second(fn, rounds=3):
    fn()  # warm-up: allocator, thread pool, first-call kernels
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return N_SAMPLES / float(np.median(times))


@pytest.mark.parametrize("batch", [32, 128, 1024])
@pytest.mark.parametrize("impl", ["reference", "harness", "harness_bf16"])
def test_throughput(benchmark, bench_data, impl, batch):
    data, idx = bench_data
    fn = {
        "reference": lambda: _reference(data, idx, batch),
        "harness": lambda: _ours(data, idx, batch),
        "harness_bf16": lambda: _ours(data, idx, batch, "bf16"),
    }[impl]()
    benchmark.pedantic(fn, rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["samples_per_second"] = N_SAMPLES / benchmark.stats.stats.median


@pytest.mark.parametrize("batch, minimum", [(32, 1.0), (128, 1.0), (1024, 1.5)])
def test_speedup_over_reference(bench_data, batch, minimum, record_property):
    """Both measured interleaved in one test, medians of 3: the ratio is what the targets are about."""
    data, idx = bench_data
    ours, ref = [], []
    for _ in range(3):
        ours.append(_samples_per_second(_ours(data, idx, batch), rounds=1))
        ref.append(_samples_per_second(_reference(data, idx, batch), rounds=1))
    ratio = np.median(ours) / np.median(ref)
    print(
        f"\nbatch {batch}: harness {np.median(ours):,.0f} samples/s, reference {np.median(ref):,.0f} samples/s, x{ratio:.2f}"
    )
    record_property("speedup", ratio)
    assert ratio >= minimum * 0.95  # 5% slack for a shared, noisy machine
