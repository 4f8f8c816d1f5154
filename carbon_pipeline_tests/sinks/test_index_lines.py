"""Line protocol of the signal index: its own measurement, an ``_index`` signal type, the percentile as sent."""

from __future__ import annotations

import pandas as pd

from carbon_pipeline.sinks.index_lines import signal_index_lines


def _frame(model_date: str | None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "region": ["PSCO"],
            "point_time": pd.to_datetime(["2024-06-18T18:40:00+00:00"], utc=True).as_unit("ns"),
            "percentile": [96.0],
            "units": ["percentile"],
            "model_date": [model_date],
        }
    )


def test_a_point_is_one_line_of_carbon_signal_index_never_carbon_intensity() -> None:
    assert signal_index_lines(_frame("2022-10-01"), signal_type="co2_moer", source="watttime") == [
        "carbon_signal_index,region=PSCO,grid_operator=PSCO,signal_type=co2_moer_index,source=watttime "
        'percentile=96.0,model_date="2022-10-01" 1718736000'
    ]


def test_a_point_without_a_model_date_has_no_model_date_field() -> None:
    [line] = signal_index_lines(_frame(None), signal_type="co2_aoer", source="simulator")
    assert ",signal_type=co2_aoer_index," in line and "model_date" not in line
