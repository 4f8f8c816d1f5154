"""Dagster resources giving assets a per-run WattTime client: the interface and the real WattTime API."""

import logging
from abc import ABC, abstractmethod
from pathlib import Path

import dagster as dg
from pydantic import Field, field_validator

from carbon_pipeline.run_clients import RunClientResource
from carbon_pipeline.watttime.client import WattTimeClient
from carbon_pipeline.watttime.endpoints import DEFAULT_SIGNAL_TYPE, WATTTIME_BASE_URL, validate_base_url


class WattTimeSource(RunClientResource, ABC):
    """Where the carbon-intensity asset gets WattTime data: the API itself, or a simulator of it.

    Every source hands the run the same `WattTimeClient` (login, tokens, rate limits, retries, chunking), so
    the asset cannot tell them apart except by `source_name`, which is stored with every point. Only the
    client settings all sources share live here; each source adds the fields it actually uses, so the
    Dagster UI never shows a setting that does nothing.
    """

    signal_type: str = Field(
        default=DEFAULT_SIGNAL_TYPE,
        description="WattTime signal to fetch: co2_moer (lbs CO2/MWh), co2_aoer or health_damage.",
    )
    timeout_seconds: float = Field(default=30.0, gt=0, description="Timeout of each HTTP request, in seconds.")
    max_attempts: int = Field(
        default=6, ge=1, description="Attempts per request, first one included, on 429/5xx/timeouts/resets."
    )
    max_retry_seconds: float = Field(
        default=120.0, ge=0, description="Total time one request may spend retrying before the run step fails."
    )
    requests_per_second: float = Field(
        default=10.0,
        gt=0,
        description=(
            "Client-side request rate limit; WattTime allows 3,000 requests per 5 minutes (10/s) per account. "
            "With shared_limits_folder set it holds for all runs on this host together; hosts sharing one "
            "account must divide it between them."
        ),
    )
    shared_limits_folder: str | None = Field(
        default=None,
        description=(
            "Folder where all runs on this host keep one request and login budget per WattTime account, so "
            "concurrent runs stay within the account's limits together (one small file per account, named by "
            "a hash of the username; no password or token is written). Empty: each run keeps its own budget."
        ),
    )

    @property
    @abstractmethod
    def source_name(self) -> str:
        """Recorded with every point so data from the simulator can never pass for WattTime's."""

    @abstractmethod
    def data_source_label(self) -> str:
        """Shown with every materialization, so the UI always says where the numbers came from."""

    @abstractmethod
    def open_client(self, logger: logging.Logger | None) -> WattTimeClient:
        """Build the client one run uses; the caller closes it."""

    def get_client(self) -> WattTimeClient:
        """The run's client; only available while Dagster has the resource set up."""
        client = self.run_client()
        assert isinstance(client, WattTimeClient)
        return client

    def _client_for(
        self, username: str, password: str, base_url: str, logger: logging.Logger | None, *, verify: bool = True
    ) -> WattTimeClient:
        return WattTimeClient(
            username,
            password,
            base_url,
            signal_type=self.signal_type,
            timeout_seconds=self.timeout_seconds,
            max_attempts=self.max_attempts,
            max_retry_seconds=self.max_retry_seconds,
            requests_per_second=self.requests_per_second,
            limits_folder=Path(self.shared_limits_folder) if self.shared_limits_folder else None,
            logger=logger,
            verify=verify,
        )


class WattTimeResource(WattTimeSource):
    """WattTime v3 API (grid marginal carbon intensity, MOER).

    Give `username` and `password` as `dg.EnvVar("WATTTIME_USERNAME")` / `dg.EnvVar("WATTTIME_PASSWORD")` so
    that only the variable names reach the Dagster UI and run config. One client is built per run: it logs in
    once, renews its token before the 30-minute expiry, stays under WattTime's rate limits and retries
    transient failures within the configured budget.
    """

    username: str = Field(description="WattTime account name; give it as EnvVar('WATTTIME_USERNAME').")
    password: str = Field(
        repr=False,
        description="WattTime password; always give it as EnvVar('WATTTIME_PASSWORD') so it never shows in the UI.",
    )
    base_url: str = Field(
        default=WATTTIME_BASE_URL,
        description="Root of the WattTime API (http or https with a host); point it at the simulator locally.",
    )
    verify_tls: bool = Field(
        default=True,
        description="Verify WattTime's TLS certificate; only disable for a known test server.",
    )

    @field_validator("base_url", mode="before")
    @classmethod
    def _check_base_url(cls, value: object) -> object:
        # An EnvVar is only resolved at launch, where the client validates the resolved value.
        if isinstance(value, str) and not isinstance(value, dg.EnvVar):
            return validate_base_url(value)
        return value

    @property
    def source_name(self) -> str:
        return "watttime"

    def data_source_label(self) -> str:
        return f"WattTime API ({self.base_url})"

    def open_client(self, logger: logging.Logger | None) -> WattTimeClient:
        return self._client_for(self.username, self.password, self.base_url, logger, verify=self.verify_tls)
