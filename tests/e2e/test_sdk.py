"""E2e: the Feldera Python SDK, unchanged, through the gateway to operator-run pipeline pods."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from feldera import FelderaClient, Pipeline
from feldera.enums import CompletionTokenStatus, PipelineStatus
from feldera.rest.errors import FelderaAPIError
from feldera.rest.retry import RetryConfig

from tests.e2e.conftest import Gateway, Operated
from tests.e2e.gateway_client import create_api_key
from tests.e2e.polling import eventually
from tests.e2e.quickstart import expected_revenue, net_output, quickstart_documents
from tests.e2e.test_gateway import service_account_token

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def client(gateway: Gateway, credential: str) -> FelderaClient:
    # No retries: error codes must surface at once (the SDK would otherwise back off on 503).
    return FelderaClient(gateway.url, api_key=credential, retry_config=RetryConfig(max_retries=0))


def test_the_sdk_flow_with_an_api_key_and_with_service_account_tokens(
    operated: Operated, gateway: Gateway, workdir: Path
) -> None:
    ns = operated.kubectl
    output = workdir / "revenue.json"
    ns.apply(*quickstart_documents(output))
    ns.run("wait", "--for=condition=Ready", "pipeline/orders", "--timeout=90s")
    eventually(lambda: net_output(output) == expected_revenue(), "the quickstart's result")

    writer = client(
        gateway, create_api_key(ns.kubeconfig, operated.namespace, "sdk-writer", "write")
    )
    pipeline = eventually(
        lambda: (p := Pipeline.get("orders", writer)).status() == PipelineStatus.RUNNING and p,
        "the gateway to see orders Running",
    )
    assert [table.name for table in pipeline.tables()] == ["orders"]

    # Push, wait for the token: once it completes, the output already holds the change.
    token = pipeline.input_json(
        "orders",
        [{"id": 9001, "customer": "sdk-e2e", "product": "probe", "amount": 12.5}],
        wait=True,
    )
    assert pipeline.completion_token_status(token) == CompletionTokenStatus.COMPLETE
    assert net_output(output)[("sdk-e2e", 1, Decimal("12.50"))] == 1

    # A connector's token, minted through the gateway and followed to completion.
    connector_token = pipeline.generate_completion_token("orders", "orders-file")
    pipeline.wait_for_token(connector_token)
    assert pipeline.completion_token_status(connector_token) == CompletionTokenStatus.COMPLETE

    # Errors carry Feldera's codes.
    with pytest.raises(FelderaAPIError) as unknown:
        Pipeline.get("nope", writer)
    assert unknown.value.error_code == "UnknownPipelineName"
    with pytest.raises(FelderaAPIError) as malformed:
        pipeline.completion_token_status("not-a-token")
    assert malformed.value.status_code == 400

    # ServiceAccount tokens: authorised by RBAC (the chart's user roles).
    viewer = client(
        gateway, service_account_token(ns, "sdk-viewer", f"{operated.namespace}-sluice-view")
    )
    editor = client(
        gateway, service_account_token(ns, "sdk-editor", f"{operated.namespace}-sluice-edit")
    )
    stranger = service_account_token(ns, "sdk-stranger", None)
    assert "orders" in [p.name for p in viewer.pipelines()]
    with pytest.raises(FelderaAPIError) as read_only:
        Pipeline.get("orders", viewer).input_json("orders", [{"id": 9002}], wait=False)
    assert read_only.value.status_code == 403
    with pytest.raises(FelderaAPIError) as refused:
        # The client reads /v0/config on construction: that is already refused.
        client(gateway, stranger).pipelines()
    assert refused.value.status_code == 403
    token = Pipeline.get("orders", editor).input_json(
        "orders",
        [{"id": 9003, "customer": "sdk-editor", "product": "probe", "amount": 1}],
        wait=True,
    )
    assert Pipeline.get("orders", editor).completion_token_status(token) == (
        CompletionTokenStatus.COMPLETE
    )
    assert net_output(output)[("sdk-editor", 1, Decimal("1.00"))] == 1
