"""watttime_access: what the WattTime account may read for each configured region, read from /v3/my-access.

A free account reads MOER and forecasts for CAISO_NORTH only; every other region answers each request with
a 403. This asset records the plan on its asset page (a table with a row per configured region, and counts),
and the schedules and gap fillers read its latest materialization (``carbon_pipeline.access_gate``) to leave
out regions the plan does not cover instead of failing on them every 15 minutes. A configured region the
plan does not list is shown as "not in your plan": nothing is guessed for it.
"""

from collections.abc import Sequence

import dagster as dg

from carbon_pipeline.assets.carbon_intensity import GROUP_NAME, WATTTIME_POOL
from carbon_pipeline.watttime.access import (
    FORECAST,
    HISTORICAL,
    KNOWN_ENDPOINTS,
    SIGNAL_INDEX,
    AccountAccess,
    RegionAccess,
    parse_my_access,
)
from carbon_pipeline.watttime.endpoints import DEFAULT_SIGNAL_TYPE
from carbon_pipeline.watttime.resource import WattTimeSource

ASSET_NAME = "watttime_access"
ENDPOINTS_KEY = "endpoints_by_region"
NOT_IN_PLAN = "not in your plan"
INDEX_ONLY = "signal index only"
ACCESS_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("region", "string", description="A configured region"),
        dg.TableColumn("plan", "string", description="What the account may read there, in short"),
        dg.TableColumn("historical_moer", "bool", description="v3/historical: the measured MOER"),
        dg.TableColumn("forecast", "bool", description="v3/forecast: MOER forecasts"),
        dg.TableColumn("signal_index", "bool", description="v3/signal-index: the 0-100 percentile"),
        dg.TableColumn("data_start", "string", description="Earliest historical MOER (UTC), per my-access"),
        dg.TableColumn("period_seconds", "int", description="Seconds between the region's points"),
    ]
)

# Requested while never materialized (a deployment's first ticks), but not again after a failed read: the
# daily schedule retries that, so a bad account is not asked every minute.
ACCESS_CONDITION = (
    dg.AutomationCondition.missing()
    & ~dg.AutomationCondition.in_progress()
    & ~dg.AutomationCondition.execution_failed()
).with_label("never read")


def build_watttime_access_asset(regions: Sequence[str]) -> dg.AssetsDefinition:
    """The access asset for the configured ``regions``; it is materialized once a day and when missing."""

    @dg.asset(
        name=ASSET_NAME,
        group_name=GROUP_NAME,
        kinds={"python"},
        pool=WATTTIME_POOL,
        automation_condition=ACCESS_CONDITION,
        description=(
            "What the WattTime plan allows per configured region (historical MOER, forecast, signal index, "
            "data start, period), from /v3/my-access. The schedules and gap fillers request only the regions "
            "it allows."
        ),
    )
    def watttime_access(context: dg.AssetExecutionContext, watttime: WattTimeSource) -> dg.MaterializeResult:
        access = parse_my_access(watttime.get_client().my_access())
        rows = [access_row(region, access.region(DEFAULT_SIGNAL_TYPE, region)) for region in regions]
        context.log.info("WattTime plan per region: %s", "; ".join(f"{row['region']}: {row['plan']}" for row in rows))
        return dg.MaterializeResult(metadata=access_metadata(access, regions, rows))

    return watttime_access


def access_row(region: str, entry: RegionAccess | None) -> dict[str, str | int | bool | None]:
    """One table row: what ``entry`` (None when my-access does not list ``region``) allows there."""
    if entry is None:
        return {
            "region": region,
            "plan": NOT_IN_PLAN,
            "historical_moer": False,
            "forecast": False,
            "signal_index": False,
            "data_start": None,
            "period_seconds": None,
        }
    historical = entry.endpoint(HISTORICAL)
    start = historical.data_start if historical is not None else None
    return {
        "region": region,
        "plan": _plan_label(entry),
        "historical_moer": entry.allows(HISTORICAL),
        "forecast": entry.allows(FORECAST),
        "signal_index": entry.allows(SIGNAL_INDEX),
        "data_start": None if start is None else start.strftime("%Y-%m-%dT%H:%MZ"),
        "period_seconds": entry.period_seconds,
    }


def _plan_label(entry: RegionAccess) -> str:
    names = {HISTORICAL: "MOER", FORECAST: "forecast", SIGNAL_INDEX: "signal index"}
    allowed = [names[endpoint] for endpoint in KNOWN_ENDPOINTS if entry.allows(endpoint)]
    if allowed == [names[SIGNAL_INDEX]]:
        return INDEX_ONLY
    return " + ".join(allowed) if allowed else "listed, but none of v3/historical, v3/forecast, v3/signal-index"


def access_metadata(
    access: AccountAccess, regions: Sequence[str], rows: Sequence[dict[str, str | int | bool | None]]
) -> dict[str, dg.MetadataValue | int | str]:
    """The table, the counts the asset page plots over time, and per region the endpoints the gates read."""
    endpoints = {}
    for region in regions:
        entry = access.region(DEFAULT_SIGNAL_TYPE, region)
        endpoints[region] = [endpoint.endpoint for endpoint in entry.endpoints] if entry else []
    return {
        "access": dg.MetadataValue.table([dg.TableRecord(row) for row in rows], ACCESS_SCHEMA),
        "signal_type": DEFAULT_SIGNAL_TYPE,
        "regions_with_moer": sum(1 for row in rows if row["historical_moer"]),
        "regions_with_forecast": sum(1 for row in rows if row["forecast"]),
        "regions_with_index_only": sum(1 for row in rows if row["plan"] == INDEX_ONLY),
        "regions_with_nothing": sum(1 for row in rows if not _any_known(row)),
        ENDPOINTS_KEY: dg.MetadataValue.json(endpoints),
    }


def _any_known(row: dict[str, str | int | bool | None]) -> bool:
    return bool(row["historical_moer"] or row["forecast"] or row["signal_index"])
