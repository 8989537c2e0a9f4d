"""Bad input: one line naming the file or field, a non-zero exit, no traceback."""

import subprocess
import sys

import pytest

from harness.cli import main

GOOD = """
[data]
stations = 4
days = 12
[ladder]
fractions = ["1/3", 1]
epochs = [1, 1]
[budget]
n_trials = 2
[space.learning_rate]
type = "float"
low = 1e-4
high = 1e-2
log = true
default = 1e-3
"""


def _run(tmp_path, capsys, toml=None, extra=()):
    args = [
        "run",
        "--strategy",
        "random",
        "--results",
        str(tmp_path / "res"),
        "--no-progress",
        *extra,
    ]
    if toml is not None:
        path = tmp_path / "exp.toml"
        path.write_text(toml)
        args += ["--experiment", str(path)]
    code = main(args)
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.mark.parametrize(
    "toml, expected",
    [
        ("this is = = not toml", "not valid TOML"),
        (GOOD + "\ncolour = 3\n", "colour: unknown field"),
        (
            GOOD.replace(
                '[space.learning_rate]\ntype = "float"\nlow = 1e-4\nhigh = 1e-2\nlog = true\n'
                "default = 1e-3\n",
                "",
            ),
            "space: the search space is empty",
        ),
        (
            GOOD.replace('fractions = ["1/3", 1]', "fractions = [1, 0.5]"),
            "ladder: the ladder must increase",
        ),
        (
            GOOD.replace('fractions = ["1/3", 1]', 'fractions = ["a third", 1]'),
            "ladder.fractions[0]",
        ),
        (
            GOOD.replace("n_trials = 2", "n_trials = 0"),
            "budget.n_trials: must be a whole number > 0",
        ),
        (
            GOOD.replace("low = 1e-4", "low = 1e-1"),
            "space.learning_rate: low (0.1) must be below high",
        ),
        (
            GOOD.replace("log = true", "log = true\nlow_typo = 1"),
            "space.learning_rate.low_typo: unknown field",
        ),
        (
            GOOD.replace("[space.learning_rate]", "[space.learning_rat]"),
            "space.learning_rat: not a model parameter",
        ),
        (GOOD.replace("default = 1e-3", "default = 5.0"), "lies outside the range"),
        (
            GOOD.replace("stations = 4", "stations = 0"),
            "data.stations: must be a whole number >= 1",
        ),
    ],
)
def test_bad_experiment_files(tmp_path, capsys, toml, expected):
    code, err = _run(tmp_path, capsys, toml)
    assert code == 2 and err.startswith("error: ") and expected in err and "\n" not in err
    assert "exp.toml" in err or "TOML" in err  # names the file


@pytest.mark.parametrize(
    "extra, expected",
    [
        (("--experiment", "no_such_experiment"), "unknown experiment 'no_such_experiment'; known:"),
        (("--experiment", "/nowhere/x.toml"), "experiment file not found"),
        (("--trials", "0"), "--trials must be >= 1, got 0"),
        (("--storage", "not-a-url"), "not a storage URL"),
        (("--storage", "sqlite:////no/such/dir/x.db"), "cannot connect"),
        (("--device", "tpu"), "device must be"),
        (("--workers", "0"), "--workers must be >= 1"),
    ],
)
def test_bad_flags(tmp_path, capsys, extra, expected):
    code, err = (
        _run(tmp_path, capsys, GOOD, extra)
        if "--experiment" not in extra
        else _run(tmp_path, capsys, None, extra)
    )
    assert code == 2 and expected in err and "\n" not in err


def test_unknown_strategy_from_the_real_command_line(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            "--strategy",
            "nope",
            "--experiment",
            "smoke",
            "--results",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        "error: unknown strategy 'nope'; known: tpe_median, tpe_hyperband, tpe_asha, tpe, "
        "random, random_median, cmaes, qmc, mo_tpe, grid"
    )


def test_list_shows_strategies_and_experiments(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "tpe_hyperband" in out and "quick" in out and "velib_overnight" in out


def test_worker_for_a_missing_study(tmp_path, capsys):
    code = main(
        [
            "worker",
            "--storage",
            f"sqlite:///{tmp_path}/x.db",
            "--study",
            "nope.random.seed-0",
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and "study 'nope.random.seed-0' not found" in err and "\n" not in err
