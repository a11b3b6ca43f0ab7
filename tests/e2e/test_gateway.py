"""E2e: the gateway against the real API server: API keys, ServiceAccount tokens and RBAC."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Gateway
from tests.e2e.gateway_client import Answer, call, create_api_key
from tests.e2e.kubectl import Kubectl
from tests.e2e.polling import eventually
from tests.factories import QUICKSTART

# Starts processes (gateway, sluice apikey) on a shared machine: more room than 60 s.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def service_account_token(ns: Kubectl, name: str, cluster_role: str | None) -> str:
    """A ServiceAccount of a workload, optionally bound to one of the chart's user roles."""
    ns.run("create", "serviceaccount", name)
    if cluster_role is not None:
        ns.run(
            "create",
            "rolebinding",
            name,
            f"--clusterrole={cluster_role}",
            f"--serviceaccount={ns.namespace}:{name}",
        )
    return ns.run("create", "token", name, "--duration=1h").stdout.strip()


def ok(answer: Answer) -> Answer | None:
    return answer if answer.status == 200 else None


def accepted(answer: Answer) -> Answer | None:
    return None if answer.status in (401, 403) else answer


def desired_state(ns: Kubectl) -> str:
    return ns.run("get", "pipeline", "orders", "-o", "jsonpath={.spec.desiredState}").stdout


def test_api_keys_and_service_account_tokens_are_authorised_by_role_and_rbac(
    kubectl: Kubectl, gateway: Gateway
) -> None:
    ns = kubectl.in_namespace(gateway.namespace)
    ns.run("apply", "-f", str(QUICKSTART / "pipeline.yaml"))
    pipelines = f"{gateway.url}/v0/pipelines"
    stop = f"{gateway.url}/v0/pipelines/orders/stop"
    start = f"{gateway.url}/v0/pipelines/orders/start"

    # Unauthenticated: only health and the authentication config.
    assert call(f"{gateway.url}/healthz").status == 200
    assert call(f"{gateway.url}/v0/config/authentication").status == 200
    missing = call(pipelines)
    assert missing.status == 401
    assert missing.body["error_code"] == "AuthenticationFailed"
    assert call(pipelines, token="apikey:" + "x" * 128).status == 401

    reader_key = create_api_key(kubectl.kubeconfig, gateway.namespace, "e2e-reader", "read")
    writer_key = create_api_key(kubectl.kubeconfig, gateway.namespace, "e2e-writer", "write")

    # The gateway learns keys from its watch of the Secrets, so allow it a moment.
    listed = eventually(lambda: ok(call(pipelines, token=reader_key)), "the read key")
    assert [p["name"] for p in listed.body] == ["orders"]
    unknown = call(f"{pipelines}/nope", token=reader_key)
    assert unknown.status == 404
    assert unknown.body["error_code"] == "UnknownPipelineName"
    assert call(stop, "POST", reader_key).status == 403
    assert desired_state(ns) == "Running"
    stopped = eventually(lambda: accepted(call(stop, "POST", writer_key)), "the write key")
    assert stopped.status == 202, stopped
    # The resource stays the source of truth: the gateway patched its spec.
    assert desired_state(ns) == "Stopped"

    # ServiceAccount tokens: TokenReview, then a SubjectAccessReview against RBAC.
    viewer = service_account_token(ns, "viewer", f"{gateway.namespace}-sluice-view")
    editor = service_account_token(ns, "editor", f"{gateway.namespace}-sluice-edit")
    stranger = service_account_token(ns, "stranger", None)
    assert call(pipelines, token=viewer).status == 200
    assert call(start, "POST", viewer).status == 403
    refused = call(pipelines, token=stranger)
    assert refused.status == 403, refused
    assert call(start, "POST", editor).status == 202
    assert desired_state(ns) == "Running"
    # A token the API server does not know is not a ServiceAccount token.
    forged = viewer[:-4] + ("AAAA" if not viewer.endswith("AAAA") else "BBBB")
    assert call(pipelines, token=forged).status == 401
