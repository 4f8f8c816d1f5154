"""A stateful, loopback-only simulation of the Electricity Maps v3 carbon-intensity API, with fault injection."""

from carbon_pipeline.electricitymaps.simulator.server import ElectricityMapsSimulator, main
from carbon_pipeline.electricitymaps.simulator.state import FREE_TOKEN, PAID_TOKEN, Fault, SimulatorConfig

__all__ = ["FREE_TOKEN", "PAID_TOKEN", "ElectricityMapsSimulator", "Fault", "SimulatorConfig", "main"]
