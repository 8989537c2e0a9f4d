"""compare's retrains on smoke with the real LSTM: incumbents re-evaluated (completed, never
repeated) and horizon trust to convergence (empty side files: tests/test_storage_e2e.py)."""

import pandas as pd

from harness.cli import main


def test_incumbents_are_reevaluated_and_configurations_converged(tmp_path):
    args = [
        "compare",
        "--experiment",
        "smoke",
        "--strategies",
        "random,tpe_median",
        "--seeds",
        "1",
        "--reeval-seeds",
        "2",
        "--converge",
        "3",
        "--no-progress",
        "--results",
        str(tmp_path),
    ]
    assert main(args) == 0
    reeval = pd.read_csv(tmp_path / "smoke/reeval.csv")
    assert len(reeval) == 4 and set(reeval["strategy"]) == {"random", "tpe_median"}
    assert reeval["val_mae"].notna().all() and reeval["train_seed"].nunique() == 2
    trials = pd.read_csv(tmp_path / "smoke/random/seed-0/trials.csv")
    incumbent = trials[trials["state"] == "COMPLETE"].sort_values("val_mae").iloc[0]
    mine = reeval[reeval["strategy"] == "random"]
    assert (mine["trial"] == incumbent["trial"]).all()
    assert (mine["recorded_mae"] == incumbent["val_mae"]).all()
    converge = pd.read_csv(tmp_path / "smoke/converge.csv")
    assert 1 <= len(converge) <= 3 and (converge["epochs"] >= 1).all()
    assert converge["role"].iloc[0] == "incumbent" and converge["converged_mae"].notna().all()

    args[args.index("1")] = "2"  # a second seed: only the new runs are re-evaluated
    assert main(args) == 0
    again = pd.read_csv(tmp_path / "smoke/reeval.csv")
    assert len(again) == 8 and again.iloc[:4].equals(reeval)


def test_a_torn_reeval_file_is_read_tolerantly_like_every_side_file(tmp_path, capsys):
    from harness.analysis.analyze import analyze

    args = [
        "compare",
        "--experiment",
        "smoke",
        "--strategies",
        "random,tpe_median",
        "--seeds",
        "1",
        "--reeval-seeds",
        "1",
        "--no-progress",
        "--results",
        str(tmp_path),
    ]
    assert main(args) == 0
    path = tmp_path / "smoke/reeval.csv"
    good = len(pd.read_csv(path))
    with path.open("a") as fh:
        fh.write("garbage,not-a-seed\ntpe_median,0,3")  # a garbage line and a torn last line
    a = analyze(tmp_path, "smoke")
    assert len(a.results.reeval) == good and a.scores["reevaluated"].all()
    assert "reeval.csv" in capsys.readouterr().err  # the dropped lines are named
