"""Layer 1 (core, pure): names derived from user input, in one place.

SQL identifiers are canonicalised the way Feldera does (`SqlIdentifier::name()`): a name
wrapped in double quotes keeps its case without the quotes, any other name is lower-cased.
Endpoint names join the canonical relation and the connector name with a dot.
"""

from __future__ import annotations

import hashlib

LABEL_PIPELINE = "sluice.dev/pipeline"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_PART_OF = "app.kubernetes.io/part-of"

MANAGER = "sluice"
"""Field manager for server-side apply and the managed-by label value."""


def canonical_sql_name(name: str) -> str:
    """Feldera's canonical form of a SQL identifier: quoted keeps case, unquoted lower-cases."""
    if len(name) >= 2 and name.startswith('"') and name.endswith('"'):
        return name[1:-1]
    return name.lower()


def endpoint_name(relation: str, connector: str) -> str:
    """The runtime endpoint name of a connector: `{canonical relation}.{connector}`."""
    return f"{canonical_sql_name(relation)}.{connector}"


def pipeline_child_name(pipeline: str) -> str:
    """Name of the ConfigMap, StatefulSet and Service of a pipeline."""
    return f"sluice-{pipeline}"


def pipeline_labels(pipeline: str) -> dict[str, str]:
    """Labels on every child of a pipeline; also the selector of its pods."""
    return {
        LABEL_NAME: "sluice-pipeline",
        LABEL_COMPONENT: "pipeline",
        LABEL_MANAGED_BY: MANAGER,
        LABEL_PART_OF: "sluice",
        LABEL_PIPELINE: pipeline,
    }


def short_hash(text: str, length: int = 16) -> str:
    """A stable hex digest prefix of `text` (for config hashes and generated names)."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]
