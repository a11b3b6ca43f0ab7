"""Every /v0 route and error of the gateway, through aiohttp's test client, against real
pipeline processes run by the local supervisor (one per pipeline, on loopback)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from sluice.core.tokens import CompletionToken, decode_token
from sluice.gateway.app import GatewaySettings, create_app
from sluice.local.supervisor import Supervisor
from tests.component.gateway.pipelines import running_pipelines, wait_for_status

pytestmark = pytest.mark.asyncio(loop_scope="module")

Client = TestClient[web.Request, web.Application]
Env = tuple[Supervisor, Client]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    folder = tmp_path_factory.mktemp("gateway")
    async with running_pipelines(folder, ("shop", "spare")) as supervisor:
        settings = GatewaySettings(namespace="default", version="9.9.9", body_limit=64 * 1024)
        client: Client = TestClient(
            TestServer(create_app(settings, supervisor.directory), host="127.0.0.1")
        )
        await client.start_server()
        try:
            yield supervisor, client
        finally:
            await client.close()


def incarnation_of(supervisor: Supervisor, name: str) -> str:
    entry = supervisor.directory.get("default", name)
    assert entry is not None
    assert entry.incarnation is not None
    return entry.incarnation


def assert_error(body: dict[str, object], code: str) -> None:
    assert set(body) == {"message", "error_code", "details"}, body
    assert body["error_code"] == code, body


async def mint(client: Client, pipeline: str = "shop") -> str:
    response = await client.get(
        f"/v0/pipelines/{pipeline}/tables/orders/connectors/{pipeline}-in/completion_token"
    )
    assert response.status == 200, await response.text()
    return str((await response.json())["token"])


async def test_health_config_and_openapi(env: Env) -> None:
    _, client = env
    response = await client.get("/healthz")
    assert (response.status, await response.json()) == (200, {"status": "healthy"})
    config = await (await client.get("/v0/config")).json()
    assert config["version"] == "9.9.9"
    assert config["edition"] == "Open source"
    assert await (await client.get("/v0/config/authentication")).json() == {}
    document = await (await client.get("/v0/openapi.json")).json()
    assert "/v0/pipelines/{pipeline_name}/completion_status" in document["paths"]


async def test_pipeline_descriptors_and_selectors(env: Env) -> None:
    _, client = env
    listed = await (await client.get("/v0/pipelines?selector=status")).json()
    assert [p["name"] for p in listed] == ["shop", "spare"]
    assert all("program_code" not in p for p in listed)
    shop = await (await client.get("/v0/pipelines/shop")).json()
    assert shop["deployment_status"] == "Running"
    assert shop["deployment_desired_status"] == "Running"
    assert shop["deployment_location"].startswith("127.0.0.1:")
    assert shop["deployment_error"] is None
    assert "CREATE TABLE orders" in shop["program_code"]
    schema = shop["program_info"]["schema"]
    assert [t["name"] for t in schema["inputs"]] == ["orders"]
    assert [v["name"] for v in schema["outputs"]] == ["totals"]
    response = await client.get("/v0/pipelines/shop?selector=everything")
    assert response.status == 400
    assert_error(await response.json(), "InvalidParam")


async def test_unknown_pipeline(env: Env) -> None:
    _, client = env
    for path in (
        "/v0/pipelines/nope",
        "/v0/pipelines/nope/stats",
        "/v0/pipelines/nope/completion_status?token=x",
        "/v0/pipelines/nope/tables/t/connectors/c/completion_token",
    ):
        response = await client.get(path)
        assert response.status == 404, path
        body = await response.json()
        assert_error(body, "UnknownPipelineName")
        assert body["details"] == {"pipeline_name": "nope"}


async def test_completion_token_and_status(env: Env) -> None:
    supervisor, client = env
    token = await mint(client)
    decoded = decode_token(token)
    assert decoded.incarnation == incarnation_of(supervisor, "shop")
    # Table names are canonicalised like Feldera: unquoted is lower-cased.
    upper = await client.get("/v0/pipelines/shop/tables/ORDERS/connectors/shop-in/completion_token")
    assert upper.status == 200
    quoted = await client.get(
        '/v0/pipelines/shop/tables/"ORDERS"/connectors/shop-in/completion_token'
    )
    assert quoted.status == 404
    body = await quoted.json()
    assert_error(body, "UnknownInputEndpoint")
    assert body["details"] == {"endpoint_name": "ORDERS.shop-in"}
    unknown = await client.get("/v0/pipelines/shop/tables/orders/connectors/nope/completion_token")
    assert unknown.status == 404
    assert_error(await unknown.json(), "UnknownInputEndpoint")

    answer = await client.get(f"/v0/pipelines/shop/completion_status?token={token}&wait_ms=10000")
    assert answer.status == 200
    assert (await answer.json())["status"] == "complete"


async def test_completion_status_errors(env: Env) -> None:
    _, client = env
    response = await client.get("/v0/pipelines/shop/completion_status?token=%%%")
    assert response.status == 400
    assert_error(await response.json(), "InvalidParam")
    response = await client.get("/v0/pipelines/shop/completion_status")
    assert response.status == 400
    assert_error(await response.json(), "InvalidParam")
    stale = CompletionToken("00000000-0000-4000-8000-000000000000", 0, 0).encode()
    response = await client.get(f"/v0/pipelines/shop/completion_status?token={stale}")
    assert response.status == 410
    assert_error(await response.json(), "PipelineRestarted")
    response = await client.get("/v0/pipelines/shop/completion_status?token=x&wait_ms=soon")
    assert response.status == 400


async def test_long_poll_answers_at_completion_and_at_the_deadline(env: Env) -> None:
    supervisor, client = env
    incarnation = incarnation_of(supervisor, "shop")
    never = CompletionToken(incarnation, decode_token(await mint(client)).endpoint_id, 10**9)
    started = time.monotonic()
    response = await client.get(
        f"/v0/pipelines/shop/completion_status?token={never.encode()}&wait_ms=300"
    )
    waited = time.monotonic() - started
    assert (await response.json())["status"] == "inprogress"
    assert waited >= 0.3

    ingress = await client.post(
        "/v0/pipelines/shop/ingress/orders?format=json&update_format=raw",
        data=b'{"id": 100, "customer": "hooli", "amount": 7}\n',
    )
    assert ingress.status == 200, await ingress.text()
    token = (await ingress.json())["token"]
    response = await client.get(f"/v0/pipelines/shop/completion_status?token={token}&wait_ms=20000")
    assert (await response.json())["status"] == "complete"
    metrics = await (await client.get("/metrics")).text()
    assert 'sluice_gateway_completion_status_answers_total{source="memory"}' in metrics


async def test_ingress_errors_and_body_limit(env: Env) -> None:
    _, client = env
    response = await client.post(
        "/v0/pipelines/shop/ingress/orders?format=json&update_format=raw", data=b"{not json\n"
    )
    assert response.status == 400
    assert_error(await response.json(), "ParseErrors")
    response = await client.post("/v0/pipelines/shop/ingress/nope?format=json", data=b'{"id": 1}\n')
    assert response.status == 404
    assert (await response.json())["error_code"].startswith("ConfigError.Unknown")
    big = b'{"id": 1, "customer": "x", "amount": 1}\n' * 4000
    response = await client.post("/v0/pipelines/shop/ingress/orders?format=json", data=big)
    assert response.status == 413
    assert_error(await response.json(), "PayloadTooLarge")

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b'{"id": 1, "customer": "x", "amount": 1}\n' * 100

    response = await client.post("/v0/pipelines/shop/ingress/orders?format=json", data=chunks())
    assert response.status == 413


async def test_egress_stats_connectors_and_query(env: Env) -> None:
    _, client = env
    async with client.post("/v0/pipelines/shop/egress/totals?format=json") as response:
        assert response.status == 200
        pushed = await client.post(
            "/v0/pipelines/shop/ingress/orders?format=json&update_format=raw",
            data=b'{"id": 200, "customer": "egress", "amount": 2}\n',
        )
        assert pushed.status == 200
        first = await asyncio.wait_for(response.content.readline(), 20)
        assert first.strip()
    response = await client.post("/v0/pipelines/shop/egress/nope?format=json")
    assert response.status == 404
    stats = await client.get("/v0/pipelines/shop/stats")
    assert stats.status == 200
    assert "global_metrics" in await stats.json()
    connector = "/v0/pipelines/shop/tables/orders/connectors/shop-in"
    assert (await client.get(connector + "/stats")).status == 200
    assert (await client.post(connector + "/pause")).status == 200
    assert (await client.post(connector + "/start")).status == 200
    response = await client.post(connector + "/explode")
    assert response.status == 400
    body = await response.json()
    assert_error(body, "InvalidConnectorAction")
    assert body["details"] == {"action": "explode"}
    response = await client.get("/v0/pipelines/shop/tables/orders/connectors/nope/stats")
    assert response.status == 404
    response = await client.get("/v0/pipelines/shop/views/totals/connectors/nope/stats")
    assert response.status == 404
    assert_error(await response.json(), "UnknownOutputEndpoint")
    query = await client.get("/v0/pipelines/shop/query?sql=SELECT%201&format=json")
    assert query.status == 200


async def test_lifecycle_and_not_deployed(env: Env) -> None:
    supervisor, client = env
    response = await client.post("/v0/pipelines/spare/pause")
    assert response.status == 202
    await wait_for_status(supervisor, "spare", "Paused")
    status = await (await client.get("/v0/pipelines/spare?selector=status")).json()
    assert status["deployment_desired_status"] == "Paused"
    assert (await client.post("/v0/pipelines/spare/resume")).status == 202
    await wait_for_status(supervisor, "spare", "Running")

    assert (await client.post("/v0/pipelines/spare/stop?force=true")).status == 202
    await wait_for_status(supervisor, "spare", "Stopped")
    response = await client.get(
        "/v0/pipelines/spare/tables/orders/connectors/spare-in/completion_token"
    )
    assert response.status == 503
    assert response.headers["Retry-After"] == "5"
    body = await response.json()
    assert_error(body, "PipelineInteractionNotDeployed")
    assert body["details"] == {
        "pipeline_name": "spare",
        "status": "Stopped",
        "desired_status": "Stopped",
    }
    response = await client.post("/v0/pipelines/spare/pause")
    assert response.status == 503

    assert (await client.post("/v0/pipelines/spare/start")).status == 202
    await wait_for_status(supervisor, "spare", "Running")
    assert (await client.post("/v0/pipelines/spare/start?initial=sideways")).status == 405


async def test_metrics_count_routes(env: Env) -> None:
    _, client = env
    await client.get("/v0/pipelines/shop/stats")
    text = await (await client.get("/metrics")).text()
    assert (
        'sluice_gateway_requests_total{method="GET",route="/v0/pipelines/{pipeline_name}/stats",'
        'status="200"}'
    ) in text
    assert "sluice_gateway_request_duration_seconds_bucket" in text
    assert 'sluice_gateway_frontier_streams{connected="true"}' in text


async def test_memory_answers_are_never_early(env: Env) -> None:
    """Whenever the gateway says complete from its frontier, the pod agrees right after."""
    supervisor, client = env
    entry = supervisor.directory.get("default", "shop")
    assert entry is not None
    assert entry.location is not None
    complete_seen = 0
    async with aiohttp.ClientSession() as direct:
        for row in range(30):
            pushed = await client.post(
                "/v0/pipelines/shop/ingress/orders?format=json&update_format=raw",
                data=f'{{"id": {1000 + row}, "customer": "c{row % 3}", "amount": 1}}\n'.encode(),
            )
            token = (await pushed.json())["token"]
            for _ in range(20):
                answer = await client.get(f"/v0/pipelines/shop/completion_status?token={token}")
                if (await answer.json())["status"] == "complete":
                    async with direct.get(
                        f"http://{entry.location}/completion_status", params={"token": token}
                    ) as pod:
                        assert (await pod.json())["status"] == "complete"
                    complete_seen += 1
                    break
                await asyncio.sleep(0.005)
    assert complete_seen > 0
