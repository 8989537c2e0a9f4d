"""The CUDA path's pieces that a CPU can test: device errors that must not crash a run, workers
spread over GPUs, and a warm-up that keeps start-up costs out of the first trial."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from model.runtime import device_sharing, release_device_memory, worker_device


@pytest.fixture
def gpus(monkeypatch):
    """A simulated machine with N GPUs (CI has none): only what worker_device reads."""

    def machine(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)

    return machine


def test_release_device_memory_never_raises(monkeypatch):
    """A sticky CUDA error raises again on every CUDA call, including the clean-up after the
    failure it caused. No GPU here, so the device error is simulated: CUDA reported in use and
    empty_cache raising what torch raises after an illegal memory access."""
    assert release_device_memory() is None

    def sticky(*_):
        raise RuntimeError(
            "CUDA error: an illegal memory access was encountered\n"
            "CUDA kernel errors might be asynchronously reported at some other API call"
        )

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", sticky)
    reason = release_device_memory()
    assert reason == (
        "releasing device memory failed: RuntimeError: "
        "CUDA error: an illegal memory access was encountered"
    )


def test_workers_go_round_robin_over_the_gpus(gpus):
    gpus(3)
    assert [worker_device("auto", i) for i in range(5)] == [
        "cuda:0",
        "cuda:1",
        "cuda:2",
        "cuda:0",
        "cuda:1",
    ]
    assert worker_device("cuda", 4) == "cuda:1" and worker_device(None, 2) == "cuda:2"
    assert worker_device("cuda:2", 0) == "cuda:2" and worker_device("cpu", 7) == "cpu"
    assert device_sharing("cuda", 5) == {"cuda:0": 2, "cuda:1": 2, "cuda:2": 1}
    assert device_sharing("cuda:1", 3) == {"cuda:1": 3}
    with pytest.raises(ValueError, match="has 3 CUDA device"):
        worker_device("cuda:3", 0)
    with pytest.raises(ValueError, match="worker index"):
        worker_device("cuda", -1)


def test_workers_without_a_gpu(gpus):
    gpus(0)
    assert worker_device("auto", 3) == "cpu" and device_sharing("auto", 2) == {"cpu": 2}
    with pytest.raises(ValueError, match="CUDA is not available"):
        worker_device("cuda", 0)


_FIRST_TRIALS = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    from harness.datasets import DataSpec, load_data
    from model.network import ModelConfig
    from model.train import Trainer, warm_up

    data = load_data(DataSpec(stations=12, days=14, seed=3))
    warm_up(data, "cpu", sys.argv[1])
    phases = {"build": [], "train": [], "eval": []}
    for seed in range(6):
        start = time.perf_counter()
        trainer = Trainer(data, ModelConfig(), seed=seed, device="cpu", precision=sys.argv[1])
        phases["build"].append(time.perf_counter() - start)
        phases["train"].append(trainer.train(np.arange(512), 1).seconds)
        phases["eval"].append(trainer.evaluate().seconds)
    print(json.dumps(phases))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_first_trial_costs_what_the_others_cost_after_warm_up(precision):
    """In a fresh process (this one is warm already): after warm_up, the first of six v4 trials
    is built, trained and evaluated within noise of the others (at most twice their median,
    plus 5 ms for timer and scheduler noise on millisecond phases). Without warm_up the first
    trial here paid ~0.8 s of set-up, 1.9x the training and 15x the evaluation time."""
    from model.runtime import precision_supported

    ok, reason = precision_supported("cpu", precision)
    if not ok:
        pytest.skip(reason)
    out = subprocess.run(
        [sys.executable, "-c", _FIRST_TRIALS, precision],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    phases = json.loads(out.stdout.strip().splitlines()[-1])
    for phase, seconds in phases.items():
        later = sorted(seconds[1:])[len(seconds[1:]) // 2]
        print(f"{precision} {phase}: first {seconds[0] * 1e3:.1f} ms, later {later * 1e3:.1f} ms")
        assert seconds[0] <= 2 * later + 0.005, (phase, seconds)
