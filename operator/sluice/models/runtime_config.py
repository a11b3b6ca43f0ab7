"""Layer 0 (models): the config document a pipeline process (`sluice runtime`) starts from.

The operator renders it into the pipeline's ConfigMap; local mode writes it to a file. It is
snake_case JSON, like Feldera's own pipeline config. Connectors declared inline in the SQL
(`WITH ('connectors' = '[...]')`) are not listed here: the runtime reads them from the program.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_MAX_QUEUED_RECORDS = 1_000_000
"""Feldera's default bound on records queued in one input connector."""


class RuntimeModel(BaseModel):
    """Base of the runtime config models: frozen, snake_case, unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class TransportConfig(RuntimeModel):
    """Feldera transport: name and free-form settings."""

    name: str
    config: dict[str, Any] = Field(default_factory=dict)


class FormatConfig(RuntimeModel):
    """Feldera format: name and free-form settings."""

    name: str
    config: dict[str, Any] = Field(default_factory=dict)


class ConnectorConfig(RuntimeModel):
    """One connector attached to a table (input) or a view (output)."""

    name: str
    relation: str
    """The table or view, as written by the user (canonicalised by the runtime)."""
    direction: Literal["input", "output"]
    transport: TransportConfig
    format: FormatConfig | None = None
    paused: bool = False
    max_queued_records: int = DEFAULT_MAX_QUEUED_RECORDS
    max_batch_size: int | None = None
    labels: list[str] = Field(default_factory=list)
    start_after: list[str] = Field(default_factory=list)


class RuntimeConfig(RuntimeModel):
    """Everything a pipeline process needs to run one pipeline."""

    pipeline_name: str
    namespace: str | None = None
    sql: str
    connectors: list[ConnectorConfig] = Field(default_factory=list)
    initial_state: Literal["Running", "Paused"] = "Running"
    workers: int = 1
    storage_path: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    """Feldera runtime settings passed through from spec.runtimeConfig."""
