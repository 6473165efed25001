# marketing-ml: Dagster webserver, Dagster daemon and the Streamlit dashboard share this image
# (docker-compose.yml picks the command). Without registry access, build a base image with
# scripts/offline_base_image.sh and pass it: --build-arg BASE_IMAGE=marketing-ml-base:bookworm.
# Nothing BuildKit-specific: the classic builder (DOCKER_BUILDKIT=0) builds it.
ARG BASE_IMAGE=python:3.12-slim
FROM ${BASE_IMAGE}

# A virtual environment works the same on python:3.12-slim and on Debian's python3 (whose pip
# refuses system-wide installs, PEP 668).
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/venv

WORKDIR /app

# Dependencies first, pinned by constraints.txt (the only network access: the package index),
# in a layer that survives code and README changes: the packages and README are placeholders here.
COPY pyproject.toml constraints.txt ./
RUN mkdir marketing_ml app planning serving_contract \
    && touch marketing_ml/__init__.py app/__init__.py planning/__init__.py \
        serving_contract/__init__.py README.md \
    && pip install --constraint constraints.txt . \
    && pip uninstall --yes marketing-ml \
    && rm -rf marketing_ml app planning serving_contract README.md build *.egg-info

COPY README.md workspace.yaml ./
# Streamlit's settings (no usage statistics, viewer toolbar): read from the working directory.
COPY .streamlit ./.streamlit
COPY marketing_ml ./marketing_ml
COPY app ./app
COPY planning ./planning
COPY serving_contract ./serving_contract
COPY deploy ./deploy
RUN pip install --no-deps --constraint constraints.txt . \
    && rm -rf build *.egg-info \
    && chmod 0755 deploy/entrypoint.sh

# Non-root; data/ and .dagster/ are volumes (docker-compose.yml) and inherit this ownership.
RUN useradd --uid 10001 --user-group --create-home --home-dir /home/app --shell /usr/sbin/nologin app \
    && mkdir -p /app/data/raw /app/.dagster \
    && chown -R app:app /app/data /app/.dagster
USER app

ENV DAGSTER_HOME=/app/.dagster \
    MARKETING_ML_RAW_DIR=/app/data/raw \
    MARKETING_ML_DB=/app/data/lakehouse.duckdb \
    MARKETING_ML_SERVING_DB=/app/data/serving.duckdb
VOLUME ["/app/data", "/app/.dagster"]
EXPOSE 3000 8501

ENTRYPOINT ["/app/deploy/entrypoint.sh"]
CMD ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", "workspace.yaml"]
