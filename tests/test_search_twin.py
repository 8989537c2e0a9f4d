"""A strategy's .search- twin (<strategy>.search-<p1>+<p2>) searches those parameters alone,
the rest at v4's values: the real confirmation of a smaller space against the full one, run
beside it in the same comparison under the same experiment definition."""

import optuna
import pandas as pd
import pytest

from harness.analysis.loading import load_results
from harness.storage import open_storage, study_storage_url
from strategies import get_strategy
from strategies.registry import strategy_problem
from tests.e2e import cli


def test_the_twin_is_named_apart_and_reads_back():
    twin = get_strategy("tpe_median.search-learning_rate+dropout")
    assert twin.name == "tpe_median.search-learning_rate+dropout"
    assert twin.searched == ("learning_rate", "dropout") and twin.prunes
    assert get_strategy(twin.name).searched == twin.searched
    assert get_strategy("tpe_median").searched is None


@pytest.mark.parametrize(
    "name, problem",
    [
        ("nope.search-learning_rate", "unknown strategy 'nope'"),
        ("tpe_median.search-", "name the parameters after '.search-'"),
        ("grid.search-learning_rate", "grid runs a fixed queue"),
    ],
)
def test_a_bad_twin_name_says_why(name, problem):
    assert problem in strategy_problem(name)
    with pytest.raises(ValueError, match=problem):
        get_strategy(name)


def test_a_parameter_outside_the_space_is_one_line(tmp_path, capsys):
    code = cli("run", strategy="tpe_median.search-num_layers", trials=1, results=tmp_path)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "num_layers not in smoke's space" in err[0]
    code = cli("run", strategy="tpe_median.search-dropout", no_warm_start=True, results=tmp_path)
    assert code == 2 and "runs warm and from fresh weights only" in capsys.readouterr().err


def test_a_run_searches_the_named_parameters_and_records_v4s_for_the_rest(tmp_path):
    name = "random.search-learning_rate"
    assert cli("run", strategy=name, trials=4, results=tmp_path) == 0
    assert cli("run", strategy="random", trials=4, results=tmp_path) == 0
    results = load_results(tmp_path, "smoke", echo=False)  # the twin is kept apart
    assert results.strategies == ["random"] and list(results.search_meta) == [(name, 0)]
    assert len(results.search_trials) == 4
    url = study_storage_url(tmp_path, "smoke", name, 0)
    study = optuna.load_study(study_name=f"smoke.{name}.seed-0", storage=open_storage(url))
    assert all(set(t.params) == {"learning_rate"} for t in study.trials)
    rows = pd.read_csv(tmp_path / "smoke" / name / "seed-0" / "trials.csv")
    assert rows["param_learning_rate"].nunique() == 4  # v4's, then three draws
    # the rest at v4's values, recorded whole so that every reader sees a full configuration
    assert set(rows["param_hidden_1"]) == {16} and set(rows["param_dropout"]) == {0.2}
    assert set(rows["param_optimizer"]) == {"adam"}


@pytest.mark.parametrize(
    "name, problem",
    [
        ("tpe_median.search-dropout+dropout", "names a parameter twice"),
        ("tpe_median.search-../x", "name the parameters after"),
    ],
)
def test_a_twin_name_is_parameter_names_once_each(name, problem):
    assert problem in strategy_problem(name)


def test_compare_refuses_a_bad_twin_before_any_run(tmp_path, capsys):
    code = cli("compare", strategies="random,tpe_median.search-num_layers", results=tmp_path)
    assert code == 2 and "num_layers not in smoke's space" in capsys.readouterr().err
    assert not (tmp_path / "smoke").exists()  # nothing ran
