"""`tunability`: which parameters are worth searching, and how many, on the replay.

The surrogate here is fitted to synthetic learning curves in which only the learning rate
matters (no LSTM trains): what is under test is the measurement built on it (real Optuna
studies with the strategy's sampler and pruner, re-evaluated incumbents, paired intervals,
nested spaces), which must find that one parameter and prefer searching it alone.
"""

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from harness.analysis.analyze import read_tunability
from harness.cli import main
from harness.experiment import load_experiment
from harness.replay.surrogate import Surrogate
from harness.sidefiles import write_json_atomic
from harness.tunability import Setting, measure, replay_study, summary_lines
from strategies import get_strategy


def _curves(space, rng) -> pd.DataFrame:
    rows = []
    for config in range(60):
        params = {p.name: p.from_unit(rng.random()) for p in space.params}
        for repeat in range(2):
            offset = rng.normal(0, 0.05)
            for rung in (1, 2, 3):
                lr = np.log10(params["learning_rate"]) + 1.8  # best near 0.016; v4 0.003
                mae = 4.0 + 1.5 * lr**2 + 0.6 / rung + offset + rng.normal(0, 0.02)
                rows.append(
                    {"source": "record", "strategy": "record", "seed": repeat,
                     "trial": config, "rung": rung, "val_mae": mae, "samples": 1000 * rung,
                     "train_seconds": 1.0, "eval_seconds": 0.1,
                     **{f"param_{k}": v for k, v in params.items()}}
                )  # fmt: skip
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def setting():
    exp = load_experiment("smoke")
    surrogate = Surrogate.fit(list(exp.space.params), _curves(exp.space, np.random.default_rng(0)))
    return Setting(surrogate, exp.space, exp.ladder, get_strategy("tpe_median"), (8, 16))


@pytest.fixture(scope="module")
def measured(setting):
    return measure(setting, seeds=8, progress=False)


def test_the_one_parameter_that_matters_is_found_and_preferred_alone(measured):
    gains = {r["param"]: r for r in measured["tunability"]}
    assert measured["tunability"][0]["param"] == "learning_rate"
    assert gains["learning_rate"]["low"] > 0  # tuning it alone beats v4, surely
    risk = {r["param"]: r for r in measured["tuning_risk"]}
    assert not risk["learning_rate"]["safe_to_fix"] and risk["learning_rate"]["low"] > 0
    # The others cost nothing to fix: on average under the margin, and never shown to cost more
    # (8 seeds leave an upper bound that may still cross it; that is what "safe" waits for).
    margin = measured["margin"]
    for p in ("hidden_1", "dropout", "optimizer"):
        assert abs(risk[p]["mean"]) < margin and risk[p]["low"] < margin, risk[p]
    assert sum(risk[p]["safe_to_fix"] for p in ("hidden_1", "dropout", "optimizer")) >= 2
    at16 = measured["nested"][-1]
    assert at16["trials"] == 16 and at16["preferred_size"] == 1
    assert [len(s["params"]) for s in at16["spaces"]] == [1, 2, 3, 4]
    lr_alone = at16["spaces"][0]
    assert lr_alone["non_inferior"] and lr_alone["vs_v4_high"] < 0  # beats v4 on other seeds


def test_a_study_is_seeded_and_scores_each_budget_from_one_run(setting):
    a = replay_study(setting, ("learning_rate", "dropout"), seed=3)
    assert a == replay_study(setting, ("learning_rate", "dropout"), seed=3)
    # one study to 16 trials scores the 8-trial count as a study stopped at 8 would
    alone = replay_study(replace(setting, budgets=(8,)), ("learning_rate", "dropout"), seed=3)
    assert len(a) == 2 and alone == a[:1]
    v4 = replay_study(setting, (), seed=3)
    assert v4[0] == v4[1]  # nothing searched: v4, re-evaluated


def test_the_summary_names_the_order_and_the_sizes(measured):
    lines = summary_lines(measured)
    assert lines[0].startswith("tunability at 16 trials") and "learning_rate +" in lines[0]
    assert "16 trials: 1" in lines[2]


def test_a_measurement_for_another_experiment_is_not_read(tmp_path, measured):
    write_json_atomic(tmp_path / "smoke" / "tunability.json", {**measured, "experiment": "quick"})
    assert read_tunability(tmp_path, "smoke") is None
    write_json_atomic(tmp_path / "smoke" / "tunability.json", {**measured, "experiment": "smoke"})
    assert read_tunability(tmp_path, "smoke")["strategy"] == "tpe_median"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--strategy", "nope"], "--strategy: unknown strategy 'nope'"),
        (["--strategy", "grid"], "tunability needs a strategy that samples one objective"),
        (["--strategy", "tpe_median.search-dropout"], "tunability chooses the parameters itself"),
        (["--seeds", "2"], "--seeds must be >= 3"),
        (["--budgets", "40,x"], "--budgets must be comma-separated whole numbers"),
        (["--budgets", "1,40"], "--budgets must be trial counts in 2..10,000"),
    ],
)
def test_bad_options_are_one_line(tmp_path, capsys, args, message):
    assert main(["tunability", "--experiment", "smoke", "--results", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_no_record_is_one_line_saying_how(tmp_path, capsys):
    assert main(["tunability", "--experiment", "smoke", "--results", str(tmp_path)]) == 2
    assert "run 'python -m harness record --experiment smoke' first" in capsys.readouterr().err


def test_the_report_shows_both_measures_and_the_preferred_sizes(measured):
    from types import SimpleNamespace

    from harness.analysis.tunability_section import tunability_blocks

    none = pd.DataFrame(columns=["strategy", "seed", "score", "reevaluated"])
    a = SimpleNamespace(
        tunability=measured, results=SimpleNamespace(experiment={"name": "smoke"}), scores=none
    )
    blocks = tunability_blocks(SimpleNamespace(analysis=a))
    assert "--strategies tpe_median,tpe_median.search-learning_rate`" in blocks[-1][1]
    assert blocks[0] == ("h2", "Which parameters, and how many")
    table = blocks[2][1]
    assert table.iloc[0]["param"] == "learning_rate" and table.iloc[0]["safe to fix at v4"] == "no"
    assert "at 16 trials, 1" in blocks[3][1] and list(blocks[4][1].columns)[1:] == [
        "8 trials",
        "16 trials",
        "v4 (same seeds)",
    ]
    absent = tunability_blocks(
        SimpleNamespace(analysis=SimpleNamespace(tunability=None, results=a.results))
    )
    assert "Not measured" in absent[1][1] and "tunability --experiment smoke" in absent[1][1]


@pytest.mark.parametrize(
    "shift, pairs, judged",
    [(0.0, 0.01, "Confirmed"), (0.3, 0.01, "Refuted"), (0.08, 0.08, "Not confirmed")],
)
def test_the_real_confirmation_pairs_the_twin_with_its_full_space_by_seed(
    measured, shift, pairs, judged
):
    from harness.analysis.analyze import Analysis
    from harness.analysis.tunability_section import confirmation_lines

    rng = np.random.default_rng(0)
    full = 4.0 + rng.normal(0, 0.2, 8)  # seeds differ a lot; the pairs little
    twin = full + shift + rng.normal(0, pairs, 8)

    def runs(name, values):
        return pd.DataFrame({"strategy": name, "seed": range(8), "score": values,
                             "reevaluated": True})  # fmt: skip

    twins = runs("tpe_median.search-learning_rate", twin)
    (line,) = confirmation_lines(runs("tpe_median", full), twins, measured)
    assert line.startswith("Real confirmation on 8 paired seeds") and "re-evaluated" in line
    assert f". {judged}" in line
    # a refuted preferred space sends the night to the full space, saying why
    a = SimpleNamespace(tunability=measured, scores=runs("tpe_median", full), search_scores=twins)
    a.refuting_confirmation = lambda: Analysis.refuting_confirmation(a)
    searched = Analysis.params_to_search(a)
    assert (searched == ["learning_rate"]) == (judged != "Refuted")
    assert ("refuted by real runs" in Analysis.search_source(a)) == (judged == "Refuted")
