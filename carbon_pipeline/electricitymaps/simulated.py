"""Electricity Maps for the local deployment: the real client against a simulator embedded in the run process."""

from __future__ import annotations

import logging
import secrets

import dagster as dg
from pydantic import PrivateAttr

from carbon_pipeline.electricitymaps.client import ElectricityMapsClient
from carbon_pipeline.electricitymaps.resource import ElectricityMapsSource
from carbon_pipeline.electricitymaps.simulator import ElectricityMapsSimulator, SimulatorConfig
from carbon_pipeline.electricitymaps.simulator.state import PAID

SIMULATED_LABEL = "SIMULATED: embedded Electricity Maps simulator (deterministic values, not real grid data)"


class SimulatedElectricityMapsResource(ElectricityMapsSource):
    """Electricity Maps v3 simulated over loopback HTTP inside each run: no token, no internet.

    The production client runs unchanged; only the server is simulated, with deterministic values and the
    newest hours estimated. Each run serves its own simulator on a free loopback port with a random paid-plan
    token, and points are tagged ``source=simulator`` so they can never pass for Electricity Maps'.
    """

    _server: ElectricityMapsSimulator | None = PrivateAttr(default=None)

    @property
    def source_name(self) -> str:
        return "simulator"

    def data_source_label(self) -> str:
        return SIMULATED_LABEL

    def open_client(self, logger: logging.Logger | None) -> ElectricityMapsClient:
        """Start the run's simulator, stopped again at teardown, and a client for it."""
        token = secrets.token_urlsafe(24)
        self._server = ElectricityMapsSimulator(SimulatorConfig(tokens={token: PAID})).start()
        return self._client_for(token, self._server.api_url, logger)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        super().teardown_after_execution(context)
        if self._server is not None:
            self._server.stop()
            self._server = None
