"""Looking for secrets where they must never be: files, process command lines, captured output, UI answers.

A secret counts as seen when any 8 of its characters are, in a row, as they are or base64-encoded: a
log that prints a token's first characters leaks them as surely as the whole token. A scan that finds
nothing proves nothing unless it could have found something, so the tests also run every kind of
search here on planted copies. Findings name the secret, never its value, and every text
shown in a finding is redacted first, so a failing assertion cannot print the secret it caught.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from secrets import token_urlsafe
from types import TracebackType
from typing import Any

import httpx

SAMPLE_INTERVAL_SECONDS = 0.05
GRAPHQL_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class Finding:
    """A secret seen somewhere: ``where`` says which file, process or answer; ``secret`` is its name."""

    where: str
    secret: str


# The shortest piece of a secret the scan finds: any 8 characters of it, wherever they sit. Shorter
# pieces of random text turn up by chance (hex run ids, base64 blobs), longer ones would let a log that
# cuts a token to its first few characters pass.
WINDOW = 8
# Every 8-byte stretch of a text holds a 4-byte stretch that starts at a multiple of 5, so the scan
# looks up one 4-byte anchor in 5 positions and compares whole windows only around the anchors found.
_ANCHOR = 4
_STRIDE = WINDOW - _ANCHOR + 1
# base64 turns 3 bytes into 4 characters: 6 bytes of a secret in whole groups become 8 characters that
# do not depend on what surrounds them, and 8 bytes hold 6 in whole groups at any alignment.
_BASE64_PIECE = 6
SENTINEL_PREFIX = "SENTINEL-"


def pieces(value: str) -> frozenset[bytes]:
    """The 8-byte strings that betray any 8 or more characters of ``value`` in a larger text.

    Every 8-byte window of its UTF-8 bytes, and the base64 of every 6-byte window: HTTP Basic auth sends
    ``base64(user:password)``, and any 8 bytes of the password fill two whole base64 groups there.
    """
    raw = value.encode()
    if len(raw) < WINDOW:
        raise ValueError(f"a secret of {len(raw)} bytes is shorter than the {WINDOW} bytes the scan looks for")
    windows = {raw[start : start + WINDOW] for start in range(len(raw) - WINDOW + 1)}
    encoded = {base64.b64encode(raw[start : start + _BASE64_PIECE]) for start in range(len(raw) - _BASE64_PIECE + 1)}
    return frozenset(windows | encoded)


def new_sentinel() -> str:
    """A credential only this test can have produced: a readable label and 32 random base64url characters.

    Random base64url rather than a UUID: 8 characters of a UUID straddling its dashes leave about
    18 random bits, which the run ids and event ids in Dagster's storage would match by chance.
    """
    return f"{SENTINEL_PREFIX}{token_urlsafe(24)}"


def sentinel_secrets(sentinels: Mapping[str, str]) -> dict[str, str]:
    """What is secret in each sentinel: its random part. The label and, for the webhook URL, its scheme, host,
    port and path before the label are shared by every sentinel or said in the open, and their 8-character
    pieces ("SENTINEL", "http://1") would be found everywhere."""
    return {name: value.rsplit(SENTINEL_PREFIX, 1)[1] for name, value in sentinels.items()}


class SecretScanner:
    """Searches bytes, texts, folders and processes for any 8 or more characters of any of ``secrets``
    (name -> value), raw or in base64; every value must be at least ``WINDOW`` bytes long.

    Give it what is secret only: a constant from the source tree, such as the simulator's own account
    (``simulator`` / ``simulator-password``), is public, and its pieces are in every log that names the account.
    """

    def __init__(self, secrets: Mapping[str, str]) -> None:
        self._names = list(secrets)
        self._owners: dict[bytes, set[str]] = {}
        for name, value in secrets.items():
            for piece in pieces(value):
                self._owners.setdefault(piece, set()).add(name)
        self._anchors = {piece[start : start + _ANCHOR] for piece in self._owners for start in range(_STRIDE)}

    def _matches(self, data: bytes) -> list[tuple[int, set[str]]]:
        """Where a piece of a secret starts in ``data``, and whose it is, in order."""
        found: dict[int, set[str]] = {}
        anchors, owners = self._anchors, self._owners
        for anchor in range(0, len(data) - _ANCHOR + 1, _STRIDE):
            if data[anchor : anchor + _ANCHOR] in anchors:
                for start in range(max(0, anchor - (WINDOW - _ANCHOR)), anchor + 1):
                    names = owners.get(data[start : start + WINDOW])
                    if names:
                        found.setdefault(start, set()).update(names)
        return sorted(found.items())

    def scan_bytes(self, where: str, data: bytes) -> list[Finding]:
        seen = {name for _, names in self._matches(data) for name in names}
        return [Finding(where, name) for name in self._names if name in seen]

    def scan_text(self, where: str, text: str) -> list[Finding]:
        return self.scan_bytes(where, text.encode())

    def redacted(self, data: bytes) -> str:
        """``data`` as text with every stretch holding a piece of a secret replaced by the secrets' names."""
        shown, end, spans = bytearray(), 0, self._spans(data)
        for start, stop, names in spans:
            shown += data[end:start] + f"<{'|'.join(sorted(names))}>".encode()
            end = stop
        return (bytes(shown) + data[end:]).decode(errors="replace")

    def _spans(self, data: bytes) -> list[tuple[int, int, set[str]]]:
        """The matched windows, overlapping ones merged into one stretch."""
        spans: list[tuple[int, int, set[str]]] = []
        for start, names in self._matches(data):
            if spans and start <= spans[-1][1]:
                spans[-1] = (spans[-1][0], start + WINDOW, spans[-1][2] | names)
            else:
                spans.append((start, start + WINDOW, set(names)))
        return spans

    def scan_tree(self, root: Path) -> list[Finding]:
        """Every file under ``root``, hidden ones and SQLite databases included, by content and by name."""
        findings: list[Finding] = []
        for path in sorted(root.rglob("*")):
            shown = self.redacted(str(path).encode())
            findings += self.scan_text(f"file name {shown}", str(path.relative_to(root)))
            if path.is_file() and not path.is_symlink():
                findings += self.scan_bytes(f"file {shown}", path.read_bytes())
        return findings


def process_tree(root_pid: int) -> list[int]:
    """``root_pid`` and all of its living descendants, from the parent links in /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            parent = _parent_pid(entry)
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    tree, pending = [], [root_pid]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending += children.get(pid, [])
    return tree


def _parent_pid(proc_entry: Path) -> int | None:
    try:
        stat = (proc_entry / "stat").read_text()
    except OSError:  # the process ended while we looked
        return None
    # The command name (2nd field) may contain spaces and parentheses; the fields after its last ")" do not.
    return int(stat.rsplit(")", 1)[1].split()[1])


def _read_proc(pid: int, name: str) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return None


@dataclass
class ProcessTreeSampler:
    """Records the command line of every process under ``root_pid`` for as long as it runs.

    Run workers live for seconds, so the tree is sampled every few tens of milliseconds. The
    environment of each process is scanned too, but only as a control: it must hold the secrets
    (that is how they reach the code), which shows the sampler saw the processes that use them.
    """

    root_pid: int
    scanner: SecretScanner
    command_lines: dict[tuple[int, bytes], None] = field(default_factory=dict)
    secrets_in_environments: dict[int, set[str]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> ProcessTreeSampler:
        self._thread = threading.Thread(target=self._sample_until_stopped, name="process-tree-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def findings(self, scanner: SecretScanner | None = None) -> list[Finding]:
        """The sampled command lines' findings, by ``scanner`` when given: one that also knows secrets
        issued while the processes ran (WattTime tokens)."""
        scanner = scanner or self.scanner
        return [
            finding
            for (pid, command), _ in self.command_lines.items()
            for finding in scanner.scan_bytes(f"command line of pid {pid}: {self._shown(command)}", command)
        ]

    def commands(self) -> list[str]:
        """The sampled command lines, redacted and shortened, for assertion messages."""
        return [self._shown(command) for _, command in self.command_lines]

    def _shown(self, command: bytes, limit: int = 160) -> str:
        text = self.scanner.redacted(command.replace(b"\0", b" ")).strip()
        return text if len(text) <= limit else text[:limit] + "..."

    def _sample_until_stopped(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(SAMPLE_INTERVAL_SECONDS)

    def sample(self) -> None:
        for pid in process_tree(self.root_pid):
            command = _read_proc(pid, "cmdline")
            if command:
                self.command_lines[(pid, command)] = None
            environment = _read_proc(pid, "environ")
            if environment:
                found = {finding.secret for finding in self.scanner.scan_bytes(f"environment of {pid}", environment)}
                self.secrets_in_environments.setdefault(pid, set()).update(found)


# ##### What the Dagster UI shows, through the GraphQL API the UI itself uses

ERROR = """message className stack cause { message className stack cause { message stack } }
    errorChain { error { message stack } }"""
METADATA = """
label description __typename
... on TextMetadataEntry { text }
... on MarkdownMetadataEntry { mdStr }
... on JsonMetadataEntry { jsonString }
... on PathMetadataEntry { path }
... on NotebookMetadataEntry { path }
... on UrlMetadataEntry { url }
... on IntMetadataEntry { intRepr }
... on FloatMetadataEntry { floatRepr }
... on BoolMetadataEntry { boolValue }
... on TimestampMetadataEntry { timestamp }
... on PythonArtifactMetadataEntry { module name }
... on PipelineRunMetadataEntry { runId }
... on JobMetadataEntry { jobName locationName }
... on TableMetadataEntry { table { records schema { columns { name type description } } } }
... on TableSchemaMetadataEntry { schema { columns { name type description } } }
"""
EVENT = f"""
__typename
... on MessageEvent {{ message level stepKey eventType }}
... on DisplayableEvent {{ label description metadataEntries {{ {METADATA} }} }}
... on ErrorEvent {{ error {{ {ERROR} }} }}
... on ExecutionStepFailureEvent {{ failureMetadata {{ label description metadataEntries {{ {METADATA} }} }} }}
... on MaterializationEvent {{ partition tags {{ key value }} }}
... on AssetCheckEvaluationEvent {{ evaluation {{ checkName description success metadataEntries {{ {METADATA} }} }} }}
... on LogsCapturedEvent {{ fileKey }}
"""
RUNS = """
{ runsOrError(limit: 1000) { __typename ... on Runs { results {
    runId status jobName runConfigYaml tags { key value } } } } }"""
RUN = f"""
query ($runId: ID!) {{
  logsForRun(runId: $runId, limit: 100000) {{
    __typename
    ... on EventConnection {{ events {{ {EVENT} }} }}
    ... on PythonError {{ {ERROR} }}
  }}
}}"""
CAPTURED_LOGS = """
query ($runId: ID!, $fileKey: String!) {
  runOrError(runId: $runId) { ... on Run { capturedLogs(fileKey: $fileKey) { stdout stderr } } }
}"""
ASSETS = f"""
{{ assetNodes {{
    assetKey {{ path }} description metadataEntries {{ {METADATA} }}
    assetMaterializations(limit: 1000) {{
      runId partition label description tags {{ key value }} metadataEntries {{ {METADATA} }} }}
    assetChecksOrError {{ ... on AssetChecks {{ checks {{ name description
      executionForLatestMaterialization {{ runId status evaluation {{
        description success metadataEntries {{ {METADATA} }} }} }} }} }} }}
}} }}"""
CHECK_EXECUTIONS = f"""
query ($assetKey: AssetKeyInput!, $checkName: String!) {{
  assetCheckExecutions(assetKey: $assetKey, checkName: $checkName, limit: 1000) {{
    runId status evaluation {{ description success metadataEntries {{ {METADATA} }} }}
  }}
}}"""
TICKS = f"""ticks(limit: 1000) {{ status skipReason runIds error {{ {ERROR} }}
    logEvents {{ events {{ message level }} }} }}"""
WORKSPACE = f"""
{{ workspaceOrError {{ __typename ... on Workspace {{ locationEntries {{
    name loadStatus displayMetadata {{ key value }}
    locationOrLoadError {{
      __typename
      ... on PythonError {{ {ERROR} }}
      ... on RepositoryLocation {{ name environmentPath repositories {{
        name displayMetadata {{ key value }}
        allTopLevelResourceDetails {{ name description resourceType
          configFields {{ name description defaultValueAsJson }}
          configuredValues {{ key value type }} }}
        sensors {{ name description sensorState {{ status {TICKS} }} }}
        schedules {{ name description scheduleState {{ status {TICKS} }} }}
      }} }}
    }}
}} }} }} }}"""
JOB_RESOURCES = """
query ($selector: PipelineSelector!) {
  resourcesOrError(pipelineSelector: $selector) {
    __typename ... on ResourceConnection { resources { name description configField { name description } } }
  }
  runConfigSchemaOrError(selector: $selector) { __typename ... on RunConfigSchema { rootDefaultYaml } }
}"""
ENV_VARS = """
query ($selector: RepositorySelector!) {
  utilizedEnvVarsOrError(repositorySelector: $selector) {
    __typename ... on EnvVarWithConsumersList { results { envVarName envVarConsumers { type name } } }
  }
}"""
INSTANCE = """{ instance { info runLauncher { name } runQueuingSupported
    daemonHealth { allDaemonStatuses { daemonType healthy lastHeartbeatErrors { message stack } } } } }"""


@dataclass(frozen=True)
class Repository:
    """Where the definitions live, as the GraphQL selectors name it."""

    location: str
    name: str = "__repository__"

    def selector(self) -> dict[str, str]:
        return {"repositoryLocationName": self.location, "repositoryName": self.name}


def graphql(url: str, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """POST one query the way the UI does; any GraphQL error fails the test rather than hiding a surface."""
    response = httpx.post(
        url, json={"query": query, "variables": dict(variables or {})}, timeout=GRAPHQL_TIMEOUT_SECONDS
    )
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    assert not answer.get("errors"), answer["errors"]
    return answer


def ui_answers(url: str, repository: Repository, job_name: str) -> dict[str, str]:
    """Everything the UI can show about runs, events, logs, assets, checks, resources and instigators.

    Returns the raw JSON text of each answer, keyed by what it is, for scanning and for checking that
    the answers are not empty.
    """
    answers = {
        "runs": graphql(url, RUNS),
        "assets": graphql(url, ASSETS),
        "workspace and resources": graphql(url, WORKSPACE),
        "job resources and launchpad defaults": graphql(
            url, JOB_RESOURCES, {"selector": {**repository.selector(), "pipelineName": job_name}}
        ),
        "environment variables": graphql(url, ENV_VARS, {"selector": repository.selector()}),
        "instance": graphql(url, INSTANCE),
    }
    answers |= _check_executions(url, answers["assets"])
    for run_id in _run_ids(answers["runs"]):
        answers |= _run_answers(url, run_id)
    return {name: _json_text(answer) for name, answer in answers.items()}


def _run_ids(runs: Mapping[str, Any]) -> list[str]:
    return [run["runId"] for run in runs["data"]["runsOrError"]["results"]]


def _run_answers(url: str, run_id: str) -> dict[str, Any]:
    """The run's event log, its captured stdout/stderr, and the debug file the UI offers for download."""
    events = graphql(url, RUN, {"runId": run_id})
    answers: dict[str, Any] = {f"events of run {run_id}": events}
    for file_key in _captured_file_keys(events):
        answers[f"captured logs {file_key} of run {run_id}"] = graphql(
            url, CAPTURED_LOGS, {"runId": run_id, "fileKey": file_key}
        )
    debug = httpx.get(url.removesuffix("/graphql") + f"/download_debug/{run_id}", timeout=GRAPHQL_TIMEOUT_SECONDS)
    debug.raise_for_status()
    answers[f"debug file of run {run_id}"] = gzip.decompress(debug.content).decode()
    return answers


def _captured_file_keys(events: Mapping[str, Any]) -> list[str]:
    connection = events["data"]["logsForRun"]
    return sorted({event["fileKey"] for event in connection.get("events", []) if "fileKey" in event})


def _check_executions(url: str, assets: Mapping[str, Any]) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for node in assets["data"]["assetNodes"]:
        for check in node["assetChecksOrError"].get("checks", []):
            variables = {"assetKey": {"path": node["assetKey"]["path"]}, "checkName": check["name"]}
            answers[f"executions of check {check['name']}"] = graphql(url, CHECK_EXECUTIONS, variables)
    return answers


def _json_text(answer: object) -> str:
    """Answers are scanned as the UI receives them: JSON text, or the debug file's own text."""
    return answer if isinstance(answer, str) else json.dumps(answer)


def scan_answers(scanner: SecretScanner, answers: Mapping[str, str]) -> list[Finding]:
    """Findings in the texts ``ui_answers`` collected, each named after the answer it came from."""
    return [finding for name, text in answers.items() for finding in scanner.scan_text(f"GraphQL {name}", text)]
