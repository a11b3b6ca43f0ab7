"""How kstatus (Flux, Helm 4, kubectl wait) and our Argo CD health script read a status.

A faithful re-statement of cli-utils' generic rules, used to check that every computed
status reads as intended by the tools our users run.
"""

from __future__ import annotations

from typing import Any


def kstatus(generation: int, status: dict[str, Any] | None, deleting: bool = False) -> str:
    """Terminating, InProgress, Failed or Current, per pkg/kstatus generic rules."""
    if deleting:
        return "Terminating"
    status = status or {}
    observed = status.get("observedGeneration")
    if observed is not None and observed != generation:
        return "InProgress"
    for condition in status.get("conditions", []):
        if condition["type"] == "Reconciling" and condition["status"] == "True":
            return "InProgress"
        if condition["type"] == "Stalled" and condition["status"] == "True":
            return "Failed"
    for condition in status.get("conditions", []):
        if condition["type"] == "Ready":
            return "Current" if condition["status"] == "True" else "InProgress"
    return "Current"


def argo_health(generation: int, status: dict[str, Any] | None) -> str:
    """The logic of the Argo CD health script shipped with the chart."""
    if not status or status.get("observedGeneration") != generation:
        return "Progressing"
    by_type = {condition["type"]: condition for condition in status.get("conditions", [])}

    def true(type_: str) -> bool:
        return bool(by_type.get(type_, {}).get("status") == "True")

    if true("Stalled"):
        return "Degraded"
    if true("AwaitingApproval"):
        return "Suspended"
    if true("Reconciling"):
        return "Progressing"
    if true("Ready"):
        return "Healthy"
    if by_type.get("Ready", {}).get("status") == "False":
        return "Degraded"
    return "Progressing"
