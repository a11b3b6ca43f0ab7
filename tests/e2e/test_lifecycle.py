"""E2e: a Pipeline's lifecycle on the real cluster, with kstatus reading its status."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Operated
from tests.e2e.gateway_client import call
from tests.e2e.kstatus.evaluate import Kstatus
from tests.e2e.kubectl import Kubectl
from tests.e2e.polling import eventually
from tests.e2e.quickstart import expected_revenue, net_output, quickstart_documents
from tests.factories import pipeline_doc

# Each test runs pipeline pods (processes) on a shared machine: more room than 60 s.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

POD = "sluice-orders-0"
LABEL = "sluice.dev/pipeline=orders"


def pipeline(ns: Kubectl) -> dict[str, Any]:
    found: dict[str, Any] = ns.get_json("pipeline", "orders")
    return found


def condition(resource: dict[str, Any], kind: str) -> dict[str, Any]:
    for item in resource.get("status", {}).get("conditions", []):
        if item["type"] == kind:
            found: dict[str, Any] = item
            return found
    return {}


def wait_ready(ns: Kubectl, reason: str | None = None, timeout: int = 90) -> dict[str, Any]:
    """Ready=True for the current generation (with `reason`, when given)."""

    def settled() -> dict[str, Any] | None:
        current = pipeline(ns)
        ready = condition(current, "Ready")
        if current["status"].get("observedGeneration") != current["metadata"]["generation"]:
            return None
        if ready.get("status") != "True" or (reason and ready.get("reason") != reason):
            return None
        return current

    return eventually(settled, f"Pipeline orders Ready ({reason or 'any reason'})", timeout)


def kstatus_of(kstatus: Kstatus, ns: Kubectl) -> str:
    return kstatus.evaluate(ns, "pipeline/orders")["Pipeline/orders"].status


def pod(ns: Kubectl) -> dict[str, Any] | None:
    result = ns.run("get", "pod", POD, "-o", "json", check=False)
    if result.returncode != 0:
        return None
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def runtime_get(endpoint: str, path: str) -> tuple[int, Any]:
    """A call straight to the pipeline process, as the gateway and the operator make it."""
    answer = call(f"http://{endpoint}{path}")
    return answer.status, answer.body


def start(operated: Operated, workdir: Path) -> dict[str, Any]:
    operated.kubectl.apply(*quickstart_documents(workdir / "revenue.json"))
    return wait_ready(operated.kubectl, "Running")


def test_pause_resume_stop_and_delete(operated: Operated, workdir: Path, kstatus: Kstatus) -> None:
    ns = operated.kubectl
    start(operated, workdir)
    assert kstatus_of(kstatus, ns) == "Current"
    first_pod = pod(ns)
    assert first_pod is not None

    ns.run(
        "patch", "pipeline", "orders", "--type=merge", "-p", '{"spec":{"desiredState":"Paused"}}'
    )
    paused = wait_ready(ns, "Paused")
    assert paused["status"]["deploymentStatus"] == "Paused"
    assert kstatus_of(kstatus, ns) == "Current"
    # Pausing goes through the pipeline's API: the pod is not rolled.
    assert pod(ns)["metadata"]["uid"] == first_pod["metadata"]["uid"]  # type: ignore[index]

    ns.run(
        "patch", "pipeline", "orders", "--type=merge", "-p", '{"spec":{"desiredState":"Running"}}'
    )
    assert wait_ready(ns, "Running")["status"]["deploymentStatus"] == "Running"

    ns.run(
        "patch", "pipeline", "orders", "--type=merge", "-p", '{"spec":{"desiredState":"Stopped"}}'
    )
    stopped = wait_ready(ns, "Stopped")
    assert stopped["status"]["deploymentStatus"] == "Stopped"
    assert kstatus_of(kstatus, ns) == "Current"
    eventually(lambda: pod(ns) is None, "the pipeline pod to go")
    assert ns.run("get", "statefulset", "-l", LABEL, "-o", "name").stdout.strip() == ""

    ns.run("delete", "pipeline", "orders", "--timeout=60s")
    # Children are owned by the Pipeline: the garbage collector removes them.
    eventually(
        lambda: (
            ns.run("get", "configmap,service,statefulset", "-l", LABEL, "-o", "name").stdout.strip()
            == ""
        ),
        "the Pipeline's children to be garbage-collected",
    )


def test_spec_edit_rolls_the_pod_and_old_tokens_answer_410(
    operated: Operated, workdir: Path, kstatus: Kstatus
) -> None:
    ns = operated.kubectl
    before = start(operated, workdir)
    endpoint = before["status"]["endpoint"]
    old_incarnation = before["status"]["incarnation"]
    status, minted = runtime_get(endpoint, "/input_endpoints/orders.orders-file/completion_token")
    assert status == 200, minted
    old_token = minted["token"]
    old_pod = pod(ns)

    sql = (
        before["spec"]["sql"]
        + "\nCREATE VIEW big_customers AS\n"
        + "  SELECT customer FROM revenue_by_customer WHERE revenue > 4000;\n"
    )
    ns.run("patch", "pipeline", "orders", "--type=merge", "-p", json.dumps({"spec": {"sql": sql}}))
    after = eventually(
        lambda: (p := wait_ready(ns, "Running"))["status"]["incarnation"] != old_incarnation and p,
        "a new incarnation",
    )
    new_pod = pod(ns)
    assert new_pod is not None
    assert old_pod is not None
    assert new_pod["metadata"]["uid"] != old_pod["metadata"]["uid"], "the pod did not roll"
    assert kstatus_of(kstatus, ns) == "Current"
    status, body = runtime_get(after["status"]["endpoint"], f"/completion_status?token={old_token}")
    assert status == 410, body
    assert body["error_code"] == "PipelineRestarted"


def test_an_invalid_edit_stalls_the_pipeline_and_the_old_one_keeps_running(
    operated: Operated, workdir: Path, kstatus: Kstatus
) -> None:
    ns = operated.kubectl
    before = start(operated, workdir)
    old_pod = pod(ns)
    assert old_pod is not None
    # Parses, but does not bind: only the engine itself can tell, so the operator asks it.
    bad = {
        "spec": {"sql": before["spec"]["sql"] + "\nCREATE VIEW broken AS SELECT nope FROM orders;"}
    }
    ns.run("patch", "pipeline", "orders", "--type=merge", "-p", json.dumps(bad))

    def stalled() -> dict[str, Any] | None:
        current = pipeline(ns)
        if current["status"].get("observedGeneration") != current["metadata"]["generation"]:
            return None
        return current if condition(current, "Stalled").get("status") == "True" else None

    current = eventually(stalled, "Stalled after the invalid edit", timeout=90)
    assert condition(current, "Ready")["status"] == "False"
    assert condition(current, "Stalled")["reason"] == "InvalidSpec"
    assert "nope" in condition(current, "Stalled")["message"]
    assert condition(current, "Reconciling").get("status") != "True"
    assert kstatus_of(kstatus, ns) == "Failed"
    # The last good program keeps running in the same pod, and keeps answering.
    still = pod(ns)
    assert still is not None
    assert still["metadata"]["uid"] == old_pod["metadata"]["uid"]
    assert current["status"]["incarnation"] == before["status"]["incarnation"]
    status, body = runtime_get(before["status"]["endpoint"], "/status")
    assert status == 200, body
    assert body["runtime_status"] == "Running"


def test_restart_request_and_a_killed_process_restart_the_pipeline(
    operated: Operated, workdir: Path
) -> None:
    ns = operated.kubectl
    before = start(operated, workdir)
    old_pod = pod(ns)
    assert old_pod is not None
    ns.run("patch", "pipeline", "orders", "--type=merge", "-p", '{"spec":{"restartRequest":"r1"}}')
    after = eventually(
        lambda: (
            (p := wait_ready(ns, "Running"))["status"].get("lastHandledRestartRequest") == "r1"
            and p
        ),
        "restartRequest r1 to be acknowledged",
    )
    assert after["status"]["incarnation"] != before["status"]["incarnation"]
    new_pod = eventually(
        lambda: (p := pod(ns)) and p["metadata"]["uid"] != old_pod["metadata"]["uid"] and p,
        "a new pod",
    )

    # Kill the pipeline process: the pod restarts it, the Pipeline goes not-Ready and back.
    container = new_pod["status"]["containerStatuses"][0]
    os.kill(int(container["containerID"].removeprefix("sluice-node://")), signal.SIGKILL)
    eventually(lambda: condition(pipeline(ns), "Ready").get("status") != "True", "Ready to drop")
    recovered = wait_ready(ns, "Running")
    assert recovered["status"]["restartCount"] >= 1
    restarted = pod(ns)
    assert restarted is not None
    assert restarted["status"]["containerStatuses"][0]["restartCount"] >= 1


def test_the_operator_restarted_mid_reconcile_converges_without_duplicates(
    operated: Operated, workdir: Path
) -> None:
    ns = operated.kubectl
    ns.apply(*quickstart_documents(workdir / "revenue.json"))
    # Kill it as soon as it has started creating children, then start a new one.
    eventually(
        lambda: ns.run("get", "configmap", "-l", LABEL, "-o", "name").stdout.strip(),
        "the operator to start reconciling",
    )
    operated.operator.kill()
    operated.restart_operator()
    wait_ready(ns, "Running")
    for kind in ("configmap", "service", "statefulset", "pod"):
        names = ns.run("get", kind, "-l", LABEL, "-o", "name").stdout.split()
        assert len(names) == 1, (kind, names)


def test_a_connector_added_and_removed(operated: Operated, workdir: Path) -> None:
    ns = operated.kubectl
    start(operated, workdir)
    second = workdir / "second.json"
    extra = {
        "apiVersion": "sluice.dev/v1alpha1",
        "kind": "Connector",
        "metadata": {"name": "revenue-copy"},
        "spec": {
            "pipelineRef": {"name": "orders"},
            "view": "revenue_by_customer",
            "transport": {"name": "file_output", "config": {"path": str(second)}},
            "format": {"name": "json", "config": {"update_format": "insert_delete"}},
        },
    }
    ns.apply(extra)
    ns.run("wait", "--for=condition=Ready", "connector/revenue-copy", "--timeout=90s")

    def summary_names() -> list[str]:
        return sorted(c["name"] for c in pipeline(ns)["status"].get("connectors", []))

    eventually(
        lambda: summary_names() == ["orders-file", "revenue-copy", "revenue-file"],
        "the Pipeline to list the new connector",
    )
    # The new output connector delivers the view (the pipeline re-read its input).
    eventually(lambda: net_output(second) == expected_revenue(), "the new connector's output")

    ns.run("delete", "connector", "revenue-copy", "--timeout=60s")
    eventually(
        lambda: summary_names() == ["orders-file", "revenue-file"],
        "the Pipeline to drop the removed connector",
    )
    wait_ready(ns, "Running")


def test_a_completion_token_of_an_earlier_incarnation_fails_with_pipeline_restarted(
    operated: Operated, workdir: Path, kstatus: Kstatus
) -> None:
    ns = operated.kubectl
    before = start(operated, workdir)
    ns.run(
        "patch", "pipeline", "orders", "--type=merge", "-p", '{"spec":{"desiredState":"Paused"}}'
    )
    paused = wait_ready(ns, "Paused")
    endpoint = paused["status"]["endpoint"]
    # Records pushed while the pipeline is paused are queued, not processed: a token that
    # covers them stays in progress for as long as the pipeline stays paused.
    pushed = call(
        f"http://{endpoint}/ingress/orders?format=json&update_format=raw",
        method="POST",
        body=b'{"id": 9001, "customer": "late", "product": "gizmo", "amount": 12.5}',
    )
    assert pushed.status == 200, pushed.body
    stats = runtime_get(endpoint, "/stats")[1]
    ingress = next(i for i in stats["inputs"] if ".api-ingress-" in i["endpoint_name"])
    connector = ingress["endpoint_name"].split(".", 1)[1]
    ns.apply(
        {
            "apiVersion": "sluice.dev/v1alpha1",
            "kind": "CompletionToken",
            "metadata": {"name": "queued-while-paused"},
            "spec": {"pipelineRef": {"name": "orders"}, "table": "orders", "connector": connector},
        }
    )

    def minted() -> dict[str, Any] | None:
        token = ns.get_json("completiontoken", "queued-while-paused")
        return token if token.get("status", {}).get("token") else None

    token = eventually(minted, "the CompletionToken to be minted")
    assert token["status"]["status"] == "inprogress"
    assert condition(token, "Complete").get("status") != "True"

    # A new program restarts the pipeline: the token belongs to the old incarnation.
    sql = before["spec"]["sql"] + "\nCREATE VIEW late_orders AS SELECT id FROM orders;\n"
    ns.run("patch", "pipeline", "orders", "--type=merge", "-p", json.dumps({"spec": {"sql": sql}}))

    def failed() -> dict[str, Any] | None:
        current = ns.get_json("completiontoken", "queued-while-paused")
        return current if condition(current, "Failed").get("status") == "True" else None

    current = eventually(failed, "the CompletionToken to fail", timeout=120)
    assert condition(current, "Failed")["reason"] == "PipelineRestarted"
    assert condition(current, "Stalled")["status"] == "True"
    assert condition(current, "Complete").get("status") != "True"
    assert (
        kstatus.evaluate(ns, "completiontoken/queued-while-paused")[
            "CompletionToken/queued-while-paused"
        ].status
        == "Failed"
    )


@pytest.mark.parametrize(("policy", "kept"), [("Retain", True), ("Delete", False)])
def test_storage_follows_its_reclaim_policy_when_the_pipeline_is_deleted(
    operated: Operated, policy: str, kept: bool
) -> None:
    # Stopped: the node agent has no volume provisioner, so no pod may need the claim; a
    # stopped pipeline keeps its config, Service and storage all the same.
    ns = operated.kubectl
    name = f"stored-{policy.lower()}"
    claim = f"sluice-{name}-storage"
    ns.apply(
        pipeline_doc(
            name,
            desiredState="Stopped",
            runtime={"storage": {"size": "1Gi", "reclaimPolicy": policy}},
        )
    )
    eventually(
        lambda: ns.run("get", "pvc", claim, check=False).returncode == 0,
        f"the PersistentVolumeClaim {claim}",
    )
    ns.run("delete", "pipeline", name, "--timeout=60s")
    eventually(
        lambda: ns.run("get", "configmap", f"sluice-{name}", check=False).returncode != 0,
        "the Pipeline's ConfigMap to be garbage-collected",
        timeout=90,  # the garbage collector learns of new kinds on its discovery resync (30 s)
    )
    if kept:
        # Retain keeps user data: nothing owns the claim, so nothing collects it.
        assert ns.run("get", "pvc", claim, check=False).returncode == 0
        ns.run("delete", "pvc", claim, "--wait=false")
    else:
        eventually(
            lambda: ns.run("get", "pvc", claim, check=False).returncode != 0,
            "the PersistentVolumeClaim to be garbage-collected",
            timeout=90,
        )
