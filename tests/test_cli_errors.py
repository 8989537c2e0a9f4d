"""Bad input: one line naming the file or field, a non-zero exit, no traceback."""

import subprocess

import pytest

from harness.cli import main
from tests.e2e import TINY_EXPERIMENT, cli, command_line

GOOD = TINY_EXPERIMENT


def _run(tmp_path, capsys, toml=None, extra=()):
    experiment = None  # in extra, or the file written from toml
    if toml is not None:
        experiment = tmp_path / "exp.toml"
        experiment.write_text(toml)
    code = cli("run", *extra, strategy="random", experiment=experiment, results=tmp_path / "res")
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
    argv = command_line("run", strategy="nope", results=tmp_path)
    # -X importtime logs every import on stderr: the typo is refused before torch is imported
    proc = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], capture_output=True, text=True)
    imports = [line for line in proc.stderr.splitlines() if line.startswith("import time:")]
    said = [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert said == [
        "error: unknown strategy 'nope'; known: tpe_median, tpe_hyperband, tpe_asha, tpe, "
        "random, random_median, cmaes, qmc, mo_tpe, grid"
    ]
    assert imports and not [line for line in imports if line.split("|")[-1].strip() == "torch"]


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


HUGE = str(10**30)
# (command line, the option and bound the one line names): absurd counts refused before work.
ABSURD_COUNTS = [
    (["compare", "--noise-seeds", HUGE], "--noise-seeds must be <= 100"),
    (["compare", "--audit", HUGE], "--audit must be <= 10,000"),
    (["compare", "--converge", HUGE], "--converge must be <= 10,000"),
    (["compare", "--reeval-seeds", "101"], "--reeval-seeds must be <= 100"),
    (["compare", "--seeds", HUGE], "--seeds must be <= 10,000"),
    (["compare", "--trials", HUGE], "--trials must be <= 1,000,000"),
    (["run", "--trials", str(10**400)], "--trials must be <= 1,000,000"),  # beyond a float
    (["record", "--configs", HUGE], "--configs must be <= 100,000"),
    (["record", "--repeats", HUGE], "--repeats must be <= 100"),
    (["final", "--seeds", HUGE], "--seeds must be <= 10,000"),
    (["plan", "--probe", "--probe-samples", "100"], "--probe-samples must be >= 4,096"),
]


@pytest.mark.parametrize(
    "args, expected", ABSURD_COUNTS, ids=[" ".join(a)[:40] for a, _ in ABSURD_COUNTS]
)
def test_absurd_counts_are_one_line_before_any_work(tmp_path, capsys, args, expected):
    code = main([*args, "--results", str(tmp_path / "res")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith(f"error: {expected}") and "\n" not in err
    assert not (tmp_path / "res").exists()


@pytest.mark.parametrize("command", ["run", "compare", "record"])
def test_workers_above_the_cpu_count_are_capped_with_a_note(monkeypatch, capsys, command):
    from harness import cli

    monkeypatch.setattr(cli.os, "cpu_count", lambda: 3)
    args = cli.build_parser().parse_args([command, "--experiment", "smoke", "--workers", "64"])
    cli.validate_args(args)
    err = capsys.readouterr().err.strip()
    assert args.workers == 3
    assert err == "note: --workers 64 is more than this machine's 3 CPUs; using 3"
    args = cli.build_parser().parse_args([command, "--experiment", "smoke", "--workers", "3"])
    cli.validate_args(args)
    assert args.workers == 3 and capsys.readouterr().err == ""


def test_a_probe_on_a_device_this_machine_lacks_is_one_line():
    import torch

    from harness.errors import UserError
    from harness.experiment import load_experiment
    from harness.plan.probe import run_probe

    if torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    with pytest.raises(UserError, match=r"^plan --probe: device 'cuda:7' asked for, but ") as e:
        run_probe(load_experiment("smoke"), {}, samples=4096, device="cuda:7")
    assert "\n" not in str(e.value)


MLFLOW_URIS = {
    "garbage": ("garbage", "a path or file:// URI names a folder store"),
    "a /proc path": ("/proc/mlruns", "a path or file:// URI names a folder store"),
    "a file:// URI": ("file:///tmp/mlruns", "a path or file:// URI names a folder store"),
    "sqlite under /proc": ("sqlite:////proc/x/mlflow.db", "cannot write in /proc"),
    "sqlite with no file": ("sqlite:///", "names no database file"),
    "http with no host": ("http://", "names no host"),
    "an unknown scheme": ("ftp://host/x", "unknown scheme 'ftp'"),
}


@pytest.mark.parametrize("case", list(MLFLOW_URIS), ids=list(MLFLOW_URIS))
def test_a_bad_mlflow_uri_is_one_line_before_any_work(tmp_path, capsys, case):
    pytest.importorskip("mlflow")
    uri, expected = MLFLOW_URIS[case]
    res = tmp_path / "res"
    code = main(["report", "--experiment", "smoke", "--results", str(res), "--mlflow", uri])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith(f"error: --mlflow {uri}: {expected}") and "\n" not in err
    assert not res.exists()
