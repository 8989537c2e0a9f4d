"""The budget's currency: FLOPs against steps and measured seconds, and a probed device."""

from types import SimpleNamespace

import pandas as pd

from harness.analysis import currency


def _rungs(batch_of: dict[str, int], seconds_per_flop: dict[str, float]) -> pd.DataFrame:
    rows = []
    for strategy, batch in batch_of.items():
        for seed in (0, 1):
            for trial in range(3):
                flops = 1e9 * (trial + 1)
                rows.append(
                    {
                        "strategy": strategy,
                        "seed": seed,
                        "trial": trial,
                        "rung": 1,
                        "samples": 4096,
                        "train_flops": flops,
                        "train_seconds": flops * seconds_per_flop[strategy],
                        "param_batch_size": batch,
                    }
                )
    return pd.DataFrame(rows)


def test_a_strategy_on_larger_batches_is_cheaper_per_step_than_its_flops_say():
    rungs = _rungs({"tpe_median": 128, "tpe_asha": 512}, {"tpe_median": 1e-9, "tpe_asha": 1e-9})
    table = currency.spend_by_strategy(rungs, {})
    row = table.set_index("strategy").loc["tpe_asha"]
    assert row["steps per FLOP vs tpe_median"] == 0.25
    assert row["seconds per FLOP vs tpe_median"] == 1.0
    text = currency.currency_text(table, None)
    assert "tpe_asha takes -75% steps per FLOP" in text and "understates it" in text
    assert "FLOPs priced it fairly" in text and "run `plan --probe`" in text


def test_equal_batches_say_the_currency_does_not_change_the_comparison():
    rungs = _rungs({"tpe_median": 128, "random": 128}, {"tpe_median": 1e-9, "random": 1.3e-9})
    text = currency.currency_text(currency.spend_by_strategy(rungs, {}), None)
    assert "does not change the comparison" in text and "contention counts in that" in text
    replayed = currency.currency_text(currency.spend_by_strategy(rungs, {}), None, replayed=True)
    assert "the surrogate's, not measured" in replayed and "contention" not in replayed


def test_a_batch_not_searched_is_read_from_the_runs_metadata():
    rungs = _rungs({"tpe_median": 128, "random": 128}, {"tpe_median": 1e-9, "random": 1e-9})
    rungs = rungs.drop(columns="param_batch_size")
    meta = {
        (s, k): {"base_config": {"batch_size": b}}
        for s, b in (("tpe_median", 64), ("random", 256))
        for k in (0, 1)
    }
    row = currency.spend_by_strategy(rungs, meta).set_index("strategy").loc["random"]
    assert row["steps per FLOP vs tpe_median"] == 0.25


def test_a_probe_says_which_price_the_device_follows():
    # launch-bound: three configurations take the same time per step, whatever their FLOPs
    probe = {
        "device": "cuda:0",
        "samples": 65536,
        "configs": [
            {"train_seconds": 2.0, "train_flops": f, "train_steps": 128} for f in (1e11, 4e11, 9e11)
        ],
    }
    probed = currency.probed_prices(probe)
    assert probed["step_spread"] == 1.0 and probed["flop_spread"] > 5
    rungs = _rungs({"tpe_median": 128, "random": 128}, {"tpe_median": 1e-9, "random": 1e-9})
    inputs = SimpleNamespace(
        analysis=SimpleNamespace(results=SimpleNamespace(rungs=rungs, meta={})),
        plan={"probe": probe},
    )
    blocks = currency.currency_section(inputs)
    assert blocks[0] == ("h2", "The budget's currency")
    assert "follows steps more closely" in blocks[1][1] and blocks[2][0] == "table"


def test_no_probe_or_no_flops_is_said_not_guessed():
    assert currency.probed_prices(None) is None
    two = {"configs": [{"train_seconds": 1.0, "train_flops": 1e9, "train_steps": 8}] * 2}
    assert currency.probed_prices(two) is None  # too few to tell a price's spread
    old = {"configs": [{"train_seconds": 1.0}] * 3}  # a probe of an earlier version
    assert currency.probed_prices(old) is None
    assert "cannot be checked" in currency.currency_text(pd.DataFrame(), None)
