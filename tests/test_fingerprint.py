"""An experiment's fingerprint: equal definitions pass, a changed ladder, space, data, model or
precision is refused with one line naming the change; the budget may change."""

import dataclasses
import json

import optuna
import pytest

from harness.errors import UserError
from harness.experiment import Budget, load_experiment
from harness.fingerprint import (
    FINGERPRINT_ATTR,
    check_fingerprint,
    ensure_fingerprint,
    fingerprint,
    fingerprint_hash,
    fingerprint_of,
    recorded_fingerprint,
)
from strategies.space import Ladder, SearchSpace

STUDY = "smoke.tpe.seed-0"


@pytest.fixture
def smoke():
    return load_experiment("smoke")


def _with_param(exp, name, **changes):
    params = tuple(
        dataclasses.replace(p, **changes) if p.name == name else p for p in exp.space.params
    )
    return dataclasses.replace(exp, space=SearchSpace(params))


def _refusal(stored, current):
    with pytest.raises(UserError) as info:
        check_fingerprint(fingerprint(stored), fingerprint(current), STUDY)
    message = str(info.value)
    assert message.startswith(f"experiment smoke changed since study {STUDY} was created: ")
    assert message.endswith("start a new study with a new experiment name or --results folder")
    assert "\n" not in message
    return message


def test_the_same_definition_passes_and_hashes_alike(smoke):
    again = load_experiment("smoke")
    check_fingerprint(fingerprint(smoke), fingerprint(again), STUDY)
    assert fingerprint_hash(fingerprint(smoke)) == fingerprint_hash(fingerprint(again))
    assert len(fingerprint_hash(fingerprint(smoke))) == 16


def test_a_json_round_trip_changes_nothing(smoke):
    # Optuna stores user attributes as JSON: tuples come back as lists, and must still match.
    stored = json.loads(json.dumps(fingerprint(smoke)))
    check_fingerprint(stored, fingerprint(smoke), STUDY)


def test_a_changed_ladder_is_refused_naming_the_change(smoke):
    changed = dataclasses.replace(smoke, ladder=Ladder(smoke.ladder.fractions, (2, 2, 2)))
    assert "ladder.epochs [1,1,1] -> [2,2,2];" in _refusal(smoke, changed)


def test_a_changed_space_range_is_refused(smoke):
    changed = _with_param(smoke, "dropout", high=0.6)
    assert "space.dropout.high 0.5 -> 0.6;" in _refusal(smoke, changed)


def test_a_parameter_added_or_removed_is_one_entry_each(smoke):
    fewer = dataclasses.replace(smoke, space=SearchSpace(smoke.space.params[:-1]))
    message = _refusal(smoke, fewer)
    assert "space.optimizer removed" in message and "space.optimizer.type" not in message
    assert "space.optimizer added" in _refusal(fewer, smoke)


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda e: dataclasses.replace(e, data=dataclasses.replace(e.data, days=14)), "data.days"),
        (lambda e: dataclasses.replace(e, model={**e.model, "dense": 16}), "model.dense 8 -> 16"),
        (lambda e: dataclasses.replace(e, precision="bf16"), 'precision "auto" -> "bf16"'),
        (lambda e: _with_param(e, "optimizer", choices=("adam",)), "space.optimizer.choices"),
        (lambda e: _with_param(e, "learning_rate", log=False), "space.learning_rate.log"),
    ],
    ids=["data", "model", "precision", "choices", "log scale"],
)
def test_what_defines_the_trials_is_in_the_fingerprint(smoke, change, expected):
    assert expected in _refusal(smoke, change(smoke))


@pytest.mark.parametrize(
    "change",
    [
        lambda e: dataclasses.replace(e, budget=Budget(n_trials=60)),
        lambda e: dataclasses.replace(e, seeds=(0, 1, 2), device="cuda", description="new"),
        lambda e: dataclasses.replace(e, storage="sqlite:///x.db", strategy="tpe"),
    ],
    ids=["budget", "seeds device description", "storage strategy"],
)
def test_what_may_change_between_sessions_is_not(smoke, change):
    check_fingerprint(fingerprint(smoke), fingerprint(change(smoke)), STUDY)


def test_many_changes_are_listed_up_to_five(smoke):
    changed = dataclasses.replace(
        _with_param(smoke, "dropout", low=0.1, high=0.4, default=0.3),
        ladder=Ladder((0.25, 0.5, 1.0), (2, 2, 2)),
        precision="fp32",
    )  # six fields: epochs, fractions, dropout default, high and low, precision
    message = _refusal(smoke, changed)
    assert message.count(" -> ") == 5 and "and 1 more;" in message


def test_an_optional_field_added_by_a_later_version_is_no_change(smoke):
    stored = fingerprint(smoke)
    current = json.loads(json.dumps(stored))
    current["data"]["start"] = None
    check_fingerprint(stored, current, STUDY)


def _study(tmp_path):
    return optuna.create_study(
        study_name=STUDY, storage=f"sqlite:///{tmp_path / 'db.sqlite'}", load_if_exists=True
    )


def test_ensure_stores_the_fingerprint_then_refuses_a_change(tmp_path, smoke):
    ensure_fingerprint(_study(tmp_path), smoke)
    assert _study(tmp_path).user_attrs[FINGERPRINT_ATTR] == fingerprint(smoke)
    ensure_fingerprint(_study(tmp_path), smoke)  # the same experiment resumes
    with pytest.raises(UserError, match="ladder.epochs"):
        ensure_fingerprint(
            _study(tmp_path),
            dataclasses.replace(smoke, ladder=Ladder(smoke.ladder.fractions, (3, 3, 3))),
        )


def test_a_study_from_before_fingerprints_is_checked_against_its_metadata(tmp_path, smoke):
    meta = tmp_path / "metadata.json"
    meta.write_text(json.dumps({"experiment": smoke.to_dict()}, default=str))
    assert recorded_fingerprint(meta) == fingerprint(smoke)
    changed = _with_param(smoke, "hidden_1", high=64)
    with pytest.raises(UserError, match="space.hidden_1.high 32 -> 64"):
        ensure_fingerprint(_study(tmp_path), changed, meta)
    assert FINGERPRINT_ATTR not in _study(tmp_path).user_attrs  # nothing stored on refusal


@pytest.mark.parametrize("content", ["", '{"experiment": {"ladder"', "[]", '{"strategy": "x"}'])
def test_unreadable_metadata_is_no_witness(tmp_path, smoke, content):
    meta = tmp_path / "metadata.json"
    meta.write_text(content)
    assert recorded_fingerprint(meta) is None
    assert ensure_fingerprint(_study(tmp_path), smoke, meta) == fingerprint(smoke)


def test_fingerprint_of_a_recorded_experiment_matches_the_live_one(smoke):
    assert fingerprint_of(json.loads(json.dumps(smoke.to_dict(), default=str))) == fingerprint(
        smoke
    )


def test_a_data_file_is_known_by_its_name_not_its_folder(smoke):
    def source(path):
        return dataclasses.replace(smoke, data=dataclasses.replace(smoke.data, source=path))

    moved = (source("/home/a/project/data/velib.parquet"), source("/srv/b/data/velib.parquet"))
    check_fingerprint(fingerprint(moved[0]), fingerprint(moved[1]), STUDY)
    assert 'data.source "velib.parquet" -> "other.csv"' in _refusal(
        moved[0], source("/home/a/project/data/other.csv")
    )


def _recorded_as(experiment, choice="random"):
    """An analysis stand-in: what final reads before any training (the runs' experiment)."""
    from types import SimpleNamespace

    recorded = json.loads(json.dumps(experiment.to_dict(), default=str))
    return SimpleNamespace(results=SimpleNamespace(experiment=recorded), choice=choice)


@pytest.mark.parametrize(
    "change, expected",
    [
        (
            lambda e: dataclasses.replace(e, data=dataclasses.replace(e.data, days=13)),
            "data.days 12 -> 13",
        ),
        (lambda e: _with_param(e, "dropout", high=0.6), "space.dropout.high 0.5 -> 0.6"),
    ],
    ids=["data", "space"],
)
def test_final_refuses_an_experiment_changed_since_its_runs(tmp_path, smoke, change, expected):
    from harness.final import final_check

    with pytest.raises(UserError) as info:
        final_check(_recorded_as(smoke), change(smoke), tmp_path, seeds=2, progress=False)
    message = str(info.value)
    assert message.startswith("final: experiment smoke changed since its runs were recorded: ")
    assert expected in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []  # refused before any training


def test_final_on_a_device_this_machine_lacks_is_one_line(tmp_path, smoke):
    import torch

    from harness.final import final_check

    if torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    with pytest.raises(UserError, match=r"^final: --device: device 'cuda:7' asked for, but "):
        final_check(_recorded_as(smoke), smoke, tmp_path, seeds=2, device="cuda:7")
    assert list(tmp_path.iterdir()) == []
