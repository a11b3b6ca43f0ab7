"""Layer 2 (k8s): `KubernetesDirectory`, the gateway's watch-fed view of Pipelines and pods.

Two informers per watched namespace (or one each for all namespaces) keep Pipelines and the
pipeline pods in memory; `get`/`list` build `PipelineEntry`s from them without any API call.
The pod's own IP and readiness give the location as soon as the pod moves, before the
operator's next status write. `set_desired_state` patches `spec.desiredState`, keeping the
resource the source of truth.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from sluice.core import errors, naming
from sluice.core.directory import ConnectorEntry, DesiredState, PipelineEntry
from sluice.k8s.api import PIPELINE, POD, KubeApi, WatchEvent
from sluice.k8s.informer import Informer
from sluice.models.settings import RUNTIME_PORT

POD_SELECTOR = f"{naming.LABEL_MANAGED_BY}={naming.MANAGER},{naming.LABEL_COMPONENT}=pipeline"


def _pod_location(pod: dict[str, Any] | None) -> str | None:
    if pod is None or pod.get("metadata", {}).get("deletionTimestamp"):
        return None
    status = pod.get("status") or {}
    ip = status.get("podIP")
    if not ip or status.get("phase") != "Running":
        return None
    return f"{ip}:{RUNTIME_PORT}"


def _condition(status: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == type_:
            return cast(dict[str, Any], condition)
    return None


def build_entry(pipeline: dict[str, Any], pod: dict[str, Any] | None) -> PipelineEntry:
    """The gateway's entry for a Pipeline object and its pod (if any)."""
    metadata = pipeline.get("metadata") or {}
    spec = pipeline.get("spec") or {}
    status = pipeline.get("status") or {}
    desired: DesiredState = spec.get("desiredState") or "Running"
    deployment = status.get("deploymentStatus") or (
        "Stopped" if desired == "Stopped" else "Provisioning"
    )
    location = None
    if deployment not in ("Stopped", "Provisioning"):
        location = _pod_location(pod) if pod is not None else status.get("endpoint")
    ready = _condition(status, "Ready")
    error = status.get("lastError")
    deployment_error = None
    if error and (ready is None or ready.get("status") != "True"):
        deployment_error = {
            "message": error.get("message", ""),
            "error_code": error.get("reason", "PipelineError"),
            "details": None,
        }
    connectors = tuple(
        ConnectorEntry(
            name=str(summary.get("name")),
            relation=str(summary.get("endpointName", "")).rsplit(".", 1)[0],
            direction=summary.get("direction", "input"),
            endpoint_name=str(summary.get("endpointName", "")),
        )
        for summary in status.get("connectors") or []
    )
    return PipelineEntry(
        namespace=str(metadata.get("namespace", "")),
        name=str(metadata.get("name", "")),
        program_code=str(spec.get("sql") or ""),
        deployment_status=str(deployment),
        desired_status=desired,
        location=location,
        incarnation=status.get("incarnation"),
        deployment_error=deployment_error,
        tables=tuple(status.get("tables") or ()),
        views=tuple(status.get("views") or ()),
        connectors=connectors,
        created_at=metadata.get("creationTimestamp"),
        status_since=ready.get("lastTransitionTime") if ready else None,
        version=int(metadata.get("generation") or 1),
        labels=dict(metadata.get("labels") or {}),
    )


class KubernetesDirectory:
    """A PipelineDirectory fed by watches of Pipelines and pipeline pods."""

    def __init__(self, api: KubeApi, namespaces: frozenset[str] | None) -> None:
        """`namespaces` None watches every namespace."""
        self.api = api
        self._namespaces = namespaces
        self._revision = 0
        self._changed = asyncio.Event()
        scopes: list[str | None] = [None]
        if namespaces is not None:
            scopes = [*sorted(namespaces)]
        self._pipelines = [
            Informer(api, PIPELINE, scope, listener=self._on_change) for scope in scopes
        ]
        self._pods = [
            Informer(api, POD, scope, label_selector=POD_SELECTOR, listener=self._on_change)
            for scope in scopes
        ]

    async def start(self, sync_timeout: float = 30.0) -> None:
        """Start the watches and wait until the first lists arrived."""
        informers = self._pipelines + self._pods
        for informer in informers:
            informer.start()
        await asyncio.wait_for(
            asyncio.gather(*(informer.synced.wait() for informer in informers)), sync_timeout
        )

    async def close(self) -> None:
        """Stop the watches."""
        for informer in self._pipelines + self._pods:
            await informer.close()

    def _on_change(self, event: WatchEvent) -> None:
        del event
        self._revision += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _pod_of(self, namespace: str, name: str) -> dict[str, Any] | None:
        pod_name = f"{naming.pipeline_child_name(name)}-0"
        for informer in self._pods:
            pod = informer.cache.get((namespace, pod_name))
            if pod is not None:
                return pod
        return None

    def namespaces(self) -> frozenset[str]:
        if self._namespaces is not None:
            return self._namespaces
        return frozenset(
            namespace for informer in self._pipelines for namespace, _ in informer.cache
        )

    def get(self, namespace: str, name: str) -> PipelineEntry | None:
        for informer in self._pipelines:
            pipeline = informer.cache.get((namespace, name))
            if pipeline is not None:
                return build_entry(pipeline, self._pod_of(namespace, name))
        return None

    def list(self, namespace: str) -> list[PipelineEntry]:
        entries = [
            build_entry(pipeline, self._pod_of(namespace, name))
            for informer in self._pipelines
            for (pipeline_namespace, name), pipeline in informer.cache.items()
            if pipeline_namespace == namespace
        ]
        return sorted(entries, key=lambda entry: entry.name)

    @property
    def revision(self) -> int:
        return self._revision

    async def wait_changed(self, since: int) -> int:
        while self._revision <= since:
            await self._changed.wait()
        return self._revision

    async def set_desired_state(self, namespace: str, name: str, state: DesiredState) -> None:
        patched = await self.api.patch(PIPELINE, namespace, name, {"spec": {"desiredState": state}})
        if patched is None:
            raise errors.unknown_pipeline(name)
