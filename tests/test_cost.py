"""MAE against cost: the parameter count, the Pareto front, and the plan's cost ceiling."""

import pandas as pd
import pytest

from harness.analysis.pareto import pareto_front
from harness.errors import UserError
from harness.plan.projection import apply_ceiling
from model.config import ModelConfig, count_parameters
from model.network import ForecastNet


@pytest.mark.parametrize(
    "cfg",
    [
        ModelConfig(),
        ModelConfig(num_layers=1, dense=8),
        ModelConfig(num_layers=3, hidden_1=96, hidden_2=48, embedding_dim=8, dense=64),
    ],
)
def test_parameter_count_matches_pytorch(cfg):
    # no torch needed to know a model's size: the count equals torch's own
    net = ForecastNet(cfg, 150)
    assert count_parameters(cfg, 150) == sum(p.numel() for p in net.parameters())


def test_pareto_front_keeps_only_undominated_trials():
    frame = pd.DataFrame({"cost": [1, 2, 3, 4, 2.5], "val_mae": [5.0, 4.0, 4.5, 3.0, 3.9]})
    front = pareto_front(frame, "cost")
    assert list(front["cost"]) == [1, 2, 2.5, 4]  # 3 -> 4.5 is dominated by 2 -> 4.0


def test_ceiling_keeps_cheap_trials_and_states_its_cost():
    done = pd.DataFrame(
        {
            "val_mae": [3.0, 3.2, 3.5, 4.0],
            "target_minutes": [30, 10, 5, 1],
            "parameters": [9e5, 2e5, 5e4, 1e4],
        }
    )
    allowed, c = apply_ceiling(done, max_minutes=12, max_params=None)
    assert list(allowed["val_mae"]) == [3.2, 3.5, 4.0]
    assert c["mae_cost"] == pytest.approx(0.2) and c["mae_cost_share"] == pytest.approx(0.2 / 3.0)
    allowed, c = apply_ceiling(done, max_minutes=None, max_params=6e4)
    assert c["best_mae_under_ceiling"] == 3.5
    with pytest.raises(UserError, match="no recorded configuration meets the ceiling"):
        apply_ceiling(done, max_minutes=0.5, max_params=None)


def test_grid_values_for_a_grid_night_stay_inside_their_ranges():
    import tomllib

    from harness.experiment import parse_experiment
    from harness.plan.night_space import add_grid_values
    from harness.plan.overnight import toml_value as _toml

    space = {
        "learning_rate": {"type": "float", "low": 1e-7, "high": 1e-3, "log": True, "default": 1e-5},
        "hidden_1": {"type": "int", "low": 32, "high": 96, "step": 32, "default": 64},
        "optimizer": {"type": "categorical", "choices": ["adam"], "default": "adam"},
    }
    assert add_grid_values(space) == 3 * 3 * 1
    assert space["hidden_1"]["grid"] == [32, 64, 96]
    text = "[ladder]\nfractions = [1]\nepochs = [1]\n[budget]\nn_trials = 9\n" + "".join(
        f"[space.{n}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in e.items())
        for n, e in space.items()
    )
    exp = parse_experiment(
        tomllib.loads(text), "night.toml"
    )  # log-scale ends survive the round trip
    assert exp.space.grid_size() == 9
