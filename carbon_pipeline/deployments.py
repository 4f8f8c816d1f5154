"""Resources per deployment: the same asset, fed by the embedded simulator locally and by WattTime in production.

Secrets are ``EnvVar``s, resolved at run launch and never stored in run config or shown in the UI;
settings that are not secret are read at load so a malformed one fails the code location at once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import get_args

import dagster as dg
from pydantic import ValidationError

from carbon_pipeline.notifier import DEFAULT_UI_URL, AlertNotifier, is_http_url
from carbon_pipeline.settings import ConfigurationError, Deployment, one_of
from carbon_pipeline.sinks.files import LineProtocolFileSink
from carbon_pipeline.sinks.influxdb import InfluxDBResource, WriteApi
from carbon_pipeline.watttime.endpoints import WATTTIME_BASE_URL
from carbon_pipeline.watttime.resource import WattTimeResource
from carbon_pipeline.watttime.simulated import SimulatedWattTimeResource

DEFAULT_DAGSTER_HOME = ".dagster_home"
FIELD_VARIABLES = {
    "host": "INFLUXDB_HOST",
    "database": "INFLUXDB_DATABASE",
    "base_url": "WATTTIME_BASE_URL",
    "ui_url": "CARBON_UI_URL",
}


def resources_for(deployment: Deployment, environ: Mapping[str, str] | None = None) -> dict[str, object]:
    env = os.environ if environ is None else environ
    resources = local_resources(env) if deployment == "local" else production_resources(env)
    return resources | {"alert_notifier": alert_notifier(env)}


def alert_notifier(env: Mapping[str, str]) -> AlertNotifier:
    """Alerts always reach the Dagster log; ``ALERT_WEBHOOK_URL`` (a secret: Slack's embed a token) adds a webhook."""
    ui_url = env.get("CARBON_UI_URL") or DEFAULT_UI_URL
    webhook = env.get("ALERT_WEBHOOK_URL", "").strip()
    if webhook and not is_http_url(webhook):
        raise ConfigurationError(
            "ALERT_WEBHOOK_URL: expected an http:// or https:// URL (value not shown: it is a secret)."
        )
    try:
        if webhook:
            return AlertNotifier(webhook_url=dg.EnvVar("ALERT_WEBHOOK_URL"), ui_url=ui_url)
        return AlertNotifier(ui_url=ui_url)
    except ValidationError as error:
        raise ConfigurationError(_problems(error)) from None


def local_resources(env: Mapping[str, str]) -> dict[str, object]:
    """No account, no internet, no InfluxDB: simulated WattTime, points in line-protocol files."""
    return {
        "watttime": SimulatedWattTimeResource(),
        "point_sink": LineProtocolFileSink(directory=str(line_protocol_directory(env))),
    }


def line_protocol_directory(env: Mapping[str, str]) -> Path:
    """``CARBON_LINE_PROTOCOL_DIR``, else ``$DAGSTER_HOME/line_protocol``, next to the instance recording the runs."""
    explicit = env.get("CARBON_LINE_PROTOCOL_DIR")
    if explicit:
        return Path(explicit).resolve()
    return Path(env.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME).resolve() / "line_protocol"


def production_resources(env: Mapping[str, str]) -> dict[str, object]:
    """Real WattTime and InfluxDB; presence of every variable was checked by ``PipelineSettings``."""
    try:
        return {
            "watttime": WattTimeResource(
                username=dg.EnvVar("WATTTIME_USERNAME"),
                password=dg.EnvVar("WATTTIME_PASSWORD"),
                base_url=env.get("WATTTIME_BASE_URL") or WATTTIME_BASE_URL,
            ),
            "point_sink": InfluxDBResource(
                host=env["INFLUXDB_HOST"],
                token=dg.EnvVar("INFLUXDB_TOKEN"),
                database=env["INFLUXDB_DATABASE"],
                write_api=_write_api(env),
            ),
        }
    except ValidationError as error:
        raise ConfigurationError(_problems(error)) from None


def _write_api(env: Mapping[str, str]) -> WriteApi:
    return one_of(
        "INFLUXDB_WRITE_API",
        env.get("INFLUXDB_WRITE_API", "v3"),
        get_args(WriteApi),
        "v3 (InfluxDB 3, /api/v3/write_lp) or v2 (InfluxDB 2.x, Cloud, 1.8+)",
    )


def _problems(error: ValidationError) -> str:
    """Pydantic names fields; the message we raise names the variable behind each and what is expected."""
    return "; ".join(
        f"{FIELD_VARIABLES.get(str(item['loc'][0]), item['loc'])}: {item['msg']}" for item in error.errors()
    )
