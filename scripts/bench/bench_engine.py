"""Which engine the runs use (DuckDB, or Spark in local mode or on a cluster), the environment
that selects it, and the untimed warm-up before the first scale."""

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .bench_host import BIN, ROOT

ENGINES = ("duckdb", "spark")
CLUSTER_MASTER = "spark://127.0.0.1:7077"
"""scripts/spark_cluster.sh's master."""
CLUSTER_SCRIPT = ROOT / "scripts" / "spark_cluster.sh"


@dataclass(frozen=True)
class Engine:
    """Which engine the runs use: `duckdb`, or `spark` on `master` (None: Spark's default, local
    mode). `workers`: the PIDs of the cluster's worker JVMs when the bench started the cluster."""

    name: str = "duckdb"
    master: str | None = None
    workers: tuple[int, ...] = ()

    @property
    def on_cluster(self) -> bool:
        return self.name == "spark" and not (self.master or "local").startswith("local")

    @property
    def kind(self) -> str:
        """The kind of run: the key of its JSON file in bench_report.JSON_NAMES."""
        return "spark-cluster" if self.on_cluster else self.name

    def env(self, run_dir: Path) -> dict[str, str]:
        if self.name == "duckdb":
            return {"MARKETING_ML_ENGINE": "duckdb"}
        env = {
            "MARKETING_ML_ENGINE": "spark",
            "MARKETING_ML_WAREHOUSE": str(run_dir / "warehouse"),
            "PYSPARK_PYTHON": sys.executable,
        }
        if self.master:
            env["SPARK_MASTER"] = self.master
        return env


def warm_up(engine: Engine) -> None:
    """One untimed `dagster` start, so the first scale does not pay for compiling bytecode and
    reading the libraries from disk: that made the first run of a bench 2 s slower than the
    same run repeated. On Spark, one untimed local Spark session too (its JARs from disk)."""
    env = {name: value for name, value in os.environ.items() if name != "DAGSTER_HOME"}
    subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate", "-m", "marketing_ml"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    if engine.name == "spark":
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from pyspark.sql import SparkSession\n"
                "session = SparkSession.builder.master('local[1]')"
                ".config('spark.ui.enabled', 'false').getOrCreate()\n"
                "session.range(10).count()\n"
                "session.stop()\n",
            ],
            cwd=ROOT,
            env={**env, "SPARK_LOCAL_IP": "127.0.0.1"},
            check=True,
            capture_output=True,
        )


def cluster_workers(cluster_dir: Path) -> tuple[int, ...]:
    """The worker JVMs' PIDs that scripts/spark_cluster.sh wrote."""
    return tuple(
        int(pid_file.read_text().strip()) for pid_file in sorted(cluster_dir.glob("worker-*.pid"))
    )
