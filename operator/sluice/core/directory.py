"""Layer 1 (core, pure): the gateway's view of the pipelines it routes to.

A `PipelineDirectory` answers "where does pipeline P of namespace N run, and in what state"
from memory. Two implementations exist: a watch-fed cache of Pipeline resources and their
pods (`sluice.k8s`), and the local supervisor (`sluice.local`). The gateway never calls the
API server per request; it reads a `PipelineEntry` and forwards to `entry.location`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

DesiredState = Literal["Running", "Paused", "Stopped"]


@dataclass(frozen=True)
class ConnectorEntry:
    """A connector of a pipeline, as the gateway needs it."""

    name: str
    relation: str
    direction: Literal["input", "output"]
    endpoint_name: str


@dataclass(frozen=True)
class PipelineEntry:
    """Everything the gateway knows about one pipeline, without asking anyone."""

    namespace: str
    name: str
    program_code: str
    deployment_status: str
    """Feldera's combined status name: Stopped, Provisioning, Initializing, Paused, Running, ..."""
    desired_status: DesiredState
    location: str | None = None
    """host:port of the pipeline process; None while it does not run."""
    incarnation: str | None = None
    """UUID of the running pipeline process, when known."""
    deployment_error: dict[str, Any] | None = None
    """Feldera ErrorResponse of the last fatal error, if any."""
    tables: tuple[str, ...] = ()
    views: tuple[str, ...] = ()
    connectors: tuple[ConnectorEntry, ...] = ()
    created_at: str | None = None
    """RFC 3339 creation time."""
    status_since: str | None = None
    """RFC 3339 time the deployment status last changed."""
    version: int = 1
    """Increases whenever the program or the runtime settings change."""
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def is_interactive(self) -> bool:
        """Whether requests can be forwarded to the pipeline process now."""
        return self.location is not None and self.deployment_status in ("Running", "Paused")


class PipelineDirectory(Protocol):
    """A memory-backed, change-notifying directory of pipelines."""

    def namespaces(self) -> frozenset[str]:
        """The namespaces (tenants) this directory serves."""
        ...

    def get(self, namespace: str, name: str) -> PipelineEntry | None:
        """The pipeline, or None when it does not exist."""
        ...

    def list(self, namespace: str) -> list[PipelineEntry]:
        """Every pipeline of a namespace, sorted by name."""
        ...

    @property
    def revision(self) -> int:
        """A counter that increases on every change of any entry."""
        ...

    async def wait_changed(self, since: int) -> int:
        """Wait until `revision` exceeds `since`; returns the new revision."""
        ...

    async def set_desired_state(self, namespace: str, name: str, state: DesiredState) -> None:
        """Change the pipeline's desired state in its source of truth."""
        ...
