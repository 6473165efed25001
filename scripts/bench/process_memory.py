"""Peak memory of a run: the RSS of a process and every descendant, read from /proc and polled
while the run lasts (a `dagster` run's steps, Spark's JVM and pyspark's workers are all children)."""

import threading
import time
from pathlib import Path


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(parent, []).append(int(entry.name))
    return tree


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kib(root: int, tree: dict[int, list[int]] | None = None) -> int:
    """RSS of a process and every descendant: with the Spark engine in local mode that includes
    Spark's JVM (pyspark starts it as a child of the Python process, spark-submit exec'ing java)
    and the JVM's own children, pyspark's Python workers."""
    return sum(tree_rss_by_pid(root, tree).values())


def tree_rss_by_pid(root: int, tree: dict[int, list[int]] | None = None) -> dict[int, int]:
    """Each process's RSS, except a child caught between fork and exec (the parent's command
    line and at least 98% of its RSS: the same pages, not more memory). Without that, a JVM
    spawning a helper process was counted twice (2.3 GiB for one 1.2 GiB driver)."""
    tree = _children() if tree is None else tree
    found, stack = {}, [(root, None)]
    while stack:
        pid, parent = stack.pop()
        rss = _rss_kib(pid)
        if (
            parent is not None
            and rss
            and rss >= 0.98 * found.get(parent, 0)
            and _cmdline(pid) == _cmdline(parent)
        ):
            rss = 0
        found[pid] = rss
        stack.extend((child, pid) for child in tree.get(pid, []))
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _process_name(pid: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [word.decode(errors="replace") for word in command if word]
    if not words:
        return "?"
    program = Path(words[0]).name
    if program.startswith("python") and len(words) > 1:  # its module or script says more
        if words[1] == "-m" and len(words) > 2:
            return words[2]  # python -m pyspark.daemon
        if not words[1].startswith("-"):
            return Path(words[1]).name  # python .venv/bin/dagster
    for word in words:  # java …: the main class
        if word.startswith("org.apache.spark."):
            return f"{program} {word.rsplit('.', 1)[-1]}"  # java SparkSubmit: the driver
    return program


def rss_breakdown(rss_by_pid: dict[int, int]) -> list[dict]:
    """A process tree's RSS by kind of process, largest first (RSS counts pages that forked
    processes share once in each of them)."""
    kinds: dict[str, list[int]] = {}
    for pid, kib in rss_by_pid.items():
        if kib == 0:  # gone, or a zombie
            continue
        kinds.setdefault(_process_name(pid), []).append(kib)
    return sorted(
        (
            {"process": name, "count": len(sizes), "mib": round(sum(sizes) / 1024, 1)}
            for name, sizes in kinds.items()
        ),
        key=lambda kind: -kind["mib"],
    )


class PeakMemory:
    """Polls the RSS of a process and all its descendants every 50 ms; keeps the peak.

    `workers`: a standalone cluster's worker JVMs, whose children are the executors (not
    descendants of the run): their RSS, without the workers' own, is kept as a peak of its own."""

    def __init__(self, pid: int, workers: tuple[int, ...] = ()):
        self.pid, self.peak_kib, self.peak_at = pid, 0, time.time()
        self.peak_processes: list[dict] = []
        self.workers, self.executors_peak_kib = workers, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            tree = _children()
            by_pid = tree_rss_by_pid(self.pid, tree)
            rss = sum(by_pid.values())
            if rss > self.peak_kib:
                self.peak_kib, self.peak_at = rss, time.time()
                self.peak_processes = rss_breakdown(by_pid)  # what the tree held at its peak
            if self.workers:
                executors = sum(tree_rss_kib(w, tree) - _rss_kib(w) for w in self.workers)
                self.executors_peak_kib = max(self.executors_peak_kib, executors)
            self._stop.wait(0.05)

    @property
    def executors_peak_mib(self) -> float:
        return round(self.executors_peak_kib / 1024, 1)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return round(self.peak_kib / 1024, 1)
