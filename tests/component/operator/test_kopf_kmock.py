"""kopf itself, run with our registry and settings against kmock (an in-process API emulator).

This proves the wiring — login with our handler, discovery, namespace scoping, event
routing into the store and the work queue, clean stop — not the reconcile (kmock has no
server-side apply or status subresource; tests/e2e covers those on a real API server).
Workarounds from kmock's limits: resources are declared for discovery, CRD scanning is off.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import kopf
import pytest
import yaml

from sluice.controller import lifecycle
from sluice.controller.deps import Deps
from sluice.controller.handlers import registry
from sluice.controller.observe import Observer
from sluice.models.settings import OperatorSettings
from sluice.process.client import ProcessClient
from tests.component.operator.fake_kube import FakeKube
from tests.factories import pipeline_doc

RESOURCES = {
    "sluice.dev/v1alpha1/pipelines": "Pipeline",
    "sluice.dev/v1alpha1/connectors": "Connector",
    "sluice.dev/v1alpha1/completiontokens": "CompletionToken",
    "apps/v1/statefulsets": "StatefulSet",
    "v1/pods": "Pod",
    "v1/services": "Service",
    "v1/persistentvolumeclaims": "PersistentVolumeClaim",
    "v1/configmaps": "ConfigMap",
    "v1/events": "Event",
}


async def test_kopf_routes_watch_events_into_the_store(
    kmock: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for path, kind in RESOURCES.items():
        kmock.resources[path] = kmock.ResourceInfo(
            namespaced=True, kind=kind, verbs={"list", "watch", "get", "patch", "create"}
        )
    kmock.resources["v1/namespaces"] = kmock.ResourceInfo(
        namespaced=False, kind="Namespace", verbs={"list", "watch"}
    )
    body = pipeline_doc()
    body["metadata"].update(namespace="team", resourceVersion="1", uid="u1", generation=1)
    kmock.objects["sluice.dev/v1alpha1/pipelines", "team", "orders"] = body
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "kmock", "cluster": {"server": str(kmock.url).rstrip("/")}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "c", "context": {"cluster": "kmock", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    # The kubernetes package reads KUBECONFIG once, at import.
    from kubernetes.config import kube_config

    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    settings = OperatorSettings(namespaces=("team",), liveness_endpoint=None, workers=1)
    async with aiohttp.ClientSession() as session:
        process = ProcessClient(session)
        deps = Deps(
            settings=settings,
            kube=FakeKube(),  # reconciles write nowhere; only the routing is under test
            process=process,
            observer=Observer(process, session),
        )
        stop = asyncio.Event()
        operator = asyncio.create_task(
            kopf.operator(
                registry=registry,
                settings=lifecycle.kopf_settings(),
                standalone=True,
                namespaces=["team"],
                memo=kopf.Memo(settings=settings, deps=deps),
                stop_flag=stop,
            )
        )
        try:
            for _ in range(200):
                if deps.store.get("Pipeline", "team", "orders") is not None:
                    break
                await asyncio.sleep(0.05)
            assert deps.store.get("Pipeline", "team", "orders") is not None
        finally:
            stop.set()
            await asyncio.wait_for(operator, 20)
    # kopf wrote nothing on our resource: no finalizer, no annotations, no status.
    stored = dict(kmock.objects["sluice.dev/v1alpha1/pipelines", "team", "orders"])
    assert "finalizers" not in stored["metadata"]
    assert "annotations" not in stored["metadata"]
    assert "status" not in stored
