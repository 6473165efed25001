#!/usr/bin/env bash
# The real stack, end to end (`make compose-test`; needs root and a few minutes):
#   1. a Docker engine: the running one, or `dockerd` started here (and stopped at the end);
#   2. a base image: python:3.12-slim if it can be pulled, else scripts/offline_base_image.sh;
#   3. docker-compose build (classic builder), up -d, and every healthcheck healthy;
#   4. checks: the webserver's GraphQL API lists every asset, a successful run and both
#      sensors running (MARKETING_ML_SCHEDULES=on); the dashboard
#      answers HTTP 200 and renders data (the serving file has rows in gold.daily_adset_metrics);
#      host.docker.internal (LM_ENDPOINT's host) resolves inside the dashboard container;
#   5. docker-compose down -v.
# Everything on loopback ports 3000 and 8501, under its own compose project name, so a stack you
# run yourself (project "main" or whatever your directory is called) keeps its volumes.
#
# Environment (all optional):
#   BASE_IMAGE              skip the base-image step and build on this image
#   COMPOSE_TEST_TIMEOUT    seconds to wait for every healthcheck (default 600)
#   COMPOSE_TEST_PROJECT    compose project name (default marketing_ml_compose_test)
#   DOCKERD_ARGS            extra arguments when this script starts dockerd (e.g. --storage-driver=vfs)
#   KEEP_STACK=1            leave the stack running (no down -v) for a look around
set -Eeuo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
export COMPOSE_PROJECT_NAME=${COMPOSE_TEST_PROJECT:-marketing_ml_compose_test}
export DOCKER_BUILDKIT=0            # the docker 28.2 client here has no buildx: classic builder
export COMPOSE_DOCKER_CLI_BUILD=0   # docker-compose 1.29 talks to the engine API itself
TIMEOUT=${COMPOSE_TEST_TIMEOUT:-600}
DEFAULT_BASE=python:3.12-slim
OFFLINE_BASE=marketing-ml-base:bookworm
WEB=http://127.0.0.1:3000
DASH=http://127.0.0.1:8501
COMPOSE=(docker-compose -f "$ROOT/docker-compose.yml")
if [ -x "$ROOT/.venv/bin/python" ]; then PY=$ROOT/.venv/bin/python; else PY=python3; fi

DOCKERD_PID=""
STACK_UP=0
PHASE=setup
PHASES=()
phase_start=0
log() { printf '%s compose-test: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
begin() { PHASE=$1; phase_start=$(date +%s); log "== $PHASE"; }
end() { PHASES+=("$(printf '%-28s %5ss' "$PHASE" $(($(date +%s) - phase_start)))"); }

fail() {
    log "FAILED ($PHASE): $*"
    if [ "$STACK_UP" = 1 ]; then
        "${COMPOSE[@]}" ps >&2 || true
        "${COMPOSE[@]}" logs --no-color --tail 50 >&2 || true
    fi
    exit 1
}

cleanup() {
    local status=$?
    trap - EXIT ERR
    if [ "$STACK_UP" = 1 ] && [ "${KEEP_STACK:-0}" != 1 ]; then
        log "docker-compose down -v"
        "${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1 || log "docker-compose down -v failed"
    fi
    if [ -n "$DOCKERD_PID" ] && [ "${KEEP_STACK:-0}" != 1 ]; then
        log "stopping the dockerd this script started (pid $DOCKERD_PID)"
        kill -TERM "$DOCKERD_PID" 2>/dev/null || true
        for _ in $(seq 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
        kill -0 "$DOCKERD_PID" 2>/dev/null && log "dockerd (pid $DOCKERD_PID) did not stop"
    fi
    if [ ${#PHASES[@]} -gt 0 ]; then
        log "timings:"
        printf '  %s\n' "${PHASES[@]}" >&2
    fi
    [ "$status" = 0 ] && log "PASSED" || log "exit status $status"
    exit "$status"
}
trap cleanup EXIT
trap 'fail "command failed at line $LINENO: $BASH_COMMAND"' ERR
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
begin "engine"
for tool in docker docker-compose; do
    command -v "$tool" >/dev/null || fail "$tool not found (apt-get install -y docker.io docker-compose)"
done
if ! docker info >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || fail "no Docker engine answers, and starting dockerd needs root"
    start_dockerd() {
        log "starting dockerd $* (log: /tmp/dockerd.log)"
        # shellcheck disable=SC2068
        dockerd $@ >/tmp/dockerd.log 2>&1 &
        DOCKERD_PID=$!
        for _ in $(seq 60); do
            docker info >/dev/null 2>&1 && return 0
            kill -0 "$DOCKERD_PID" 2>/dev/null || break
            sleep 1
        done
        kill -TERM "$DOCKERD_PID" 2>/dev/null || true
        wait "$DOCKERD_PID" 2>/dev/null || true
        DOCKERD_PID=""
        tail -n 20 /tmp/dockerd.log >&2
        return 1
    }
    # shellcheck disable=SC2086
    start_dockerd ${DOCKERD_ARGS:-} \
        || { [ -z "${DOCKERD_ARGS:-}" ] && log "retrying with --storage-driver=vfs" \
             && start_dockerd --storage-driver=vfs; } \
        || fail "dockerd does not start here (see /tmp/dockerd.log)"
fi
log "engine $(docker info -f '{{.ServerVersion}} ({{.Driver}})')"
for port in 3000 8501; do
    if "$PY" -c "import socket, sys; sys.exit(socket.socket().connect_ex(('127.0.0.1', $port)) != 0)"; then
        fail "127.0.0.1:$port is in use (a running 'make dev', 'make app' or compose stack?)"
    fi
done
end

# ---------------------------------------------------------------------------------------------
begin "base image"
if [ -n "${BASE_IMAGE:-}" ]; then
    log "BASE_IMAGE=$BASE_IMAGE (given)"
elif docker image inspect "$DEFAULT_BASE" >/dev/null 2>&1 \
    || timeout 120 docker pull "$DEFAULT_BASE" >/dev/null 2>&1; then
    BASE_IMAGE=$DEFAULT_BASE
else
    log "$DEFAULT_BASE cannot be pulled (no registry): building $OFFLINE_BASE"
    IMAGE=$OFFLINE_BASE "$ROOT/scripts/offline_base_image.sh" || fail "offline base image"
    BASE_IMAGE=$OFFLINE_BASE
fi
export BASE_IMAGE
log "base image: $BASE_IMAGE"
end

# ---------------------------------------------------------------------------------------------
begin "build"
"${COMPOSE[@]}" config -q || fail "docker-compose.yml does not validate"
"${COMPOSE[@]}" build --build-arg BASE_IMAGE="$BASE_IMAGE" >/tmp/compose-test-build.log 2>&1 \
    || { tail -n 40 /tmp/compose-test-build.log >&2; fail "docker-compose build (log: /tmp/compose-test-build.log)"; }
end

# ---------------------------------------------------------------------------------------------
begin "up to healthy"
"${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1 || true  # leftovers of an aborted run
STACK_UP=1
"${COMPOSE[@]}" up -d || fail "docker-compose up -d"
services=$("${COMPOSE[@]}" config --services | sort | tr '\n' ' ')
deadline=$(($(date +%s) + TIMEOUT))
last=""
while :; do
    states=""
    all_healthy=1
    for service in $services; do
        id=$("${COMPOSE[@]}" ps -q "$service" 2>/dev/null || true)
        if [ -z "$id" ]; then
            state="not-created"
        else
            state=$(docker inspect -f '{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{else}}no-healthcheck{{end}}/{{.RestartCount}}' "$id")
        fi
        states="$states $service=$state"
        case "$state" in
            running/healthy/0) ;;
            running/starting/0 | created/* | not-created) all_healthy=0 ;;
            *) fail "$service is $state (status/health/restarts)" ;;
        esac
    done
    [ "$states" != "$last" ] && log "$states" && last=$states
    [ "$all_healthy" = 1 ] && break
    [ "$(date +%s)" -lt "$deadline" ] || fail "not all healthy after ${TIMEOUT}s:$states"
    sleep 5
done
end

# ---------------------------------------------------------------------------------------------
begin "checks"
# Every asset the code defines (the repository's own `dagster asset list` when .venv exists) and
# at least this fixed set; the webserver must list them all.
expected="bronze/audience_segments bronze/budget_pacing bronze/conversion_events
bronze/meta_campaign_performance silver/audience_segments silver/budget_pacing
silver/conversion_events silver/meta_campaign_performance silver/quarantine
silver/revenue_by_day gold/daily_adset_metrics models/conversion_model
models/pacing_risk_model publish"
if [ -x "$ROOT/.venv/bin/dagster" ]; then
    listed=$(cd "$ROOT" && "$ROOT/.venv/bin/dagster" asset list -m marketing_ml 2>/dev/null) \
        || fail "dagster asset list -m marketing_ml (from .venv) failed"
    expected="$expected
$listed"
fi
EXPECTED="$expected" WEB="$WEB" "$PY" - <<'PYTHON' || fail "GraphQL check"
import json, os, sys, time, urllib.request

def graphql(query):
    request = urllib.request.Request(
        os.environ["WEB"] + "/graphql", data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.load(response)
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    return body["data"]

expected = set(os.environ["EXPECTED"].split())
deadline = time.monotonic() + 120
while True:
    try:
        listed = {"/".join(node["assetKey"]["path"])
                  for node in graphql("{ assetNodes { assetKey { path } } }")["assetNodes"]}
        if expected <= listed:
            break
        problem = f"missing {sorted(expected - listed)}"
    except Exception as error:  # the code location may still be loading
        problem = repr(error)
    if time.monotonic() > deadline:
        sys.exit(f"GraphQL assetNodes: {problem}")
    time.sleep(3)
print(f"GraphQL lists {len(listed)} assets, all {len(expected)} expected", file=sys.stderr)

runs = graphql('{ runsOrError(filter: {statuses: [SUCCESS]}) { __typename '
               '... on Runs { results { runId jobName } } } }')["runsOrError"]
if runs["__typename"] != "Runs" or not runs["results"]:
    sys.exit(f"GraphQL: no successful run in the shared instance: {runs}")
print(f"GraphQL: {len(runs['results'])} successful run(s): "
      f"{sorted({run['jobName'] for run in runs['results']})}", file=sys.stderr)

# MARKETING_ML_SCHEDULES=on in compose: both sensors (raw files, automation) run.
repositories = graphql(
    "{ repositoriesOrError { ... on RepositoryConnection { nodes { name "
    "schedules { name scheduleState { status } } sensors { name sensorState { status } } } } } }"
)["repositoriesOrError"]["nodes"]
states = {f"schedule {s['name']}": s["scheduleState"]["status"]
          for repo in repositories for s in repo["schedules"]}
states |= {f"sensor {s['name']}": s["sensorState"]["status"]
           for repo in repositories for s in repo["sensors"]}
if {"sensor raw_files_changed", "sensor lakehouse_automation"} - set(states) or any(
        status != "RUNNING" for status in states.values()):
    sys.exit(f"GraphQL: both sensors should be RUNNING in compose: {states}")
print(f"GraphQL: {len(states)} sensors, all RUNNING", file=sys.stderr)
PYTHON

DASH="$DASH" "$PY" - <<'PYTHON' || fail "dashboard HTTP"
import os, sys, urllib.request
for path in ("/", "/_stcore/health"):
    with urllib.request.urlopen(os.environ["DASH"] + path, timeout=30) as response:
        if response.status != 200:
            sys.exit(f"dashboard {path}: HTTP {response.status}")
print("dashboard: HTTP 200 on / and /_stcore/health", file=sys.stderr)
PYTHON

# The serving file in the volume, read the dashboard's way, and the dashboard script itself run
# headless inside its container: it must render the built dashboard, not the "not built" page.
"${COMPOSE[@]}" exec -T dashboard python - <<'PYTHON' || fail "dashboard data"
import sys
from app import queries
from serving_contract import DAILY_METRICS
from streamlit.testing.v1 import AppTest

path = queries.serving_path()
rows = queries.query(path, f"SELECT count(*) AS n FROM {DAILY_METRICS}")["n"][0]
if not rows:
    sys.exit(f"{path}: {DAILY_METRICS} is empty")
print(f"{path}: {rows} rows in {DAILY_METRICS}", file=sys.stderr)

app = AppTest.from_file("/app/app/dashboard.py", default_timeout=120).run()
titles = [element.value for element in app.title]
if app.exception:
    sys.exit(f"dashboard script raised: {[e.message for e in app.exception]}")
if "Marketing performance" not in titles:
    sys.exit(f"dashboard shows {titles}, not the built dashboard")
print(f"dashboard renders {titles} with {len(app.metric)} KPI tiles", file=sys.stderr)
PYTHON

resolved=$("${COMPOSE[@]}" exec -T dashboard getent hosts host.docker.internal) \
    || fail "host.docker.internal does not resolve in the dashboard container"
log "host.docker.internal -> $(echo "$resolved" | awk '{print $1}')"
"${COMPOSE[@]}" exec -T dashboard python - <<'PYTHON' || fail "LM_ENDPOINT"
import os, socket, sys
from urllib.parse import urlparse
endpoint = os.environ.get("LM_ENDPOINT", "")
host = urlparse(endpoint).hostname
if not host:
    sys.exit(f"LM_ENDPOINT={endpoint!r} has no host")
print(f"LM_ENDPOINT={endpoint}: {host} -> {socket.gethostbyname(host)}", file=sys.stderr)
PYTHON

for service in $services; do
    uid=$("${COMPOSE[@]}" exec -T "$service" id -u | tr -d '\r')
    [ "$uid" != 0 ] || fail "$service runs as root"
done
log "every service runs as a non-root user"
end

exit 0
