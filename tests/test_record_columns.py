"""The records' columns: one name for each parameter, read back the same way, and one MAE
column per forecast horizon."""

import pandas as pd

from harness.records import (
    as_param_columns,
    is_param_column,
    param_column,
    param_columns,
    param_name,
)


def test_a_parameter_column_names_its_parameter_and_back():
    assert param_column("learning_rate") == "param_learning_rate"
    assert param_name(param_column("learning_rate")) == "learning_rate"
    assert as_param_columns({"dropout": 0.2, "hidden_1": 64}) == {
        "param_dropout": 0.2,
        "param_hidden_1": 64,
    }


def test_only_parameter_columns_are_picked_in_the_tables_order():
    frame = pd.DataFrame(columns=["trial", param_column("b"), 3, "val_mae", param_column("a")])
    assert param_columns(frame) == ["param_b", "param_a"]
    assert not is_param_column(3)
    assert not is_param_column("parameters")


def test_the_rung_records_have_one_mae_column_per_forecast_horizon():
    from harness.records import RUNG_COLUMNS
    from model.windows import HORIZONS

    per_horizon = [c for c in RUNG_COLUMNS if c.startswith("val_mae_h")]
    assert per_horizon == [f"val_mae_h{h}" for h in HORIZONS]
