import copy
import weakref

import numpy as np
import pytest
import torch

from model.metrics import forecast_metrics, persistence_metrics
from model.network import ForecastNet, ModelConfig
from model.train import Trainer


def _all(data):
    return np.arange(len(data.splits["train"]))


def test_training_lowers_validation_mae(tiny_data):
    trainer = Trainer(tiny_data, ModelConfig(hidden_1=32, hidden_2=16), seed=0, device="cpu")
    before = trainer.evaluate().metrics["mae"]
    result = trainer.train(_all(tiny_data), epochs=3)
    after = trainer.evaluate().metrics["mae"]
    assert after < 0.8 * before  # a random network is far off; three epochs close most of the gap
    assert [e.epoch for e in result.epochs] == [1, 2, 3] and not result.diverged
    assert result.samples == 3 * len(tiny_data.splits["train"])


def test_continues_across_calls_with_callback(tiny_data):
    trainer = Trainer(tiny_data, ModelConfig(hidden_1=16, hidden_2=8), seed=0, device="cpu")
    seen = []
    trainer.train(_all(tiny_data)[:500], 1, callback=seen.append)
    trainer.train(_all(tiny_data), 2, callback=seen.append)
    assert [e.epoch for e in seen] == [1, 2, 3]  # epochs count across rungs
    assert [e.samples for e in seen] == [500, len(tiny_data.splits["train"])] + [
        len(tiny_data.splits["train"])
    ]


def test_same_seed_same_result(tiny_data):
    cfg = ModelConfig(hidden_1=16, hidden_2=8, batch_size=256)
    runs = []
    for _ in range(2):
        t = Trainer(tiny_data, cfg, seed=7, device="cpu")
        t.train(_all(tiny_data), 1)
        runs.append(t.evaluate().metrics["mae"])
    other = Trainer(tiny_data, cfg, seed=8, device="cpu")
    other.train(_all(tiny_data), 1)
    assert runs[0] == runs[1] and other.evaluate().metrics["mae"] != runs[0]


def test_divergence_is_reported_with_its_epoch(tiny_data):
    poisoned = copy.copy(tiny_data)
    poisoned.splits = dict(tiny_data.splits)
    train = copy.copy(tiny_data.splits["train"])
    train.seq = train.seq.copy()
    train.seq[5, 3] = np.inf  # one corrupt input makes the loss non-finite
    poisoned.splits["train"] = train
    trainer = Trainer(poisoned, ModelConfig(hidden_1=8, hidden_2=8), seed=0, device="cpu")
    result = trainer.train(_all(poisoned), epochs=3)
    assert result.diverged and result.diverged_at_epoch == 1 and len(result.epochs) == 1
    assert np.isnan(
        trainer.evaluate().metrics["mae"]
    )  # NaN weights give NaN, reported, not a crash


@pytest.mark.parametrize(
    "cfg",
    [
        ModelConfig(num_layers=1),
        ModelConfig(
            num_layers=3, embedding_dim=8, optimizer="adamw", grad_clip=1.0, batch_size=300
        ),
    ],
)
def test_network_variants_train(tiny_data, cfg):
    trainer = Trainer(tiny_data, cfg, seed=0, device="cpu")
    assert not trainer.train(_all(tiny_data)[:1000], 1).diverged
    assert np.isfinite(trainer.evaluate().metrics["mae"])


def test_v4_default_shape():
    net = ForecastNet(ModelConfig(), n_stations=10)
    assert (
        net.lstm_1.hidden_size == 128
        and net.lstm_rest.hidden_size == 64
        and net.head[0].out_features == 32
    )
    assert sum(p.numel() for p in net.parameters()) > 100_000


@pytest.mark.parametrize(
    "field, value", [("dropout", 1.0), ("optimizer", "sgd"), ("hidden_1", 0), ("learning_rate", 0)]
)
def test_config_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        ModelConfig().with_params({field: value})


def test_unknown_param_named():
    with pytest.raises(ValueError, match="colour"):
        ModelConfig().with_params({"colour": 1})


def test_metrics_by_hand():
    true = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]])
    pred = np.array([[2.0, 2.0, 3.0], [3.0, 4.0, 7.0]])
    m = forecast_metrics(pred, true)
    assert (
        m["mae"] == pytest.approx(0.5)
        and m["mae_h1"] == pytest.approx(0.5)
        and m["mae_h3"] == pytest.approx(1.0)
    )
    assert m["r2_h2"] == pytest.approx(1.0)


def test_persistence_uses_last_input(tiny_data):
    s = tiny_data.splits["val"]
    m = persistence_metrics(s)
    assert m["mae_h1"] == pytest.approx(
        np.abs(s.target_bikes[:, 0] - s.last_bikes).mean(), rel=1e-6
    )
    assert m["mae_h1"] < m["mae_h2"] < m["mae_h3"]


def _force_inf_gradients(trainer, when):
    """Make the first LSTM weight's gradient inf on the backward passes where ``when(call)``
    holds (calls counted from 0; one backward per step at batch <= 128): the state of a trial
    whose gradients explode while its loss is still finite."""
    calls = []

    def hook(grad):
        calls.append(len(calls))
        return torch.full_like(grad, float("inf")) if when(calls[-1]) else grad

    next(trainer.model.parameters()).register_hook(hook)
    return calls


def _with_fp16_scaler(trainer, **kwargs):
    """The fp16 path's loss scaler on a CPU trainer. CPU autocast cannot run an fp16 LSTM here
    (oneDNN refuses it; see test_precision), so an fp32 trainer gets the same real GradScaler
    that precision fp16 creates on CUDA, and the same skip accounting runs."""
    trainer.scaler = torch.amp.GradScaler("cpu", **kwargs)
    return trainer


@pytest.mark.parametrize("scaled", [False, True], ids=["fp32", "fp16-scaler"])
def test_inf_gradients_diverge_with_and_without_the_scaler(tiny_data, scaled):
    """CPU fp32 and GPU fp16 must agree: every gradient inf is a failed trial. With the scaler
    every step is skipped, the weights never change and the loss stays finite."""
    trainer = Trainer(tiny_data, ModelConfig(hidden_1=8, hidden_2=8), seed=0, device="cpu")
    if scaled:
        _with_fp16_scaler(trainer)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    _force_inf_gradients(trainer, lambda call: True)
    result = trainer.train(_all(tiny_data)[:2000], epochs=3)
    assert result.diverged and result.diverged_at_epoch == 1 and len(result.epochs) == 1
    epoch = result.epochs[0]
    assert epoch.steps == 16  # 2,000 windows at batch 128
    if scaled:
        assert epoch.skipped_steps == 16 and np.isfinite(epoch.train_loss)
        assert "16 of 16 optimizer steps skipped" in result.diverged_reason
        assert all(torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))
    else:
        assert epoch.skipped_steps == 0 and "non-finite" in result.diverged_reason


def test_skipped_steps_are_counted_exactly_and_a_few_are_tolerated(tiny_data):
    trainer = _with_fp16_scaler(
        Trainer(tiny_data, ModelConfig(hidden_1=8, hidden_2=8), seed=0, device="cpu")
    )
    _force_inf_gradients(trainer, lambda call: call % 5 == 0)  # steps 0, 5, 10, 15 of 16
    result = trainer.train(_all(tiny_data)[:2000], epochs=2)
    assert [(e.steps, e.skipped_steps) for e in result.epochs] == [(16, 4), (16, 3)]
    assert not result.diverged and result.diverged_reason == ""
    assert trainer.scaler.get_scale() == 65536.0 / 2**7  # halved once per skipped step


def test_collapsed_loss_scale_is_divergence(tiny_data):
    trainer = _with_fp16_scaler(
        Trainer(tiny_data, ModelConfig(hidden_1=8, hidden_2=8), seed=0, device="cpu"),
        init_scale=4.0,
    )
    _force_inf_gradients(trainer, lambda call: call < 3)  # 3 skips: fewer than the grace
    result = trainer.train(_all(tiny_data)[:2000], epochs=2)
    assert result.diverged_at_epoch == 1 and result.epochs[0].skipped_steps == 3
    assert "scale collapsed to 0.5" in result.diverged_reason


def test_inf_gradient_on_the_last_step_is_caught_by_the_weights(tiny_data):
    """fp32, no scaler: the last step's inf gradient makes the weights NaN after the epoch's
    losses were summed, so the loss alone would call this epoch healthy."""
    trainer = Trainer(tiny_data, ModelConfig(hidden_1=8, hidden_2=8), seed=0, device="cpu")
    _force_inf_gradients(trainer, lambda call: call == 15)
    result = trainer.train(_all(tiny_data)[:2000], epochs=2)
    assert result.diverged_at_epoch == 1 and np.isfinite(result.epochs[0].train_loss)
    assert "non-finite weights after epoch 1" in result.diverged_reason


def test_fit_reports_why_it_diverged(tiny_data):
    trainer = _with_fp16_scaler(
        Trainer(tiny_data, ModelConfig(hidden_1=8, hidden_2=8), seed=0, device="cpu")
    )
    _force_inf_gradients(trainer, lambda call: True)
    history, evals = trainer.fit(_all(tiny_data)[:1000], max_epochs=3)
    assert history.diverged_at_epoch == 1 and evals == []
    assert "skipped by the fp16 gradient scaler" in history.diverged_reason


def test_cpu_state_dict_is_a_cpu_copy_that_loads(tiny_data):
    trainer = Trainer(tiny_data, ModelConfig(hidden_1=8, hidden_2=8), seed=0, device="cpu")
    trainer.train(_all(tiny_data)[:500], 1)
    saved = trainer.cpu_state_dict()
    expected = trainer.predict("val")
    assert all(t.device.type == "cpu" for t in saved.values())
    assert saved.keys() == trainer.model.state_dict().keys()
    trainer.train(_all(tiny_data)[:500], 1)  # later training must not change what was saved
    fresh = Trainer(tiny_data, ModelConfig(hidden_1=8, hidden_2=8), seed=1, device="cpu")
    fresh.model.load_state_dict(saved)
    np.testing.assert_array_equal(fresh.predict("val"), expected)


def test_release_frees_the_model_while_the_trainer_is_still_held(tiny_data):
    trainer = Trainer(tiny_data, ModelConfig(hidden_1=8, hidden_2=8), seed=0, device="cpu")
    trainer.train(_all(tiny_data)[:500], 1)
    model, optimizer = weakref.ref(trainer.model), weakref.ref(trainer.optimizer)
    assert trainer.release() is None
    assert model() is None and optimizer() is None  # the trainer itself is still referenced here


def test_warm_up_runs_once_per_process_for_the_same_data_device_and_precision(
    tiny_data, monkeypatch
):
    """A comparison calls warm_up before every run; only the first pays for it. New data (even
    at a reused id) or another precision warms up again."""
    import model.train

    steps = []
    real_epoch = Trainer._epoch
    monkeypatch.setattr(
        Trainer, "_epoch", lambda self, idx: steps.append(1) or real_epoch(self, idx)
    )
    monkeypatch.setattr(model.train, "_WARMED", {})
    model.train.warm_up(tiny_data, "cpu", "fp32")
    model.train.warm_up(tiny_data, "cpu", "fp32")
    assert len(steps) == 1
    model.train.warm_up(tiny_data, "cpu", "auto")
    assert len(steps) == 2
    other = copy.copy(tiny_data)
    model.train.warm_up(other, "cpu", "fp32")
    assert len(steps) == 3
    model.train.warm_up(tiny_data, "cpu", "fp32")  # warm, but its tensors were replaced
    assert len(steps) == 3 and (id(tiny_data), "cpu") in model.train._TENSOR_CACHE


def test_tensors_cached_for_other_data_at_the_same_address_are_not_reused(tiny_data):
    """The cache is keyed on the data's id: data freed and new data built at its address
    must not get the old data's tensors (simulated by filing another data set's tensors under
    this one's id, as such a reuse would leave them)."""
    import model.train
    from harness.datasets import DataSpec, load_data

    other = load_data(DataSpec(stations=4, days=12, seed=1))
    stale = model.train.device_tensors(other, torch.device("cpu"))
    model.train._TENSOR_CACHE.clear()
    model.train._TENSOR_CACHE[(id(tiny_data), "cpu")] = (weakref.ref(other), stale)
    fresh = model.train.device_tensors(tiny_data, torch.device("cpu"))
    assert fresh is not stale
    assert fresh["train"].target.shape[0] == len(tiny_data.splits["train"].target)
    assert model.train.device_tensors(tiny_data, torch.device("cpu")) is fresh  # then cached
