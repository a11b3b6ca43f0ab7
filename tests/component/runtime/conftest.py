"""Fixtures: a pipeline-process API over a real controller, through aiohttp's test client."""

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from sluice.models.runtime_config import RuntimeConfig
from sluice.runtime.api import create_app
from sluice.runtime.controller import Controller

SQL = """
CREATE TABLE orders (id BIGINT NOT NULL PRIMARY KEY, customer VARCHAR NOT NULL, amount INT);
CREATE VIEW big AS SELECT id, amount FROM orders WHERE amount >= 100;
CREATE MATERIALIZED VIEW totals AS
  SELECT customer, SUM(amount) AS total FROM orders GROUP BY customer;
"""

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def pipeline(aiohttp_client: Any) -> ClientFactory:
    async def start(sql: str = SQL, **config: Any) -> TestClient[Any, Any]:
        document = RuntimeConfig.model_validate({"pipeline_name": "p", "sql": sql, **config})
        client: TestClient[Any, Any] = await aiohttp_client(create_app(Controller(document)))
        return client

    return start


async def ingest(client: TestClient[Any, Any], table: str, rows: list[dict[str, Any]]) -> str:
    body = "\n".join(json.dumps({"insert": row}) for row in rows)
    response = await client.post(f"/ingress/{table}?format=json", data=body)
    assert response.status == 200, await response.text()
    token: str = (await response.json())["token"]
    return token


async def status_of(client: TestClient[Any, Any], token: str) -> dict[str, Any]:
    response = await client.get("/completion_status", params={"token": token})
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def wait_complete(client: TestClient[Any, Any], token: str, seconds: float = 10) -> int:
    """Poll until complete; the step it reports."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        body = await status_of(client, token)
        if body["status"] == "complete":
            step: int = body["step"]
            return step
        await asyncio.sleep(0.01)
    raise AssertionError(f"token {token} did not complete")
