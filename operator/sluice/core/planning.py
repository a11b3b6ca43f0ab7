"""Layer 1 (core, pure): decide what to change, from what should be and what is.

`plan_children` compares the desired children with the observed ones and returns the
server-side applies and deletes that converge them; a child that already holds every desired
field is left alone, so a quiet cluster sees no writes. `plan_runtime` picks the pipeline API
call (start or pause) that moves a running process to the desired state. PVCs are never
deleted here: user data only goes with the Pipeline, through garbage collection, when the
reclaim policy is Delete.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

ChildKey = tuple[str, str]
"""(kind, name) of a child in the Pipeline's namespace."""

MANAGED_KINDS = ("ConfigMap", "Service", "PersistentVolumeClaim", "StatefulSet")
NEVER_DELETED = frozenset({"PersistentVolumeClaim"})

_NORMALISED_BY_SERVER = frozenset({"resources"})
"""Fields whose values the API server rewrites (quantities): compared only for presence."""


@dataclass(frozen=True)
class Apply:
    """Server-side apply this manifest."""

    manifest: dict[str, Any]

    @property
    def key(self) -> ChildKey:
        return (str(self.manifest["kind"]), str(self.manifest["metadata"]["name"]))


@dataclass(frozen=True)
class Delete:
    """Delete this child."""

    api_version: str
    kind: str
    name: str


Action = Apply | Delete
RuntimeCall = Literal["start", "pause"]


def child_key(manifest: Mapping[str, Any]) -> ChildKey:
    """The (kind, name) of a manifest."""
    return (str(manifest["kind"]), str(manifest["metadata"]["name"]))


def holds(desired: Any, observed: Any) -> bool:
    """Whether `observed` carries every field and value of `desired` (extra fields allowed)."""
    if isinstance(desired, Mapping):
        if not isinstance(observed, Mapping):
            return False
        for key, value in desired.items():
            if key not in observed:
                return False
            if key in _NORMALISED_BY_SERVER:
                continue
            if not holds(value, observed[key]):
                return False
        return True
    if isinstance(desired, list):
        if not isinstance(observed, list) or len(desired) != len(observed):
            return False
        return all(holds(want, have) for want, have in zip(desired, observed, strict=True))
    if isinstance(desired, bool) or isinstance(observed, bool):
        return bool(desired == observed)
    if isinstance(desired, int | float | str) and isinstance(observed, int | float | str):
        # The server returns some numbers as strings and vice versa (ports, quantities).
        return str(desired) == str(observed)
    return bool(desired == observed)


def plan_children(
    desired: list[dict[str, Any]], observed: Mapping[ChildKey, Mapping[str, Any]]
) -> list[Action]:
    """Applies for missing or drifted children, then deletes for children no longer wanted."""
    actions: list[Action] = []
    wanted = set()
    for manifest in desired:
        key = child_key(manifest)
        wanted.add(key)
        current = observed.get(key)
        if current is None or not holds(manifest, current):
            actions.append(Apply(manifest))
    for key, current in sorted(observed.items()):
        kind, name = key
        if key in wanted or kind in NEVER_DELETED or kind not in MANAGED_KINDS:
            continue
        if current.get("metadata", {}).get("deletionTimestamp"):
            continue
        actions.append(Delete(str(current.get("apiVersion", "v1")), kind, name))
    return actions


def plan_runtime(
    desired_state: str, runtime_status: str | None, runtime_desired_status: str | None
) -> RuntimeCall | None:
    """The pipeline API call that moves the process towards `desired_state`, if any."""
    if runtime_status is None or desired_state not in ("Running", "Paused"):
        return None
    heading_to = runtime_desired_status or runtime_status
    if heading_to == desired_state:
        return None
    return "start" if desired_state == "Running" else "pause"
