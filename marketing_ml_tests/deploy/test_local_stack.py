"""Compose without containers: the webserver, daemon and dashboard as local processes on loopback."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from marketing_ml.contract import BUDGET_PACING
from marketing_ml.definitions import build_definitions
from marketing_ml_tests.support import REPOSITORY
from marketing_ml_tests.support.lakehouse import write_clean_raw_dir

BIN = Path(sys.executable).parent
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


def wait_for(condition, timeout: float, what: str, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class GraphQL:
    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}/graphql"

    def __call__(self, query: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        assert "errors" not in answer, answer["errors"]
        return answer["data"]

    def run_status(self, run_id: str) -> str:
        data = self(
            "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }", {"id": run_id}
        )
        return data["runOrError"]["status"]

    def sensor_cursor(self, location: str) -> str | None:
        data = self(
            """query($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) {
                 ... on Sensor { sensorState { typeSpecificData {
                 ... on SensorData { lastCursor } } } } } }""",
            {
                "selector": {
                    "repositoryLocationName": location,
                    "repositoryName": "__repository__",
                    "sensorName": "raw_files_changed",
                }
            },
        )
        return data["sensorOrError"]["sensorState"]["typeSpecificData"]["lastCursor"]

    def automation_runs(self) -> list[dict]:
        """Runs the automation sensor started, newest first."""
        data = self(
            """{ runsOrError(filter: {tags: [{key: "dagster/sensor_name",
                 value: "lakehouse_automation"}]}) { ... on Runs { results { runId status
                 pipelineName tags { key value } assetSelection { path } } } } }"""
        )
        return data["runsOrError"]["results"]


@pytest.fixture
def local_stack(tmp_path):
    """The three services' own commands, on free loopback ports; everything is killed after."""
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(REPOSITORY / "deploy" / "dagster.yaml", dagster_home / "dagster.yaml")
    # the storage is created here, once: the webserver, the daemon and their code servers all
    # create a fresh SQLite storage at start and race (alembic: "table alembic_version already
    # exists", "more than one head")
    dg.DagsterInstance.from_config(str(dagster_home)).dispose()
    raw_dir = write_clean_raw_dir(tmp_path / "raw")
    environment = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "MARKETING_ML_RAW_DIR": str(raw_dir),
        "MARKETING_ML_DB": str(tmp_path / "lakehouse.duckdb"),
        "MARKETING_ML_SERVING_DB": str(tmp_path / "serving.duckdb"),
        "MARKETING_ML_SCHEDULES": "on",
    }
    webserver_port, dashboard_port = free_port(), free_port()
    commands = {
        "webserver": [
            str(BIN / "dagster-webserver"),
            "-h",
            "127.0.0.1",
            "-p",
            str(webserver_port),
            "-w",
            "workspace.yaml",
        ],
        "daemon": [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        "dashboard": [
            str(BIN / "streamlit"),
            "run",
            "app/serve.py",
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(dashboard_port),
            "--server.headless",
            "true",
        ],
    }
    processes = {
        name: subprocess.Popen(
            command,
            cwd=REPOSITORY,
            env=environment,
            start_new_session=True,
            stdout=(tmp_path / f"{name}.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        for name, command in commands.items()
    }
    try:
        yield {
            "graphql": GraphQL(webserver_port),
            "webserver_port": webserver_port,
            "dashboard_port": dashboard_port,
            "raw_dir": raw_dir,
            "serving": tmp_path / "serving.duckdb",
            "logs": tmp_path,
        }
    finally:
        for process in processes.values():
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=30)


def test_the_stack_lists_assets_runs_the_graph_and_reacts_to_new_raw_files(local_stack):
    graphql = local_stack["graphql"]
    wait_for(
        lambda: http_get(f"http://127.0.0.1:{local_stack['webserver_port']}/server_info")[0] == 200,
        120,
        "the webserver",
    )

    nodes = wait_for(
        lambda: graphql(
            """{ assetNodes { assetKey { path }
                 assetChecksOrError { ... on AssetChecks { checks { name } } } } }"""
        )["assetNodes"],
        120,
        "the code location to load (the webserver answers before it has)",
    )
    definitions = build_definitions()
    expected_assets = {key.to_user_string() for a in definitions.assets for key in a.keys}
    assert "raw/budget_pacing" in expected_assets  # the raw files are external assets
    assert {"/".join(node["assetKey"]["path"]) for node in nodes} == expected_assets
    listed_checks = {
        check["name"] for node in nodes for check in node["assetChecksOrError"].get("checks", [])
    }
    expected_checks = {key.name for checks in definitions.asset_checks for key in checks.check_keys}
    assert listed_checks == expected_checks

    location = graphql("{ workspaceOrError { ... on Workspace { locationEntries { name } } } }")[
        "workspaceOrError"
    ]["locationEntries"][0]["name"]
    launched = graphql(
        """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
             __typename ... on LaunchRunSuccess { run { runId } }
             ... on PythonError { message } } }""",
        {
            "params": {
                "selector": {
                    "repositoryLocationName": location,
                    "repositoryName": "__repository__",
                    "jobName": "full_refresh",
                },
                "runConfigData": {},
            }
        },
    )["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    status = wait_for(
        lambda: (s := graphql.run_status(run_id)) in {"SUCCESS", "FAILURE", "CANCELED"} and s,
        300,
        "the launched run",
    )
    assert status == "SUCCESS", (local_stack["logs"] / "daemon.log").read_text()[-3000:]
    assert local_stack["serving"].exists()

    # the sensors are on from the start: on a lakehouse with nothing built the automation asks
    # for everything at once; that run, queued behind the launched one, must end first, or it
    # reads the change below itself
    wait_for(
        lambda: all(run["status"] in FINISHED for run in graphql.automation_runs()),
        300,
        "the automation's build of the fresh lakehouse",
    )
    wait_for(lambda: graphql.sensor_cursor(location), 120, "the sensor's first look at the files")
    runs_before_change = len(graphql.automation_runs())
    pacing = local_stack["raw_dir"] / BUDGET_PACING.file_name
    pacing.write_bytes(pacing.read_bytes() + b"22/08/2024,AS_001,500,450.00,0.90,on_pace\r\n")
    drop_run = wait_for(
        lambda: next(
            (
                run
                for run in graphql.automation_runs()[: -runs_before_change or None]
                if {"path": ["bronze", "budget_pacing"]} in run["assetSelection"]
            ),
            None,
        ),
        300,
        "a run the automation sensor started to read the changed file",
    )
    status = wait_for(
        lambda: (s := graphql.run_status(drop_run["runId"])) in FINISHED and s,
        300,
        "the file drop's run",
    )
    assert status == "SUCCESS", (local_stack["logs"] / "daemon.log").read_text()[-3000:]
    assert "marketing_ml/full_load" not in {tag["key"] for tag in drop_run["tags"]}

    status, page = http_get(f"http://127.0.0.1:{local_stack['dashboard_port']}/")
    assert status == 200 and "<html" in page.lower()
    assert http_get(f"http://127.0.0.1:{local_stack['dashboard_port']}/_stcore/health") == (
        200,
        "ok",
    )
