"""`make up` (scripts/up.sh) started for real: the Dagster UI and the dashboard both answer HTTP,
and one Ctrl-C stops every process either of them started."""

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from marketing_ml_tests.support import REPOSITORY
from marketing_ml_tests.support.chromium import free_port

STARTED_LINE = "Ctrl-C stops both."


def descendants(pid: int) -> set[int]:
    """Every process under `pid`, from /proc (the servers run in sessions of their own)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, pending = set(), [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.add(child)
            pending.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def answers(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status


def lines_of(stream) -> queue.Queue:
    lines: queue.Queue = queue.Queue()

    def pump():
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def wait_for_line(lines: queue.Queue, wanted: str, seconds: float) -> list[str]:
    seen, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            seen.append(lines.get(timeout=1))
        except queue.Empty:
            continue
        if seen[-1].strip() == wanted:
            return seen
    raise AssertionError(f"no {wanted!r} in {seconds}s:\n" + "".join(seen[-40:]))


def test_up_serves_the_ui_and_the_dashboard_and_ctrl_c_stops_both(lakehouse, tmp_path):
    ui_port, dashboard_port = free_port(), free_port()
    environment = {
        **lakehouse.cli_environment(tmp_path / "dagster_home"),
        "BIN": str(Path(sys.executable).parent),
        "UI_PORT": str(ui_port),
        "DASHBOARD_PORT": str(dashboard_port),
    }
    up = subprocess.Popen(
        ["bash", str(REPOSITORY / "scripts" / "up.sh")],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        # A terminal's Ctrl-C reaches a shell whose SIGINT is not ignored, whatever started pytest.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    servers: set[int] = set()
    try:
        printed = "".join(wait_for_line(lines_of(up.stdout), STARTED_LINE, 180))
        assert f"UI:        http://127.0.0.1:{ui_port}" in printed
        assert f"Dashboard: http://127.0.0.1:{dashboard_port}" in printed
        assert answers(f"http://127.0.0.1:{ui_port}/server_info") == 200
        assert answers(f"http://127.0.0.1:{dashboard_port}/_stcore/health") == 200
        servers = descendants(up.pid)
        commands = {Path(f"/proc/{pid}/cmdline").read_bytes() for pid in servers if alive(pid)}
        assert any(b"dagster_webserver" in command for command in commands)
        assert any(b"streamlit" in command for command in commands)

        stop_sent = time.monotonic()
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=30) == 130
        deadline = stop_sent + 15
        while any(alive(pid) for pid in servers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in servers if alive(pid)]
        assert time.monotonic() - stop_sent < 15
    finally:
        leftovers = {pid for pid in servers | descendants(up.pid) if alive(pid)}
        if up.poll() is None:
            up.kill()
        for pid in leftovers:
            os.kill(pid, signal.SIGKILL)
