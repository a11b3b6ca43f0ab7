"""Layer 3 (controller): the operator's in-memory picture of the cluster, fed by kopf's watches.

Reconcilers read Pipelines, Connectors, CompletionTokens and the children from here, never
from the API server, so a reconcile of a quiet object costs no request. `record` also says
which objects a change concerns (a Connector change concerns its Pipeline, a pod change
concerns the Pipeline it runs), which is how events turn into work.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Literal

from sluice.core import naming

WorkKind = Literal["Pipeline", "Connector", "CompletionToken"]
WorkKey = tuple[WorkKind, str, str]
"""(kind, namespace, name) of an object to reconcile."""

CHILD_KINDS = frozenset({"ConfigMap", "Service", "StatefulSet", "PersistentVolumeClaim", "Pod"})


def _meta(body: dict[str, Any]) -> tuple[str, str]:
    metadata = body.get("metadata") or {}
    return str(metadata.get("namespace", "")), str(metadata.get("name", ""))


def _pipeline_ref(body: dict[str, Any]) -> str | None:
    ref = (body.get("spec") or {}).get("pipelineRef") or {}
    name = ref.get("name")
    return str(name) if name else None


def _owning_pipeline(body: dict[str, Any]) -> str | None:
    labels = (body.get("metadata") or {}).get("labels") or {}
    if labels.get(naming.LABEL_MANAGED_BY) != naming.MANAGER:
        return None
    value = labels.get(naming.LABEL_PIPELINE)
    return str(value) if value else None


def _only_status_changed(before: dict[str, Any] | None, after: dict[str, Any]) -> bool:
    """Whether the object differs from what was stored only in its status (or not at all)."""
    if before is None:
        return False
    old, new = before.get("metadata") or {}, after.get("metadata") or {}
    return (
        old.get("generation") == new.get("generation")
        and old.get("deletionTimestamp") == new.get("deletionTimestamp")
        and old.get("labels") == new.get("labels")
        and before.get("spec") == after.get("spec")
    )


class Store:
    """Objects by kind and (namespace, name), with the indexes reconcilers need."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = defaultdict(dict)
        self._by_pipeline: dict[str, dict[tuple[str, str], set[str]]] = defaultdict(
            lambda: defaultdict(set)
        )
        """kind -> (namespace, pipeline) -> names of Connectors, tokens and children."""
        self._owner: dict[str, dict[tuple[str, str], str]] = defaultdict(dict)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object as last seen, or None."""
        return self.objects[kind].get((namespace, name))

    def related(self, kind: str, namespace: str, pipeline: str) -> list[dict[str, Any]]:
        """Objects of `kind` that belong to the pipeline, sorted by name."""
        names = sorted(self._by_pipeline[kind].get((namespace, pipeline), ()))
        found = (self.objects[kind].get((namespace, name)) for name in names)
        return [body for body in found if body is not None]

    def children(self, namespace: str, pipeline: str) -> dict[tuple[str, str], dict[str, Any]]:
        """The pipeline's children by (kind, name), pods excluded."""
        return {
            (kind, str(body["metadata"]["name"])): body
            for kind in sorted(CHILD_KINDS - {"Pod"})
            for body in self.related(kind, namespace, pipeline)
        }

    def pipelines_reading(self, namespace: str, config_map: str) -> list[str]:
        """Pipelines whose SQL comes from this ConfigMap."""
        return sorted(
            name
            for (pipeline_namespace, name), body in self.objects["Pipeline"].items()
            if pipeline_namespace == namespace
            and ((body.get("spec") or {}).get("sqlFrom") or {})
            .get("configMapKeyRef", {})
            .get("name")
            == config_map
        )

    def record(self, kind: str, event_type: str, body: dict[str, Any]) -> list[WorkKey]:
        """Take in a watch event; returns the objects it concerns."""
        namespace, name = _meta(body)
        deleted = event_type == "DELETED"
        if kind in ("Pipeline", "Connector", "CompletionToken"):
            pipeline = name if kind == "Pipeline" else _pipeline_ref(body)
        elif kind in CHILD_KINDS:
            pipeline = _owning_pipeline(body)
            if pipeline is None:
                # Not ours: only a ConfigMap a Pipeline reads its SQL from matters.
                readers = self.pipelines_reading(namespace, name) if kind == "ConfigMap" else []
                if readers and not deleted:
                    self.objects[kind][(namespace, name)] = body
                elif deleted:
                    self.objects[kind].pop((namespace, name), None)
                return [("Pipeline", namespace, reader) for reader in readers]
        else:
            return []
        before = self.objects[kind].get((namespace, name))
        if deleted:
            self.objects[kind].pop((namespace, name), None)
        else:
            self.objects[kind][(namespace, name)] = body
        if kind != "Pipeline":
            self._unlink(kind, namespace, name)
            if not deleted and pipeline is not None:
                self._by_pipeline[kind][(namespace, pipeline)].add(name)
                self._owner[kind][(namespace, name)] = pipeline
        keys: list[WorkKey] = []
        # Our own status writes come back as events: they must not wake the writer again
        # (or a flowing pipeline would write its figures in a tight loop), only dependants.
        own_change = kind in CHILD_KINDS or deleted or not _only_status_changed(before, body)
        if own_change and kind in ("Connector", "CompletionToken"):
            keys.append((kind, namespace, name))  # type: ignore[arg-type]
        if own_change and pipeline is not None and kind != "CompletionToken":
            keys.append(("Pipeline", namespace, pipeline))
        if kind == "Pipeline":
            for related_kind in ("Connector", "CompletionToken"):
                keys += [
                    (related_kind, namespace, str(body["metadata"]["name"]))
                    for body in self.related(related_kind, namespace, name)
                ]
        return keys

    def _unlink(self, kind: str, namespace: str, name: str) -> None:
        previous = self._owner[kind].pop((namespace, name), None)
        if previous is not None:
            self._by_pipeline[kind][(namespace, previous)].discard(name)

    def set_status(self, kind: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Remember a status just written, before its watch event arrives."""
        body = self.get(kind, namespace, name)
        if body is not None:
            self.objects[kind][(namespace, name)] = {**body, "status": status}
