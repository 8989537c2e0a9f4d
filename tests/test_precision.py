"""Which precisions this machine can train in: probed once, refused with one clear line."""

import numpy as np
import pytest
import torch

from model import runtime
from model.network import ModelConfig
from model.runtime import (
    check_precision,
    configure_precision,
    precision_facts,
    precision_supported,
    resolve_precision,
)
from model.train import Trainer, warm_up

ONEDNN_REFUSAL = (
    "could not create a primitive descriptor for the LSTM forward propagation primitive. "
    "Run workload with environment variable ONEDNN_VERBOSE=all to get additional diagnostic "
    "information."
)


@pytest.fixture
def fresh_probes(monkeypatch):
    """An empty probe cache for this test only (the process's real verdicts are kept)."""
    monkeypatch.setattr(runtime, "_PROBED", {})


@pytest.fixture
def avx2_only_cpu(monkeypatch, fresh_probes):
    """Simulates a CPU whose oneDNN has no reduced-precision LSTM (the AVX2-only machines some CI
    runners have): this machine runs bf16, so the refusal is injected where oneDNN would
    raise it. Returns the list of refused calls."""
    refused = []
    forward = torch.nn.LSTM.forward

    def lstm_forward(self, *args, **kwargs):
        if torch.is_autocast_enabled("cpu"):
            refused.append(1)
            raise RuntimeError(ONEDNN_REFUSAL)
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.LSTM, "forward", lstm_forward)
    return refused


def test_fp32_is_always_supported_and_unknown_names_are_refused(tiny_data):
    assert precision_supported("cpu", "fp32") == (True, "")
    ok, reason = precision_supported("cpu", "fp8")
    assert not ok and "precision must be one of" in reason and "'fp8'" in reason
    with pytest.raises(ValueError, match="precision must be one of"):
        check_precision("cpu", "fp8")
    with pytest.raises(ValueError, match="precision must be one of"):
        Trainer(tiny_data, ModelConfig(), device="cpu", precision="fp8")


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_cpu_probe_agrees_with_training(tiny_data, precision):
    """Whatever this CPU can do: a precision the probe accepts trains to a finite loss; one it
    refuses is refused by the Trainer with the probe's single line, and the same LSTM under
    autocast really does fail."""
    ok, reason = precision_supported("cpu", precision)
    cfg = ModelConfig(hidden_1=16, hidden_2=8)
    if ok:
        trainer = Trainer(tiny_data, cfg, seed=0, device="cpu", precision=precision)
        result = trainer.train(np.arange(500), 1)
        assert not result.diverged and np.isfinite(trainer.evaluate().metrics["mae"])
        return
    assert "\n" not in reason and f"precision '{precision}'" in reason and "fp32" in reason
    with pytest.raises(ValueError) as err:
        Trainer(tiny_data, cfg, seed=0, device="cpu", precision=precision)
    assert str(err.value) == reason
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    with pytest.raises(RuntimeError), torch.autocast("cpu", dtype=dtype):
        torch.nn.LSTM(1, 4)(torch.randn(3, 2, 1))[0].float().sum().backward()


def test_an_unsupported_cpu_precision_is_one_clear_error_probed_once(tiny_data, avx2_only_cpu):
    ok, reason = precision_supported("cpu", "bf16")
    assert not ok and reason == (
        "precision 'bf16' is not supported on this CPU: could not create a primitive descriptor "
        "for the LSTM forward propagation primitive; use 'fp32'"
    )
    with pytest.raises(ValueError, match="^precision 'bf16' is not supported on this CPU"):
        Trainer(tiny_data, ModelConfig(), device="cpu", precision="bf16")
    with pytest.raises(ValueError, match="^precision 'bf16' is not supported on this CPU"):
        warm_up(tiny_data, "cpu", "bf16")  # before any trial: the run stops once, clearly
    assert len(avx2_only_cpu) == 1  # the probe ran once; the Trainer and warm_up used its verdict
    assert precision_facts("cpu")["probed"] == {"bf16": False}
    assert precision_supported("cpu", "fp32") == (True, "")  # fp32 never needs the probe


def test_bf16_on_cuda_is_refused_with_the_reason():
    """No GPU needed: the refusal is a property of torch's autocast for cuDNN RNNs."""
    ok, reason = precision_supported(torch.device("cuda"), "bf16")
    assert not ok and "fp16 without loss scaling" in reason and "'fp16'" in reason
    with pytest.raises(ValueError, match="bf16' on CUDA"):
        check_precision("cuda:0", "bf16")


def test_auto_means_fp32_on_cpu_and_fp16_on_a_gpu_that_runs_it(monkeypatch, fresh_probes):
    """A simulated GPU (no GPU on CI): CUDA reported available and the fp16 probe's verdict
    placed in the cache, as a real probe on that GPU would leave it."""
    assert resolve_precision("cpu", "auto") == "fp32"
    assert resolve_precision("cpu", "bf16") == "bf16"  # explicit names are kept
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    runtime._PROBED[("cuda", "fp16")] = (True, "")
    assert resolve_precision(torch.device("cuda"), "auto") == "fp16"
    runtime._PROBED[("cuda", "fp16")] = (False, "precision 'fp16' is not supported on cuda")
    assert resolve_precision(torch.device("cuda"), "auto") == "fp32"
    with pytest.raises(ValueError, match="'fp16' is not supported on cuda"):
        check_precision(torch.device("cuda"), "fp16")


def test_fp16_on_a_machine_without_cuda_is_refused():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the refusal is for machines without it")
    ok, reason = precision_supported(torch.device("cuda"), "fp16")
    assert not ok and "CUDA is not available" in reason


def test_fp32_on_cuda_turns_tf32_off_and_says_so():
    """The flags are process settings that need no GPU to set or read; CPU runs leave them."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
        configure_precision(torch.device("cpu"), "fp32")
        assert precision_facts("cpu")["tf32_cudnn"] is True  # CPU maths has no TF32 to turn off
        configure_precision(torch.device("cuda"), "fp32")
        facts = precision_facts(torch.device("cuda"))
        assert facts["tf32_cudnn"] is False and facts["tf32_matmul"] is False
        assert facts["device"] == "cuda" and facts["torch"] == torch.__version__
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def test_precision_facts_on_cpu_name_the_bf16_flags():
    facts = precision_facts("cpu")
    with open("/proc/cpuinfo") as f:
        has_bf16 = " avx512_bf16" in f.read()
    assert ("avx512_bf16" in facts["cpu_flags"]) == has_bf16


def test_run_with_a_precision_this_cpu_cannot_run_stops_once_in_one_line(
    tmp_path, avx2_only_cpu, capsys
):
    """precision = "bf16" on an AVX2-only CPU: one error line and exit 2 before any trial, not
    a failure in every trial."""
    from tests.e2e import cli

    source = (runtime.__file__.rsplit("/model/", 1)[0]) + "/experiments/smoke.toml"
    text = open(source).read().replace('device = "cpu"', 'device = "cpu"\nprecision = "bf16"')
    experiment = tmp_path / "smoke_bf16.toml"
    experiment.write_text(text)
    code = cli("run", strategy="random", experiment=experiment, results=tmp_path / "r")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "precision 'bf16' is not supported on this CPU" in err[0]
    assert not (tmp_path / "r" / "smoke_bf16").exists() or not list(
        (tmp_path / "r" / "smoke_bf16").rglob("trials.csv")
    )
