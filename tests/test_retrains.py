"""compare's retrains on smoke with the real LSTM: incumbents re-evaluated (completed, never
repeated) and horizon trust to convergence (empty side files: tests/test_storage_e2e.py)."""

import pandas as pd
import pytest

from tests.e2e import cli, copy_results


@pytest.mark.slow
def test_incumbents_are_reevaluated_and_configurations_converged(smoke_compare, tmp_path):
    copy_results(smoke_compare, tmp_path, ["smoke/random/seed-0"])  # the shared run, no retrains
    options = dict(strategies="random,tpe_median", seeds=1, reeval_seeds=2, converge=3)
    assert cli("compare", **options, results=tmp_path) == 0
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

    options["seeds"] = 2  # a second seed: only the new runs are re-evaluated
    assert cli("compare", **options, results=tmp_path) == 0
    again = pd.read_csv(tmp_path / "smoke/reeval.csv")
    assert len(again) == 8 and again.iloc[:4].equals(reeval)


@pytest.mark.slow
def test_a_torn_reeval_file_is_read_tolerantly_like_every_side_file(
    smoke_compare, tmp_path, capsys
):
    from harness.analysis.analyze import analyze

    copy_results(smoke_compare, tmp_path, ["smoke/random/seed-0"])  # the shared run, no retrains
    options = dict(strategies="random,tpe_median", seeds=1, reeval_seeds=1)
    assert cli("compare", **options, results=tmp_path) == 0
    path = tmp_path / "smoke/reeval.csv"
    good = len(pd.read_csv(path))
    with path.open("a") as fh:
        fh.write("garbage,not-a-seed\ntpe_median,0,3")  # a garbage line and a torn last line
    a = analyze(tmp_path, "smoke")
    assert len(a.results.reeval) == good and a.scores["reevaluated"].all()
    assert "reeval.csv" in capsys.readouterr().err  # the dropped lines are named


def _trials(best_trial: int) -> "pd.DataFrame":
    import pandas as pd

    return pd.DataFrame(
        {
            "strategy": ["tpe"] * 3,
            "seed": [0] * 3,
            "trial": [0, 1, 2],
            "state": ["COMPLETE"] * 3,
            "val_mae": [4.0, 3.9 if best_trial == 1 else 4.1, 3.8 if best_trial == 2 else 4.2],
            "param_lr": [0.1, 0.2, 0.3],
        }
    )


def test_re_evaluations_follow_the_incumbent_and_the_seed_count():
    """A stand-in score (the retrain's arithmetic is not under test here: only which retrains
    are kept, made or dropped) records every call."""
    from harness.retrain import reevaluate_incumbents

    calls = []

    def score(params, seed):
        calls.append((params["lr"], seed))
        return 5.0 + params["lr"]

    first = reevaluate_incumbents(_trials(1), score, ["lr"], n_seeds=2, progress=False)
    assert set(first["trial"]) == {1} and len(calls) == 2
    same = reevaluate_incumbents(_trials(1), score, ["lr"], n_seeds=2, done=first, progress=False)
    assert len(calls) == 2 and len(same) == 2  # nothing new: kept as they are
    more = reevaluate_incumbents(_trials(1), score, ["lr"], n_seeds=3, done=first, progress=False)
    assert len(calls) == 3 and len(more) == 3  # --reeval-seeds 3 adds one seed, not ignored
    # the study was continued and trial 2 is the new incumbent: the old rows are stale
    moved = reevaluate_incumbents(_trials(2), score, ["lr"], n_seeds=2, done=more, progress=False)
    assert (
        set(moved["trial"]) == {2}
        and len(moved) == 2
        and calls[-2:]
        == [
            (0.3, calls[0][1]),
            (0.3, calls[1][1]),
        ]
    )
