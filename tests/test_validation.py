"""Validation at load: every field of an experiment file strictly typed and within the range the
model can take, checked once (not in every trial); every command-line option checked before any
work. Each bad input is one line naming the field or option, exit 2, no traceback."""

import copy
import math

import pytest

from harness.cli import main
from harness.errors import UserError
from harness.experiment import MAX_SEED, load_experiment, parse_experiment
from model.config import ModelConfig
from tests.e2e import TINY_EXPERIMENT

BASE = {
    "data": {"stations": 4, "days": 12},
    "ladder": {"fractions": ["1/3", 1], "epochs": [1, 1]},
    "budget": {"n_trials": 2},
    "model": {"hidden_2": 8},
    "space": {
        "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True, "default": 1e-3},
        "hidden_1": {"type": "int", "low": 8, "high": 32, "step": 8, "default": 16},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5, "default": 0.2},
        "optimizer": {"type": "categorical", "choices": ["adam", "adamw"], "default": "adam"},
    },
}
DROP = object()


def _doc(**changes) -> dict:
    """BASE with changes given as dotted paths ("space.hidden_1.step"): a value, or DROP."""
    doc = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        node = doc
        for part in parents:
            node = node.setdefault(part, {})
        if value is DROP:
            node.pop(key, None)
        else:
            node[key] = value
    return doc


def _error(doc: dict) -> str:
    with pytest.raises(UserError) as err:
        parse_experiment(doc, "exp.toml", default_name="exp")
    message = str(err.value)
    assert "\n" not in message and message.startswith("exp.toml: ")
    return message


def test_the_base_document_is_valid():
    exp = parse_experiment(_doc(), "exp.toml", default_name="exp")
    assert exp.name == "exp" and exp.space.names[1] == "hidden_1"
    assert exp.base_config().hidden_2 == 8


# (field path with "__" between levels, value, the field the message names, words it contains)
BAD_FIELDS = [
    ("space__learning_rate__log", "false", "space.learning_rate", "log must be true or false"),
    ("space__learning_rate__log", 1, "space.learning_rate", "log must be true or false"),
    ("space__learning_rate__low", True, "space.learning_rate", "low must be a finite number"),
    ("space__learning_rate__high", math.inf, "space.learning_rate", "high must be a finite"),
    ("space__learning_rate__low", math.nan, "space.learning_rate", "low must be a finite"),
    ("space__learning_rate__low", "1e-4", "space.learning_rate", "low must be a finite number"),
    ("space__learning_rate__low", 0.0, "space.learning_rate", "low must be > 0 on a log scale"),
    ("space__hidden_1__step", 2.5, "space.hidden_1", "step must be a whole number > 0"),
    ("space__hidden_1__step", 0, "space.hidden_1", "step must be a whole number > 0"),
    ("space__hidden_1__step", -8, "space.hidden_1", "step must be a whole number > 0"),
    ("space__hidden_1__step", True, "space.hidden_1", "step must be a whole number > 0"),
    ("space__hidden_1__step", 7, "space.hidden_1", "must be a multiple of step"),
    ("space__dropout__step", 0.0, "space.dropout", "step must be a finite number > 0"),
    ("space__dropout__step", math.nan, "space.dropout", "step must be a finite number > 0"),
    ("space__hidden_1__low", 8.5, "space.hidden_1", "low of an int parameter must be a whole"),
    ("space__hidden_1__default", 16.0, "space.hidden_1", "default 16.0: takes whole numbers"),
    ("space__hidden_1__default", 20, "space.hidden_1", "default 20 lies outside the range"),
    ("space__hidden_1__grid", [8.5, 16], "space.hidden_1", "grid value 8.5: takes whole"),
    ("space__hidden_1__grid", [8, 8], "space.hidden_1", "grid lists 8 twice"),
    ("space__hidden_1__grid", "8", "space.hidden_1.grid", "must be a non-empty list"),
    ("space__hidden_1__grid", [], "space.hidden_1.grid", "must be a non-empty list"),
    ("space__hidden_1__low", 0, "space.hidden_1", "low 0: hidden_1 must be a whole number in"),
    ("space__hidden_1__type", "float", "space.hidden_1.type", 'use type = "int"'),
    ("space__hidden_1__type", "integer", "space.hidden_1.type", "must be one of"),
    ("space__dropout__high", 1.0, "space.dropout", "high 1.0: dropout must be a finite number"),
    ("space__dropout__default", "0.2", "space.dropout", "takes finite numbers, got '0.2'"),
    ("space__dropout__choices", [0.1], "space.dropout", "choices apply to a categorical"),
    ("space__optimizer__choices", ["adam", "sgd"], "space.optimizer", "choice 'sgd'"),
    ("space__optimizer__choices", ["adam", "adam"], "space.optimizer", "choices lists 'adam'"),
    ("space__optimizer__low", 1, "space.optimizer", "do not apply to a categorical"),
    ("space__optimizer__default", "sgd", "space.optimizer", "default 'sgd' lies outside"),
    ("space__optimizer__choices", [], "space.optimizer.choices", "must be a non-empty list"),
    ("space__optimizer__default", DROP, "space.optimizer.default", "missing"),
    (
        "space__num_layers",
        {"type": "int", "low": 1, "high": 100, "default": 2},
        "space.num_layers",
        "high 100: num_layers must be a whole number in [1, 16]",
    ),
    (
        "space__embedding_dim",
        {"type": "int", "low": -1, "high": 8, "default": 0},
        "space.embedding_dim",
        "low -1: embedding_dim must be a whole number in [0, 1024]",
    ),
    (
        "space__weight_decay",
        {"type": "float", "low": -1.0, "high": 1.0, "default": 0.0},
        "space.weight_decay",
        "low -1.0: weight_decay must be a finite number in [0, 10]",
    ),
    (
        "space__learning_rate",
        {"type": "float", "low": 0.0, "high": 0.1, "default": 0.01},
        "space.learning_rate",
        "low 0.0: learning_rate must be a finite number in (0, 10]",
    ),
    (
        "space__batch_size",
        {"type": "categorical", "choices": [64, 128.0], "default": 64},
        "space.batch_size",
        "choice 128.0: takes whole numbers",
    ),
    (
        "space__batch_size",
        {"type": "categorical", "choices": [64, [128]], "default": 64},
        "space.batch_size",
        "choice [128]: takes whole numbers",
    ),
    (
        "space__colour",
        {"type": "int", "low": 1, "high": 2, "default": 1},
        "space.colour",
        "not a model parameter",
    ),
    ("model__batch_size", 256.0, "model.batch_size", "takes whole numbers, got 256.0 (write 256"),
    ("model__hidden_2", 8.5, "model.hidden_2", "takes whole numbers, got 8.5"),
    ("model__batch_size", True, "model.batch_size", "takes whole numbers, got True"),
    ("model__hidden_2", 10**6, "model.hidden_2", "hidden_2 must be a whole number in [1, 4096]"),
    ("model__weight_decay", math.nan, "model.weight_decay", "takes finite numbers, got nan"),
    ("model__weight_decay", -0.1, "model.weight_decay", "must be a finite number in [0, 10]"),
    ("model__grad_clip", math.inf, "model.grad_clip", "takes finite numbers, got inf"),
    ("model__dropout", 1.0, "model.dropout", "dropout must be a finite number in [0, 1)"),
    ("model__learning_rate", -1e-3, "model.learning_rate", "must be a finite number in (0, 10]"),
    ("model__optimizer", "sgd", "model.optimizer", "optimizer must be one of"),
    ("model__hidden_1", 64, "model.hidden_1", "is also searched in [space.hidden_1]"),
    ("model__colour", 1, "model.colour", "not a model parameter"),
    ("run__precision", "fp8", "run.precision", "must be one of auto, fp32, bf16, fp16"),
    ("run__precision", True, "run.precision", "must be a string"),
    ("run__device", "tpu", "run.device", "must be 'auto', 'cpu' or 'cuda[:N]'"),
    ("run__device", "cuda:", "run.device", "must be 'auto', 'cpu' or 'cuda[:N]'"),
    ("run__device", "cudax", "run.device", "must be 'auto', 'cpu' or 'cuda[:N]'"),
    ("run__seeds", [-1], "run.seeds[0]", "0 <= seed < 2**32"),
    ("run__seeds", [0, 2**32], "run.seeds[1]", "0 <= seed < 2**32"),
    ("run__seeds", [True], "run.seeds[0]", "must be a whole number"),
    ("run__seeds", [1.5], "run.seeds[0]", "must be a whole number"),
    ("run__seeds", [1, 1], "run.seeds[1]", "seed 1 is listed twice"),
    ("run__seeds", [], "run.seeds", "must be a non-empty list"),
    ("run__storage", 5, "run.storage", "must be a string"),
    ("run__strategy", "nope", "run.strategy", "unknown strategy 'nope'; known: tpe_median"),
    ("data__seed", -5, "data.seed", "0 <= seed < 2**32"),
    ("data__seed", 2**32, "data.seed", "0 <= seed < 2**32"),
    ("data__stations", 4.0, "data.stations", "must be a whole number >= 1"),
    ("data__stations", 200_000, "data.stations", "<= 100000"),
    ("data__days", 9, "data.days", "must be a whole number >= 10"),
    ("data__days", 100_000, "data.days", "<= 3653"),
    ("data__stations", 50_000, "data.stations", "station-hours, more than the 100,000,000"),
    ("data__source", "", "data.source", "is empty"),
    ("data__source", 3, "data.source", "must be a string"),
    ("budget__timeout_minutes", math.inf, "budget.timeout_minutes", "must be a finite number > 0"),
    ("budget__timeout_minutes", math.nan, "budget.timeout_minutes", "must be a finite number"),
    ("budget__timeout_minutes", -1, "budget.timeout_minutes", "must be a finite number > 0"),
    ("budget__timeout_minutes", True, "budget.timeout_minutes", "must be a finite number > 0"),
    ("budget__n_trials", True, "budget.n_trials", "must be a whole number > 0"),
    ("description", 3, "description", "must be a string"),
    ("model", "big", "model", "must be a table"),
    ("ladder__epochs", [True, 1], "ladder.epochs", "must be whole numbers"),
    ("ladder__fractions", [math.nan, 1], "ladder", "every fraction must be in (0, 1]"),
]


@pytest.mark.parametrize(
    "path, value, field, words",
    BAD_FIELDS,
    ids=[f"{p}={'DROP' if v is DROP else repr(v)}" for p, v, _, _ in BAD_FIELDS],
)
def test_bad_field_is_one_line_naming_it(path, value, field, words):
    if path == "data__stations" and value == 50_000:
        message = _error(_doc(data__stations=value, data__days=3000))
    else:
        message = _error(_doc(**{path: value}))
    assert f": {field}: " in message and words in message


@pytest.mark.parametrize("twin", ["tpe_median.cold", "tpe_median.v4w", "random.cold.v4w"])
def test_a_plan_may_name_a_strategys_twin(twin):
    """overnight.toml names the verdict's choice, which may be a cold or v4-weights twin."""
    experiment = parse_experiment(_doc(run__strategy=twin), "exp.toml", default_name="exp")
    assert experiment.strategy == twin
    assert "unknown strategy 'tpe_median.warm'" in _error(_doc(run__strategy="tpe_median.warm"))


@pytest.mark.parametrize(
    "name, words",
    [
        ("../x", "is not a safe folder name"),
        ("", "is empty"),
        (".hidden", "not starting with '.'"),
        ("..", "is not a safe folder name"),
        ("a/b", "is not a safe folder name"),
        ("a\\b", "is not a safe folder name"),
        ("a\x00b", "is not a safe folder name"),
        ("with space", "is not a safe folder name"),
        ("x" * 101, "1-100 letters"),
        ("x.replay", "ends in '.replay'"),
        (3, "must be a string"),
    ],
)
def test_unsafe_experiment_names(name, words):
    message = _error({**_doc(), "name": name})
    assert ": name: " in message and words in message


def test_a_file_name_that_is_not_a_safe_name_says_to_set_one(tmp_path):
    path = tmp_path / "my exp.toml"
    path.write_text(
        "[ladder]\nfractions = [1]\nepochs = [1]\n[budget]\nn_trials = 1\n"
        '[space.dropout]\ntype = "float"\nlow = 0.0\nhigh = 0.5\ndefault = 0.2\n'
    )
    with pytest.raises(UserError, match=r"name: 'my exp' is not a safe.*set name = "):
        load_experiment(str(path))
    path.write_text('name = "my-exp"\n' + path.read_text())
    assert load_experiment(str(path)).name == "my-exp"


@pytest.mark.parametrize(
    "changes",
    [
        {"run__device": "cuda:1"},
        {"run__device": "cpu"},
        {"run__precision": "bf16"},
        {"run__seeds": [0, MAX_SEED]},
        {"run__strategy": "tpe_hyperband"},
        {"data__seed": MAX_SEED},
        {"model__weight_decay": 0},  # an integer is a number
        {"space__dropout__step": 0.1},
        {"space__hidden_1__low": 8.0},  # a whole float is a whole number for a range end
    ],
)
def test_good_values_are_accepted(changes):
    exp = parse_experiment(_doc(**changes), "exp.toml", default_name="exp")
    assert exp.name == "exp"


def test_every_shipped_experiment_loads(capsys):
    assert main(["list"]) == 0
    assert "smoke" in capsys.readouterr().out


def test_model_config_is_typed_and_bounded():
    assert ModelConfig(hidden_1=16.0).hidden_1 == 16  # whole floats from CSV records stay ints
    assert isinstance(ModelConfig(hidden_1=16.0).hidden_1, int)
    for bad in (
        {"hidden_1": 16.5},
        {"batch_size": True},
        {"weight_decay": math.nan},
        {"grad_clip": math.inf},
        {"dropout": -0.1},
        {"optimizer": ["adam"]},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            ModelConfig(**bad)


def _cli(capsys, args) -> tuple[int, str]:
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and "\n" not in err
    return code, err


# (command line, the option the message names, words it contains)
BAD_OPTIONS = [
    (["run", "--timeout-minutes", "nan"], "--timeout-minutes", "must be a finite number > 0"),
    (["run", "--timeout-minutes", "inf"], "--timeout-minutes", "got inf"),
    (["run", "--timeout-minutes", "-1"], "--timeout-minutes", "got -1.0"),
    (["run", "--timeout-minutes", "0"], "--timeout-minutes", "must be a finite number > 0"),
    (["run", "--trials", "0"], "--trials", "must be >= 1, got 0"),
    (["run", "--trials", "-3"], "--trials", "must be >= 1, got -3"),
    (["run", "--seed", "-1"], "--seed", "0 <= seed < 2**32"),
    (["run", "--seed", str(2**32)], "--seed", "0 <= seed < 2**32"),
    (["run", "--workers", "0"], "--workers", "must be >= 1"),
    (["run", "--device", "tpu"], "--device", "must be 'auto', 'cpu' or 'cuda[:N]'"),
    (["run", "--experiment", "../x"], "--experiment", "is not a safe folder name"),
    (["run", "--experiment", ""], "--experiment", "is empty"),
    (["compare", "--timeout-minutes", "nan"], "--timeout-minutes", "got nan"),
    (["compare", "--trials", "0"], "--trials", "must be >= 1"),
    (["compare", "--seeds", "0"], "--seeds", "must be >= 1, got 0"),
    (["compare", "--noise-seeds", "-1"], "--noise-seeds", "0 (off) or >= 2"),
    (["compare", "--noise-seeds", "1"], "--noise-seeds", "a spread needs two seeds"),
    (["compare", "--noise-configs", "0"], "--noise-configs", "must be >= 1, got 0"),
    (["compare", "--audit", "-1"], "--audit", "must be >= 0, got -1"),
    (["compare", "--workers", "0"], "--workers", "must be >= 1"),
    (["compare", "--strategies", "tpe,,random"], "--strategies", "unknown strategy ''"),
    (["compare", "--strategies", "tpe,tpe"], "--strategies", "names a strategy twice"),
    (["compare", "--experiment", "../../etc/x"], "--experiment", "is not a safe folder name"),
    (["record", "--configs", "3"], "--configs", "must be >= 4, got 3"),
    (["record", "--repeats", "0"], "--repeats", "must be >= 1, got 0"),
    (["report", "--experiment", "../x"], "--experiment", "is not a safe folder name"),
    (["report", "--experiment", ""], "--experiment", "is empty"),
    (["report", "--experiment", ".."], "--experiment", "is not a safe folder name"),
    (["report", "--target-margin", "-0.5"], "--target-margin", "must be a share in [0, 1)"),
    (["report", "--target-margin", "nan"], "--target-margin", "got nan"),
    (["plan", "--hours", "nan"], "--hours", "must be a finite number > 0"),
    (["plan", "--device-factor", "0"], "--device-factor", "must be a finite number > 0"),
    (["plan", "--device-factor", "inf"], "--device-factor", "got inf"),
    (["plan", "--max-trial-minutes", "-1"], "--max-trial-minutes", "must be a finite number > 0"),
    (["plan", "--max-params", "0"], "--max-params", "must be >= 1"),
    (["plan", "--experiment", "a/b"], "--experiment", "is not a safe folder name"),
    (["plan", "--target", "../x"], "--target", "is not a safe folder name"),  # old spelling
    (["plan", "--night", "../x"], "--night", "is not a safe folder name"),
    (["plan", "--night", "smoke", "--target", "smoke"], "--target", "give --night alone"),
    (["final", "--seeds", "0"], "--seeds", "must be >= 1"),
    (["final", "--top-k", "0"], "--top-k", "must be >= 1"),
    (["final", "--max-epochs", "0"], "--max-epochs", "must be >= 1"),
    (["final", "--patience", "0"], "--patience", "must be >= 1"),
    (
        ["worker", "--storage", "sqlite:///x.db", "--study", "s", "--device", "gpu"],
        "--device",
        "must be",
    ),
    (["data", "--stations", "0"], "--stations", "must be a whole number >= 1"),
    (["data", "--days", "5"], "--days", "must be a whole number >= 10"),
    (["data", "--stations", "90000", "--days", "3000"], "--stations", "station-hours"),
    (["data", "--seed", "-1"], "--seed", "0 <= seed < 2**32"),
    (["data", "--source", ""], "--source", "is empty"),
]


@pytest.mark.parametrize(
    "args, option, words", BAD_OPTIONS, ids=[" ".join(a) for a, _, _ in BAD_OPTIONS]
)
def test_bad_option_exits_2_naming_it(tmp_path, capsys, args, option, words):
    results = [] if args[0] == "data" else ["--results", str(tmp_path / "res")]
    code, err = _cli(capsys, [*args, *results])
    assert code == 2 and err.startswith(f"error: {option}") and words in err
    assert not (tmp_path / "res").exists()  # rejected before any work


@pytest.mark.parametrize("command", ["run", "compare", "report", "plan", "final", "record"])
def test_results_that_is_a_file(tmp_path, capsys, command):
    a_file = tmp_path / "results.txt"
    a_file.write_text("not a folder")
    code, err = _cli(capsys, [command, "--results", str(a_file)])
    assert code == 2 and err == f"error: --results: {a_file} is a file, not a folder"


def test_results_under_a_file_cannot_be_created(tmp_path, capsys):
    # a read-only location even for root, who ignores permission bits
    a_file = tmp_path / "f"
    a_file.write_text("")
    code, err = _cli(capsys, ["run", "--results", str(a_file / "res")])
    assert code == 2 and err.startswith(f"error: --results: {a_file} is a file")


def test_results_in_a_read_only_place(capsys):
    # /proc accepts no new file, whoever asks (root included)
    code, err = _cli(capsys, ["run", "--experiment", "smoke", "--results", "/proc/harness-results"])
    assert code == 2 and err.startswith("error: --results: cannot write in /proc")


def test_a_replay_folder_is_a_valid_report_name(tmp_path, capsys):
    # results/<experiment>.replay holds replayed runs: a folder name, though not an experiment's
    code, err = _cli(capsys, ["report", "--experiment", "smoke.replay", "--results", str(tmp_path)])
    assert code == 2 and "--experiment" not in err and "smoke.replay" in err


def test_empty_results_option(capsys):
    code, err = _cli(capsys, ["report", "--results", ""])
    assert code == 2 and err == "error: --results: is empty"


def test_an_experiment_path_is_still_accepted(tmp_path, capsys):
    # a path to a missing .toml is the loader's one-line error, not the name rule
    code, err = _cli(
        capsys, ["run", "--experiment", str(tmp_path / "nope.toml"), "--results", str(tmp_path)]
    )
    assert code == 2 and "experiment file not found" in err


GOOD_TOML = TINY_EXPERIMENT


@pytest.mark.parametrize(
    "old, new, words",
    [
        ("log = true", 'log = "false"', "space.learning_rate: log must be true or false"),
        ("high = 1e-2", "high = inf", "space.learning_rate: high must be a finite number"),
        ("low = 1e-4", "low = nan", "space.learning_rate: low must be a finite number"),
        ("n_trials = 2", "n_trials = 2\ntimeout_minutes = nan", "budget.timeout_minutes"),
        ("[data]", 'name = "../escape"\n[data]', "name: '../escape' is not a safe folder"),
        ("[data]", 'name = ""\n[data]', "name: is empty"),
        ("[data]", '[run]\nprecision = "fp8"\n[data]', "run.precision: must be one of"),
        ("[data]", "[run]\nseeds = [-1]\n[data]", "run.seeds[0]: must be a whole number in"),
        ("[data]", "[model]\nbatch_size = 128.5\n[data]", "model.batch_size: takes whole"),
        ("[data]", "[model]\nweight_decay = nan\n[data]", "model.weight_decay: takes finite"),
    ],
)
def test_bad_experiment_file_from_the_command_line(tmp_path, capsys, old, new, words):
    path = tmp_path / "exp.toml"
    path.write_text(GOOD_TOML.replace(old, new, 1))
    results = tmp_path / "inner" / "res"
    code, err = _cli(
        capsys,
        ["run", "--strategy", "random", "--experiment", str(path), "--results", str(results)],
    )
    assert code == 2 and err.startswith(f"error: {path}: ") and words in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.toml"]  # nothing written anywhere
