"""The serializer shared by the InfluxDB and file sinks: exact lines, safe escaping, no injection."""

from datetime import UTC, datetime

import pandas as pd
import pytest

from carbon_pipeline.sinks.line_protocol import (
    LineProtocolError,
    carbon_intensity_lines,
    escape_string_field,
    escape_tag,
    line_series_key,
    line_timestamp,
)


def _frame(**overrides: object) -> pd.DataFrame:
    columns = {
        "region": ["CAISO_NORTH", "CAISO_NORTH"],
        "point_time": pd.to_datetime(["2025-01-01T00:00:00Z", "2025-01-01T00:05:00Z"], utc=True).as_unit("ns"),
        "moer_lbs_per_mwh": [1000.0, 812.3],
        "units": ["lbs_co2_per_mwh"] * 2,
        "model_date": ["2023-03-01", None],
        "imputed": pd.array([True, None], dtype="boolean"),
    }
    columns.update(overrides)
    frame = pd.DataFrame(columns)
    return frame.assign(carbon_intensity_gco2_kwh=frame["moer_lbs_per_mwh"] * 0.45359237)


def test_lines_carry_schema_tags_fields_and_second_timestamps() -> None:
    lines = carbon_intensity_lines(_frame(), signal_type="co2_moer", source="watttime")
    assert lines == [
        "carbon_intensity,region=CAISO_NORTH,grid_operator=CAISO,signal_type=co2_moer,source=watttime "
        'moer_lbs_per_mwh=1000.0,carbon_intensity_gco2_kwh=453.59237,model_date="2023-03-01",imputed=true 1735689600',
        "carbon_intensity,region=CAISO_NORTH,grid_operator=CAISO,signal_type=co2_moer,source=watttime "
        f"moer_lbs_per_mwh=812.3,carbon_intensity_gco2_kwh={812.3 * 0.45359237!r} 1735689900",
    ]


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [("a b", r"a\ b"), ("a,b", r"a\,b"), ("a=b", r"a\=b"), ('say "hi"', r'say\ "hi"'), ("x\\y", "x\\y")],
)
def test_tag_escaping(raw: str, escaped: str) -> None:
    assert escape_tag(raw) == escaped


@pytest.mark.parametrize("raw", ["a\nb", "a\rb", "", "ends\\"])
def test_tag_values_that_could_inject_are_refused(raw: str) -> None:
    with pytest.raises(LineProtocolError):
        escape_tag(raw)


def test_string_fields_escape_quotes_and_backslashes_and_refuse_newlines() -> None:
    assert escape_string_field('he said "hi" \\ ok') == '"he said \\"hi\\" \\\\ ok"'
    with pytest.raises(LineProtocolError, match="line break"):
        escape_string_field("2023\n03")


def test_series_key_and_timestamp_parse_back_escaped_lines() -> None:
    line = r"carbon_intensity,region=A,grid_operator=a\ b\,c source=1 1735689600"
    assert line_series_key(line) == r"carbon_intensity,region=A,grid_operator=a\ b\,c"
    assert line_timestamp(line) == 1735689600
    assert datetime.fromtimestamp(line_timestamp(line), UTC) == datetime(2025, 1, 1, tzinfo=UTC)
