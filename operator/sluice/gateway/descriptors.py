"""Layer 3 (gateway): Feldera pipeline descriptors built from directory entries.

The SDK's `Pipeline.get` and `.status()` read these: `name`, `program_code`,
`deployment_status` and `deployment_desired_status` (Feldera's names), `deployment_location`,
`deployment_error`, `program_info.schema`, and the timestamps. `selector=status` leaves out
the program and its schema, as Feldera does.
"""

from __future__ import annotations

import uuid
from typing import Any

from sluice.core.directory import PipelineEntry

SELECTORS = ("all", "status")
RESOURCE_STATES = ("Stopped", "Provisioning", "Stopping")
PROGRAM_FIELDS = ("program_code", "udf_rust", "udf_toml", "program_info", "program_config")
_ID_NAMESPACE = uuid.UUID("5c1d7a4e-6b55-4c8f-9a53-2f1c1e0b7a10")


def resources_status(entry: PipelineEntry) -> str:
    """Feldera's ResourcesStatus: Stopped, Provisioning, Provisioned or Stopping."""
    if entry.deployment_status in RESOURCE_STATES:
        return entry.deployment_status
    return "Provisioned" if entry.location is not None else "Provisioning"


def resources_desired_status(entry: PipelineEntry) -> str:
    """Feldera's ResourcesDesiredStatus: Stopped or Provisioned."""
    return "Stopped" if entry.desired_status == "Stopped" else "Provisioned"


def pipeline_id(entry: PipelineEntry) -> str:
    """A stable UUID per (namespace, name), as Feldera gives every pipeline an id."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{entry.namespace}/{entry.name}"))


def fallback_schema(entry: PipelineEntry) -> dict[str, Any]:
    """Relation names without columns, for a pipeline whose process cannot be asked."""

    def relation(name: str) -> dict[str, Any]:
        return {"name": name, "case_sensitive": False, "materialized": False, "fields": []}

    return {
        "inputs": [relation(name) for name in entry.tables],
        "outputs": [relation(name) for name in entry.views],
    }


def build_descriptor(
    entry: PipelineEntry,
    *,
    selector: str,
    platform_version: str,
    metadata: dict[str, Any] | None,
) -> dict[str, Any]:
    """The Feldera pipeline descriptor of one entry (`metadata` is the pod's /metadata)."""
    resources = resources_status(entry)
    runtime_status = entry.deployment_status if resources == "Provisioned" else None
    since = entry.status_since or entry.created_at
    schema = (metadata or {}).get("schema") or fallback_schema(entry)
    connectors = (metadata or {}).get("connectors") or [
        {"name": c.name, "relation": c.relation, "direction": c.direction,
         "endpoint_name": c.endpoint_name}
        for c in entry.connectors
    ]  # fmt: skip
    descriptor: dict[str, Any] = {
        "id": pipeline_id(entry),
        "name": entry.name,
        "description": "",
        "tags": [],
        "created_at": entry.created_at,
        "version": entry.version,
        "refresh_version": entry.version,
        "platform_version": platform_version,
        "program_code": entry.program_code,
        "udf_rust": "",
        "udf_toml": "",
        "program_config": {},
        "program_version": entry.version,
        "program_status": "Success",
        "program_status_since": entry.created_at,
        "program_error": {"sql_compilation": None, "rust_compilation": None, "system_error": None},
        "program_info": {
            "schema": schema,
            "input_connectors": {
                c["endpoint_name"]: {"name": c["name"], "stream": c["relation"]}
                for c in connectors
                if c.get("direction") == "input"
            },
            "output_connectors": {
                c["endpoint_name"]: {"name": c["name"], "stream": c["relation"]}
                for c in connectors
                if c.get("direction") == "output"
            },
        },
        "deployment_status": entry.deployment_status,
        "deployment_status_since": since,
        "deployment_desired_status": entry.desired_status,
        "deployment_desired_status_since": since,
        "deployment_resources_status": resources,
        "deployment_resources_status_since": since,
        "deployment_resources_desired_status": resources_desired_status(entry),
        "deployment_resources_desired_status_since": since,
        "deployment_runtime_status": runtime_status,
        "deployment_runtime_status_since": since if runtime_status else None,
        "deployment_runtime_desired_status": (
            entry.desired_status if entry.desired_status != "Stopped" else None
        ),
        "deployment_runtime_desired_status_since": since,
        "deployment_runtime_status_details": None,
        "deployment_error": entry.deployment_error,
        "deployment_location": entry.location,
        "deployment_id": entry.incarnation,
        "deployment_initial": None,
        "deployment_config": None,
        "storage_status": "InUse" if entry.location is not None else "Cleared",
        "runtime_config": {"workers": 1},
    }
    if selector == "status":
        for key in PROGRAM_FIELDS:
            descriptor.pop(key)
    return descriptor
