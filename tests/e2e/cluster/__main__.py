"""Test support (e2e tier): `make cluster-up` / `make cluster-down` for humans.

`python -m tests.e2e.cluster up` starts the same control plane the e2e fixtures use (plus the
shipped CRDs, the operator and the gateway) in the background, prints the kubeconfig path and
returns; `down` stops it.
State lives in ${SLUICE_CACHE:-~/.cache/sluice}/cluster, outside the repository.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
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
    free_port,
    require_tool,
    start_control_plane,
    start_node_agent,
)
from tests.e2e.kubectl import Kubectl
from tests.e2e.sluice_processes import (
    SluiceProcess,
    chart_rbac,
    installed_helm,
    service_account_kubeconfig,
    start_sluice,
)

STATE_DIR = Path(os.environ.get("SLUICE_CACHE", Path.home() / ".cache" / "sluice")) / "cluster"
PID_FILE = STATE_DIR / "supervisor.pid"
READY_FILE = STATE_DIR / "ready"
LOG_FILE = STATE_DIR / "supervisor.log"
LOCK_FILE = STATE_DIR.parent / "cluster.lock"


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
    """Runs in the background: starts everything, then waits for SIGTERM to tear it down.

    Besides the control plane and the node: the shipped CRDs, the chart's RBAC for a release
    `sluice` watching `default`, and `sluice operator` and `sluice gateway` running as the
    chart's ServiceAccount (as in the e2e tests), so the cluster reconciles what is applied.
    """
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    plane = start_control_plane(STATE_DIR / "control-plane")
    processes: list[SluiceProcess] = []
    try:
        start_node_agent(plane)
        admin = Kubectl(require_tool("kubectl"), plane.kubeconfig)
        admin.run("apply", "--server-side", "-f", str(REPO / "crds"))
        helm = installed_helm()
        rbac = chart_rbac(helm, "sluice", "default", "default", STATE_DIR / "helm")
        admin.apply(*rbac)
        account = next(d["metadata"]["name"] for d in rbac if d["kind"] == "ServiceAccount")
        identity = service_account_kubeconfig(
            plane, admin, "default", account, STATE_DIR / "sluice.kubeconfig"
        )
        liveness = f"http://127.0.0.1:{free_port()}/healthz"
        processes.append(
            start_sluice(
                ["operator", "--namespace", "default", "--liveness", liveness],
                identity.kubeconfig,
                STATE_DIR / "operator.log",
            )
        )
        gateway_port = free_port()
        processes.append(
            start_sluice(
                [
                    "gateway",
                    "--namespace",
                    "default",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(gateway_port),
                ],
                identity.kubeconfig,
                STATE_DIR / "gateway.log",
            )
        )
        READY_FILE.write_text(
            f"kubeconfig: {plane.kubeconfig}\n"
            f"  export KUBECONFIG={plane.kubeconfig}\n"
            f"API server: {plane.server} (logs in {STATE_DIR / 'control-plane' / 'logs'})\n"
            f"operator and gateway in namespace default as {identity.username}\n"
            f"  gateway (Feldera /v0 API): http://127.0.0.1:{gateway_port}\n"
            f"  logs: {STATE_DIR / 'operator.log'}, {STATE_DIR / 'gateway.log'}\n"
            "  an API key: sluice apikey create me --role write --kubernetes --namespace default\n"
            "the quickstart with absolute data paths (pods here are local processes):\n"
            f"  .venv/bin/python -m tests.e2e.quickstart {STATE_DIR / 'revenue.json'}"
            " | kubectl apply -f -\n"
            "stop it with: make cluster-down"
        )
        while not stop.wait(1):
            plane.check_running()
    finally:
        for process in processes:
            process.stop()
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
    if args.action == "serve":
        return serve()
    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    # One `up` or `down` at a time: two at once would wipe each other's state folder.
    with LOCK_FILE.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return up(args.timeout) if args.action == "up" else down(args.timeout)


if __name__ == "__main__":
    sys.exit(main())
