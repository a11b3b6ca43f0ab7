"""KubernetesDirectory: a watch-fed view of Pipelines and their pods, no call per lookup."""

from __future__ import annotations

import asyncio

import pytest

from sluice.core import naming
from sluice.k8s.directory import KubernetesDirectory
from tests.component.operator.fake_kube import FakeKube
from tests.factories import pipeline_doc


def _pod(phase: str, ip: str | None) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "sluice-orders-0",
            "namespace": "team",
            "labels": naming.pipeline_labels("orders"),
        },
        "status": {"phase": phase, "podIP": ip},
    }


async def _settle(directory: KubernetesDirectory, since: int) -> int:
    return await asyncio.wait_for(directory.wait_changed(since), 5)


async def test_entries_follow_pipelines_and_pods_without_api_calls() -> None:
    kube = FakeKube()
    doc = pipeline_doc()
    doc["status"] = {
        "deploymentStatus": "Running",
        "endpoint": "127.0.0.9:8080",
        "incarnation": "u1",
        "tables": ["t"],
        "views": ["v"],
        "connectors": [
            {"name": "in", "endpointName": "t.in", "direction": "input"},
        ],
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Running",
                "lastTransitionTime": "2026-01-01T00:00:05Z",
            }
        ],
    }
    kube.create(doc, namespace="team")
    kube.create(pipeline_doc("other"), namespace="elsewhere")
    directory = KubernetesDirectory(kube, frozenset({"team"}))
    await directory.start()
    try:
        calls = len(kube.calls)
        entry = directory.get("team", "orders")
        assert entry is not None
        assert entry.deployment_status == "Running"
        assert entry.location == "127.0.0.9:8080"
        assert entry.incarnation == "u1"
        assert entry.tables == ("t",)
        assert entry.connectors[0].endpoint_name == "t.in"
        assert entry.connectors[0].relation == "t"
        assert entry.status_since == "2026-01-01T00:00:05Z"
        assert entry.is_interactive
        assert directory.get("elsewhere", "other") is None
        assert [e.name for e in directory.list("team")] == ["orders"]
        assert len(kube.calls) == calls, "lookups must not call the API server"

        # The pod's own IP wins as soon as it is known.
        revision = directory.revision
        kube.set_object(_pod("Running", "127.0.0.10"))
        revision = await _settle(directory, revision)
        entry = directory.get("team", "orders")
        assert entry is not None
        assert entry.location == "127.0.0.10:8080"
        kube.set_object(_pod("Pending", None))
        await _settle(directory, revision)
        entry = directory.get("team", "orders")
        assert entry is not None
        assert entry.location is None
    finally:
        await directory.close()


async def test_set_desired_state_patches_the_spec() -> None:
    kube = FakeKube()
    kube.create(pipeline_doc(), namespace="team")
    directory = KubernetesDirectory(kube, None)
    await directory.start()
    try:
        assert directory.namespaces() == frozenset({"team"})
        revision = directory.revision
        await directory.set_desired_state("team", "orders", "Paused")
        stored = kube.find("Pipeline", "team", "orders")
        assert stored is not None
        assert stored["spec"]["desiredState"] == "Paused"
        await _settle(directory, revision)
        entry = directory.get("team", "orders")
        assert entry is not None
        assert entry.desired_status == "Paused"
        assert entry.version == 2
    finally:
        await directory.close()


async def test_set_desired_state_of_a_missing_pipeline_is_unknown_pipeline() -> None:
    from sluice.core.errors import ApiError

    kube = FakeKube()
    directory = KubernetesDirectory(kube, frozenset({"team"}))
    await directory.start()
    try:
        with pytest.raises(ApiError) as refused:
            await directory.set_desired_state("team", "nope", "Running")
        assert refused.value.error_code == "UnknownPipelineName"
    finally:
        await directory.close()


async def test_new_pipeline_without_status_is_provisioning() -> None:
    kube = FakeKube()
    directory = KubernetesDirectory(kube, frozenset({"team"}))
    await directory.start()
    try:
        revision = directory.revision
        kube.create(pipeline_doc(), namespace="team")
        await _settle(directory, revision)
        entry = directory.get("team", "orders")
        assert entry is not None
        assert (entry.deployment_status, entry.location) == ("Provisioning", None)
    finally:
        await directory.close()
