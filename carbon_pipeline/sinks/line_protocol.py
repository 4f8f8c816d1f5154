"""The InfluxDB point schema and its line-protocol serializer.

Lines are built here rather than by influxdb3-python's DataFrame serializer: 0.21 escapes tags with
the string-field rules when a column holds NaN, matches the timestamp column by substring and
truncates ms/us timestamps through floats. One serializer also guarantees that the local file sink
and InfluxDB receive byte-identical lines.

Schema: measurement ``carbon_intensity``; tags ``region``, ``grid_operator``, ``signal_type``,
``source`` (in that order: InfluxDB 3 sorts by the tag order of the first write); fields
``moer_lbs_per_mwh``, ``carbon_intensity_gco2_kwh``, ``model_date``, when WattTime marks it,
``imputed`` and, on a point the revision sweep rewrote, ``last_updated`` (integer Unix seconds: when
WattTime published the value); timestamps in whole seconds.
"""

from __future__ import annotations

import pandas as pd

from carbon_pipeline.regions import grid_operator_for

MEASUREMENT = "carbon_intensity"
PRECISION = "s"
LBS_PER_MWH_TO_G_PER_KWH = 0.45359237

_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_STRING_FIELD_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})
_FORBIDDEN = ("\n", "\r")


class LineProtocolError(ValueError):
    """A value cannot be represented in line protocol without changing its meaning."""


def escape_tag(value: str) -> str:
    """Escape a tag key or value, refusing what no escape can make safe.

    Newlines end a line and a trailing backslash would escape the separator after it, so either
    could smuggle extra tags or points into a write.
    """
    _refuse_line_breaks(value)
    if not value or value.endswith("\\"):
        raise LineProtocolError(f"tag value {value!r} is empty or ends with a backslash")
    return value.translate(_TAG_ESCAPES)


def escape_string_field(value: str) -> str:
    _refuse_line_breaks(value)
    return '"' + value.translate(_STRING_FIELD_ESCAPES) + '"'


def _refuse_line_breaks(value: str) -> None:
    if any(char in value for char in _FORBIDDEN):
        raise LineProtocolError(f"value {value!r} contains a line break")


def series_prefix(region: str, signal_type: str, source: str, measurement: str = MEASUREMENT) -> str:
    """Measurement and tag set shared by every point of one region's series."""
    return tagged_prefix(measurement, series_tags(region, signal_type, source))


def tagged_prefix(measurement: str, tags: tuple[tuple[str, str], ...]) -> str:
    """``measurement,key=value,...`` with every tag value escaped (or refused), in the order given."""
    return measurement + "".join(f",{key}={escape_tag(value)}" for key, value in tags)


def series_tags(region: str, signal_type: str, source: str) -> tuple[tuple[str, str], ...]:
    """The tags of one region's series, in the order every line lists them."""
    return (
        ("region", region),
        ("grid_operator", grid_operator_for(region)),
        ("signal_type", signal_type),
        ("source", source),
    )


def carbon_intensity_lines(frame: pd.DataFrame, *, signal_type: str, source: str) -> list[str]:
    """Serialize a validated MOER frame, one line per point.

    Expects the columns of ``carbon_pipeline.validation.MoerFrame`` plus
    ``carbon_intensity_gco2_kwh``; validation has already ruled out NaN, infinities and duplicates.
    """
    prefixes = {region: series_prefix(region, signal_type, source) for region in frame["region"].unique()}
    seconds = (frame["point_time"].astype("int64") // 1_000_000_000).tolist()
    models = frame["model_date"].astype(object).where(frame["model_date"].notna(), None).tolist()
    model_fields = {model: model_date_field(model) for model in set(models)}
    imputed_fields = [_imputed_field(flag) for flag in frame["imputed"].tolist()]
    updated_fields = _last_updated_fields(frame)
    return [
        f"{prefixes[region]} moer_lbs_per_mwh={moer!r},carbon_intensity_gco2_kwh={grams!r}"
        f"{model_fields[model]}{imputed}{updated} {second}"
        for region, moer, grams, model, imputed, updated, second in zip(
            frame["region"].tolist(),
            frame["moer_lbs_per_mwh"].tolist(),
            frame["carbon_intensity_gco2_kwh"].tolist(),
            models,
            imputed_fields,
            updated_fields,
            seconds,
            strict=True,
        )
    ]


def _last_updated_fields(frame: pd.DataFrame) -> list[str]:
    """``last_updated`` (Unix seconds) on points whose frame says when WattTime last changed them: revisions."""
    if "last_updated" not in frame.columns:
        return [""] * len(frame)
    seconds = (frame["last_updated"].astype("int64") // 1_000_000_000).tolist()
    return [f",last_updated={second}i" for second in seconds]


def model_date_field(model: str | None) -> str:
    return "" if model is None else f",model_date={escape_string_field(model)}"


def _imputed_field(flag: object) -> str:
    if flag is pd.NA or flag is None:
        return ""
    return ",imputed=true" if flag else ",imputed=false"


def line_measurement(line: str) -> str:
    """The measurement a line belongs to; ours never contain a comma or a space."""
    return line[: min(index for index in (line.find(","), line.find(" ")) if index >= 0)]


def line_timestamp(line: str) -> int:
    return int(line.rsplit(" ", 1)[1])


def line_moer(line: str) -> float:
    """The MOER of a ``carbon_intensity`` line: its first field, as ``carbon_intensity_lines`` writes it."""
    fields = line[len(line_series_key(line)) + 1 :]
    name, _, value = fields.split(",", 1)[0].partition("=")
    if name != "moer_lbs_per_mwh":
        raise LineProtocolError(f"line does not start its fields with moer_lbs_per_mwh: {line[:120]!r}")
    return float(value)


def line_series_key(line: str) -> str:
    """Measurement and tags of a line: with the timestamp, what InfluxDB treats as the same point."""
    index = 0
    while True:
        index = line.index(" ", index)
        if line[index - 1] != "\\":
            return line[:index]
        index += 1
