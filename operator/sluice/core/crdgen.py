"""Layer 1 (core, pure): CustomResourceDefinitions generated from the pydantic models.

`sluice crds` writes the result to `crds/`; a contract test fails when the committed YAML
drifts from the models. The JSON schema pydantic emits is made structural the way the API
server requires: `$ref` inlined, no `title`, no `additionalProperties: false` beside
`properties`, `int | str` as `x-kubernetes-int-or-string`, and optional fields simply left out
of `required` (not `nullable`, so an explicit null is pruned instead of stored).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from sluice.models import resources

Schema = dict[str, Any]

API_VERSION_TEXT = resources.API_VERSION
READY_STATUS = '.status.conditions[?(@.type=="Ready")].status'
READY_REASON = '.status.conditions[?(@.type=="Ready")].reason'
READY_MESSAGE = '.status.conditions[?(@.type=="Ready")].message'


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    json_path: str
    type: str = "string"
    priority: int = 0
    description: str = ""


@dataclass(frozen=True)
class ResourceKind:
    """What the CRD of one kind needs beyond the schema of its spec and status."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    description: str
    spec_model: type[BaseModel]
    status_model: type[BaseModel]
    columns: tuple[PrinterColumn, ...]
    root_rules: tuple[dict[str, str], ...] = field(default_factory=tuple)

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{resources.GROUP}"


def _ready_columns(feldera_column: PrinterColumn) -> tuple[PrinterColumn, ...]:
    return (
        PrinterColumn("Ready", READY_STATUS, description="Whether the desired state is reached"),
        PrinterColumn("Status", READY_REASON, description="Reason of the Ready condition"),
        feldera_column,
        PrinterColumn("Age", ".metadata.creationTimestamp", type="date"),
        PrinterColumn("Message", READY_MESSAGE, priority=1, description="Ready message"),
    )


KINDS: tuple[ResourceKind, ...] = (
    ResourceKind(
        kind="Pipeline",
        plural="pipelines",
        short_names=("pl", "slp"),
        description="A Feldera-compatible streaming SQL pipeline run by Sluice.",
        spec_model=resources.PipelineSpec,
        status_model=resources.PipelineStatus,
        columns=_ready_columns(
            PrinterColumn(
                "Deployment", ".status.deploymentStatus", description="Feldera deployment status"
            )
        ),
        root_rules=(
            {
                "rule": f"size(self.metadata.name) <= {resources.MAX_PIPELINE_NAME_CHARS}"
                " && !self.metadata.name.contains('.')",
                "message": "a pipeline name has at most "
                f"{resources.MAX_PIPELINE_NAME_CHARS} characters and no dots",
            },
        ),
    ),
    ResourceKind(
        kind="Connector",
        plural="connectors",
        short_names=("slc",),
        description="One input or output connector of a Sluice pipeline.",
        spec_model=resources.ConnectorSpec,
        status_model=resources.ConnectorStatus,
        columns=_ready_columns(
            PrinterColumn("State", ".status.connectorStatus", description="Connector state")
        ),
        root_rules=(
            {
                "rule": f"size(self.metadata.name) <= {resources.MAX_CONNECTOR_NAME_CHARS}"
                " && !self.metadata.name.contains('.')",
                "message": "a connector name has at most "
                f"{resources.MAX_CONNECTOR_NAME_CHARS} characters and no dots "
                "(its endpoint name is 'table.connector')",
            },
        ),
    ),
    ResourceKind(
        kind="CompletionToken",
        plural="completiontokens",
        short_names=("ct", "slct"),
        description="A completion token of one input connector, followed until complete.",
        spec_model=resources.CompletionTokenSpec,
        status_model=resources.CompletionTokenStatus,
        columns=_ready_columns(
            PrinterColumn("Completion", ".status.status", description="inprogress or complete")
        ),
    ),
)


def _inline(node: Any, defs: dict[str, Schema]) -> Any:
    """Replace every `$ref` with the referenced definition, merging sibling keywords."""
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**_inline(target, defs), **{k: v for k, v in node.items() if k != "$ref"}}
        return _inline(merged, defs)
    return {key: _inline(value, defs) for key, value in node.items() if key != "$defs"}


def _is_null(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null"


def _structural(node: Any) -> Any:
    """Turn one inlined pydantic schema node into a structural Kubernetes schema node."""
    if isinstance(node, list):
        return [_structural(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "anyOf" in node:
        options = [option for option in node.pop("anyOf") if not _is_null(option)]
        types = sorted(option.get("type", "") for option in options)
        if types == ["integer", "string"]:
            base: Schema = {"x-kubernetes-int-or-string": True}
        elif len(options) == 1:
            base = dict(options[0])
        else:
            raise ValueError(f"cannot express anyOf {options} in a structural schema")
        # Keywords beside anyOf (description, default) describe the field itself.
        node = {**base, **node}
        if node.get("default") is None:
            node.pop("default", None)
    node.pop("title", None)
    if node.get("additionalProperties") is False or node.get("additionalProperties") is True:
        node.pop("additionalProperties")
    if "const" in node:
        node["enum"] = [node.pop("const")]
    default = node.get("default")
    if isinstance(default, (list, dict)) and not default:
        node.pop("default")
    if "properties" in node:
        node["properties"] = {key: _structural(value) for key, value in node["properties"].items()}
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = _structural(node["additionalProperties"])
    if isinstance(node.get("items"), dict):
        node["items"] = _structural(node["items"])
    return node


def build_schema(model: type[BaseModel]) -> Schema:
    """The structural OpenAPI v3 schema of a model, camelCase on the wire."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    return dict(_structural(_inline(raw, defs)))


def _without_defaults(node: Any) -> Any:
    """Drop defaults: status is written by the operator alone, the server must not invent it."""
    if isinstance(node, list):
        return [_without_defaults(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {key: _without_defaults(value) for key, value in node.items() if key != "default"}


def _condition_list(schema: Schema) -> Schema:
    conditions = dict(schema["properties"]["conditions"])
    conditions["x-kubernetes-list-type"] = "map"
    conditions["x-kubernetes-list-map-keys"] = ["type"]
    return conditions


def build_crd(kind: ResourceKind) -> Schema:
    """The CustomResourceDefinition of one kind."""
    status = _without_defaults(build_schema(kind.status_model))
    status["properties"]["conditions"] = _condition_list(status)
    # Flux's first-apply fix: before the operator's first write kstatus sees -1 != generation.
    status["properties"]["observedGeneration"]["default"] = -1
    status["default"] = {"observedGeneration": -1}
    root: Schema = {
        "type": "object",
        "description": kind.description,
        "properties": {
            "apiVersion": {"type": "string", "maxLength": 63, "description": API_VERSION_TEXT},
            "kind": {"type": "string", "maxLength": 63, "description": kind.kind},
            "metadata": {"type": "object"},
            "spec": build_schema(kind.spec_model),
            "status": status,
        },
        "required": ["spec"],
    }
    if kind.root_rules:
        root["x-kubernetes-validations"] = [dict(rule) for rule in kind.root_rules]
    columns = [
        {
            "name": column.name,
            "type": column.type,
            "jsonPath": column.json_path,
            **({"description": column.description} if column.description else {}),
            **({"priority": column.priority} if column.priority else {}),
        }
        for column in kind.columns
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": kind.crd_name,
            "labels": {"app.kubernetes.io/name": "sluice", "app.kubernetes.io/part-of": "sluice"},
        },
        "spec": {
            "group": resources.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.kind.lower(),
                "shortNames": list(kind.short_names),
                "categories": ["sluice"],
            },
            "versions": [
                {
                    "name": resources.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def build_all_crds() -> dict[str, Schema]:
    """Every CRD, keyed by the file name it is written to in `crds/`."""
    return {f"{kind.crd_name}.yaml": build_crd(kind) for kind in KINDS}
