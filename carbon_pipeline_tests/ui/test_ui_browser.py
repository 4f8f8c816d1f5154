"""The Dagster UI in a real headless Chromium, against the prod pipeline under ``dagster dev``.

A user opens the asset page of ``carbon_intensity``, looks at its partitions, materializes one
region x 15-minute interval from the Materialize dialog, follows the run until it succeeds, then
finds the interval's metadata (the numeric entries plotted, gCO2/kWh as stored in InfluxDB) and the
passed ``watttime_data_valid`` check on the asset page.

WattTime (the simulator) and InfluxDB (a real server behind the shim) are on loopback and accept
only sentinel credentials, so every successful run proves the secrets were used. Every page the
browser shows is scanned for them: its HTML, its address, every URL and request body the browser
sent, every GraphQL answer and websocket message it received. The browser reaches nothing but
loopback: its proxy is a closed loopback port that only loopback addresses bypass.

A full-page screenshot of each step lands in ``test-artifacts/ui/`` at the repository root
(``01-asset-overview.png`` to ``08-check-passed.png``), replaced on every run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    Route,
    ViewportSize,
    WebSocket,
    expect,
    sync_playwright,
)

from carbon_pipeline.assets.carbon_intensity import ASSET_NAME, VALID_DATA_CHECK
from carbon_pipeline.partitions import INTERVAL, INTERVAL_KEY_FORMAT
from carbon_pipeline.sinks.line_protocol import MEASUREMENT
from carbon_pipeline.watttime.simulator import SimulatorServer
from carbon_pipeline_tests.support.dagster_dev import REPO, DagsterDev
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.influxdb_shim import InfluxDBShim
from carbon_pipeline_tests.support.processes import free_loopback_port
from carbon_pipeline_tests.support.secret_scan import Finding, SecretScanner, sentinel_secrets

SCREENSHOTS = REPO / "test-artifacts" / "ui"
CHROMIUM = "/usr/bin/chromium"
REGION = "CAISO_NORTH"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
# Chromium's own traffic off; anything left would go to this proxy, a closed loopback port.
CHROMIUM_ARGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-sync",
    "--no-pings",
    "--dns-prefetch-disable",
    "--disable-dev-shm-usage",
]
VIEWPORT: ViewportSize = {"width": 1440, "height": 1600}
STEP_TIMEOUT_MS = 30_000
RUN_TIMEOUT_MS = 120_000
# Outside the last hour the gap-filling sensor is given here, so only the UI materializes it; recent
# enough to be among the partitions the UI plots.
TARGET_AGE = timedelta(hours=3)


@dataclass
class BrowserTraffic:
    """What the browser sent and received, recorded for the secret scan and the loopback check."""

    sent: list[tuple[str, str]] = field(default_factory=list)
    received: list[tuple[str, bytes]] = field(default_factory=list)
    scanned_sent: int = 0
    scanned_received: int = 0

    def attach(self, context: BrowserContext) -> None:
        context.on("request", lambda request: self.sent.append((request.url, request.post_data or "")))
        context.route(re.compile(r"/graphql(\?.*)?$"), self._record_answer)
        context.on("page", lambda page: page.on("websocket", self._record_websocket))

    def _record_answer(self, route: Route) -> None:
        response = route.fetch()
        body = response.body()
        self.received.append((f"GraphQL answer to {route.request.url}", body))
        route.fulfill(response=response, body=body)

    def _record_websocket(self, websocket: WebSocket) -> None:
        self.sent.append((websocket.url, ""))
        websocket.on("framesent", lambda payload: self.sent.append((websocket.url, _text(payload))))
        websocket.on("framereceived", lambda payload: self.received.append((websocket.url, _bytes(payload))))

    def unscanned(self) -> tuple[list[tuple[str, str]], list[tuple[str, bytes]]]:
        sent, received = self.sent[self.scanned_sent :], self.received[self.scanned_received :]
        self.scanned_sent, self.scanned_received = self.scanned_sent + len(sent), self.scanned_received + len(received)
        return sent, received


def _text(payload: str | bytes) -> str:
    return payload if isinstance(payload, str) else payload.decode(errors="replace")


def _bytes(payload: str | bytes) -> bytes:
    return payload.encode() if isinstance(payload, str) else payload


@dataclass
class UserSession:
    """One browser tab on the Dagster UI; each step ends with a secret scan and a screenshot."""

    page: Page
    base_url: str
    scanner: SecretScanner
    traffic: BrowserTraffic
    steps: list[str] = field(default_factory=list)
    completed: bool = False

    def open(self, path: str) -> None:
        self.page.goto(f"{self.base_url}{path}")

    def step_done(self, name: str) -> None:
        """Nothing secret on the page or on the wire so far; then the screenshot of the step."""
        findings = scan_page(self.scanner, self.page)
        sent, received = self.traffic.unscanned()
        for url, body in sent:
            findings += self.scanner.scan_text(f"request to {self._shown(url)}", f"{url}\n{body}")
        for where, body in received:
            findings += self.scanner.scan_bytes(self._shown(where), body)
        assert findings == [], f"secrets visible at step {name}: {findings}"
        self.steps.append(name)
        self.page.screenshot(
            path=SCREENSHOTS / f"{len(self.steps):02d}-{name}.png", full_page=True, animations="disabled"
        )

    def complete(self) -> None:
        """One screenshot per step, and not one request beyond loopback in the whole session."""
        assert [path.name for path in sorted(SCREENSHOTS.glob("*.png"))] == [
            f"{index:02d}-{name}.png" for index, name in enumerate(self.steps, start=1)
        ]
        strangers = {urlsplit(url).hostname for url, _ in self.traffic.sent} - LOOPBACK_HOSTS - {None}
        assert strangers == set(), f"the browser tried to reach {strangers}"
        assert any(where.startswith("GraphQL answer") for where, _ in self.traffic.received)  # scanned, not missed
        self.completed = True

    def _shown(self, url: str) -> str:
        return self.scanner.redacted(url.encode())


def scan_page(scanner: SecretScanner, page: Page) -> list[Finding]:
    """The page's address and the HTML of each of its frames (text, attributes, links)."""
    where = f"page {scanner.redacted(page.url.encode())}"
    findings = scanner.scan_text(f"address of {where}", page.url)
    for frame in page.frames:
        findings += scanner.scan_text(f"HTML of {where}, frame {scanner.redacted(frame.url.encode())}", frame.content())
    return findings


# ##### FIXTURES


@pytest.fixture
def target_interval() -> datetime:
    now = datetime.now(UTC)
    return now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0) - TARGET_AGE


@pytest.fixture
def ui_env(
    prod_env: dict[str, str],
    sentinels: dict[str, str],
    sentinel_watttime: SimulatorServer,
    sentinel_influxdb: InfluxDBShim,
    target_interval: datetime,
) -> dict[str, str]:
    """Prod settings; two days of partitions keep the UI quick, and the gap filler keeps to the last hour."""
    return (
        prod_env
        | sentinels
        | {
            "WATTTIME_BASE_URL": sentinel_watttime.base_url,
            "INFLUXDB_HOST": sentinel_influxdb.url,
            "CARBON_PARTITIONS_START": f"{target_interval - timedelta(days=2):%Y-%m-%d}",
            "CARBON_GAP_FILL_HOURS": "1",
            "CARBON_GAP_FILL_MAX_RUNS": "1",
        }
    )


@pytest.fixture
def dagster_ui(ui_env: dict[str, str], dagster_home: Path, tmp_path: Path) -> Iterator[str]:
    """The root URL of the Dagster UI of a running ``dagster dev``."""
    with DagsterDev(dagster_home, ui_env, tmp_path / "dagster_dev.log") as dev:
        yield dev.url.removesuffix("/graphql")


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            proxy={"server": f"http://127.0.0.1:{free_loopback_port()}", "bypass": "127.0.0.1,localhost,[::1]"},
        )
        yield chromium
        chromium.close()


@pytest.fixture
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    return SCREENSHOTS


@pytest.fixture
def session(browser: Browser, dagster_ui: str, sentinels: dict[str, str], screenshots: Path) -> Iterator[UserSession]:
    context = browser.new_context(viewport=VIEWPORT)
    traffic = BrowserTraffic()
    traffic.attach(context)
    page = context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    user = UserSession(page, dagster_ui, SecretScanner(sentinel_secrets(sentinels)), traffic)
    yield user
    if not user.completed:  # where it stopped, for whoever reads the failure
        page.screenshot(path=screenshots / "failed-last-page.png", full_page=True, animations="disabled")
    context.unroute_all(behavior="ignoreErrors")  # answers still in flight are dropped with the pages
    context.close()


# ##### TESTS


@pytest.mark.slow
def test_a_user_materializes_one_interval_from_the_asset_page_and_sees_its_plots_and_check(
    session: UserSession,
    target_interval: datetime,
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
    sentinels: dict[str, str],
) -> None:
    page = session.page
    time_key = f"{target_interval:{INTERVAL_KEY_FORMAT}}"
    partition = f"{REGION}|{time_key}"

    # The asset page; a fresh instance greets a localhost user with Dagster's community dialog once.
    session.open(f"/assets/{ASSET_NAME}")
    expect(page.get_by_text("Join the Dagster community")).to_be_visible()
    page.get_by_role("button", name="Skip").click()
    expect(page.get_by_text("Join the Dagster community")).to_be_hidden()
    expect(page.get_by_role("tab", name="Overview")).to_be_visible()
    expect(page.get_by_text("Grid carbon intensity (WattTime co2_moer)").first).to_be_visible()
    session.step_done("asset-overview")

    # Its partitions: the health bar over the whole range and the interval, not materialized yet.
    page.get_by_role("tab", name="Partitions").click()
    expect(page.get_by_text(re.compile(r"^\d+ Partitions Selected$"))).to_be_visible()
    expect(page.get_by_text(re.compile(r"^Missing \(\d+\)$"))).to_be_visible()
    heading = _select_partition(page, partition)
    expect(heading.get_by_text("Materialized", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="View all historical events (0)")).to_be_disabled()
    session.step_done("partitions-before")

    # The Materialize dialog, opened with no partition chosen (a partition selected on the Partitions
    # tab would be filled in), where the user picks one region and one interval.
    page.get_by_role("tab", name="Overview").click()
    expect(page).not_to_have_url(re.compile(r"[?&]partition="))
    page.get_by_role("button", name="Materialize…").click()
    dialog = page.get_by_role("dialog").filter(has_text=f"Launch runs to materialize {ASSET_NAME}")
    expect(dialog.get_by_text("0 partitions", exact=True)).to_be_visible()
    dialog.get_by_text("Select a partition or create one").click()
    page.get_by_role("menuitem", name=REGION).click()
    page.keyboard.press("Escape")
    expect(page.get_by_role("menuitem", name=REGION)).to_be_hidden()
    time_input = dialog.get_by_placeholder(re.compile(r"^ex: "))
    time_input.fill(time_key)
    time_input.press("Enter")
    expect(dialog.get_by_text("1 partition", exact=True)).to_be_visible()
    launch = dialog.get_by_role("button", name="Launch 1 run")
    expect(launch).to_be_enabled()
    session.step_done("materialize-dialog")

    launch.click()
    toast = page.get_by_role("listitem").filter(has_text="Launched run")
    toast.hover()  # the toast stays while the pointer is on it
    session.step_done("run-launched")

    # The run, followed from the toast until it ends.
    toast.get_by_role("link", name="View").click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}"))
    run_id = urlsplit(page.url).path.rsplit("/", 1)[1]
    status = page.get_by_text(re.compile(r"^(Success|Failure|Canceled)$")).first
    expect(status).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(status).to_have_text("Success")
    expect(page.get_by_text(f"partition: {partition}")).to_be_visible()
    session.step_done("run-succeeded")

    # Back on the asset page: the numeric metadata plotted.
    session.open(f"/assets/{ASSET_NAME}")
    page.get_by_role("button", name="Plots").click()
    plot = (
        page.locator("div").filter(has=page.get_by_text("gco2_kwh_mean", exact=True)).filter(has=page.locator("canvas"))
    )
    expect(plot.last.locator("canvas")).to_be_visible()
    plot.last.scroll_into_view_if_needed()
    session.step_done("asset-metadata-plots")

    # The interval's own materialization: this run, with InfluxDB's figures.
    page.get_by_role("tab", name="Partitions").click()
    heading = _select_partition(page, partition)
    expect(heading.get_by_text("Materialized", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="View all historical events (1)")).to_be_enabled()
    expect(page.get_by_role("link", name=run_id[:8])).to_be_visible()
    mean_row = page.get_by_role("row").filter(has=page.get_by_role("cell", name="gco2_kwh_mean", exact=True))
    shown_mean = float(mean_row.get_by_role("cell").nth(1).inner_text())
    stored = _stored(influxdb_server, influxdb_database, target_interval)
    assert stored["count"] == 3  # the shim only takes the sentinel token
    assert shown_mean == pytest.approx(stored["mean"], abs=0.001)
    session.step_done("partition-metadata")

    # The checks: the validation check passed for this run.
    page.get_by_role("tab", name="Checks").click()
    page.get_by_text(VALID_DATA_CHECK, exact=True).first.click()
    page.get_by_role("tab", name="Execution history").click()
    execution = page.get_by_role("row").filter(has=page.locator(f'a[href^="/runs/{run_id}"]'))
    expect(execution.first).to_be_visible()
    expect(execution.first.get_by_role("cell").first).to_have_text(re.compile("Passed"))
    session.step_done("check-passed")

    session.complete()
    # The scan is not blind: planted in a page's text and in a link, the sentinels are found.
    planted = page.context.new_page()
    planted.set_content(f"<p>{sentinels['INFLUXDB_TOKEN']}</p><a href='{sentinels['ALERT_WEBHOOK_URL']}'>hook</a>")
    assert {finding.secret for finding in scan_page(session.scanner, planted)} == {
        "INFLUXDB_TOKEN",
        "ALERT_WEBHOOK_URL",
    }


def _select_partition(page: Page, partition: str) -> Locator:
    """On the Partitions tab: the interval found through the time filter and opened (the only region).

    Returns the heading of its details once they have loaded: the partition key, then the tag
    "Materialized" if it is.
    """
    time_key = partition.split("|")[1]
    page.get_by_role("textbox", name="Filter by time…").fill(time_key)
    page.get_by_text(time_key, exact=True).first.click()
    expect(page).to_have_url(re.compile(r"[?&]partition="))
    heading = page.locator(f'[data-tooltip="{partition}"]')
    expect(heading).to_be_visible()
    expect(heading.get_by_role("progressbar")).to_have_count(0)  # events and staleness loaded
    return heading


def _stored(server: InfluxDBServer, database: str, start: datetime) -> dict[str, float]:
    window = f"time >= '{start:%Y-%m-%dT%H:%M:%SZ}' AND time < '{start + INTERVAL:%Y-%m-%dT%H:%M:%SZ}'"
    query = (
        f"SELECT count(carbon_intensity_gco2_kwh), mean(carbon_intensity_gco2_kwh) FROM {MEASUREMENT} WHERE {window}"
    )
    (row,) = server.query(query, database)
    return {"count": row["count"], "mean": row["mean"]}
