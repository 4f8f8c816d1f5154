"""Dagster resources giving assets a per-run Electricity Maps client: the interface and the real API."""

import logging
from abc import ABC, abstractmethod
from pathlib import Path

from pydantic import Field

from carbon_pipeline.electricitymaps.client import ElectricityMapsClient
from carbon_pipeline.electricitymaps.endpoints import DEFAULT_REQUESTS_PER_SECOND, ELECTRICITYMAPS_BASE_URL
from carbon_pipeline.run_clients import RunClientResource


class ElectricityMapsSource(RunClientResource, ABC):
    """Where average carbon intensity comes from: Electricity Maps itself, or a simulator of it.

    Every source hands the run the same `ElectricityMapsClient`, so the asset cannot tell them apart except
    by `source_name`, which is stored with every point.
    """

    emission_factor_type: str = Field(
        default="lifecycle", description="lifecycle (LCA, Electricity Maps' default) or direct (operational)."
    )
    granularity: str = Field(
        default="hourly", description="hourly, 15_minutes or 5_minutes; the finer ones need a paid plan."
    )
    timeout_seconds: float = Field(default=30.0, gt=0, description="Timeout of each HTTP request, in seconds.")
    max_attempts: int = Field(default=6, ge=1, description="Attempts per request on 429/5xx/timeouts/resets.")
    max_retry_seconds: float = Field(default=120.0, ge=0, description="Total time one request may spend retrying.")
    requests_per_second: float = Field(
        default=DEFAULT_REQUESTS_PER_SECOND, gt=0, description="Client-side request spacing for this token."
    )
    shared_limits_folder: str | None = Field(
        default=None,
        description="Folder where all runs on this host share one request budget per token (file named by a hash).",
    )

    @property
    @abstractmethod
    def source_name(self) -> str:
        """Recorded with every point so data from the simulator can never pass for Electricity Maps'."""

    @abstractmethod
    def data_source_label(self) -> str:
        """Shown with every materialization, so the UI always says where the numbers came from."""

    @abstractmethod
    def open_client(self, logger: logging.Logger | None) -> ElectricityMapsClient:
        """Build the client one run uses; the caller closes it."""

    def get_client(self) -> ElectricityMapsClient:
        """The run's client; only available while Dagster has the resource set up."""
        client = self.run_client()
        assert isinstance(client, ElectricityMapsClient)
        return client

    def _client_for(self, api_token: str, base_url: str, logger: logging.Logger | None) -> ElectricityMapsClient:
        return ElectricityMapsClient(
            api_token,
            base_url,
            emission_factor_type=self.emission_factor_type,
            granularity=self.granularity,
            timeout_seconds=self.timeout_seconds,
            max_attempts=self.max_attempts,
            max_retry_seconds=self.max_retry_seconds,
            requests_per_second=self.requests_per_second,
            limits_folder=Path(self.shared_limits_folder) if self.shared_limits_folder else None,
            logger=logger,
        )


class ElectricityMapsResource(ElectricityMapsSource):
    """Electricity Maps v3 (average carbon intensity). Give the token as `dg.EnvVar("ELECTRICITYMAPS_API_TOKEN")`
    so only the variable's name reaches the Dagster UI and run config."""

    api_token: str = Field(
        repr=False, description="Electricity Maps API token; always EnvVar('ELECTRICITYMAPS_API_TOKEN')."
    )
    base_url: str = Field(
        default=ELECTRICITYMAPS_BASE_URL, description="Root of the API, /v3 included; point it at the simulator."
    )

    @property
    def source_name(self) -> str:
        return "electricitymaps"

    def data_source_label(self) -> str:
        return f"Electricity Maps API ({self.base_url})"

    def open_client(self, logger: logging.Logger | None) -> ElectricityMapsClient:
        return self._client_for(self.api_token, self.base_url, logger)
