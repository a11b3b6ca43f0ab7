"""Layer 2 (k8s): the small surface Sluice needs from the Kubernetes API, as a protocol.

Everything that talks to the API server goes through a `KubeApi`: the real one
(`sluice.k8s.client.HttpKubeApi`) or an in-memory fake in tests. Objects are plain JSON
dicts; `Kind` says where a kind lives.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from sluice.models.resources import API_VERSION

FIELD_MANAGER = "sluice"


@dataclass(frozen=True)
class Kind:
    """A namespaced resource kind and its REST path."""

    api_version: str
    kind: str
    plural: str

    def path(
        self,
        namespace: str | None,
        name: str | None = None,
        subresource: str | None = None,
    ) -> str:
        """The REST path of the collection (namespace None: every namespace) or one object."""
        root = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        parts = [root]
        if namespace is not None:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name is not None:
            parts.append(name)
            if subresource is not None:
                parts.append(subresource)
        return "/".join(parts)


PIPELINE = Kind(API_VERSION, "Pipeline", "pipelines")
CONNECTOR = Kind(API_VERSION, "Connector", "connectors")
COMPLETION_TOKEN = Kind(API_VERSION, "CompletionToken", "completiontokens")
CONFIG_MAP = Kind("v1", "ConfigMap", "configmaps")
SERVICE = Kind("v1", "Service", "services")
POD = Kind("v1", "Pod", "pods")
PERSISTENT_VOLUME_CLAIM = Kind("v1", "PersistentVolumeClaim", "persistentvolumeclaims")
STATEFUL_SET = Kind("apps/v1", "StatefulSet", "statefulsets")
EVENT = Kind("v1", "Event", "events")

KINDS = {
    kind.kind: kind
    for kind in (
        PIPELINE,
        CONNECTOR,
        COMPLETION_TOKEN,
        CONFIG_MAP,
        SERVICE,
        POD,
        PERSISTENT_VOLUME_CLAIM,
        STATEFUL_SET,
        EVENT,
    )
}


def kind_of(manifest: dict[str, Any]) -> Kind:
    """The Kind of a manifest (only the kinds Sluice manages)."""
    return KINDS[str(manifest["kind"])]


@dataclass(frozen=True)
class WatchEvent:
    """One change seen by a watch: ADDED, MODIFIED, DELETED, or RESYNC after a relist."""

    type: Literal["ADDED", "MODIFIED", "DELETED"]
    object: dict[str, Any]


@dataclass(frozen=True)
class Page:
    """A list answer: the objects and the resourceVersion to watch from."""

    items: list[dict[str, Any]]
    resource_version: str


class KubeApiError(Exception):
    """The API server refused a request."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class WatchExpired(Exception):
    """The watch's resourceVersion is too old (410 Gone): relist."""


class KubeApi(Protocol):
    """The calls Sluice makes on the API server."""

    async def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        ...

    async def list(
        self, kind: Kind, namespace: str | None, label_selector: str | None = None
    ) -> Page:
        """Every object of a kind in a namespace (None: all namespaces)."""
        ...

    def watch(
        self,
        kind: Kind,
        namespace: str | None,
        resource_version: str,
        label_selector: str | None = None,
    ) -> AsyncIterator[WatchEvent]:
        """Changes after `resource_version`; raises WatchExpired when it is too old."""
        ...

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply with Sluice's field manager (conflicts forced: we own children)."""
        ...

    async def delete(self, kind: Kind, namespace: str, name: str) -> bool:
        """Delete (background propagation); False when it was already gone."""
        ...

    async def patch(
        self, kind: Kind, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any] | None:
        """JSON merge patch of the object; None when it does not exist."""
        ...

    async def patch_status(
        self, kind: Kind, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any] | None:
        """JSON merge patch of the status subresource; None when the object is gone."""
        ...

    async def create_event(self, event: dict[str, Any]) -> None:
        """Record a core/v1 Event."""
        ...
