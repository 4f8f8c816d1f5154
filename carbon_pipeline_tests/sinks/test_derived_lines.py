"""Lines of the cleanest windows and of forecast accuracy: exact text, tags and field types."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from carbon_pipeline.cleanest_windows import CleanestWindow
from carbon_pipeline.forecast_accuracy import ForecastAccuracy, HorizonError, WindowHitShare
from carbon_pipeline.sinks.derived_lines import cleanest_window_lines, forecast_accuracy_lines, window_hours_tag

ISSUE_TIME = datetime(2025, 1, 1, 0, 15, tzinfo=UTC)  # 1735690500
PREFIX = "region=CAISO_NORTH,grid_operator=CAISO,signal_type=co2_moer,source=watttime"


def window(**overrides: object) -> CleanestWindow:
    values: dict[str, object] = {
        "region": "CAISO_NORTH",
        "issue_time": ISSUE_TIME,
        "generated_at": ISSUE_TIME + timedelta(minutes=2, seconds=7),
        "window_hours": 2.0,
        "start": datetime(2025, 1, 1, 3, 0, tzinfo=UTC),
        "end": datetime(2025, 1, 1, 5, 0, tzinfo=UTC),
        "mean_gco2_kwh": 201.5,
        "now_mean_gco2_kwh": 403.0,
        "cleaner_than_now_percent": 50.0,
        "current_percentile": 96.86,
    }
    values.update(overrides)
    return CleanestWindow(**values)


def test_a_window_is_one_line_at_its_issue_time_with_integer_seconds_and_an_iso_start() -> None:
    assert cleanest_window_lines([window()], signal_type="co2_moer", source="watttime") == [
        f"carbon_cleanest_window,{PREFIX},window_hours=2 "
        'window_start=1735700400i,window_end=1735707600i,window_start_iso="2025-01-01T03:00:00Z",'
        "mean_gco2_kwh=201.5,now_gco2_kwh=403.0,cleaner_than_now_percent=50.0,current_percentile=96.86,"
        "generated_at=1735690627i 1735690500"
    ]


def test_whole_number_fields_stay_floats_so_a_field_never_changes_type() -> None:
    (line,) = cleanest_window_lines(
        [window(mean_gco2_kwh=0.0, cleaner_than_now_percent=0.0, current_percentile=100.0)],
        signal_type="co2_moer",
        source="watttime",
    )
    assert "mean_gco2_kwh=0.0," in line and "cleaner_than_now_percent=0.0," in line
    assert "current_percentile=100.0," in line


def test_series_tags_are_escaped_like_carbon_intensity() -> None:
    (line,) = cleanest_window_lines([window(window_hours=0.5)], signal_type="co2_moer", source="lab sim,1")
    assert line.startswith(
        r"carbon_cleanest_window,region=CAISO_NORTH,grid_operator=CAISO,signal_type=co2_moer,source=lab\ sim\,1,"
        "window_hours=0.5 "
    )


@pytest.mark.parametrize(("hours", "tag"), [(1, "1"), (2.0, "2"), (4.0, "4"), (0.5, "0.5"), (0.25, "0.25")])
def test_window_hours_tags_are_what_a_query_names(hours: float, tag: str) -> None:
    assert window_hours_tag(hours) == tag


def test_accuracy_is_a_line_per_bucket_then_per_window_length_at_the_days_start() -> None:
    accuracy = ForecastAccuracy(
        region="CAISO_NORTH",
        day=date(2025, 1, 1),
        issues=96,
        horizon_errors=(
            HorizonError("0-1h", 1152, 96, 2.0, 2.4495, -1.0),
            HorizonError("24-72h", 55296, 96, 9.5, 12.25, 0.0),
        ),
        window_hit_shares=(WindowHitShare(2.0, 96, 0.9375), WindowHitShare(4.0, 96, 1.0)),
    )
    assert forecast_accuracy_lines(accuracy, signal_type="co2_moer", source="watttime") == [
        f"carbon_forecast_accuracy,{PREFIX},horizon_bucket=0-1h "
        "mae_gco2_kwh=2.0,rmse_gco2_kwh=2.4495,bias_gco2_kwh=-1.0,points=1152i,issues=96i 1735689600",
        f"carbon_forecast_accuracy,{PREFIX},horizon_bucket=24-72h "
        "mae_gco2_kwh=9.5,rmse_gco2_kwh=12.25,bias_gco2_kwh=0.0,points=55296i,issues=96i 1735689600",
        f"carbon_forecast_accuracy,{PREFIX},window_hours=2 within_5_percent_share=0.9375,issues=96i 1735689600",
        f"carbon_forecast_accuracy,{PREFIX},window_hours=4 within_5_percent_share=1.0,issues=96i 1735689600",
    ]
