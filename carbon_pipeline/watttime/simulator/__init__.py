"""A stateful, loopback-only simulation of the WattTime v3 HTTP API, with fault injection."""

from carbon_pipeline.watttime.simulator.catalogue import REGIONS, Region
from carbon_pipeline.watttime.simulator.faults import DATA_KINDS, HTTP_KINDS, Fault
from carbon_pipeline.watttime.simulator.forecasting import issued_forecast
from carbon_pipeline.watttime.simulator.server import SimulatorServer, main
from carbon_pipeline.watttime.simulator.signal import moer_value
from carbon_pipeline.watttime.simulator.state import (
    FREE_PLAN_REGIONS,
    SIMULATOR_PASSWORD,
    SIMULATOR_USERNAME,
    SimulatorConfig,
    SimulatorState,
)

__all__ = [
    "DATA_KINDS",
    "FREE_PLAN_REGIONS",
    "HTTP_KINDS",
    "REGIONS",
    "SIMULATOR_PASSWORD",
    "SIMULATOR_USERNAME",
    "Fault",
    "Region",
    "SimulatorConfig",
    "SimulatorServer",
    "SimulatorState",
    "issued_forecast",
    "main",
    "moer_value",
]
