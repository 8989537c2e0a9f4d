"""`architecture`: the brief's architecture questions answered from recorded curves.

The curves here are synthetic, with effects chosen in advance (no LSTM trains): what is under
test is the measurement (which curves count, the contrasts, both intervals, the noise floor,
the verdicts), which must find the effects that were put in and no others.
"""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from harness.analysis.analyze import read_architecture
from harness.analysis.architecture_section import architecture_blocks, reading
from harness.architecture import (
    QUESTIONS,
    Columns,
    effect,
    measure,
    summary_lines,
    unguided,
    verdict,
)
from harness.cli import main
from harness.experiment import load_experiment
from harness.records import param_column
from harness.sidefiles import write_json_atomic
from strategies import Param, SearchSpace

SPACE = load_experiment("architecture").space


def _mae(p: dict) -> float:
    """Three layers cost 0.6 bikes against two; larger batches want larger learning rates; a
    wide layer 1 gains 0.4 (a narrower layer 2 is likelier under it, and gains nothing itself);
    nothing else matters."""
    lr = SPACE.param("learning_rate").to_unit(p["learning_rate"])
    big = p["batch_size"] >= 256
    wide = 0.4 * (p["hidden_1"] >= 128)
    return 4.4 - wide + 0.6 * (p["num_layers"] == 3) + 1.2 * (lr - (0.75 if big else 0.25)) ** 2


def _curves(
    space: SearchSpace, configs: int = 60, strategy: str = "record-60x2", repeats: int = 2
) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for config in range(configs):
        params = {p.name: p.from_unit(rng.random()) for p in space.params}
        for repeat in range(repeats):
            offset = rng.normal(0, 0.05)
            for rung in (1, 2, 3):
                mae = _mae(params) + 0.5 / rung + offset + rng.normal(0, 0.02)
                rows.append(
                    {"source": f"{strategy}/seed-0", "strategy": strategy, "seed": repeat,
                     "trial": config, "rung": rung, "val_mae": mae, "samples": 1000 * rung,
                     "train_seconds": 1.0, "eval_seconds": 0.1,
                     **{f"param_{k}": v for k, v in params.items()}}
                )  # fmt: skip
    return pd.DataFrame(rows)


FAST = dict(kind="forest", refits=20)  # the replay's choice of learner, and 40 refits, take minutes


@pytest.fixture(scope="module")
def measured():
    return measure(SPACE, _curves(SPACE, 100), **FAST)


def _answer(result: dict, topic_start: str) -> dict:
    return next(a for a in result["answers"] if a["question"].startswith(topic_start))


def test_the_effects_put_in_are_found_and_the_others_are_not(measured):
    three = _answer(measured, "3 LSTM layers")
    assert three["verdict"] == "separable" and three["recorded"]["low"] > 0.3
    assert three["recorded"]["effect"] == pytest.approx(0.6, abs=0.15)
    assert three["surrogate_agrees"] and "separable: 2 layers do better by 0." in reading(three)
    lr_batch = _answer(measured, "what a learning rate")
    assert lr_batch["verdict"] == "separable" and lr_batch["recorded"]["high"] < 0
    assert "larger batches want larger learning rates" in reading(lr_batch)
    # Nothing else is beyond the floor; at 95% each null may still read "real" by chance.
    nulls = [_answer(measured, n)["verdict"] for n in ("dropout", "dense layer", "clip norm")]
    assert "separable" not in nulls and sum(v.startswith("real") for v in nulls) <= 1


def _question(start: str):
    return next(q for q in QUESTIONS if q.text.startswith(start))


@pytest.mark.parametrize(
    "start, truth",
    [
        ("layer 2 narrower", lambda c: -1.0 * (c.value("hidden_1") >= 128)),  # layer 1 matters
        ("2-3 layers against 1 at equal", lambda c: -0.3 * np.log2(c.lstm_weights())),  # size
    ],
    ids=["layer-2-within-layer-1", "depth-at-equal-weights"],
)
def test_a_confounded_question_is_answered_within_strata(start, truth):
    # The MAE depends only on what confounds the question: pooled, the question's sides
    # differ a lot; within strata, they do not.
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {param_column(p.name): [p.from_unit(u) for u in rng.random(600)] for p in SPACE.params}
    )
    columns, question = Columns(frame, SPACE), _question(start)
    mae = 4.0 + truth(columns) + rng.normal(0, 0.05, len(frame))
    terms = question.terms(columns)
    pooled = [(1.0, np.any([n for _, n, _ in terms], 0), np.any([o for _, _, o in terms], 0))]
    assert question.stratified and abs(effect(pooled, mae)) > 0.3
    assert abs(effect(terms, mae, stratified=True)) < 0.05


def test_the_noise_floor_is_what_two_trainings_of_one_configuration_differ_by(measured):
    # offset sd 0.05 shared by a curve's rungs, plus 0.02 per rung; a difference of two: x sqrt 2
    assert measured["noise_floor"] == pytest.approx(np.sqrt(2) * np.hypot(0.05, 0.02), rel=0.2)
    assert measured["configurations"] == 100 and measured["trainings"] == 200


@pytest.mark.parametrize(
    "low, high, floor, said",
    [
        (0.3, 0.9, 0.1, "separable"),
        (-0.9, -0.2, 0.1, "separable"),
        (0.05, 0.4, 0.1, "real, size uncertain"),
        (-0.05, 0.05, 0.1, "below the noise floor"),
        (-0.3, 0.4, 0.1, "undetermined"),
        (0.05, 0.4, None, "real, noise floor unknown"),
        (-0.05, 0.05, None, "undetermined, noise floor unknown"),
        (float("nan"), float("nan"), 0.1, "too few configurations on one side"),
    ],
)
def test_the_verdict_reads_the_recorded_interval_against_zero_and_the_floor(low, high, floor, said):
    assert verdict({"effect": (low + high) / 2, "low": low, "high": high}, floor) == said


def test_without_repeats_the_floor_is_unknown_not_zero():
    result = measure(SPACE, _curves(SPACE, 40, repeats=1), **FAST)
    assert result["noise_floor"] is None and not result["noise_supported"]
    assert "floor not measured" in summary_lines(result)[0]
    assert all("noise floor unknown" in a["verdict"] or "too few" in a["verdict"]
               for a in result["answers"] if "recorded" in a)  # fmt: skip


def test_only_curves_no_sampler_chose_by_their_results_count():
    record = _curves(SPACE, 20)
    tpe = _curves(SPACE, 20, "tpe_median").assign(source="tpe_median/seed-0")
    rand = _curves(SPACE, 20, "random").assign(source="random/seed-0")
    cold = _curves(SPACE, 20, "random.cold").assign(source="random.cold/seed-0")
    kept = unguided(pd.concat([record, tpe, rand, cold]))
    assert set(kept["strategy"]) == {"record-60x2", "random", "random.cold"}


def test_a_question_whose_parameters_are_not_searched_is_not_measured():
    small = SearchSpace(tuple(p for p in SPACE.params if p.name not in ("dense", "grad_clip")))
    result = measure(small, _curves(small, 40), **FAST)
    assert _answer(result, "dense layer")["verdict"] == "not measured: dense not searched"
    assert "recorded" not in _answer(result, "clip norm")
    assert "3 LSTM layers against 2: recorded" in "\n".join(summary_lines(result))


def test_too_few_configurations_is_one_line_saying_how(tmp_path, capsys):
    curves = _curves(SPACE, 8)
    path = tmp_path / "architecture" / "record-8x2" / "seed-0"
    path.mkdir(parents=True)
    curves.drop(columns=["source"]).to_csv(path / "rungs.csv", index=False)
    code = main(["architecture", "--experiment", "architecture", "--results", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "record more ('record --configs')" in err[0]


def test_no_record_is_one_line_saying_how(tmp_path, capsys):
    assert main(["architecture", "--experiment", "smoke", "--results", str(tmp_path)]) == 2
    assert "run 'python -m harness record --experiment smoke' first" in capsys.readouterr().err


def test_the_command_writes_what_the_report_reads(tmp_path, capsys, measured):
    path = tmp_path / "architecture" / "record-60x2" / "seed-0"
    path.mkdir(parents=True)
    _curves(SPACE, 16).drop(columns=["source"]).to_csv(path / "rungs.csv", index=False)
    cmd = ["architecture", "--experiment", "architecture", "--results", str(tmp_path)]
    assert main([*cmd, "--refits", "5", "--no-progress"]) == 0
    assert "written:" in capsys.readouterr().out
    written = read_architecture(tmp_path, "architecture")
    assert written["configurations"] == 16 and len(written["answers"]) == len(measured["answers"])
    assert main([*cmd, "--refits", "4"]) == 2
    assert "--refits must be >= 5" in capsys.readouterr().err
    write_json_atomic(tmp_path / "smoke" / "architecture.json", written)  # another experiment's
    assert read_architecture(tmp_path, "smoke") is None


def test_the_report_shows_every_question_with_both_estimates(measured):
    results = SimpleNamespace(experiment={"name": "architecture"})
    a = SimpleNamespace(architecture=measured, results=results)
    blocks = architecture_blocks(SimpleNamespace(analysis=a))
    assert blocks[0] == ("h2", "The architecture questions")
    table = blocks[2][1]
    assert len(table) == len(measured["answers"])
    column = "contrast (negative: the side named first does better)"
    three = table[table[column].str.startswith("3 ")]
    assert three.iloc[0]["answer"].startswith("separable: 2 layers do better by")
    assert "noise floor" in blocks[1][1] and "v4 reached" not in blocks[1][1]
    assert "What this cannot tell you" in blocks[3][1]
    absent = architecture_blocks(
        SimpleNamespace(analysis=SimpleNamespace(architecture=None, results=results))
    )
    assert "Not measured" in absent[1][1]
    assert "architecture --experiment architecture" in absent[1][1]


def test_a_categorical_parameter_splits_by_its_listed_choices():
    space = SearchSpace((Param("batch_size", "categorical", 128, choices=(64, 128, 256, 512)),))
    frame = pd.DataFrame({"param_batch_size": [64, 128.0, 256, 512.0]})  # float columns too
    assert Columns(frame, space).upper("batch_size").tolist() == [False, False, True, True]


def test_v4s_learning_rate_on_the_midpoint_counts_as_upper():
    frame = pd.DataFrame({"param_learning_rate": [1e-3, 9.99e-4]})
    assert Columns(frame, SPACE).upper("learning_rate").tolist() == [True, False]
