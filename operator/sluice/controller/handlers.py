"""Layer 3 (controller): kopf handlers — a routing table from watch events to the work queue.

Every handler records the event in the store and queues the objects it concerns; the
reconcilers do the rest. Handlers return None, so kopf writes nothing into status, and
only event-watching handlers are used, so kopf adds no finalizers and no annotations.
"""

from __future__ import annotations

from typing import Any

import kopf

from sluice.controller.deps import Deps
from sluice.core import naming
from sluice.models.resources import GROUP, VERSION

registry = kopf.OperatorRegistry()

OURS = {naming.LABEL_MANAGED_BY: naming.MANAGER}


def route(memo: kopf.Memo, kind: str, event: kopf.RawEvent) -> None:
    """Record the event and queue every object it concerns."""
    deps: Deps = memo.deps
    body = dict(event["object"])
    for key in deps.store.record(kind, event.get("type") or "ADDED", body):
        deps.queue.add(key)


@kopf.on.event(GROUP, VERSION, "pipelines", registry=registry)
async def pipeline_changed(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    route(memo, "Pipeline", event)


@kopf.on.event(GROUP, VERSION, "connectors", registry=registry)
async def connector_changed(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    route(memo, "Connector", event)


@kopf.on.event(GROUP, VERSION, "completiontokens", registry=registry)
async def completion_token_changed(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    route(memo, "CompletionToken", event)


@kopf.on.event("apps", "v1", "statefulsets", labels=OURS, registry=registry)
async def stateful_set_changed(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    route(memo, "StatefulSet", event)


@kopf.on.event("", "v1", "pods", labels=OURS, registry=registry)
async def pod_changed(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    route(memo, "Pod", event)


@kopf.on.event("", "v1", "services", labels=OURS, registry=registry)
async def service_changed(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    route(memo, "Service", event)


@kopf.on.event("", "v1", "persistentvolumeclaims", labels=OURS, registry=registry)
async def claim_changed(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    route(memo, "PersistentVolumeClaim", event)


@kopf.on.event("", "v1", "configmaps", registry=registry)
async def config_map_changed(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    # Unfiltered: a ConfigMap a Pipeline reads its SQL from is not labelled by us.
    route(memo, "ConfigMap", event)
