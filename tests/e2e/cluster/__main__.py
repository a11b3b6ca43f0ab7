"""Test support (e2e tier): `make cluster-up` / `make cluster-down` for humans.

`python -m tests.e2e.cluster up` starts the same control plane the e2e fixtures use (plus the
shipped CRDs) in the background, prints the kubeconfig path and returns; `down` stops it.
State lives in ${SLUICE_CACHE:-~/.cache/sluice}/cluster, outside the repository.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.e2e.cluster.controlplane import (
    REPO,
    require_tool,
    start_control_plane,
    start_node_agent,
)

STATE_DIR = Path(os.environ.get("SLUICE_CACHE", Path.home() / ".cache" / "sluice")) / "cluster"
PID_FILE = STATE_DIR / "supervisor.pid"
READY_FILE = STATE_DIR / "ready"
LOG_FILE = STATE_DIR / "supervisor.log"


def _running_pid() -> int | None:
    try:
        pid = int(PID_FILE.read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _say(message: str) -> None:
    sys.stdout.write(message + "\n")


def up(timeout: float) -> int:
    if _running_pid() is not None and READY_FILE.exists():
        _say(f"cluster already running\n{READY_FILE.read_text()}")
        return 0
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    STATE_DIR.mkdir(parents=True)
    with LOG_FILE.open("wb") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.cluster", "serve"],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    PID_FILE.write_text(str(supervisor.pid))
    deadline = time.monotonic() + timeout
    while not READY_FILE.exists():
        if supervisor.poll() is not None or time.monotonic() > deadline:
            _say(LOG_FILE.read_text(errors="replace"))
            _say("error: the cluster did not start (log above)")
            if supervisor.poll() is None:
                supervisor.terminate()
            return 1
        time.sleep(0.3)
    _say(READY_FILE.read_text())
    return 0


def serve() -> int:
    """Runs in the background: starts everything, then waits for SIGTERM to tear it down."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    plane = start_control_plane(STATE_DIR / "control-plane")
    try:
        start_node_agent(plane)
        kubectl = require_tool("kubectl")
        subprocess.run(
            [
                str(kubectl),
                f"--kubeconfig={plane.kubeconfig}",
                "apply",
                "--server-side",
                "-f",
                str(REPO / "crds"),
            ],
            check=True,
        )
        READY_FILE.write_text(
            f"kubeconfig: {plane.kubeconfig}\n"
            f"  export KUBECONFIG={plane.kubeconfig}\n"
            f"API server: {plane.server} (logs in {STATE_DIR / 'control-plane' / 'logs'})\n"
            "stop it with: make cluster-down"
        )
        while not stop.wait(1):
            plane.check_running()
    finally:
        plane.stop()
        with contextlib.suppress(FileNotFoundError):
            READY_FILE.unlink()
    return 0


def down(timeout: float) -> int:
    pid = _running_pid()
    if pid is None:
        _say("no cluster is running")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _running_pid() is not None:
        if time.monotonic() > deadline:
            _say(f"error: the cluster supervisor {pid} did not stop within {timeout:.0f}s")
            return 1
        time.sleep(0.2)
    PID_FILE.unlink(missing_ok=True)
    _say("cluster stopped")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.e2e.cluster")
    parser.add_argument("action", choices=["up", "down", "serve"])
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    if args.action == "up":
        return up(args.timeout)
    if args.action == "down":
        return down(args.timeout)
    return serve()


if __name__ == "__main__":
    sys.exit(main())
