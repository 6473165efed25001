"""The checkout and the machine the bench runs on, recorded with every run so figures from
different commits and machines can be told apart; and the one way a probe process is run."""

import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def load() -> float:
    return os.getloadavg()[0]


def java_version() -> str:
    try:
        output = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    except OSError:
        return "none"
    match = re.search(r'version "([^"]+)"', output)
    return match[1] if match else output.strip().splitlines()[0] if output.strip() else "unknown"


def spark_versions() -> dict:
    import pyspark

    return {"spark": pyspark.__version__, "java": java_version()}


def machine() -> dict:
    memory_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "cpu": cpu,
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
    }


def git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return head + ("+changes" if dirty else "")
    except OSError:
        return "unknown"


def probe(command: list[str], env: dict | None = None) -> dict:
    """A probe in a fresh process (nothing cached, its own peak memory): the JSON of its last
    line, or {"error": [its last line of output]} when it failed."""
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        return {"error": (result.stderr or result.stdout).strip().splitlines()[-1:]}
    return json.loads(result.stdout.strip().splitlines()[-1])
