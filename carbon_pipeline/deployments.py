"""Resources per deployment: the same asset, fed by the embedded simulator locally and by WattTime in production.

Built from ``PipelineSettings`` alone. Secrets are ``EnvVar``s, resolved at run launch and never
stored in run config or shown in the UI; the settings only record that they are present.
"""

from __future__ import annotations

import dagster as dg
from pydantic import ValidationError

from carbon_pipeline.electricitymaps.resource import ElectricityMapsResource
from carbon_pipeline.electricitymaps.simulated import SimulatedElectricityMapsResource
from carbon_pipeline.notifier import AlertNotifier
from carbon_pipeline.settings import ELECTRICITYMAPS_API_TOKEN_VARIABLE, ConfigurationError, PipelineSettings
from carbon_pipeline.sinks.files import LineProtocolFileSink
from carbon_pipeline.sinks.influxdb import InfluxDBResource
from carbon_pipeline.watttime.resource import WattTimeResource
from carbon_pipeline.watttime.simulated import SimulatedWattTimeResource

# Resource fields that come from settings, so a resource's own validation error names the variable.
FIELD_SETTINGS = {
    "host": "influxdb_host",
    "database": "influxdb_database",
    "base_url": "watttime_base_url",
    "ui_url": "ui_url",
}


def resources_for(settings: PipelineSettings) -> dict[str, object]:
    resources = local_resources(settings) if settings.deployment == "local" else production_resources(settings)
    return resources | electricitymaps_resources(settings) | {"alert_notifier": alert_notifier(settings)}


def electricitymaps_resources(settings: PipelineSettings) -> dict[str, object]:
    """Electricity Maps only where zones are configured: the simulated twin locally, the API with an EnvVar token
    in production (its presence checked when the settings were read)."""
    if not settings.electricitymaps_zones:
        return {}
    factor = settings.electricitymaps_emission_factor
    if settings.deployment == "local":
        return {"electricitymaps": SimulatedElectricityMapsResource(emission_factor_type=factor)}
    resource = ElectricityMapsResource(
        api_token=dg.EnvVar(ELECTRICITYMAPS_API_TOKEN_VARIABLE),
        base_url=settings.electricitymaps_base_url,
        requests_per_second=settings.electricitymaps_requests_per_second,
        emission_factor_type=factor,
        shared_limits_folder=str(settings.dagster_home / "electricitymaps_limits"),
    )
    return {"electricitymaps": resource}


def alert_notifier(settings: PipelineSettings) -> AlertNotifier:
    """Alerts always reach the Dagster log; ``ALERT_WEBHOOK_URL`` (a secret: Slack's embed a token) adds a webhook."""
    try:
        if settings.alert_webhook:
            return AlertNotifier(webhook_url=dg.EnvVar("ALERT_WEBHOOK_URL"), ui_url=settings.ui_url)
        return AlertNotifier(ui_url=settings.ui_url)
    except ValidationError as error:
        problems = _problems(error)
    raise ConfigurationError(problems)


def local_resources(settings: PipelineSettings) -> dict[str, object]:
    """No account, no internet, no InfluxDB: simulated WattTime, points in line-protocol files."""
    return {
        "watttime": SimulatedWattTimeResource(),
        "point_sink": LineProtocolFileSink(directory=str(settings.line_protocol_directory)),
    }


def production_resources(settings: PipelineSettings) -> dict[str, object]:
    """Real WattTime and InfluxDB; presence of every secret was checked when the settings were read."""
    try:
        return {
            "watttime": WattTimeResource(
                username=dg.EnvVar("WATTTIME_USERNAME"),
                password=dg.EnvVar("WATTTIME_PASSWORD"),
                base_url=settings.watttime_base_url,
                shared_limits_folder=str(settings.watttime_limits_directory),
            ),
            "point_sink": InfluxDBResource(
                host=settings.influxdb_host,
                token=dg.EnvVar("INFLUXDB_TOKEN"),
                database=settings.influxdb_database,
                write_api=settings.influxdb_write_api,
            ),
        }
    except ValidationError as error:
        problems = _problems(error)
    raise ConfigurationError(problems)


def _problems(error: ValidationError) -> str:
    """Pydantic names resource fields; the message we raise names the variable behind each and what is expected.

    Built outside the ``except`` block by the callers, so the pydantic error (which holds the values) is not chained.
    """
    return "; ".join(f"{_variable(str(item['loc'][0]))}: {item['msg']}" for item in error.errors())


def _variable(field: str) -> str:
    setting = FIELD_SETTINGS.get(field)
    return PipelineSettings.variable(setting) if setting else field
