"""compare --two-stage on smoke: record reused, a replayed screen of every strategy scored on
re-evaluated incumbents, the confirmation sized before it runs, real paired runs of the family
only, and a report whose verdict tests that family."""

import json

import pandas as pd
import pytest

from harness.analysis.analyze import analyze, pooled_scores
from strategies import STRATEGIES
from tests.e2e import cli, copy_record


@pytest.mark.slow
def test_two_stage_screens_sizes_and_confirms_in_one_command(recorded, tmp_path, capsys):
    copy_record(recorded, tmp_path)  # the shared record, not its runs
    two_stage = dict(two_stage=True, screen_seeds=8, max_seeds=7)
    assert cli("compare", **two_stage, results=tmp_path) == 0
    out = capsys.readouterr().out
    plan = json.loads((tmp_path / "smoke/two_stage.json").read_text())
    # sized and priced before the real runs (smoke's noise asks for more seeds than 7 allow)
    assert "two-stage: the screen confirms" in out and "min of real training" in out
    pilot = plan["pilot"]
    assert pilot["screen_seeds"] == 7 and pilot["screen_power"] < plan["power_target"]
    assert "too few" in out
    # then sized again on the real spread of the 6 seeds with which the test can first reject
    assert pilot["pilot_seeds"] == 6 and "root mean square" in out
    assert 6 <= plan["seeds"] <= 7 and pilot["paired_rms"] > 0
    assert plan["family"][0] == "tpe_median" and len(plan["family"]) == 2
    assert plan["estimated_minutes"] > 0 and plan["wall_seconds"]["confirm"] > 0
    # the screen: every strategy, scored on re-evaluated incumbents
    reeval = pd.read_csv(tmp_path / "smoke.replay/reeval.csv")
    assert set(reeval["strategy"]) == set(STRATEGIES)
    evidence = json.loads((tmp_path / "smoke.replay/surrogate.json").read_text())
    assert all(f.startswith("record-") for f in evidence["fitted_on"])  # before the confirmation
    # the confirmation: the family alone, in real runs, paired by seed
    real = {p.name for p in (tmp_path / "smoke").iterdir() if p.is_dir()}
    assert real - {p for p in real if p.startswith("record-")} == set(plan["family"])
    for strategy in plan["family"]:
        ran = {p.name for p in (tmp_path / "smoke" / strategy).iterdir()}
        assert ran == {f"seed-{k}" for k in range(plan["seeds"])}
    assert cli("report", results=tmp_path) == 0
    report = (tmp_path / "smoke/REPORT.md").read_text()
    assert "## Two stages: a replayed screen, a real confirmation" in report
    assert "Stage 2 decided" in report and "Sized again on a real pilot" in report
    assert ("capped by --max-seeds 7" in report) == (plan["power"] < plan["power_target"])
    a = analyze(tmp_path, "smoke", echo=False)
    assert set(a.tests["control"]) == {"tpe_median"}
    pd.testing.assert_frame_equal(pooled_scores(tmp_path, "smoke"), a.scores)  # the pilot's
    assert set(a.tests["strategy"]) == set(plan["candidates"])
