#!/usr/bin/env bash
# A standalone Spark cluster on this machine, from pyspark's own distribution in .venv: one
# master and two workers (1 core, 2 GB each), separate JVMs, bound to 127.0.0.1.
#
#   scripts/spark_cluster.sh start DIR    start them; returns once both workers are registered
#   scripts/spark_cluster.sh stop DIR     stop them (TERM, KILL after 10 s); safe to repeat
#   scripts/spark_cluster.sh status DIR   the processes and what the master reports
#
# DIR holds each process's log (master.log, worker-N.log), its PID (master.pid, worker-N.pid: the
# JVM itself, spark-class execs it), the workers' work dirs (worker-N/) and Spark's scratch
# space (local/). The master is spark://127.0.0.1:7077, its web UI http://127.0.0.1:8089 (JSON
# at /json/), the workers' UIs :8091 and :8092.
#
# Environment (optional): SPARK_CLUSTER_TIMEOUT seconds to wait for the workers (default 60),
# PYTHON the interpreter whose pyspark to use (default .venv/bin/python).
set -Eeuo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
TIMEOUT=${SPARK_CLUSTER_TIMEOUT:-60}
HOST=127.0.0.1
MASTER_PORT=7077
MASTER_UI_PORT=8089
WORKERS=2
MASTER_URL=spark://$HOST:$MASTER_PORT
MASTER_JSON=http://$HOST:$MASTER_UI_PORT/json/

log() { printf '%s spark-cluster: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
usage() { echo "usage: $0 start|stop|status DIR" >&2; exit 2; }

[ $# -eq 2 ] || usage
ACTION=$1
DIR=$2

# The PID in a pid file, if that process is alive and still one of this cluster's JVMs (a PID
# reused by something else is never signalled).
live_pid() {
    local file=$1 pid
    [ -f "$file" ] || return 1
    pid=$(cat "$file" 2>/dev/null) || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'org\.apache\.spark\.deploy\.' || return 1
    echo "$pid"
}

port_in_use() {
    "$PYTHON" - "$1" <<'PYTHON'
import socket, sys
with socket.socket() as s:
    s.settimeout(1)
    sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
PYTHON
}

# Who listens on a port, for the error message ("pid 123 (java ... Master ...)").
port_owner() {
    local pid
    pid=$(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2) || true
    if [ -n "$pid" ]; then
        local what
        what=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -o 'org\.apache\.spark\.[A-Za-z.]*' | tail -n1) \
            || what=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-60)
        printf 'pid %s (%s)' "$pid" "$what"
    else
        printf 'an unknown process'
    fi
}

alive_workers() {
    curl -fsS --max-time 2 "$MASTER_JSON" 2>/dev/null | "$PYTHON" -c \
        'import json, sys; print(json.load(sys.stdin).get("aliveworkers", 0))' 2>/dev/null || echo 0
}

tails() {
    local file
    for file in "$DIR"/master.log "$DIR"/worker-*.log; do
        [ -f "$file" ] || continue
        echo "---- last lines of $file" >&2
        tail -n 25 "$file" >&2
    done
}

stop_cluster() {
    local pids=() names=() file pid name
    for file in "$DIR"/worker-*.pid "$DIR"/master.pid; do
        [ -e "$file" ] || continue
        name=$(basename "$file" .pid)
        if pid=$(live_pid "$file"); then
            pids+=("$pid")
            names+=("$name")
            kill -TERM "$pid" 2>/dev/null || true
        fi
        rm -f "$file"
    done
    if [ ${#pids[@]} -eq 0 ]; then
        log "nothing running from $DIR"
        return 0
    fi
    log "stopping ${names[*]} (pids ${pids[*]})"
    for _ in $(seq 100); do
        local running=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && running=1; done
        [ "$running" = 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            log "pid $pid ignored TERM for 10 s: KILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done
    log "stopped"
}

# Start one JVM in the background: its log and PID file under DIR.
launch() {
    local name=$1
    shift
    nohup "$SPARK_HOME/bin/spark-class" "$@" >"$DIR/$name.log" 2>&1 </dev/null &
    echo $! >"$DIR/$name.pid"
}

start_cluster() {
    local running="" file
    for file in "$DIR"/master.pid "$DIR"/worker-*.pid; do
        [ -e "$file" ] || continue
        live_pid "$file" >/dev/null && running="$running $(basename "$file" .pid)"
    done
    [ -z "$running" ] || die "already running from $DIR:$running (scripts/spark_cluster.sh stop $DIR first)"

    command -v java >/dev/null || [ -n "${JAVA_HOME:-}" ] || die "no java on PATH and no JAVA_HOME (Spark needs Java 17+)"
    [ -x "$PYTHON" ] || die "$PYTHON not found (make install, or PYTHON=...)"
    SPARK_HOME=$("$PYTHON" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))') \
        || die "$PYTHON cannot import pyspark (make spark-install)"
    [ -x "$SPARK_HOME/bin/spark-class" ] || die "$SPARK_HOME/bin/spark-class missing"

    local port
    for port in "$MASTER_PORT" "$MASTER_UI_PORT" $(seq 8091 $((8090 + WORKERS))); do
        if port_in_use "$port"; then
            die "127.0.0.1:$port is already in use by $(port_owner "$port"): a Spark master or worker" \
                "left over from a previous run? Stop it (scripts/spark_cluster.sh stop THAT_DIR, or kill that pid) and retry."
        fi
    done

    mkdir -p "$DIR/local"
    DIR=$(cd "$DIR" && pwd)
    export SPARK_HOME SPARK_LOCAL_IP=$HOST SPARK_LOCAL_DIRS=$DIR/local
    export PYSPARK_PYTHON=${PYSPARK_PYTHON:-$PYTHON}
    # The master and workers only schedule (executors are JVMs of their own): the cheapest JIT
    # and GC start them fastest. No REST submission server (a port of its own, 6066).
    export SPARK_DAEMON_JAVA_OPTS="${SPARK_DAEMON_JAVA_OPTS:-} -XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
    export SPARK_MASTER_OPTS="${SPARK_MASTER_OPTS:-} -Dspark.master.rest.enabled=false"
    rm -f "$DIR"/master.log "$DIR"/worker-*.log

    local started=$SECONDS
    log "starting master $MASTER_URL (UI http://$HOST:$MASTER_UI_PORT) from $SPARK_HOME"
    launch master org.apache.spark.deploy.master.Master \
        --host "$HOST" --port "$MASTER_PORT" --webui-port "$MASTER_UI_PORT"
    local n
    for n in $(seq "$WORKERS"); do
        mkdir -p "$DIR/worker-$n"
        SPARK_WORKER_DIR="$DIR/worker-$n" launch "worker-$n" org.apache.spark.deploy.worker.Worker \
            --host "$HOST" --cores 1 --memory 2g --webui-port $((8090 + n)) \
            --work-dir "$DIR/worker-$n" "$MASTER_URL"
    done

    local deadline=$((SECONDS + TIMEOUT)) alive=0 name
    while :; do
        alive=$(alive_workers)
        [ "$alive" -ge "$WORKERS" ] && break
        for name in master $(seq -f 'worker-%g' "$WORKERS"); do
            if ! live_pid "$DIR/$name.pid" >/dev/null; then
                tails
                stop_cluster
                die "$name exited during start-up (log: $DIR/$name.log)"
            fi
        done
        if [ "$SECONDS" -ge "$deadline" ]; then
            tails
            stop_cluster
            die "only $alive of $WORKERS workers registered with $MASTER_URL after ${TIMEOUT}s (logs above, in $DIR)"
        fi
        sleep 0.5
    done
    log "up in $((SECONDS - started))s: $MASTER_URL with $alive workers" \
        "(pids: master $(cat "$DIR/master.pid"), workers $(cat "$DIR"/worker-*.pid | tr '\n' ' '))"
}

status_cluster() {
    local file name pid
    for file in "$DIR"/master.pid "$DIR"/worker-*.pid; do
        [ -e "$file" ] || continue
        name=$(basename "$file" .pid)
        if pid=$(live_pid "$file"); then echo "$name: running (pid $pid)"; else echo "$name: not running"; fi
    done
    echo "master $MASTER_URL: $(alive_workers) alive workers"
}

case "$ACTION" in
    start) mkdir -p "$DIR"; start_cluster ;;
    stop) stop_cluster ;;
    status) status_cluster ;;
    *) usage ;;
esac
