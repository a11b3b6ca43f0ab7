"""Failures between the gateway and a pipeline process: unreachable, timeouts, and bugs
(never a bare 500 with a traceback). Also tenancy by the Feldera-Tenant header."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from sluice.core.directory import PipelineEntry
from sluice.gateway.app import DIRECTORY, GatewaySettings, create_app
from sluice.local.directory import LocalDirectory

Client = TestClient[web.Request, web.Application]


def entry(name: str, location: str | None, namespace: str = "default") -> PipelineEntry:
    return PipelineEntry(
        namespace=namespace,
        name=name,
        program_code="",
        deployment_status="Running" if location else "Stopped",
        desired_status="Running",
        location=location,
    )


class TwoNamespaces(LocalDirectory):
    """A directory serving `default` and `team-b`."""

    def __init__(self) -> None:
        super().__init__("default")
        self.other = LocalDirectory("team-b")

    def namespaces(self) -> frozenset[str]:
        return frozenset({"default", "team-b"})

    def get(self, namespace: str, name: str) -> PipelineEntry | None:
        if namespace == "team-b":
            return self.other.get(namespace, name)
        return super().get(namespace, name)

    def list(self, namespace: str) -> list[PipelineEntry]:
        if namespace == "team-b":
            return self.other.list(namespace)
        return super().list(namespace)


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A port that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield listener.getsockname()[1]
    listener.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def client(silent_port: int) -> AsyncIterator[Client]:
    directory = TwoNamespaces()
    directory.publish(entry("dead", f"127.0.0.1:{free_port()}"))
    directory.publish(entry("hung", f"127.0.0.1:{silent_port}"))
    directory.publish(entry("stopped", None))
    directory.other.publish(entry("theirs", None, namespace="team-b"))
    settings = GatewaySettings(
        namespace="default", version="1", request_timeout=0.3, ingress_timeout=0.3
    )
    test_client = TestClient(TestServer(create_app(settings, directory), host="127.0.0.1"))
    await test_client.start_server()
    yield test_client
    await test_client.close()


async def test_unreachable_pod(client: Client) -> None:
    response = await client.get("/v0/pipelines/dead/stats")
    assert response.status == 503
    assert response.headers["Retry-After"] == "5"
    body = await response.json()
    assert body["error_code"] == "PipelineInteractionUnreachable"
    assert body["details"]["pipeline_name"] == "dead"
    response = await client.post("/v0/pipelines/dead/ingress/t", data=b"{}")
    assert (await response.json())["error_code"] == "PipelineInteractionUnreachable"


async def test_timeouts(client: Client) -> None:
    for method, path in (
        ("GET", "/v0/pipelines/hung/tables/t/connectors/c/completion_token"),
        ("POST", "/v0/pipelines/hung/ingress/t"),
    ):
        response = await asyncio.wait_for(client.request(method, path, data=b"{}"), 10)
        assert response.status == 503, path
        body = await response.json()
        assert body["error_code"] == "PipelineInteractionUnreachable"
        assert "timeout" in body["details"]["error"]
    metrics = await (await client.get("/metrics")).text()
    assert "sluice_gateway_upstream_errors_total" in metrics


async def test_tenant_header_selects_a_watched_namespace(client: Client) -> None:
    assert (await client.get("/v0/pipelines/theirs")).status == 404
    response = await client.get("/v0/pipelines/theirs", headers={"Feldera-Tenant": "team-b"})
    assert response.status == 200
    names = await (await client.get("/v0/pipelines", headers={"Feldera-Tenant": "team-b"})).json()
    assert [p["name"] for p in names] == ["theirs"]
    response = await client.get("/v0/pipelines", headers={"Feldera-Tenant": "elsewhere"})
    assert response.status == 403
    assert (await response.json())["error_code"] == "InsufficientPermissions"


async def test_internal_errors_are_json_without_traceback(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    assert client.app is not None
    directory = client.app[DIRECTORY]

    def broken(namespace: str, name: str) -> PipelineEntry | None:
        raise RuntimeError("directory bug with a secret detail")

    directory.get = broken  # type: ignore[method-assign]
    response = await client.get("/v0/pipelines/dead")
    assert response.status == 500
    body = await response.json()
    assert body["error_code"] == "InternalError"
    assert "secret detail" not in await response.text()
    assert "Traceback" not in await response.text()
    assert "directory bug" in caplog.text
