"""The reconcile loop end to end on an in-memory API server with fake pods.

What depends on a real API server (SSA semantics, admission, garbage collection, the
StatefulSet controller) is proven in tests/e2e; here the fake stands in for it.
"""

from __future__ import annotations

from typing import Any

from sluice.core.tokens import decode_token
from tests.component.operator.harness import NAMESPACE, condition, eventually, running_operator
from tests.factories import completion_token_doc, connector_doc, pipeline_doc

NS = NAMESPACE


def _pipeline(**spec: Any) -> dict[str, Any]:
    return pipeline_doc(sql="CREATE TABLE t (x INT); CREATE VIEW v AS SELECT x FROM t;", **spec)


async def test_pipeline_runs_and_goes_quiet() -> None:
    async with running_operator() as (kube, deps, kubelet):
        kube.create(_pipeline(), NS)
        done = await eventually(
            lambda: condition(kube.find("Pipeline", NS, "orders"), "Ready") == ("True", "Running")
        )
        assert done
        pipeline = kube.find("Pipeline", NS, "orders")
        assert pipeline is not None
        status = pipeline["status"]
        assert status["observedGeneration"] == 1
        assert status["deploymentStatus"] == "Running"
        assert status["endpoint"].endswith(":8080")
        assert status["incarnation"] == kubelet.processes["orders"].incarnation
        assert status["tables"] == ["t"]
        assert status["views"] == ["v"]
        assert [c["type"] for c in status["conditions"]][:3] == ["Ready", "Reconciling", "Stalled"]
        for kind in ("ConfigMap", "Service", "StatefulSet"):
            child = kube.find(kind, NS, "sluice-orders")
            assert child is not None, kind
            assert child["metadata"]["ownerReferences"][0]["uid"] == pipeline["metadata"]["uid"]
        assert any(e["reason"] == "Started" for e in kube.events)

        # Nothing changes: resyncs keep happening (0.5 s) but write nothing.
        writes, applies = deps.status_writes, kube.count("apply")
        await _sleep(1.5)
        assert deps.status_writes == writes
        assert kube.count("apply") == applies


async def test_pause_resume_stop_and_repair() -> None:
    async with running_operator() as (kube, _deps, kubelet):
        kube.create(_pipeline(), NS)
        await eventually(
            lambda: condition(kube.find("Pipeline", NS, "orders"), "Ready") == ("True", "Running")
        )
        first = kubelet.processes["orders"]

        kube.update_spec("Pipeline", NS, "orders", {"desiredState": "Paused"})
        await eventually(
            lambda: condition(kube.find("Pipeline", NS, "orders"), "Ready") == ("True", "Paused")
        )
        assert kubelet.processes["orders"] is first, "pausing must not roll the pod"
        assert first.calls.count("pause") == 1
        assert kube.status_of("Pipeline", NS, "orders")["observedGeneration"] == 2

        kube.update_spec("Pipeline", NS, "orders", {"desiredState": "Running"})
        await eventually(
            lambda: condition(kube.find("Pipeline", NS, "orders"), "Ready") == ("True", "Running")
        )
        assert "start" in first.calls

        # A StatefulSet deleted by hand comes back.
        kube.remove("StatefulSet", NS, "sluice-orders")
        await eventually(lambda: kube.find("StatefulSet", NS, "sluice-orders"))

        kube.update_spec("Pipeline", NS, "orders", {"desiredState": "Stopped"})
        await eventually(
            lambda: condition(kube.find("Pipeline", NS, "orders"), "Ready") == ("True", "Stopped")
        )
        assert kube.find("StatefulSet", NS, "sluice-orders") is None
        assert kube.find("ConfigMap", NS, "sluice-orders") is not None
        stopped = kube.find("Pipeline", NS, "orders")
        assert stopped is not None
        assert stopped["status"]["deploymentStatus"] == "Stopped"
        assert "endpoint" not in stopped["status"]


async def test_restart_request_rolls_the_pod_and_is_acknowledged() -> None:
    async with running_operator() as (kube, _deps, kubelet):
        kube.create(_pipeline(), NS)
        await eventually(
            lambda: condition(kube.find("Pipeline", NS, "orders"), "Ready") == ("True", "Running")
        )
        first = kubelet.processes["orders"]
        kube.update_spec("Pipeline", NS, "orders", {"restartRequest": "r1"})
        await eventually(
            lambda: (
                kube.status_of("Pipeline", NS, "orders").get("lastHandledRestartRequest") == "r1"
            )
        )
        assert kubelet.processes["orders"] is not first
        assert any(e["reason"] == "Restarted" for e in kube.events)


async def test_invalid_spec_keeps_the_last_good_one_running() -> None:
    async with running_operator() as (kube, _deps, _kubelet):
        kube.create(_pipeline(), NS)
        await eventually(
            lambda: condition(kube.find("Pipeline", NS, "orders"), "Ready") == ("True", "Running")
        )
        before = kube.find("StatefulSet", NS, "sluice-orders")
        config_before = kube.find("ConfigMap", NS, "sluice-orders")
        pipeline = kube.objects[("Pipeline", NS, "orders")]
        del pipeline["spec"]["sql"]
        kube.update_spec(
            "Pipeline",
            NS,
            "orders",
            {"sqlFrom": {"configMapKeyRef": {"name": "nope", "key": "sql"}}},
        )
        await eventually(
            lambda: (
                condition(kube.find("Pipeline", NS, "orders"), "Stalled") == ("True", "InvalidSpec")
            )
        )
        status = kube.status_of("Pipeline", NS, "orders")
        ready = next(c for c in status["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "False"
        assert "still running generation 1" in ready["message"]
        assert status["observedGeneration"] == 2
        assert kube.find("StatefulSet", NS, "sluice-orders") == before
        assert kube.find("ConfigMap", NS, "sluice-orders") == config_before
        assert status["deploymentStatus"] == "Running"

        # The referenced ConfigMap appears: the pipeline recovers with the new program.
        kube.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "nope"},
                "data": {"sql": "CREATE TABLE t (x INT, y INT);"},
            },
            NS,
        )
        await eventually(
            lambda: condition(kube.find("Pipeline", NS, "orders"), "Ready") == ("True", "Running")
        )
        config = kube.find("ConfigMap", NS, "sluice-orders")
        assert config is not None
        assert "y INT" in config["data"]["config.json"]


async def test_connector_status_freshness_and_input_complete() -> None:
    async with running_operator() as (kube, deps, kubelet):
        kube.create(connector_doc("in", pipelineRef={"name": "orders"}), NS)
        await eventually(
            lambda: (
                condition(kube.find("Connector", NS, "in"), "Stalled")
                == ("True", "PipelineNotFound")
            )
        )
        kube.create(_pipeline(), NS)
        await eventually(
            lambda: condition(kube.find("Connector", NS, "in"), "Ready") == ("True", "Running")
        )
        config = kube.find("ConfigMap", NS, "sluice-orders")
        assert config is not None
        assert '"name": "in"' in config["data"]["config.json"]
        process = kubelet.processes["orders"]
        process.feed("t.in", 5, end=True)
        connector = await eventually(
            lambda: (
                (c := kube.find("Connector", NS, "in"))
                and (c["status"].get("metrics") or {}).get("recordsReceived") == 5
                and c
            )
        )
        assert condition(connector, "InputComplete") == ("False", "Processing")
        assert condition(connector, "Ready") == ("True", "EndOfInput")
        process.complete_all()
        connector = await eventually(
            lambda: (
                condition(kube.find("Connector", NS, "in"), "InputComplete")
                == ("True", "InputComplete")
                and kube.find("Connector", NS, "in")
            )
        )
        completion = connector["status"]["completion"]
        assert completion["status"] == "complete"
        assert decode_token(completion["token"]).records == 5
        assert completion["lagSeconds"] >= 0
        pipeline = kube.find("Pipeline", NS, "orders")
        assert pipeline is not None
        assert pipeline["status"]["connectors"][0]["records"] == 5

        # Idle input: the same token is minted again and nothing is written.
        writes = deps.status_writes
        await _sleep(1.0)
        assert deps.status_writes == writes


async def test_completion_token_completes_from_the_frontier() -> None:
    async with running_operator() as (kube, _deps, kubelet):
        kube.create(connector_doc("in", pipelineRef={"name": "orders"}), NS)
        kube.create(_pipeline(), NS)
        await eventually(
            lambda: condition(kube.find("Connector", NS, "in"), "Ready") == ("True", "Running")
        )
        process = kubelet.processes["orders"]
        process.feed("t.in", 3)
        kube.create(completion_token_doc("loaded", connector="in", ttlSecondsAfterFinished=1), NS)
        token = await eventually(
            lambda: kube.status_of("CompletionToken", NS, "loaded").get("token")
        )
        assert decode_token(token).records == 3
        status = kube.status_of("CompletionToken", NS, "loaded")
        assert status["status"] == "inprogress"
        assert condition(kube.find("CompletionToken", NS, "loaded"), "Complete") == (
            "False",
            "InProgress",
        )
        await _sleep(0.3)
        assert kube.status_of("CompletionToken", NS, "loaded")["status"] == "inprogress"
        process.complete_all()
        await eventually(
            lambda: (
                condition(kube.find("CompletionToken", NS, "loaded"), "Complete")
                == ("True", "Complete")
            ),
            within=1.0,
        )
        final = kube.find("CompletionToken", NS, "loaded")
        assert final is not None
        assert final["status"]["token"] == token, "minted once"
        assert condition(final, "Ready") == ("True", "Complete")
        assert any(e["reason"] == "TokenCompleted" for e in kube.events)
        assert sum(1 for call in process.calls if call == "mint t.in") >= 1
        # ttlSecondsAfterFinished removes it.
        await eventually(lambda: kube.find("CompletionToken", NS, "loaded") is None, within=5)


async def test_completion_token_failures() -> None:
    async with running_operator() as (kube, _deps, kubelet):
        kube.create(completion_token_doc("orphan", pipelineRef={"name": "ghost"}), NS)
        await eventually(
            lambda: (
                condition(kube.find("CompletionToken", NS, "orphan"), "Failed")
                == ("True", "PipelineNotFound")
            )
        )
        assert condition(kube.find("CompletionToken", NS, "orphan"), "Stalled") == (
            "True",
            "PipelineNotFound",
        )

        kube.create(connector_doc("in", pipelineRef={"name": "orders"}), NS)
        kube.create(_pipeline(), NS)
        await eventually(
            lambda: condition(kube.find("Connector", NS, "in"), "Ready") == ("True", "Running")
        )
        kube.create(completion_token_doc("wrong", connector="missing"), NS)
        await eventually(
            lambda: (
                condition(kube.find("CompletionToken", NS, "wrong"), "Failed")
                == ("True", "ConnectorNotFound")
            )
        )

        kubelet.processes["orders"].feed("t.in", 2)
        kube.create(completion_token_doc("restarted", connector="in"), NS)
        await eventually(lambda: kube.status_of("CompletionToken", NS, "restarted").get("token"))
        kube.update_spec("Pipeline", NS, "orders", {"restartRequest": "again"})
        await eventually(
            lambda: (
                condition(kube.find("CompletionToken", NS, "restarted"), "Failed")
                == ("True", "PipelineRestarted")
            )
        )


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


async def test_pausing_a_connector_uses_its_api_and_keeps_the_pod() -> None:
    async with running_operator() as (kube, _deps, kubelet):
        kube.create(connector_doc("in", pipelineRef={"name": "orders"}), NS)
        kube.create(_pipeline(), NS)
        await eventually(
            lambda: condition(kube.find("Connector", NS, "in"), "Ready") == ("True", "Running")
        )
        process = kubelet.processes["orders"]
        kube.update_spec("Connector", NS, "in", {"paused": True})
        await eventually(
            lambda: condition(kube.find("Connector", NS, "in"), "Ready") == ("True", "Paused")
        )
        assert "pause t.in" in process.calls
        assert kubelet.processes["orders"] is process, "pausing a connector must not roll the pod"
        config = kube.find("ConfigMap", NS, "sluice-orders")
        assert config is not None
        assert '"paused": true' in config["data"]["config.json"]
