#!/usr/bin/env bash
# `make up`: the Dagster UI and the dashboard together; Ctrl-C (or TERM) stops both.
# Each runs in a session of its own, so stopping it reaches every process it started
# (dg dev starts a webserver, a daemon and code servers) and nothing else.
# UI_PORT and DASHBOARD_PORT choose the ports; BIN the folder holding dg and streamlit.
set -uo pipefail
cd "$(dirname "$0")/.."

BIN="${BIN:-.venv/bin}"
UI_PORT="${UI_PORT:-3000}"
DASHBOARD_PORT="${DASHBOARD_PORT:-8501}"
UI_URL="http://127.0.0.1:$UI_PORT"
DASHBOARD_URL="http://127.0.0.1:$DASHBOARD_PORT"
STARTUP_SECONDS="${STARTUP_SECONDS:-120}"
sessions=()

stop_all() {
    trap - INT TERM EXIT
    local session
    for session in "${sessions[@]}"; do
        kill -TERM -- "-$session" 2>/dev/null
    done
    for _ in $(seq 50); do
        local alive=0
        for session in "${sessions[@]}"; do
            kill -0 -- "-$session" 2>/dev/null && alive=1
        done
        [ "$alive" = 0 ] && return
        sleep 0.1
    done
    for session in "${sessions[@]}"; do
        kill -KILL -- "-$session" 2>/dev/null
    done
}
trap 'echo; echo "Stopping the UI and the dashboard"; stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap stop_all EXIT

setsid "$BIN/dg" dev -h 127.0.0.1 -p "$UI_PORT" &
sessions+=($!)
setsid "$BIN/streamlit" run app/serve.py --server.address 127.0.0.1 \
    --server.port "$DASHBOARD_PORT" --server.headless true &
sessions+=($!)

answers() { curl --silent --output /dev/null --max-time 2 "$1"; }

deadline=$((SECONDS + STARTUP_SECONDS))
until answers "$UI_URL" && answers "$DASHBOARD_URL"; do
    for session in "${sessions[@]}"; do
        if ! kill -0 "$session" 2>/dev/null; then
            echo "A server stopped while starting (its output is above); stopping the other." >&2
            exit 1
        fi
    done
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "Not answering after ${STARTUP_SECONDS}s: $UI_URL or $DASHBOARD_URL" >&2
        exit 1
    fi
    sleep 0.5
done

echo
echo "UI:        $UI_URL"
echo "Dashboard: $DASHBOARD_URL"
echo "Ctrl-C stops both."
wait -n
echo "A server stopped (its output is above); stopping the other." >&2
exit 1
