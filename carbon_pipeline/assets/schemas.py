"""The InfluxDB columns of each asset's measurement, as the asset page shows them (``dagster/column_schema``).

Every measurement shares the series tags of ``carbon_pipeline.sinks.line_protocol.series_prefix``; only the
timestamp's meaning, the extra tag and the fields differ.
"""

from __future__ import annotations

import dagster as dg


def _schema(time: str, *columns: dg.TableColumn) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn("time", "timestamp", description=time),
            dg.TableColumn("region", "tag", description="WattTime region, e.g. CAISO_NORTH."),
            dg.TableColumn("grid_operator", "tag", description="Grid operator of the region, from a lookup table."),
            dg.TableColumn("signal_type", "tag", description="WattTime signal, co2_moer."),
            dg.TableColumn("source", "tag", description="watttime, or simulator for the local deployment."),
            *columns,
        ]
    )


POINT_SCHEMA = _schema(
    "Start of the WattTime data point, UTC, whole seconds.",
    dg.TableColumn("moer_lbs_per_mwh", "float", description="Marginal emissions rate as WattTime reports it."),
    dg.TableColumn("carbon_intensity_gco2_kwh", "float", description="The same value in gCO2/kWh (x 0.45359237)."),
    dg.TableColumn("model_date", "string", description="WattTime model version that produced the value."),
    dg.TableColumn("imputed", "boolean", description="WattTime's imputed-data marker, when sent."),
    dg.TableColumn(
        "last_updated", "integer", description="When WattTime revised the value, Unix seconds; on revised points only."
    ),
)

FORECAST_SCHEMA = _schema(
    "The forecast point's time, UTC, whole seconds.",
    dg.TableColumn("horizon_minutes", "tag", description="Minutes from the issue's first point: 0 to 4320."),
    dg.TableColumn("moer_lbs_per_mwh", "float", description="Forecast marginal emissions rate, lbs CO2/MWh."),
    dg.TableColumn("carbon_intensity_gco2_kwh", "float", description="The same value in gCO2/kWh."),
    dg.TableColumn("generated_at", "integer", description="When WattTime issued the forecast, Unix seconds."),
    dg.TableColumn("model_date", "string", description="WattTime model version that produced the forecast."),
)

WINDOW_SCHEMA = _schema(
    "Start of the forecast's issue interval, UTC.",
    dg.TableColumn("window_hours", "tag", description="Length of the load's run, from CARBON_WINDOW_HOURS."),
    dg.TableColumn("window_start", "integer", description="Start of the cleanest window, Unix seconds."),
    dg.TableColumn("window_end", "integer", description="Its end, Unix seconds."),
    dg.TableColumn("window_start_iso", "string", description="Its start as ISO-8601 UTC, for templates."),
    dg.TableColumn("mean_gco2_kwh", "float", description="Mean forecast gCO2/kWh over the window."),
    dg.TableColumn("now_gco2_kwh", "float", description="The same for a window of that length starting now."),
    dg.TableColumn("cleaner_than_now_percent", "float", description="(now - window) / now x 100."),
    dg.TableColumn("current_percentile", "float", description="Now within the next 24 h: 0 cleanest, 100 dirtiest."),
    dg.TableColumn("generated_at", "integer", description="When WattTime issued the forecast, Unix seconds."),
)

INDEX_SCHEMA = _schema(
    "Start of the 5-minute period WattTime ranked, UTC, whole seconds; signal_type is suffixed _index.",
    dg.TableColumn("percentile", "float", description="WattTime's signal index: 0 cleanest to 100 dirtiest."),
    dg.TableColumn("model_date", "string", description="WattTime model version behind the index, when named."),
)
