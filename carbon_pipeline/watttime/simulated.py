"""WattTime for the local deployment: the real client against a simulator embedded in the run process."""

from __future__ import annotations

import logging
import secrets

import dagster as dg
from pydantic import Field, PrivateAttr

from carbon_pipeline.watttime.client import WattTimeClient
from carbon_pipeline.watttime.resource import WattTimeSource
from carbon_pipeline.watttime.simulator import SIMULATOR_USERNAME, SimulatorConfig, SimulatorServer

SIMULATED_LABEL = "SIMULATED: embedded WattTime simulator (local deployment), not real grid data"
# A small share, revised soon after publishing, so the hourly revision sweep has something to show
# within an hour or two of `make ui`: points stored as first published are revised half an hour later.
LOCAL_REVISION_SHARE = 0.01
LOCAL_REVISION_DELAY_SECONDS = 1800.0


class SimulatedWattTimeResource(WattTimeSource):
    """WattTime v3 simulated over loopback HTTP inside each run: no account, no internet.

    The production client code runs unchanged (login, tokens, retries, chunking); only the server is
    simulated, with deterministic realistic values and a publication lag. Points are tagged
    ``source=simulator`` so they can never pass for WattTime's. There is nothing to configure about the
    account or the address: each run serves its own simulator on a free loopback port, with a random password.
    """

    publication_lag_seconds: float = Field(
        default=120.0, ge=0, description="How long after a point's time the simulator publishes it."
    )
    revision_share: float = Field(
        default=LOCAL_REVISION_SHARE,
        ge=0,
        le=1,
        description="Share of points the simulator revises after publishing them.",
    )
    revision_delay_seconds: float = Field(
        default=LOCAL_REVISION_DELAY_SECONDS,
        ge=0,
        description="How long after publishing a point the simulator revises it.",
    )

    _server: SimulatorServer | None = PrivateAttr(default=None)

    @property
    def source_name(self) -> str:
        return "simulator"

    def data_source_label(self) -> str:
        return SIMULATED_LABEL

    def open_client(self, logger: logging.Logger | None) -> WattTimeClient:
        """Start the run's simulator, stopped again at teardown, and a client for it."""
        # A fresh password per run: no credential, not even a simulated one, sits in config or the UI.
        password = secrets.token_urlsafe(24)
        config = SimulatorConfig(
            accounts={SIMULATOR_USERNAME: password},
            publication_lag_seconds=self.publication_lag_seconds,
            revision_share=self.revision_share,
            revision_delay_seconds=self.revision_delay_seconds,
        )
        self._server = SimulatorServer(config).start()
        return self._client_for(SIMULATOR_USERNAME, password, self._server.base_url, logger)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        super().teardown_after_execution(context)
        if self._server is not None:
            self._server.stop()
            self._server = None
