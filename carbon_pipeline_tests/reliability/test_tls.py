"""TLS against real parts over loopback: both clients refuse a certificate from a CA they were not told to
trust, before any credential leaves the machine, and only talk to such a server when verification is
explicitly disabled (or the CA is given).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
import trustme

from carbon_pipeline.deployments import production_resources
from carbon_pipeline.settings import PipelineSettings
from carbon_pipeline.sinks.influxdb import InfluxDBResource, InfluxDBWriteError
from carbon_pipeline.watttime.client import WattTimeClient
from carbon_pipeline.watttime.errors import WattTimeTLSError
from carbon_pipeline.watttime.resource import WattTimeResource
from carbon_pipeline.watttime.simulator import SIMULATOR_PASSWORD, SIMULATOR_USERNAME, SimulatorServer
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.influxdb_shim import InfluxDBShim
from carbon_pipeline_tests.support.pipeline_harness import influxdb_resource, stored_count, watttime_resource
from carbon_pipeline_tests.support.tls_front import TlsFront

DAY = datetime(2025, 1, 1, tzinfo=UTC)
QUARTER = timedelta(minutes=15)
CERTIFICATE_FAILURE = "CERTIFICATE_VERIFY_FAILED"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A certificate authority no client trusts unless it is handed over."""
    return trustme.CA()


@pytest.fixture
def https_watttime(simulator: SimulatorServer, ca: trustme.CA) -> Iterator[str]:
    with TlsFront(simulator.base_url, ca) as front:
        yield front.url


@pytest.fixture
def https_influxdb(influxdb_shim: InfluxDBShim, ca: trustme.CA) -> Iterator[str]:
    with TlsFront(influxdb_shim.url, ca) as front:
        yield front.url


def _first_quarter(client: WattTimeClient) -> int:
    return sum(len(chunk.frame) for chunk in client.historical("CAISO_NORTH", DAY, DAY + QUARTER))


def _one_point_lines() -> list[str]:
    return [
        "carbon_intensity,region=CAISO_NORTH,grid_operator=CAISO,signal_type=co2_moer,source=watttime "
        "moer_lbs_per_mwh=1000.0 1735689600"
    ]


def test_tls_verification_is_on_unless_explicitly_disabled() -> None:
    """Both resources, and the prod wiring, verify certificates unless someone turns it off on purpose."""
    assert WattTimeResource.model_fields["verify_tls"].default is True
    assert InfluxDBResource.model_fields["verify_ssl"].default is True
    prod = production_resources(
        PipelineSettings(
            deployment="prod",
            watttime_base_url="https://api.watttime.org",
            influxdb_host="https://influx.internal:8181",
            influxdb_database="carbon",
        )
    )
    watttime, sink = prod["watttime"], prod["point_sink"]
    assert isinstance(watttime, WattTimeResource) and watttime.verify_tls is True
    assert isinstance(sink, InfluxDBResource) and sink.verify_ssl is True
    assert watttime_resource("https://api.watttime.org").verify_tls is True


def test_watttime_refuses_an_untrusted_certificate_before_sending_the_password(
    https_watttime: str, simulator: SimulatorServer
) -> None:
    """Login sends the password, so an impostor certificate must end the connection before it."""
    resource = watttime_resource(https_watttime, max_attempts=5)
    with dg.build_resources({"watttime": resource}) as resources, pytest.raises(WattTimeTLSError) as raised:
        _first_quarter(resources.watttime.get_client())
    assert CERTIFICATE_FAILURE in str(raised.value) and "GET /login" in str(raised.value)
    assert not raised.value.retryable  # no retries: waiting cannot make a certificate trusted
    assert SIMULATOR_PASSWORD not in str(raised.value)
    assert simulator.state.stats()["logins"] == 0


def test_watttime_talks_to_that_server_only_when_verification_is_disabled(
    https_watttime: str, simulator: SimulatorServer
) -> None:
    """The knob exists for known test servers; disabling it is the only way past an untrusted certificate."""
    resource = watttime_resource(https_watttime, max_attempts=1, verify_tls=False)
    with dg.build_resources({"watttime": resource}) as resources:
        assert _first_quarter(resources.watttime.get_client()) == 3
    assert simulator.state.stats()["logins"] == 1


def test_watttime_client_trusts_a_private_ca_when_given_it(https_watttime: str, ca: trustme.CA) -> None:
    """A private CA is trusted by handing it over, which keeps verification on."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with WattTimeClient(
        SIMULATOR_USERNAME, SIMULATOR_PASSWORD, https_watttime, max_attempts=1, verify=context
    ) as client:
        assert _first_quarter(client) == 3


def test_influxdb_refuses_an_untrusted_certificate_before_sending_the_token(
    https_influxdb: str, influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    """Every write carries the token, so the handshake must fail first, with an error saying why."""
    sink = influxdb_resource(https_influxdb, influxdb_database, max_attempts=1)
    with pytest.raises(InfluxDBWriteError) as raised:
        sink.write_lines(_one_point_lines())
    sink.teardown_after_execution(None)
    assert CERTIFICATE_FAILURE in str(raised.value) and str(influxdb_shim.token) not in str(raised.value)
    assert influxdb_shim.requests == []
    assert stored_count(influxdb_server, influxdb_database) == 0


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_influxdb_writes_to_that_server_only_when_verification_is_disabled(
    https_influxdb: str, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    """verify_ssl=False is the explicit way to reach a test server with a self-made certificate."""
    sink = influxdb_resource(https_influxdb, influxdb_database, max_attempts=1, verify_ssl=False)
    sink.write_lines(_one_point_lines())
    sink.teardown_after_execution(None)
    assert stored_count(influxdb_server, influxdb_database) == 1
