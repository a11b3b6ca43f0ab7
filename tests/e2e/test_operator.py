"""E2e: the operator, with the chart's RBAC, runs examples/quickstart on the real cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sluice.core.tokens import decode_token
from tests.e2e.conftest import Operated
from tests.e2e.polling import eventually
from tests.e2e.quickstart import ORDERS, expected_revenue, net_output, quickstart_documents
from tests.e2e.test_lifecycle import condition

# Reconciling runs pods (processes) on a shared machine: more room than 60 s.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def metrics(connector: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = connector.get("status", {}).get("metrics") or {}
    return found


def test_the_quickstart_is_reconciled_and_its_token_completes(
    operated: Operated, workdir: Path
) -> None:
    output = workdir / "revenue_by_customer.json"
    ns = operated.kubectl
    ns.apply(*quickstart_documents(output))

    ns.run("wait", "--for=condition=Ready", "pipeline/orders", "--timeout=90s")
    ns.run("wait", "--for=condition=Complete", "completiontoken/orders-loaded", "--timeout=90s")
    token = ns.get_json("completiontoken", "orders-loaded")
    assert token["status"]["status"] == "complete"
    assert token["status"]["token"]
    assert token["status"]["endpointName"] == "orders.orders-file"
    assert condition(token, "Ready").get("status") == "True"

    pipeline = ns.get_json("pipeline", "orders")
    assert pipeline["status"]["observedGeneration"] == pipeline["metadata"]["generation"]
    assert pipeline["status"]["deploymentStatus"] == "Running"
    assert pipeline["status"]["tables"] == ["orders"]
    assert sorted(pipeline["status"]["views"]) == ["large_orders", "revenue_by_customer"]
    # The input connector reports every record of the example's data file, and end of input.
    records = len(ORDERS.read_text().splitlines())
    received = eventually(
        lambda: (
            metrics(ns.get_json("connector", "orders-file")).get("recordsReceived") == records
            and metrics(ns.get_json("connector", "orders-file"))
        ),
        "orders-file to report its records",
    )
    assert received["endOfInput"] is True
    eventually(lambda: net_output(output) == expected_revenue(), "the final result in the output")
    eventually(
        lambda: (
            metrics(ns.get_json("connector", "revenue-file")).get("recordsTransmitted", 0)
            >= len(expected_revenue())
        ),
        "revenue-file to report the records it wrote",
    )


def test_a_completion_token_completes_only_once_the_output_holds_the_final_result(
    operated: Operated, workdir: Path
) -> None:
    output = workdir / "revenue_by_customer.json"
    ns = operated.kubectl
    ns.apply(*quickstart_documents(output))
    ns.run("wait", "--for=condition=Complete", "completiontoken/orders-loaded", "--timeout=90s")
    # Read at once: Complete must mean every order was processed and its result delivered.
    assert net_output(output) == expected_revenue()
    # The token covers every record of the file (spec.waitForEndOfInput), not just those
    # received by the time the pod came up.
    token = ns.get_json("completiontoken", "orders-loaded")["status"]["token"]
    assert decode_token(token).records == len(ORDERS.read_text().splitlines())
