"""An in-memory KubeApi for component tests (the real API server is exercised in tests/e2e).

It keeps objects per kind, bumps resourceVersion on every write and generation on spec
changes, treats server-side apply as "merge the manifest into the object", keeps status
writes separate from the rest, and feeds watches from a change log.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import uuid
from collections.abc import AsyncIterator
from typing import Any

from sluice.k8s.api import Kind, Page, WatchEvent, kind_of


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _matches(obj: dict[str, Any], selector: str | None) -> bool:
    if not selector:
        return True
    labels = obj.get("metadata", {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in (part.split("=", 1) for part in selector.split(",")))


class FakeKube:
    """Objects by (kind, namespace, name), with a watchable change log."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.log: list[tuple[int, str, dict[str, Any]]] = []
        self.versions = itertools.count(1)
        self.changed = asyncio.Event()
        self.calls: list[tuple[str, str, str]] = []
        self.events: list[dict[str, Any]] = []

    # -- helpers for tests ----------------------------------------------------------------

    def _write(self, event: str, obj: dict[str, Any]) -> dict[str, Any]:
        version = next(self.versions)
        obj["metadata"]["resourceVersion"] = str(version)
        self.log.append((version, event, copy.deepcopy(obj)))
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()
        return copy.deepcopy(obj)

    def create(self, obj: dict[str, Any], namespace: str = "default") -> dict[str, Any]:
        """Create an object as a user would (kubectl apply of a new object)."""
        obj = copy.deepcopy(obj)
        metadata = obj.setdefault("metadata", {})
        metadata.setdefault("namespace", namespace)
        metadata.setdefault("uid", str(uuid.uuid4()))
        metadata.setdefault("generation", 1)
        metadata.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        key = (obj["kind"], metadata["namespace"], metadata["name"])
        self.objects[key] = obj
        return self._write("ADDED", obj)

    def update_spec(self, kind: str, namespace: str, name: str, spec: dict[str, Any]) -> None:
        """A user edit of the spec: bumps the generation."""
        obj = self.objects[(kind, namespace, name)]
        obj["spec"] = _merge(obj.get("spec") or {}, spec)
        obj["metadata"]["generation"] = int(obj["metadata"].get("generation", 1)) + 1
        self._write("MODIFIED", obj)

    def set_object(self, obj: dict[str, Any]) -> None:
        """Replace an object wholesale (what another controller or the kubelet would do)."""
        metadata = obj["metadata"]
        key = (obj["kind"], metadata["namespace"], metadata["name"])
        event = "MODIFIED" if key in self.objects else "ADDED"
        self.objects[key] = copy.deepcopy(obj)
        self._write(event, self.objects[key])

    def remove(self, kind: str, namespace: str, name: str) -> None:
        obj = self.objects.pop((kind, namespace, name), None)
        if obj is not None:
            self._write("DELETED", obj)

    def find(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.objects.get((kind, namespace, name)))

    def status_of(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        """The object's status ({} when it has none or does not exist)."""
        return dict((self.objects.get((kind, namespace, name)) or {}).get("status") or {})

    def count(self, verb: str) -> int:
        return sum(1 for call in self.calls if call[0] == verb)

    # -- KubeApi --------------------------------------------------------------------------

    async def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append(("get", kind.kind, name))
        return self.find(kind.kind, namespace, name)

    async def list(
        self, kind: Kind, namespace: str | None, label_selector: str | None = None
    ) -> Page:
        self.calls.append(("list", kind.kind, namespace or ""))
        items = [
            copy.deepcopy(obj)
            for (k, ns, _), obj in sorted(self.objects.items())
            if k == kind.kind and namespace in (None, ns) and _matches(obj, label_selector)
        ]
        return Page(items, str(len(self.log)))

    async def watch(
        self,
        kind: Kind,
        namespace: str | None,
        resource_version: str,
        label_selector: str | None = None,
    ) -> AsyncIterator[WatchEvent]:
        position = int(resource_version or 0)
        while True:
            for version, event, obj in self.log[position:]:
                position = version
                metadata = obj["metadata"]
                if (
                    obj["kind"] == kind.kind
                    and namespace in (None, metadata["namespace"])
                    and _matches(obj, label_selector)
                ):
                    yield WatchEvent(event, copy.deepcopy(obj))  # type: ignore[arg-type]
            await self.changed.wait()

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        metadata = manifest["metadata"]
        self.calls.append(("apply", manifest["kind"], metadata["name"]))
        key = (manifest["kind"], metadata["namespace"], metadata["name"])
        current = self.objects.get(key)
        if current is None:
            obj = copy.deepcopy(manifest)
            obj["metadata"]["uid"] = str(uuid.uuid4())
            obj["metadata"]["generation"] = 1
            self.objects[key] = obj
            return self._write("ADDED", obj)
        merged = _merge(current, {k: v for k, v in manifest.items() if k != "status"})
        if merged == current:
            return copy.deepcopy(current)
        if merged.get("spec") != current.get("spec"):
            merged["metadata"]["generation"] = int(current["metadata"].get("generation", 1)) + 1
        self.objects[key] = merged
        return self._write("MODIFIED", merged)

    async def delete(self, kind: Kind, namespace: str, name: str) -> bool:
        self.calls.append(("delete", kind.kind, name))
        if (kind.kind, namespace, name) not in self.objects:
            return False
        self.remove(kind.kind, namespace, name)
        return True

    async def patch(
        self, kind: Kind, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any] | None:
        self.calls.append(("patch", kind.kind, name))
        current = self.objects.get((kind.kind, namespace, name))
        if current is None:
            return None
        merged = _merge(current, patch)
        if merged.get("spec") != current.get("spec"):
            merged["metadata"]["generation"] = int(current["metadata"].get("generation", 1)) + 1
        self.objects[(kind.kind, namespace, name)] = merged
        return self._write("MODIFIED", merged)

    async def patch_status(
        self, kind: Kind, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any] | None:
        self.calls.append(("patch_status", kind.kind, name))
        current = self.objects.get((kind.kind, namespace, name))
        if current is None:
            return None
        current["status"] = _merge(current.get("status") or {}, status)
        return self._write("MODIFIED", current)

    async def create_event(self, event: dict[str, Any]) -> None:
        self.calls.append(("event", event["involvedObject"]["kind"], event["reason"]))
        self.events.append(event)


def kind_for(manifest: dict[str, Any]) -> Kind:
    return kind_of(manifest)
