#!/bin/sh
# Container entrypoint for every service (see Dockerfile and docker-compose.yml).
#
# 1. Creates DAGSTER_HOME with deploy/dagster.yaml (telemetry off, one run at a time) if missing.
# 2. With MARKETING_ML_BOOTSTRAP=on (the compose daemon service) and no serving file yet: writes
#    sample CSVs into the raw folder if it has none, then materializes every asset once, so a fresh
#    `docker-compose up` ends with a populated dashboard. A failed build is logged and the service
#    still starts (the Dagster UI shows the failed run; the dashboard keeps its "not built" page).
# 3. Runs the service's command.
set -eu

APP_DIR=${APP_DIR:-/app}
: "${DAGSTER_HOME:=$APP_DIR/.dagster}"
: "${MARKETING_ML_RAW_DIR:=$APP_DIR/data/raw}"
: "${MARKETING_ML_SERVING_DB:=$APP_DIR/data/serving.duckdb}"
export DAGSTER_HOME MARKETING_ML_RAW_DIR MARKETING_ML_SERVING_DB

log() { echo "entrypoint: $*" >&2; }

mkdir -p "$DAGSTER_HOME"
if [ ! -f "$DAGSTER_HOME/dagster.yaml" ]; then
    # Every service starts at once on a fresh volume: each writes its own copy (PIDs repeat across
    # containers, host names do not) and renames it into place.
    tmp="$DAGSTER_HOME/.dagster.yaml.$(cat /proc/sys/kernel/hostname).$$"
    cp "$APP_DIR/deploy/dagster.yaml" "$tmp"
    mv -f "$tmp" "$DAGSTER_HOME/dagster.yaml"
    log "created $DAGSTER_HOME/dagster.yaml"
fi

case "${MARKETING_ML_BOOTSTRAP:-off}" in
    on|1|true)
        if [ -f "$MARKETING_ML_SERVING_DB" ]; then
            log "$MARKETING_ML_SERVING_DB exists: no first build"
        else
            mkdir -p "$MARKETING_ML_RAW_DIR"
            if ls "$MARKETING_ML_RAW_DIR"/*.csv >/dev/null 2>&1; then
                log "using the CSVs in $MARKETING_ML_RAW_DIR"
            else
                log "no CSVs in $MARKETING_ML_RAW_DIR: writing sample data" \
                    "(${SAMPLE_AD_SETS:-30} ad sets, ${SAMPLE_DAYS:-180} days, seed ${SAMPLE_SEED:-42})"
                python -m marketing_ml.sample_data --out "$MARKETING_ML_RAW_DIR" \
                    --ad-sets "${SAMPLE_AD_SETS:-30}" --days "${SAMPLE_DAYS:-180}" \
                    --seed "${SAMPLE_SEED:-42}"
            fi
            log "first build: dagster asset materialize -m marketing_ml --select '*'"
            if dagster asset materialize -m marketing_ml --select '*'; then
                log "first build done: $MARKETING_ML_SERVING_DB"
            else
                log "first build FAILED (see the run in the Dagster UI); starting the service anyway"
            fi
        fi
        ;;
esac

exec "$@"
