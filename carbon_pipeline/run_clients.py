"""Resources that give each run its own client of an outside API, opened at setup and closed at teardown.

WattTime's and Electricity Maps' sources share this life cycle; each states which client it opens and
reads it back, typed, through its own `get_client`.
"""

import logging
from abc import ABC, abstractmethod
from typing import Protocol

import dagster as dg
from pydantic import ConfigDict, PrivateAttr


class Closable(Protocol):
    def close(self) -> None: ...


class RunClientResource(dg.ConfigurableResource, ABC):
    """Opens `open_client` once per run; `run_client` hands it out while Dagster has the resource set up."""

    # Validation errors must not echo a password or token (or anything else) that was passed in.
    model_config = ConfigDict(hide_input_in_errors=True)

    _run_client: Closable | None = PrivateAttr(default=None)

    @abstractmethod
    def open_client(self, logger: logging.Logger | None) -> Closable:
        """Build the client one run uses; the caller closes it."""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._run_client = self.open_client(context.log)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._run_client is not None:
            self._run_client.close()
            self._run_client = None

    def run_client(self) -> Closable:
        """The run's client; only available during a run."""
        if self._run_client is None:
            raise dg.DagsterInvariantViolationError(
                f"{type(self).__name__}.get_client() is only available during a run; outside Dagster build the "
                "client directly"
            )
        return self._run_client
