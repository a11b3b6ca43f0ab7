"""Layer 3 (controller): the only place status is written and Events are posted.

A status is written only when it differs from the stored one in something other than
timestamps, as one merge patch that carries `observedGeneration` with the conditions it
describes; fields that disappeared are sent as null so the patch removes them.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from pydantic import BaseModel

from sluice.controller.deps import Deps
from sluice.core import conditions
from sluice.k8s.api import KINDS, KubeApiError

logger = logging.getLogger(__name__)

REPORTING_COMPONENT = "sluice.dev/operator"


async def write_status(deps: Deps, body: dict[str, Any], new: BaseModel) -> bool:
    """Patch the object's status if it changed; returns whether a write happened."""
    kind = str(body["kind"])
    metadata = body["metadata"]
    namespace, name = str(metadata["namespace"]), str(metadata["name"])
    old = body.get("status") or None
    document = new.model_dump(by_alias=True, mode="json", exclude_none=True)
    if not conditions.status_differs(old, document):
        return False
    patch: dict[str, Any] = dict(document)
    for key in old or {}:
        patch.setdefault(key, None)
    await deps.kube.patch_status(KINDS[kind], namespace, name, patch)
    deps.status_writes += 1
    deps.store.set_status(kind, namespace, name, document)
    return True


async def post_event(
    deps: Deps, body: dict[str, Any], reason: str, message: str, *, warning: bool = False
) -> None:
    """Record a Kubernetes Event about the object (failures are logged, never raised)."""
    metadata = body["metadata"]
    now = deps.now()
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "generateName": f"{metadata['name']}.",
            "namespace": metadata["namespace"],
        },
        "involvedObject": {
            "apiVersion": body.get("apiVersion"),
            "kind": body.get("kind"),
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "uid": metadata.get("uid"),
        },
        "reason": conditions.sanitize_reason(reason),
        "message": conditions.truncate_message(message),
        "type": "Warning" if warning else "Normal",
        "source": {"component": "sluice-operator"},
        "reportingComponent": REPORTING_COMPONENT,
        "reportingInstance": os.environ.get("HOSTNAME", "sluice-operator"),
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        await deps.kube.create_event(event)
    except KubeApiError as error:
        logger.warning("could not post event %s for %s: %s", reason, metadata["name"], error)
