import copy

import numpy as np
import pytest

from model.metrics import forecast_metrics, persistence_metrics
from model.network import ForecastNet, ModelConfig, count_module_parameters
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
    assert count_module_parameters(net) > 100_000


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
