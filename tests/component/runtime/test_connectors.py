"""Input transports: a followed file keeps being read as it grows; datagen honours limits."""

import asyncio
import json
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.component.runtime.conftest import ClientFactory


async def _stats(client: Any, endpoint: str) -> dict[str, Any]:
    body: dict[str, Any] = await (await client.get(f"/input_endpoints/{endpoint}/stats")).json()
    return body


async def _wait_records(client: Any, endpoint: str, records: int) -> dict[str, Any]:
    for _ in range(1000):
        stats = await _stats(client, endpoint)
        if stats["metrics"]["total_records"] >= records:
            return stats
        await asyncio.sleep(0.01)
    raise AssertionError(f"{endpoint} did not reach {records} records")


async def test_followed_file_is_read_as_it_grows(pipeline: ClientFactory, tmp_path: Path) -> None:
    data = tmp_path / "orders.csv"
    data.write_text("1,a,10\n2,b,20\n3,c,")
    client = await pipeline(
        connectors=[
            {
                "name": "tail",
                "relation": "orders",
                "direction": "input",
                "transport": {"name": "file_input", "config": {"path": str(data), "follow": True}},
                "format": {"name": "csv"},
            }
        ]
    )
    await _wait_records(client, "orders.tail", 2)
    with data.open("a") as appended:
        appended.write("30\n4,d,40\n")
    stats = await _wait_records(client, "orders.tail", 4)
    assert stats["metrics"]["end_of_input"] is False
    assert stats["metrics"]["num_parse_errors"] == 0
    await asyncio.sleep(0.1)
    rows = await (
        await client.get("/query", params={"sql": "SELECT SUM(amount) AS s FROM orders"})
    ).text()
    assert json.loads(rows) == {"s": 100}


async def test_datagen_produces_its_limit(pipeline: ClientFactory) -> None:
    client = await pipeline(
        connectors=[
            {
                "name": "gen",
                "relation": "orders",
                "direction": "input",
                "transport": {
                    "name": "datagen",
                    "config": {"plan": [{"limit": 2500, "fields": {"amount": {"range": [0, 10]}}}]},
                },
            }
        ]
    )
    stats = await _wait_records(client, "orders.gen", 2500)
    for _ in range(500):
        if stats["metrics"]["end_of_input"]:
            break
        await asyncio.sleep(0.01)
        stats = await _stats(client, "orders.gen")
    assert stats["metrics"]["total_records"] == 2500
    token = (await (await client.get("/input_endpoints/orders.gen/completion_token")).json())[
        "token"
    ]
    for _ in range(500):
        status = await (await client.get("/completion_status", params={"token": token})).json()
        if status["status"] == "complete":
            break
        await asyncio.sleep(0.01)
    rows = await (
        await client.get(
            "/query", params={"sql": "SELECT COUNT(*) AS n, MAX(amount) AS m FROM orders"}
        )
    ).text()
    assert json.loads(rows) == {"n": 2500, "m": 9}


async def test_url_input_reads_a_json_array(pipeline: ClientFactory, aiohttp_server: Any) -> None:
    rows = [{"insert": {"id": i, "customer": "u", "amount": i}} for i in range(5)]

    async def serve(request: web.Request) -> web.Response:
        return web.json_response(rows)

    app = web.Application()
    app.router.add_get("/orders.json", serve)
    server = await aiohttp_server(app, host="127.0.0.1")
    client = await pipeline(
        connectors=[
            {
                "name": "web",
                "relation": "orders",
                "direction": "input",
                "transport": {
                    "name": "url_input",
                    "config": {"path": str(server.make_url("/orders.json"))},
                },
                "format": {"name": "json", "config": {"array": True}},
            }
        ]
    )
    stats = await _wait_records(client, "orders.web", 5)
    for _ in range(500):
        if stats["metrics"]["end_of_input"]:
            break
        await asyncio.sleep(0.01)
        stats = await _stats(client, "orders.web")
    assert stats["metrics"]["end_of_input"] is True
    assert stats["metrics"]["total_records"] == 5
