"""Headless Chromium and `streamlit run` as child processes, Chromium driven over the DevTools
protocol (a websocket; `websockets` ships with Streamlit): shared by the browser tests and
scripts/browser_timing.py. `--dump-dom` would fire before Streamlit renders the page over its
own websocket, so a page is read with `Runtime.evaluate` once the app says it has finished."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from websockets.sync.client import connect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "--window-size=1440,1000",
    "--hide-scrollbars",
)
SCRIPT_DONE = "!!document.querySelector('[data-test-script-state=\"notRunning\"]')"
"""True once Streamlit's app root says no script run is going on."""

Send = Callable[..., dict]
"""send(method, **params): one DevTools command to the page, its result."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def started(command: list[str], env: dict, log: Path, cwd: Path | None = None) -> subprocess.Popen:
    """A process in its own session, so that `stop` ends it and every child it spawned."""
    return subprocess.Popen(
        command,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def streamlit_command(script: str | Path, port: int) -> list[str]:
    """`streamlit run` on loopback, headless, without usage statistics or development mode."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(script),
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--global.developmentMode",
        "false",
    ]


@contextmanager
def streamlit_server(
    script: str | Path, env: dict, log: Path, cwd: Path | None = None, timeout: float = 60
) -> Iterator[tuple[str, subprocess.Popen]]:
    """`streamlit run script` on a free loopback port, once it answers its health check: yields
    (url, process); stopped on exit, with its whole process group, even on error."""
    port = free_port()
    server = started(streamlit_command(script, port), env, log, cwd)
    try:
        url = f"http://127.0.0.1:{port}"

        def answered() -> bool:
            if server.poll() is not None:
                raise AssertionError(
                    f"streamlit exited before answering: {log.read_text()[-2000:]}"
                )
            return healthy(f"{url}/_stcore/health")

        wait_for(answered, timeout, "streamlit to answer its health check")
        yield url, server
    finally:
        stop(server)


def chromium_page(tmp_path: Path) -> Iterator[Send]:
    """A fresh headless Chromium with its profile under `tmp_path`; yields a function that sends
    DevTools commands to its page. Chromium is stopped and its profile removed afterwards."""
    profile = tmp_path / "chromium-profile"
    browser = started(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        dict(os.environ),
        tmp_path / "chromium.log",
    )
    try:
        port_file = profile / "DevToolsActivePort"
        wait_for(
            lambda: port_file.exists() and port_file.read_text().strip(),
            30,
            "chromium to open its DevTools port",
        )
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as reply:
            page = next(t for t in json.load(reply) if t["type"] == "page")
        with connect(page["webSocketDebuggerUrl"], max_size=None) as socket_:
            counter = iter(range(1, 1_000_000))

            def send(method: str, **params):
                message_id = next(counter)
                socket_.send(json.dumps({"id": message_id, "method": method, "params": params}))
                while True:
                    message = json.loads(socket_.recv(timeout=60))
                    if message.get("id") == message_id:
                        if "error" in message:
                            raise AssertionError(f"{method}: {message['error']}")
                        return message["result"]

            yield send
    finally:
        stop(browser)
        shutil.rmtree(profile, ignore_errors=True)


def evaluate(send: Send, expression: str, strict: bool = False):
    """The value of a JavaScript expression in the page (awaited when it is a promise); one that
    throws gives None (the page may be between documents), or fails when `strict`."""
    result = send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
    if "exceptionDetails" in result:
        if strict:
            raise AssertionError(f"{expression[:200]}: {result['exceptionDetails']}")
        return None
    return result["result"].get("value")


def click(send: Send, x: float, y: float) -> None:
    """A real mouse click (pressed and released) at page coordinates."""
    for kind in ("mousePressed", "mouseReleased"):
        send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)


def press(send: Send, key: str, code: str | None = None, key_code: int | None = None) -> None:
    """A key pressed and released in the focused element (Enter, Escape, ArrowDown…)."""
    codes = {"Enter": 13, "Escape": 27, "ArrowDown": 40, "Tab": 9, "Backspace": 8}
    virtual = key_code if key_code is not None else codes.get(key, 0)
    text = {"Enter": "\r"}.get(key)
    for kind in ("keyDown", "keyUp"):
        send(
            "Input.dispatchKeyEvent",
            type=kind,
            key=key,
            code=code or key,
            windowsVirtualKeyCode=virtual,
            nativeVirtualKeyCode=virtual,
            **({"text": text} if text and kind == "keyDown" else {}),
        )
