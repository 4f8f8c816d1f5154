"""The forecast serializers: exact lines, escaping, distinct points per forecast, bounded horizons, headlines."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from carbon_pipeline.sinks.forecast_lines import forecast_headline_lines, forecast_lines
from carbon_pipeline.sinks.line_protocol import LineProtocolError, line_series_key, line_timestamp
from carbon_pipeline_tests.support.forecast_frames import POINTS_PER_HOUR, ForecastIssue, forecast_frame

PREFIX = "carbon_forecast,region=CAISO_NORTH,grid_operator=CAISO,signal_type=co2_moer,source=watttime"
HEADLINE_PREFIX = "carbon_forecast_headline,region=CAISO_NORTH,grid_operator=CAISO,signal_type=co2_moer,source=watttime"
# 2025-01-01T00:07:30Z: the 00:00 issue interval, first point 00:05 (1735689900).
ISSUED = datetime(2025, 1, 1, 0, 7, 30, tzinfo=UTC)
ISSUED_SECONDS = 1735690050


def _lines(*issues: ForecastIssue, **tags: str) -> list[str]:
    options = {"signal_type": "co2_moer", "source": "watttime"} | tags
    return forecast_lines(forecast_frame(issues), **options)


def _headlines(*issues: ForecastIssue) -> list[str]:
    return forecast_headline_lines(forecast_frame(issues), signal_type="co2_moer", source="watttime")


def _hours(hours: float, moer: float = 1000.0) -> list[float]:
    return [moer + index for index in range(int(hours * POINTS_PER_HOUR))]


def test_lines_carry_the_horizon_tag_generated_at_and_point_time() -> None:
    lines = _lines(ForecastIssue(ISSUED, [1000.0, 812.3]), ForecastIssue(ISSUED + timedelta(minutes=15), [5.0]))
    assert lines == [
        f"{PREFIX},horizon_minutes=0 moer_lbs_per_mwh=1000.0,carbon_intensity_gco2_kwh=453.5924,"
        f'generated_at={ISSUED_SECONDS}i,model_date="2023-03-01" 1735689900',
        f"{PREFIX},horizon_minutes=5 moer_lbs_per_mwh=812.3,carbon_intensity_gco2_kwh=368.4531,"
        f'generated_at={ISSUED_SECONDS}i,model_date="2023-03-01" 1735690200',
        f"{PREFIX},horizon_minutes=0 moer_lbs_per_mwh=5.0,carbon_intensity_gco2_kwh=2.268,"
        f'generated_at={ISSUED_SECONDS + 900}i,model_date="2023-03-01" 1735690800',
    ]


def test_model_date_is_left_out_when_watttime_sent_none() -> None:
    (line,) = _lines(ForecastIssue(ISSUED, [1000.0], model_date=None))
    assert line == (
        f"{PREFIX},horizon_minutes=0 moer_lbs_per_mwh=1000.0,carbon_intensity_gco2_kwh=453.5924,"
        f"generated_at={ISSUED_SECONDS}i 1735689900"
    )


def test_tags_and_model_date_are_escaped() -> None:
    (line,) = _lines(ForecastIssue(ISSUED, [1.0], model_date='2023 "v1"'), signal_type="co2 moer", source="lab,x=1")
    assert line.startswith(
        r"carbon_forecast,region=CAISO_NORTH,grid_operator=CAISO,signal_type=co2\ moer,source=lab\,x\=1,"
        "horizon_minutes=0 "
    )
    assert r'model_date="2023 \"v1\""' in line


def test_two_forecasts_of_the_same_point_are_distinct_points() -> None:
    older, newer = ForecastIssue(ISSUED, _hours(1)), ForecastIssue(ISSUED + timedelta(minutes=15), _hours(1))
    lines = _lines(older, newer)
    shared = line_timestamp(lines[3])  # the older forecast's 15-minute point is the newer one's first
    assert shared == line_timestamp(lines[POINTS_PER_HOUR])
    assert len({(line_series_key(line), line_timestamp(line)) for line in lines}) == len(lines)


def test_a_forecast_serializes_to_the_same_lines_alone_or_in_a_backfill() -> None:
    issue = ForecastIssue(ISSUED + timedelta(minutes=15), _hours(2, moer=700.0))
    neighbours = [ForecastIssue(ISSUED + timedelta(minutes=15 * step), _hours(2)) for step in (0, 2, 3)]
    in_backfill = set(_lines(*neighbours[:1], issue, *neighbours[1:]))
    assert set(_lines(issue)) <= in_backfill
    assert _lines(issue) == _lines(issue)


@pytest.mark.parametrize("horizon", [-5, 4325, 7])
@pytest.mark.parametrize("serializer", [forecast_lines, forecast_headline_lines])
def test_a_horizon_that_would_grow_the_tag_is_refused_naming_region_and_issue(
    horizon: int, serializer: Callable[..., list[str]]
) -> None:
    frame = forecast_frame([ForecastIssue(ISSUED, [1.0, 2.0])])
    frame.loc[1, "horizon_minutes"] = horizon
    with pytest.raises(LineProtocolError, match=rf"region CAISO_NORTH, .*2025-01-01T00:00:00\+00:00.* {horizon} "):
        serializer(frame, signal_type="co2_moer", source="watttime")


def test_the_72_hour_horizon_is_accepted() -> None:
    frame = forecast_frame([ForecastIssue(ISSUED, [1.0])]).assign(horizon_minutes=4320)
    (line,) = forecast_lines(frame, signal_type="co2_moer", source="watttime")
    assert ",horizon_minutes=4320 " in line


def test_headlines_are_the_60_and_1435_minute_points_at_the_issue_interval() -> None:
    issue = ForecastIssue(ISSUED, _hours(24))  # 1012 lbs/MWh at 60 minutes, 1287 at 1435
    assert _headlines(issue) == [f"{HEADLINE_PREFIX} forecast_1h=459.0355,forecast_24h=583.7734 1735689600"]
    assert issue.point_time(60) == datetime(2025, 1, 1, 1, 5, tzinfo=UTC)


def test_a_forecast_short_of_24_hours_has_no_24_hour_headline_and_a_short_one_no_line() -> None:
    short_day = ForecastIssue(ISSUED, _hours(24)[:-1])
    hour = ForecastIssue(ISSUED + timedelta(minutes=15), _hours(1))
    assert _headlines(short_day, hour) == [f"{HEADLINE_PREFIX} forecast_1h=459.0355 1735689600"]


def test_headlines_keep_regions_apart() -> None:
    lines = _headlines(ForecastIssue(ISSUED, _hours(2)), ForecastIssue(ISSUED, _hours(2, 50.0), region="PJM_DC"))
    assert [line.split(" ")[0] for line in lines] == [
        HEADLINE_PREFIX,
        "carbon_forecast_headline,region=PJM_DC,grid_operator=PJM,signal_type=co2_moer,source=watttime",
    ]
    assert pd.Series([line_timestamp(line) for line in lines]).eq(1735689600).all()
