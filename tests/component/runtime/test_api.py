"""The pipeline-process API: shapes, tokens, error codes, pause/resume, egress, frontier."""

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from sluice.core.tokens import CompletionToken, decode_token
from sluice.runtime.api import CONTROLLER
from sluice.runtime.completion import frontier_says_complete
from tests.component.runtime.conftest import ClientFactory, ingest, status_of, wait_complete


async def test_probes_status_and_metadata(pipeline: ClientFactory) -> None:
    client = await pipeline()
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
    status = await (await client.get("/status")).json()
    assert status["runtime_status"] == "Running"
    assert status["runtime_desired_status"] == "Running"
    assert status["storage_status_details"] is None
    metadata = await (await client.get("/metadata")).json()
    assert metadata["incarnation_uuid"] == status["incarnation_uuid"]
    assert metadata["pipeline_name"] == "p"
    orders = metadata["schema"]["inputs"][0]
    assert orders["name"] == "orders"
    assert orders["fields"][0] == {
        "name": "id",
        "case_sensitive": False,
        "columntype": {"type": "BIGINT", "nullable": False},
    }
    assert [view["name"] for view in metadata["schema"]["outputs"]] == ["big", "totals"]
    assert metadata["schema"]["outputs"][1]["materialized"] is True


async def test_ingress_token_completes_and_stats_count(pipeline: ClientFactory) -> None:
    client = await pipeline()
    token = await ingest(client, "orders", [{"id": 1, "customer": "a", "amount": 150}])
    decoded = decode_token(token)
    assert decoded.records == 1
    assert await wait_complete(client, token) >= 1
    stats = await (await client.get("/stats")).json()
    metrics = stats["global_metrics"]
    assert metrics["total_input_records"] == 1
    assert metrics["total_processed_records"] == 1
    assert metrics["total_completed_steps"] >= 1
    assert stats["views"] == {
        "big": {"maintenance": "linear", "materialized": False},
        "totals": {"maintenance": "recompute", "materialized": True},
    }
    [ingress] = stats["inputs"]
    assert ingress["endpoint_name"].startswith("orders.api-ingress-")
    metrics_text = await (await client.get("/metrics")).text()
    assert "sluice_total_input_records 1" in metrics_text
    rows = await (await client.get("/query", params={"sql": "SELECT * FROM totals"})).text()
    assert [json.loads(line) for line in rows.splitlines()] == [{"customer": "a", "total": 150}]


async def test_parse_errors_keep_good_rows(pipeline: ClientFactory) -> None:
    client = await pipeline()
    body = "\n".join(
        [
            json.dumps({"insert": {"id": 1, "customer": "a", "amount": 1}}),
            "{not json",
            json.dumps({"insert": {"id": "two", "customer": "b"}}),
            json.dumps({"insert": {"id": 3, "customer": "c", "amount": 3}}),
        ]
    )
    response = await client.post("/ingress/orders?format=json", data=body)
    assert response.status == 400
    error = await response.json()
    assert error["error_code"] == "ParseErrors"
    assert error["details"]["num_errors"] == 2
    assert [entry["index"] for entry in error["details"]["errors"]] == [1, 2]
    await asyncio.sleep(0.2)
    rows = await (await client.get("/query", params={"sql": "SELECT id FROM orders"})).text()
    assert sorted(json.loads(line)["id"] for line in rows.splitlines()) == [1, 3]
    stats = await (await client.get("/stats")).json()
    assert stats["inputs"][0]["metrics"]["num_parse_errors"] == 2


async def test_csv_ingress(pipeline: ClientFactory) -> None:
    client = await pipeline()
    response = await client.post("/ingress/orders?format=csv", data="1,a,5\n2,b,7\nx,c,1\n")
    assert response.status == 400
    assert (await response.json())["details"]["num_errors"] == 1
    response = await client.post("/ingress/orders", data="3,c,9\n")
    token = (await response.json())["token"]
    await wait_complete(client, token)
    rows = await (await client.get("/query", params={"sql": "SELECT id FROM orders"})).text()
    assert sorted(json.loads(line)["id"] for line in rows.splitlines()) == [1, 2, 3]


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/completion_status?token=%%%", 400, "InvalidParam"),
        ("/completion_status?token=bm90IGpzb24", 400, "InvalidParam"),
        ("/completion_status", 400, "InvalidParam"),
        ("/input_endpoints/orders.nope/completion_token", 404, "UnknownInputEndpoint"),
        ("/input_endpoints/orders.nope/stats", 404, "UnknownInputEndpoint"),
        ("/input_endpoints/orders.nope/pause", 404, "UnknownInputEndpoint"),
        ("/input_endpoints/orders.nope/start", 404, "UnknownInputEndpoint"),
        ("/output_endpoints/big.nope/stats", 404, "UnknownOutputEndpoint"),
        ("/query?sql=DELETE+FROM+orders", 400, "InvalidParam"),
        ("/query?sql=SELECT+*+FROM+missing", 400, "InvalidParam"),
        ("/stats?include_connector_errors=maybe", 400, "InvalidParam"),
    ],
)
async def test_error_codes(pipeline: ClientFactory, path: str, status: int, code: str) -> None:
    client = await pipeline()
    response = await client.get(path)
    assert response.status == status
    body = await response.json()
    assert body["error_code"] == code
    assert set(body) == {"message", "error_code", "details"}
    if code == "UnknownInputEndpoint":
        assert body["details"] == {"endpoint_name": "orders.nope"}


async def test_token_errors_for_other_incarnation_and_endpoint(pipeline: ClientFactory) -> None:
    client = await pipeline()
    incarnation = (await (await client.get("/status")).json())["incarnation_uuid"]
    old = CompletionToken("0196b120-6203-7b90-b6bd-16890df15e28", 0, 1).encode()
    response = await client.get("/completion_status", params={"token": old})
    assert response.status == 410
    assert (await response.json())["error_code"] == "PipelineRestarted"
    gone = CompletionToken(incarnation, 42, 1).encode()
    response = await client.get("/completion_status", params={"token": gone})
    assert response.status == 410
    body = await response.json()
    assert body["error_code"] == "UnknownEndpointInCompletionToken"
    assert body["details"] == {"endpoint_id": 42}


async def test_unknown_streams_and_formats(pipeline: ClientFactory) -> None:
    client = await pipeline()
    response = await client.post("/ingress/nope?format=json", data="{}")
    assert response.status == 404
    body = await response.json()
    assert body["error_code"] == "ConfigError.UnknownInputStream"
    assert body["details"]["config_error"]["stream_name"] == "nope"
    response = await client.post("/egress/nope?format=json")
    assert response.status == 404
    assert (await response.json())["error_code"] == "ConfigError.UnknownOutputStream"
    response = await client.post("/ingress/orders?format=xml", data="")
    assert response.status == 400
    assert (await response.json())["error_code"] == "InvalidParam"


async def test_paused_pipeline_keeps_tokens_in_progress(pipeline: ClientFactory) -> None:
    client = await pipeline(initial_state="Paused")
    assert (await (await client.get("/status")).json())["runtime_status"] == "Paused"
    token = await ingest(client, "orders", [{"id": 1, "customer": "a", "amount": 1}])
    await asyncio.sleep(0.2)
    assert await status_of(client, token) == {"status": "inprogress", "step": None}
    response = await client.get("/start")
    assert response.status == 202
    assert await response.json() == "Pipeline transitioning from Paused to Running"
    await wait_complete(client, token)


async def test_paused_connector_keeps_its_tokens_in_progress(
    pipeline: ClientFactory, tmp_path: Path
) -> None:
    data = tmp_path / "orders.json"
    data.write_text(json.dumps({"id": 1, "customer": "a", "amount": 1}) + "\n")
    client = await pipeline(
        connectors=[
            {
                "name": "file",
                "relation": "orders",
                "direction": "input",
                "paused": True,
                "transport": {"name": "file_input", "config": {"path": str(data)}},
                "format": {"name": "json", "config": {"update_format": "raw"}},
            }
        ]
    )
    stats = await (await client.get("/input_endpoints/orders.file/stats")).json()
    assert stats["paused"] is True
    token = (await (await client.get("/input_endpoints/orders.file/completion_token")).json())[
        "token"
    ]
    assert decode_token(token).records == 0
    assert (await client.get("/input_endpoints/orders.file/start")).status == 200
    for _ in range(200):
        stats = await (await client.get("/input_endpoints/orders.file/stats")).json()
        if stats["metrics"]["end_of_input"]:
            break
        await asyncio.sleep(0.01)
    assert (await client.get("/input_endpoints/orders.file/pause")).status == 200
    token = (await (await client.get("/input_endpoints/orders.file/completion_token")).json())[
        "token"
    ]
    assert decode_token(token).records == 1
    await wait_complete(client, token)


async def test_paused_ingress_connector_holds_its_tokens(pipeline: ClientFactory) -> None:
    client = await pipeline()
    first = await ingest(client, "orders", [{"id": 1, "customer": "a", "amount": 1}])
    await wait_complete(client, first)
    stats = await (await client.get("/stats")).json()
    endpoint = stats["inputs"][0]["endpoint_name"]
    assert (await client.get(f"/input_endpoints/{endpoint}/pause")).status == 200
    token = await ingest(client, "orders", [{"id": 2, "customer": "a", "amount": 1}])
    await asyncio.sleep(0.2)
    assert await status_of(client, token) == {"status": "inprogress", "step": None}
    assert (await client.get(f"/input_endpoints/{endpoint}/start")).status == 200
    await wait_complete(client, token)


async def test_egress_delivery_gates_completion(pipeline: ClientFactory) -> None:
    client = await pipeline()
    stream = await client.post("/egress/big?format=json")
    assert stream.status == 200
    token = await ingest(client, "orders", [{"id": 7, "customer": "a", "amount": 700}])
    line = await asyncio.wait_for(stream.content.readline(), 10)
    chunk = json.loads(line)
    assert chunk["json_data"] == [{"insert": {"id": 7, "amount": 700}}]
    await wait_complete(client, token)
    stats = await (await client.get("/stats")).json()
    [egress] = stats["outputs"]
    assert egress["endpoint_name"].startswith("big.api-")
    assert egress["metrics"]["transmitted_records"] == 1
    stream.close()


async def test_frontier_stream_agrees_with_completion_status(pipeline: ClientFactory) -> None:
    client = await pipeline()
    stream = await client.get("/completion_frontier")
    assert stream.headers["Content-Type"] == "application/x-ndjson"
    first = json.loads(await asyncio.wait_for(stream.content.readline(), 5))
    assert set(first) == {"incarnation", "total_completed_steps", "endpoints"}
    token = await ingest(client, "orders", [{"id": 1, "customer": "a", "amount": 5}])
    decoded = decode_token(token)
    seen: list[dict[str, Any]] = []
    while True:
        frontier = json.loads(await asyncio.wait_for(stream.content.readline(), 10))
        seen.append(frontier)
        # Both answers are read at the same point in time: they must agree.
        status = await status_of(client, token)
        if frontier_says_complete(frontier, decoded):
            assert status["status"] == "complete"
            break
    assert str(decoded.endpoint_id) in seen[-1]["endpoints"]
    stream.close()


async def test_failing_step_stops_the_pipeline_and_its_tokens_never_complete(
    pipeline: ClientFactory,
) -> None:
    client = await pipeline(
        sql="CREATE TABLE t (s VARCHAR); CREATE VIEW bad AS SELECT CAST(s AS INT) AS n FROM t;"
    )
    good = await client.post("/ingress/t?format=json", data='{"insert": {"s": "12"}}')
    await wait_complete(client, (await good.json())["token"])
    response = await client.post("/ingress/t?format=json", data='{"insert": {"s": "abc"}}')
    token = (await response.json())["token"]
    for _ in range(100):
        status = await (await client.get("/status")).json()
        if status["runtime_status"] == "Stopped":
            break
        await asyncio.sleep(0.02)
    assert status["runtime_status"] == "Stopped"
    assert status["runtime_status_details"]["reason"] == "StepFailed"
    assert "step" in status["runtime_status_details"]["error"]
    assert (await (await client.get("/stats")).json())["step_errors"] == 1
    # The failed step's records were not delivered: the token must not claim them, ever.
    await client.post("/ingress/t?format=json", data='{"insert": {"s": "7"}}')
    await asyncio.sleep(0.2)
    assert (await status_of(client, token))["status"] == "inprogress"
    await client.get("/start")
    assert (await (await client.get("/status")).json())["runtime_status"] == "Stopped"


async def test_terminating_and_initializing(pipeline: ClientFactory) -> None:
    client = await pipeline()
    controller = client.app[CONTROLLER]
    controller.status = "Initializing"
    response = await client.get("/readyz")
    assert response.status == 503
    assert (await response.json())["error_code"] == "Initializing"
    controller.status = "Running"
    await controller.stop()
    response = await client.post("/ingress/orders?format=json", data="")
    assert response.status == 410
    assert (await response.json())["error_code"] == "Terminating"
