"""What the Dagster UI shows, fetched through the GraphQL API the UI itself uses, for the secret scan.

Runs, event logs, captured output, debug files, assets, checks, resources, sensors, schedules and the
instance: every answer the UI can display, as JSON text to scan.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from carbon_pipeline_tests.support.secret_scan import Finding, SecretScanner

GRAPHQL_TIMEOUT_SECONDS = 120


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
