"""The issue's acceptance check on examples/quickstart: file input -> aggregate -> file output.

The token minted after the file connector reached end of input completes only once the output
file holds the final aggregate (replaying its insert/delete lines gives revenue per customer).
"""

import asyncio
import json
import shutil
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from sluice.core.tokens import decode_token
from tests.component.runtime.conftest import ClientFactory, status_of

QUICKSTART = Path(__file__).resolve().parents[3] / "examples" / "quickstart"


def _connectors() -> list[dict[str, Any]]:
    connectors = []
    for document in yaml.safe_load_all((QUICKSTART / "connectors.yaml").read_text()):
        spec = document["spec"]
        connectors.append(
            {
                "name": document["metadata"]["name"],
                "relation": spec.get("table") or spec["view"],
                "direction": "input" if "table" in spec else "output",
                "transport": spec["transport"],
                "format": spec["format"],
            }
        )
    return connectors


def _expected_revenue() -> Counter[tuple[str, int, Decimal]]:
    totals: dict[str, tuple[int, Decimal]] = {}
    for line in (QUICKSTART / "data" / "orders.json").read_text().splitlines():
        order = json.loads(line, parse_float=Decimal)
        count, revenue = totals.get(order["customer"], (0, Decimal(0)))
        totals[order["customer"]] = (count + 1, revenue + order["amount"])
    return Counter((customer, count, revenue) for customer, (count, revenue) in totals.items())


def _replayed(output: Path) -> Counter[tuple[str, int, Decimal]]:
    state: Counter[tuple[str, int, Decimal]] = Counter()
    for line in output.read_text().splitlines():
        change = json.loads(line, parse_float=Decimal)
        [(kind, row)] = change.items()
        key = (row["customer"], row["order_count"], Decimal(row["revenue"]))
        state[key] += 1 if kind == "insert" else -1
    return +state


async def test_token_after_end_of_input_completes_with_final_aggregate(
    pipeline: ClientFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(QUICKSTART / "data", tmp_path / "data")
    monkeypatch.chdir(tmp_path)  # connector paths are relative to the working directory
    sql = yaml.safe_load((QUICKSTART / "pipeline.yaml").read_text())["spec"]["sql"]
    client = await pipeline(sql=sql, pipeline_name="orders", connectors=_connectors())
    endpoint = "/input_endpoints/orders.orders-file"
    for _ in range(1000):
        stats = await (await client.get(f"{endpoint}/stats")).json()
        if stats["metrics"]["end_of_input"]:
            break
        await asyncio.sleep(0.01)
    assert stats["metrics"]["total_records"] == 200
    token = (await (await client.get(f"{endpoint}/completion_token")).json())["token"]
    assert decode_token(token).records == 200
    output = tmp_path / "output" / "revenue_by_customer.json"
    for _ in range(4000):
        if (await status_of(client, token))["status"] == "complete":
            break
        await asyncio.sleep(0.005)
    assert _replayed(output) == _expected_revenue()
    stats = await (await client.get("/stats")).json()
    assert stats["global_metrics"]["pipeline_complete"] is True
    assert stats["views"]["revenue_by_customer"]["maintenance"] == "recompute"
    assert stats["views"]["large_orders"]["maintenance"] == "linear"
