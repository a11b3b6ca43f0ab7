"""`sluice local up` as a user runs it, and the supervisor's restarts, on real processes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from sluice.local.supervisor import Supervisor
from tests.component.gateway.pipelines import (
    RUNTIME_COMMAND,
    running_pipelines,
    wait_for_status,
    write_manifests,
)
from tests.e2e.quickstart import expected_revenue, net_output
from tests.factories import QUICKSTART

TOKEN_DOCUMENT = """---
apiVersion: sluice.dev/v1alpha1
kind: CompletionToken
metadata: {name: loaded}
spec: {pipelineRef: {name: shop}, table: orders, connector: shop-in, timeoutSeconds: 60}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_local_up(folder: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "SLUICE_RUNTIME_COMMAND": " ".join(RUNTIME_COMMAND)}
    return subprocess.Popen(
        [sys.executable, "-m", "sluice", "local", "up", *args],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def read_until(process: subprocess.Popen[str], needle: str, within: float = 45) -> str:
    assert process.stdout is not None
    seen = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return "".join(seen)
    raise AssertionError(f"{needle!r} not printed; output:\n{''.join(seen)}")


def test_up_prints_the_api_tokens_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    manifest = write_manifests(tmp_path)
    manifest.write_text(manifest.read_text() + TOKEN_DOCUMENT)
    port = free_port()
    process = start_local_up(tmp_path, "-f", str(tmp_path), "--port", str(port))
    try:
        banner = read_until(process, "Press Ctrl-C")
        assert f"http://127.0.0.1:{port}/v0" in banner
        assert "Authentication: OFF" in banner
        assert "curl" in banner
        assert "FelderaClient" in banner
        output = read_until(process, "completion token loaded: complete")
        assert "minted for shop/orders.shop-in" in output
        pipeline = requests.get(f"http://127.0.0.1:{port}/v0/pipelines/shop", timeout=5).json()
        location = pipeline["deployment_location"]
        assert location
    finally:
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0, rest
    assert "stopped." in rest
    host, pipeline_port = location.split(":")
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection((host, int(pipeline_port)), timeout=1),
    ):
        pass  # the pipeline process is gone with local mode
    state_dir = banner.split("Pipeline process logs: ", 1)[1].split("/<pipeline>", 1)[0]
    assert not Path(state_dir).exists()


def test_invalid_manifests_are_rejected_up_front(tmp_path: Path) -> None:
    manifest = write_manifests(tmp_path)
    manifest.write_text(manifest.read_text().replace("table: orders", "table: orders\n  view: x"))
    process = start_local_up(tmp_path, "-f", str(manifest), "--port", str(free_port()))
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 2
    assert output.count("\n") == 1, output
    assert str(manifest) in output
    assert "document 2 Connector/shop-in" in output
    assert "exactly one of table" in output


async def test_a_dying_runtime_is_restarted_with_backoff_and_counted(tmp_path: Path) -> None:
    async with running_pipelines(tmp_path) as supervisor:
        await kill_and_wait_for_restart(supervisor, expected_restarts=1)
        await kill_and_wait_for_restart(supervisor, expected_restarts=2)


async def kill_and_wait_for_restart(supervisor: Supervisor, expected_restarts: int) -> None:
    state = supervisor.states["shop"]
    assert state.process is not None
    before = state.incarnation
    os.kill(state.process.pid, signal.SIGKILL)
    await wait_for_status(supervisor, "shop", "Provisioning")
    entry = supervisor.directory.get("default", "shop")
    assert entry is not None
    assert entry.deployment_error is not None
    assert entry.deployment_error["details"]["restarts"] == expected_restarts
    await wait_for_status(supervisor, "shop", "Running")
    assert state.restarts == expected_restarts
    assert state.incarnation != before


def test_quickstart_token_completes_only_once_the_output_holds_the_final_result(
    tmp_path: Path,
) -> None:
    """The acceptance check of the quickstart: when `orders-loaded` reports complete, the
    output file already holds the final revenue per customer (not eventually: at once)."""
    example = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, example, ignore=shutil.ignore_patterns("output"))
    process = start_local_up(tmp_path, "-f", str(example), "--port", str(free_port()))
    try:
        read_until(process, "completion token orders-loaded: complete", within=50)
        output = example / "output" / "revenue_by_customer.json"
        assert net_output(output) == expected_revenue(example / "data" / "orders.json")
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
