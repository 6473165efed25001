"""docker-compose.yml, checked without Docker: services, commands, ports, volumes, LM access, and only
keys Debian's docker-compose 1.29 accepts. The real stack runs in `make compose-test`."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from app import queries
from app.next_steps import LMSettings
from marketing_ml import resources
from marketing_ml_tests.support import REPOSITORY

COMPOSE_FILE = REPOSITORY / "docker-compose.yml"
SERVICES = ("webserver", "daemon", "dashboard")
DATA_DIR = "/app/data"
DAGSTER_HOME = "/app/.dagster"
LM_DEFAULT = "${LM_ENDPOINT:-http://host.docker.internal:1234/v1}"
REJECTED_BY_COMPOSE_1_29 = {"name", "include"}
REJECTED_SERVICE_KEYS = {"develop"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def command(service: dict) -> list[str]:
    value = service["command"]
    return value.split() if isinstance(value, str) else list(value)


def option(arguments: list[str], *names: str) -> str:
    for index, argument in enumerate(arguments):
        if argument in names:
            return arguments[index + 1]
    raise AssertionError(f"none of {names} in {arguments}")


def environment(service: dict) -> dict[str, str]:
    value = service.get("environment") or {}
    if isinstance(value, list):
        value = dict(item.split("=", 1) for item in value)
    return {key: str(item) for key, item in value.items()}


def volume_targets(compose: dict, service: dict) -> dict[str, str]:
    """Mount target -> named volume; bind mounts are not allowed for the shared state."""
    targets = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            source, target = volume.get("source"), volume["target"]
        else:
            source, target = volume.split(":")[:2]
        assert source in (compose.get("volumes") or {}), f"{volume}: not a named volume"
        targets[target] = source
    return targets


def published_ports(service: dict) -> list[str]:
    return [str(port) for port in service.get("ports", [])]


def test_the_three_services_share_one_image(services):
    assert set(SERVICES) <= set(services)
    images = {services[name].get("image") for name in SERVICES}
    assert len(images) == 1 and None not in images, images
    for name in SERVICES:
        build = services[name]["build"]
        assert build["context"] == "."
        assert build["args"]["BASE_IMAGE"] == "${BASE_IMAGE:-python:3.12-slim}"


def test_webserver_serves_the_workspace_on_3000(services):
    arguments = command(services["webserver"])
    assert arguments[0] == "dagster-webserver"
    assert option(arguments, "-p", "--port") == "3000"
    assert option(arguments, "-h", "--host") == "0.0.0.0"
    assert option(arguments, "-w", "--workspace") == "workspace.yaml"
    assert (REPOSITORY / "workspace.yaml").exists()
    assert published_ports(services["webserver"]) == ["127.0.0.1:3000:3000"]


def test_daemon_runs_the_sensors_with_the_same_workspace(services):
    arguments = command(services["daemon"])
    assert arguments[:2] == ["dagster-daemon", "run"]
    assert option(arguments, "-w", "--workspace") == "workspace.yaml"
    assert "ports" not in services["daemon"]
    env = environment(services["daemon"])
    assert env["MARKETING_ML_BOOTSTRAP"] == "on", "a fresh `up` must build the dashboard's data"
    for name in ("webserver", "daemon"):
        assert environment(services[name])["MARKETING_ML_SCHEDULES"] == "on", name


def test_dashboard_runs_the_app_on_8501(services):
    arguments = command(services["dashboard"])
    assert arguments[:3] == ["streamlit", "run", "app/serve.py"]
    assert (REPOSITORY / "app" / "serve.py").exists()
    assert option(arguments, "--server.port") == "8501"
    assert option(arguments, "--server.address") == "0.0.0.0"
    assert option(arguments, "--server.headless") == "true"
    assert published_ports(services["dashboard"]) == ["127.0.0.1:8501:8501"]


def test_ports_are_published_on_loopback_only(services):
    for name, service in services.items():
        for port in published_ports(service):
            assert re.fullmatch(r"127\.0\.0\.1:\d+:\d+", port), f"{name}: {port}"


def test_all_three_share_the_data_and_dagster_home_volumes(compose, services):
    mounts = {name: volume_targets(compose, services[name]) for name in SERVICES}
    for name in SERVICES:
        assert {DATA_DIR, DAGSTER_HOME} <= set(mounts[name]), f"{name}: {mounts[name]}"
    for target in (DATA_DIR, DAGSTER_HOME):
        assert len({mounts[name][target] for name in SERVICES}) == 1, target


def mount_modes(service: dict) -> dict[str, str]:
    """Mount target -> "ro" or "rw"."""
    modes = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            modes[volume["target"]] = "ro" if volume.get("read_only") else "rw"
        else:
            parts = volume.split(":")
            options = parts[2].split(",") if len(parts) > 2 else []
            modes[parts[1]] = "ro" if "ro" in options else "rw"
    return modes


def test_dashboard_mounts_the_data_volume_read_only(services):
    """The dashboard only reads the serving file; the pipeline's services write the volume."""
    assert mount_modes(services["dashboard"])[DATA_DIR] == "ro"
    for name in ("webserver", "daemon"):
        assert mount_modes(services[name])[DATA_DIR] == "rw", name
    # a fresh volume is populated (with the app user's ownership) by a read-write mount first
    assert "webserver" in services["dashboard"].get("depends_on", {})


def test_image_carries_the_streamlit_settings():
    dockerfile = (REPOSITORY / "Dockerfile").read_text()
    assert re.search(r"^COPY \.streamlit \./\.streamlit$", dockerfile, re.M)
    assert "!.streamlit/" in (REPOSITORY / ".dockerignore").read_text().split()
    assert (REPOSITORY / ".streamlit" / "config.toml").is_file()


def test_paths_point_into_the_volumes(services):
    """What resources.py / app/queries.py read, set the same way in every service."""
    for name in SERVICES:
        env = environment(services[name])
        assert env["DAGSTER_HOME"] == DAGSTER_HOME, name
        assert env["MARKETING_ML_RAW_DIR"] == f"{DATA_DIR}/raw", name
        assert env["MARKETING_ML_DB"] == f"{DATA_DIR}/lakehouse.duckdb", name
        assert env["MARKETING_ML_SERVING_DB"] == f"{DATA_DIR}/serving.duckdb", name
    # The defaults these override are the repository's data/ folder: same file names.
    assert Path(resources.DEFAULT_SERVING_DB).name == "serving.duckdb"
    assert Path(resources.DEFAULT_LAKEHOUSE_DB).name == "lakehouse.duckdb"
    assert queries.DEFAULT_SERVING_DB == resources.DEFAULT_SERVING_DB


def test_lm_studio_on_the_host_is_reachable(services):
    for name in SERVICES:
        assert "host.docker.internal:host-gateway" in services[name].get("extra_hosts", []), name
    env = environment(services["dashboard"])
    assert env["LM_ENDPOINT"] == LM_DEFAULT
    default = LM_DEFAULT.removeprefix("${LM_ENDPOINT:-").removesuffix("}")
    assert LMSettings.from_env({"LM_ENDPOINT": default}).base_url == default


def test_every_service_has_a_healthcheck(services):
    expected = {
        "webserver": "http://127.0.0.1:3000/server_info",
        "dashboard": "http://127.0.0.1:8501/_stcore/health",
        "daemon": "liveness-check",
    }
    for name in SERVICES:
        healthcheck = services[name]["healthcheck"]
        test = healthcheck["test"]
        assert test[0] in ("CMD", "CMD-SHELL"), name
        assert expected[name] in " ".join(test), f"{name}: {test}"
        assert not healthcheck.get("disable"), name


def test_only_keys_docker_compose_1_29_accepts(compose, services):
    assert not REJECTED_BY_COMPOSE_1_29 & set(compose)
    for name, service in services.items():
        assert not REJECTED_SERVICE_KEYS & set(service), name
        assert "start_interval" not in service.get("healthcheck", {}), name
        depends_on = service.get("depends_on", {})
        if isinstance(depends_on, dict):
            for dependency, condition in depends_on.items():
                assert "required" not in (condition or {}), f"{name} -> {dependency}"


def test_image_and_entrypoint_match_the_compose_file():
    dockerfile = (REPOSITORY / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.12-slim$", dockerfile, re.M)
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", dockerfile, re.M)
    assert re.search(r"^USER (?!root\b)\S+$", dockerfile, re.M), "the image must not run as root"
    assert f"DAGSTER_HOME={DAGSTER_HOME}" in dockerfile
    assert "--constraint constraints.txt" in dockerfile
    entrypoint = (REPOSITORY / "deploy" / "entrypoint.sh").read_text()
    assert "deploy/dagster.yaml" in entrypoint and (REPOSITORY / "deploy" / "dagster.yaml").exists()
    assert "dagster asset materialize -m marketing_ml --select '*'" in entrypoint
    assert entrypoint.rstrip().endswith('exec "$@"')
    ignored = (REPOSITORY / ".dockerignore").read_text().split()
    assert "*" in ignored, ".dockerignore should exclude everything it does not re-include"
    for path in (".venv", "data", ".dagster", ".git"):
        assert f"!{path}" not in ignored and f"!{path}/" not in ignored


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_docker_compose_validates_the_file():
    result = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
