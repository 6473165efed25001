#!/usr/bin/env bash
# The Spark engine on a real standalone cluster, checked against DuckDB (`make spark-cluster-test`):
#   1. sample data: a small raw folder (the generator's usual dirt: blank booking values,
#      duplicated events, the original sample's kinds of bad records, at low rates);
#   2. the whole graph (every asset and check) on DuckDB;
#   3. a Spark master and two workers on 127.0.0.1 (scripts/spark_cluster.sh; stopped on any exit);
#   4. the same graph with MARKETING_ML_ENGINE=spark against spark://127.0.0.1:7077;
#   5. the two serving files compared table by table (python -m marketing_ml.parity).
# Exit status non-zero on any failure; the timings of every step at the end.
#
#   scripts/spark_cluster_test.sh [DIR]
#
# DIR (default: a new temporary folder, removed after a pass, kept after a failure) receives
# raw/, duckdb/, spark/, the Dagster homes, the cluster's logs (cluster/) and each run's log.
#
# Environment (all optional):
#   SAMPLE_AD_SETS, SAMPLE_DAYS, SAMPLE_SEED   the sample's size and seed (20, 90, 7)
#   PARITY_ARGS      extra arguments for marketing_ml.parity (e.g. "--ignore-column trained_at")
#   KEEP_DIR=1       keep DIR after a pass too
set -Eeuo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=$ROOT/.venv/bin
[ -x "$BIN/python" ] || { echo "no .venv: run make spark-install first" >&2; exit 1; }

if [ $# -ge 1 ]; then
    mkdir -p "$1"
    DIR=$(cd "$1" && pwd)
    OWN_DIR=0
else
    DIR=$(mktemp -d "${TMPDIR:-/tmp}/spark-cluster-test.XXXXXX")
    OWN_DIR=1
fi
CLUSTER_DIR=$DIR/cluster
CLUSTER_UP=0
PHASE=setup
PHASES=()
phase_start=$SECONDS

log() { printf '%s spark-cluster-test: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
begin() { PHASE=$1; phase_start=$SECONDS; log "== $PHASE"; }
end() { PHASES+=("$(printf '%-34s %5ss' "$PHASE" $((SECONDS - phase_start)))"); }
fail() { log "FAILED ($PHASE): $*"; exit 1; }

cleanup() {
    local status=$?
    trap - EXIT ERR INT TERM
    if [ "$CLUSTER_UP" = 1 ]; then
        bash "$ROOT/scripts/spark_cluster.sh" stop "$CLUSTER_DIR" || log "stopping the cluster failed"
    fi
    if [ ${#PHASES[@]} -gt 0 ]; then
        log "timings:"
        printf '  %s\n' "${PHASES[@]}" >&2
    fi
    if [ "$status" = 0 ]; then
        log "PASSED"
        if [ "$OWN_DIR" = 1 ] && [ "${KEEP_DIR:-0}" != 1 ]; then rm -rf "$DIR"; fi
    else
        log "exit status $status; everything is in $DIR"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'fail "command failed at line $LINENO: $BASH_COMMAND"' ERR
trap 'exit 130' INT TERM

# One whole-graph run: `dagster asset materialize --select '*'` (what `make run` does) with its
# own Dagster home (deploy/dagster.yaml) and log; the log's tail on failure.
materialize() {
    local name=$1
    shift
    local home=$DIR/dagster-$name
    mkdir -p "$home" "$DIR/$name"
    cp "$ROOT/deploy/dagster.yaml" "$home/dagster.yaml"
    log "$name: dagster asset materialize -m marketing_ml --select '*' (log: $DIR/$name.log)"
    if ! env "$@" \
        MARKETING_ML_RAW_DIR="$DIR/raw" \
        MARKETING_ML_DB="$DIR/$name/lakehouse.duckdb" \
        MARKETING_ML_SERVING_DB="$DIR/$name/serving.duckdb" \
        DAGSTER_HOME="$home" \
        "$BIN/dagster" asset materialize -m marketing_ml --select '*' >"$DIR/$name.log" 2>&1; then
        grep -E 'STEP_FAILURE|RUN_FAILURE|Error|error:' "$DIR/$name.log" | tail -n 20 >&2 || true
        echo "---- last lines of $DIR/$name.log" >&2
        tail -n 40 "$DIR/$name.log" >&2
        fail "the $name run failed"
    fi
    [ -f "$DIR/$name/serving.duckdb" ] || fail "the $name run published no $DIR/$name/serving.duckdb"
}

log "working in $DIR"

# ---------------------------------------------------------------------------------------------
begin "sample data"
rm -rf "$DIR/raw"
"$BIN/python" -m marketing_ml.sample_data --out "$DIR/raw" \
    --ad-sets "${SAMPLE_AD_SETS:-20}" --days "${SAMPLE_DAYS:-90}" --seed "${SAMPLE_SEED:-7}" >&2
end

# ---------------------------------------------------------------------------------------------
begin "whole graph on DuckDB"
rm -rf "$DIR/duckdb" "$DIR/dagster-duckdb"
materialize duckdb MARKETING_ML_ENGINE=duckdb
end

# ---------------------------------------------------------------------------------------------
begin "cluster start (master + 2 workers)"
"$BIN/python" -c 'import pyspark, sqlglot' 2>/dev/null \
    || fail "pyspark and sqlglot are not installed in .venv (make spark-install)"
# A cluster left running in this folder by an aborted run is this test's own: stop it. One from
# anywhere else holds the ports, and the start below names it.
bash "$ROOT/scripts/spark_cluster.sh" stop "$CLUSTER_DIR" 2>/dev/null || true
rm -rf "$CLUSTER_DIR"
CLUSTER_UP=1
bash "$ROOT/scripts/spark_cluster.sh" start "$CLUSTER_DIR" || { CLUSTER_UP=0; fail "the cluster did not start"; }
end

# ---------------------------------------------------------------------------------------------
begin "whole graph on Spark (cluster)"
rm -rf "$DIR/spark" "$DIR/dagster-spark"
mkdir -p "$DIR/spark"
materialize spark \
    MARKETING_ML_ENGINE=spark \
    SPARK_MASTER=spark://127.0.0.1:7077 \
    MARKETING_ML_WAREHOUSE="$DIR/spark/warehouse" \
    SPARK_LOCAL_IP=127.0.0.1 \
    PYSPARK_PYTHON="$BIN/python" \
    PYSPARK_DRIVER_PYTHON="$BIN/python"
# The work must have run on the cluster, not in a local fallback: an application registered
# with the master, and executors on the workers.
apps=$(find "$CLUSTER_DIR"/worker-* -mindepth 1 -maxdepth 1 -type d -name 'app-*' -printf '%f\n' 2>/dev/null | sort -u)
[ -n "$apps" ] || fail "no application ran on the cluster's workers (a local[*] session?)"
log "executors ran on the workers for $(echo "$apps" | wc -l) application(s): $(echo "$apps" | tr '\n' ' ')"
end

# ---------------------------------------------------------------------------------------------
begin "parity: serving files"
# shellcheck disable=SC2086
"$BIN/python" -m marketing_ml.parity ${PARITY_ARGS:-} \
    "$DIR/duckdb/serving.duckdb" "$DIR/spark/serving.duckdb" >&2 \
    || fail "the serving files differ (above)"
end

exit 0
