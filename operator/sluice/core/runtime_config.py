"""Layer 1 (core, pure): render the runtime config of one pipeline from its resources.

The operator puts the result into the pipeline's ConfigMap; local mode writes it to a file.
Both call `build_runtime_config`, so a pipeline runs the same program with the same
connectors on a laptop and on a cluster.
"""

from __future__ import annotations

from collections.abc import Iterable

from sluice.models.resources import ConnectorSpec, PipelineSpec
from sluice.models.runtime_config import (
    DEFAULT_MAX_QUEUED_RECORDS,
    ConnectorConfig,
    FormatConfig,
    RuntimeConfig,
    TransportConfig,
)


def build_connector_config(name: str, spec: ConnectorSpec) -> ConnectorConfig:
    """The runtime form of one Connector resource (its Feldera name is `metadata.name`)."""
    return ConnectorConfig(
        name=name,
        relation=spec.relation,
        direction=spec.direction,
        transport=TransportConfig(name=spec.transport.name, config=dict(spec.transport.config)),
        format=(
            FormatConfig(name=spec.format.name, config=dict(spec.format.config))
            if spec.format is not None
            else None
        ),
        paused=spec.paused,
        max_queued_records=spec.max_queued_records or DEFAULT_MAX_QUEUED_RECORDS,
        max_batch_size=spec.max_batch_size,
        labels=list(spec.labels or []),
        start_after=list(spec.start_after or []),
    )


def build_runtime_config(
    *,
    pipeline_name: str,
    namespace: str | None,
    spec: PipelineSpec,
    sql: str,
    connectors: Iterable[tuple[str, ConnectorSpec]],
    storage_path: str | None = None,
) -> RuntimeConfig:
    """The config document of a pipeline process.

    `sql` is the program text (from `spec.sql` or the referenced ConfigMap); `connectors` are
    the (name, spec) pairs of every Connector resource that references the pipeline, in any
    order: they are sorted by name so the rendered document, and its hash, are stable.
    """
    return RuntimeConfig(
        pipeline_name=pipeline_name,
        namespace=namespace,
        sql=sql,
        connectors=[
            build_connector_config(name, connector)
            for name, connector in sorted(connectors, key=lambda pair: pair[0])
        ],
        initial_state="Paused" if spec.desired_state == "Paused" else "Running",
        workers=spec.runtime.workers if spec.runtime else 1,
        storage_path=storage_path,
        settings=dict(spec.runtime_config or {}),
    )
