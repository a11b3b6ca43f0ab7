"""The official Feldera Python SDK (`feldera` on PyPI), unchanged, against `sluice local up`.

`sluice local up` runs as a real subprocess with its pipeline processes; the SDK talks to it
over loopback exactly as it talks to Feldera.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import requests
from feldera import FelderaClient, Pipeline
from feldera.enums import CompletionTokenStatus, PipelineStatus
from feldera.rest.errors import FelderaAPIError
from feldera.rest.retry import RetryConfig

from tests.component.gateway.pipelines import RUNTIME_COMMAND, write_manifests


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_running(url: str, names: tuple[str, ...], process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            listed = requests.get(f"{url}/v0/pipelines?selector=status", timeout=2).json()
            if sorted(p["name"] for p in listed if p["deployment_status"] == "Running") == sorted(
                names
            ):
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError("local mode did not get its pipelines running")


@pytest.fixture(scope="module")
def local_mode(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("sdk")
    manifest = write_manifests(folder, ("shop", "spare"))
    port = free_port()
    env = {**os.environ, "SLUICE_RUNTIME_COMMAND": " ".join(RUNTIME_COMMAND)}
    process = subprocess.Popen(
        [sys.executable, "-m", "sluice", "local", "up", "-f", str(manifest), "--port", str(port)],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_running(url, ("shop", "spare"), process)
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


@pytest.fixture(scope="module")
def client(local_mode: str) -> FelderaClient:
    # No retries: error codes must surface at once (the SDK would otherwise back off on 503).
    return FelderaClient(local_mode, retry_config=RetryConfig(max_retries=0))


def test_client_pipeline_and_status(client: FelderaClient) -> None:
    assert client.get_config().edition.value == "Open source"
    pipeline = Pipeline.get("shop", client)
    assert pipeline.status() == PipelineStatus.RUNNING
    assert [table.name for table in pipeline.tables()] == ["orders"]
    assert [view.name for view in pipeline.views()] == ["totals"]
    assert "shop" in [p.name for p in client.pipelines()]


def test_push_and_wait_for_tokens(client: FelderaClient) -> None:
    pipeline = Pipeline.get("shop", client)
    token = pipeline.input_json(
        "orders", [{"id": 500, "customer": "sdk", "amount": 3.5}], wait=True
    )
    assert pipeline.completion_token_status(token) == CompletionTokenStatus.COMPLETE
    token = client.push_to_pipeline(
        "shop",
        "orders",
        "json",
        {"id": 501, "customer": "sdk", "amount": 1},
        update_format="raw",
        wait=False,
    )
    client.wait_for_token("shop", token, timeout_s=20)
    assert client.completion_token_processed("shop", token)


def test_generate_and_wait_for_connector_tokens(client: FelderaClient) -> None:
    pipeline = Pipeline.get("shop", client)
    token = pipeline.generate_completion_token("orders", "shop-in")
    pipeline.wait_for_token(token)
    assert pipeline.completion_token_status(token) == CompletionTokenStatus.COMPLETE


def test_stats_and_connector_stats(client: FelderaClient) -> None:
    pipeline = Pipeline.get("shop", client)
    raw = client.get_pipeline_stats("shop")
    assert "global_metrics" in raw
    stats = client.input_connector_stats("shop", "orders", "shop-in")
    assert stats is not None
    pipeline.pause_input_connector("orders", "shop-in")
    pipeline.start_input_connector("orders", "shop-in")


def test_error_codes(client: FelderaClient) -> None:
    with pytest.raises(FelderaAPIError) as raised:
        Pipeline.get("nope", client)
    assert raised.value.status_code == 404
    assert raised.value.error_code == "UnknownPipelineName"
    pipeline = Pipeline.get("shop", client)
    with pytest.raises(FelderaAPIError) as raised:
        pipeline.generate_completion_token("orders", "missing")
    assert (raised.value.status_code, raised.value.error_code) == (404, "UnknownInputEndpoint")
    with pytest.raises(FelderaAPIError) as raised:
        client.completion_token_processed("shop", "not-a-token")
    assert (raised.value.status_code, raised.value.error_code) == (400, "InvalidParam")


def test_lifecycle_and_not_deployed(client: FelderaClient) -> None:
    spare = Pipeline.get("spare", client)
    spare.pause(timeout_s=30)
    assert spare.status() == PipelineStatus.PAUSED
    spare.resume(timeout_s=30)
    assert spare.status() == PipelineStatus.RUNNING
    spare.stop(force=True, timeout_s=30)
    assert spare.status() == PipelineStatus.STOPPED
    with pytest.raises(FelderaAPIError) as raised:
        spare.generate_completion_token("orders", "spare-in")
    assert raised.value.status_code == 503
    assert raised.value.error_code == "PipelineInteractionNotDeployed"
    assert raised.value.details["status"] == "Stopped"
    spare.start(timeout_s=30)
    assert spare.status() == PipelineStatus.RUNNING
