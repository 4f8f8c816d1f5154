"""Dagster resource giving assets a per-run WattTime client."""

import logging

import dagster as dg
from pydantic import ConfigDict, Field, PrivateAttr, field_validator

from carbon_pipeline.watttime.client import DEFAULT_SIGNAL_TYPE, WATTTIME_BASE_URL, WattTimeClient, validate_base_url


class WattTimeResource(dg.ConfigurableResource):
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
        description="Client-side request rate limit; WattTime allows 3,000 requests per 5 minutes (10/s).",
    )
    verify_tls: bool = Field(
        default=True,
        description="Verify WattTime's TLS certificate; only disable for a known test server.",
    )

    # Validation errors must not echo the password (or anything else) that was passed in.
    model_config = ConfigDict(hide_input_in_errors=True)

    _client: WattTimeClient | None = PrivateAttr(default=None)

    @field_validator("base_url", mode="before")
    @classmethod
    def _check_base_url(cls, value: object) -> object:
        # An EnvVar is only resolved at launch, where the client validates the resolved value.
        if isinstance(value, str) and not isinstance(value, dg.EnvVar):
            return validate_base_url(value)
        return value

    @property
    def source_name(self) -> str:
        """Recorded with every point so data from the simulator can never pass for WattTime's."""
        return "watttime"

    def data_source_label(self) -> str:
        """Shown with every materialization, so the UI always says where the numbers came from."""
        return f"WattTime API ({self.base_url})"

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._client = self.new_client(self.base_url, context.log)

    def new_client(self, base_url: str, logger: logging.Logger | None, password: str | None = None) -> WattTimeClient:
        """Takes URL and password separately: the simulated deployment only knows them once its server runs."""
        return WattTimeClient(
            self.username,
            password or self.password,
            base_url,
            signal_type=self.signal_type,
            timeout_seconds=self.timeout_seconds,
            max_attempts=self.max_attempts,
            max_retry_seconds=self.max_retry_seconds,
            requests_per_second=self.requests_per_second,
            logger=logger,
            verify=self.verify_tls,
        )

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def get_client(self) -> WattTimeClient:
        """The run's client; only available while Dagster has the resource set up."""
        if self._client is None:
            raise dg.DagsterInvariantViolationError(
                "WattTimeResource.get_client() is only available during a run; outside Dagster build a "
                "WattTimeClient directly"
            )
        return self._client
