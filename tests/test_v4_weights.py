"""Trials started from v4's trained weights (<strategy>.v4w): only the tensors whose shapes
match are inherited and the rest stay as freshly initialised; v4 is trained once per
experiment and reused; a replay refuses the option; the report answers the question from the
paired runs."""

import pandas as pd
import pytest
import torch

from harness.analysis.analyze import analyze
from harness.analysis.synthesis_section import v4_weights_text
from harness.v4_weights import V4_WEIGHTS_FILE
from model.config import ModelConfig
from model.network import ForecastNet
from model.train import Trainer
from strategies import STRATEGIES, cold_start, get_strategy
from strategies.registry import from_v4_weights
from tests.e2e import cli, copy_results


def test_only_tensors_of_matching_shape_are_inherited_the_rest_stay_fresh(tiny_data):
    v4 = Trainer(tiny_data, ModelConfig(), seed=1, device="cpu")
    state = v4.cpu_state_dict()
    wider = ModelConfig(hidden_1=32)  # layer 1 and the input of layer 2 change shape
    started = Trainer(tiny_data, wider, seed=7, device="cpu", init_state=state)
    torch.manual_seed(7)
    fresh = ForecastNet(wider, tiny_data.n_stations).state_dict()
    now = started.model.state_dict()
    loaded, kept = started.inherited.loaded, started.inherited.fresh
    assert loaded and kept and set(loaded) | set(kept) == set(now)
    for name in loaded:
        assert now[name].shape == state[name].shape and torch.equal(now[name], state[name])
    for name in kept:  # a different shape in v4, or absent there: the seeded initialisation
        assert state.get(name) is None or state[name].shape != now[name].shape
        assert torch.equal(now[name], fresh[name])
    same = Trainer(tiny_data, ModelConfig(), seed=7, device="cpu", init_state=state)
    assert same.inherited.share == 1.0  # v4's own shape inherits everything


def test_the_twin_is_named_apart_and_every_name_reads_back():
    twin = get_strategy("tpe_median.v4w")
    assert twin.name == "tpe_median.v4w" and twin.v4_weights and twin.prunes
    assert not get_strategy("tpe_median").v4_weights
    for base in STRATEGIES:  # every twin, made in either order, is found again by its name
        for made in (
            from_v4_weights(cold_start(get_strategy(base))),
            cold_start(from_v4_weights(get_strategy(base))),
        ):
            again = get_strategy(made.name)
            assert (again.name, again.warm_start, again.v4_weights) == (
                made.name,
                made.warm_start,
                made.v4_weights,
            )


def test_a_replay_refuses_v4_weights_in_one_line(tmp_path, capsys):
    code = cli("run", strategy="random", v4_weights=True, backend="replay", results=tmp_path)
    err = capsys.readouterr().err
    assert code == 2 and "random.v4w: a replayed trial has no weights" in err
    assert "Traceback" not in err and not (tmp_path / "smoke.replay").exists()


@pytest.mark.slow
def test_v4_is_trained_once_and_trials_start_from_it(smoke_compare, tmp_path, capsys):
    """`compare --v4-weights` beside the shared comparison's random runs (fresh weights, same
    seeds, same budget, same v4 trial 0): v4 is trained once for both seeds, v4's own
    configuration starts far below a fresh start, and the report pairs the twins."""
    root = copy_results(smoke_compare, tmp_path / "results")
    assert cli("compare", strategies="random", seeds=2, v4_weights=True, results=root) == 0
    out = capsys.readouterr().out
    weights = root / "smoke" / V4_WEIGHTS_FILE
    assert out.count("v4 weights: v4 trained for") == 1 and weights.is_file()

    def first_rung(strategy, seed):
        rungs = pd.read_csv(root / f"smoke/{strategy}/seed-{seed}/rungs.csv")
        return rungs[(rungs["trial"] == 0) & (rungs["rung"] == 1)]["val_mae"].item()

    for seed in (0, 1):
        assert first_rung("random.v4w", seed) < 0.8 * first_rung("random", seed)
    # each rung records the share of tensors its model inherited: all of them for v4's shape
    rungs = pd.read_csv(root / "smoke/random.v4w/seed-0/rungs.csv")
    assert (rungs.loc[rungs["trial"] == 0, "inherited_share"] == 1.0).all()
    assert rungs["inherited_share"].between(0, 1).all() and rungs["inherited_share"].min() < 1
    assert pd.read_csv(root / "smoke/random/seed-0/rungs.csv")["inherited_share"].isna().all()
    text = v4_weights_text(analyze(root, "smoke", echo=False))
    assert "random.v4w against random: " in text and "over 2 paired seeds" in text
    assert "where every tensor was inherited" in text
    assert "not charged to the budget" in text

    made = weights.stat().st_mtime_ns
    assert cli("run", strategy="random", v4_weights=True, trials=1, seed=5, results=root) == 0
    assert "v4 weights: v4 trained" not in capsys.readouterr().out  # read, not trained again
    assert weights.stat().st_mtime_ns == made
    weights.write_bytes(b"not a checkpoint")  # a damaged file is trained again, said once
    assert cli("run", strategy="random", v4_weights=True, trials=1, seed=6, results=root) == 0
    out = capsys.readouterr().out
    assert "is unreadable" in out and "v4 weights: v4 trained for" in out
