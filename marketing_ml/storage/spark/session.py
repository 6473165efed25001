"""This process's Spark session: where it runs (SPARK_REMOTE for Spark Connect, e.g. Databricks
Connect, or SPARK_MASTER, default `local[*]`; `spark://host:7077` for a standalone cluster), with
the warehouse's embedded Derby metastore so the catalog persists between runs without a server.
Started on first use and shared by a run's steps; one process at a time may open the metastore.
"""

import os
import sys
from pathlib import Path

SPARK_MASTER_ENV = "SPARK_MASTER"
SPARK_REMOTE_ENV = "SPARK_REMOTE"
DEFAULT_MASTER = "local[*]"
DEFAULT_DRIVER_MEMORY = "2g"
"""The driver JVM's heap unless SPARK_DRIVER_MEMORY says otherwise. Spark's default (1g) could not
hold the broadcast sides of the quarantine's joins at 800 ad sets x 365 days on the cluster."""
LOCAL_SHUFFLE_PARTITIONS = 4
"""Shuffle partitions in local mode (Spark's default, 200, is for clusters: on one machine each
shuffle wrote 200 small files per stage). A cluster keeps its own setting."""

_sessions: dict[tuple, object] = {}


def session_for(warehouse: Path):
    """This process's Spark session on `warehouse`, started on first use (about 5 s)."""
    from pyspark.sql import SparkSession

    remote = os.environ.get(SPARK_REMOTE_ENV, "")
    master = os.environ.get(SPARK_MASTER_ENV) or DEFAULT_MASTER
    key = (remote, master, str(warehouse))
    session = _sessions.get(key)
    if session is not None:
        return session
    for other in list(_sessions):
        _sessions.pop(other).stop()
    # Python workers (scoring) run this interpreter, which has the project's packages, unless
    # PYSPARK_PYTHON names another; pyspark reads it when the session starts.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if remote:
        session = SparkSession.builder.remote(remote).getOrCreate()
    else:
        warehouse.mkdir(parents=True, exist_ok=True)
        metastore = warehouse / "metastore_db"
        builder = SparkSession.builder.master(master).config(
            "spark.driver.memory", os.environ.get("SPARK_DRIVER_MEMORY") or DEFAULT_DRIVER_MEMORY
        )
        if master.startswith("local"):
            builder = builder.config("spark.sql.shuffle.partitions", str(LOCAL_SHUFFLE_PARTITIONS))
        session = (
            builder.appName("marketing-ml")
            .config("spark.ui.enabled", "false")
            .config("spark.driver.host", os.environ.get("SPARK_DRIVER_HOST", "127.0.0.1"))
            .config("spark.sql.warehouse.dir", str(warehouse))
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
            .config(
                "spark.hadoop.javax.jdo.option.ConnectionURL",
                f"jdbc:derby:;databaseName={metastore};create=true",
            )
            .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={warehouse}")
            .enableHiveSupport()
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
    _sessions[key] = session
    return session
