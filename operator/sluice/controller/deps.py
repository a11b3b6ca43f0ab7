"""Layer 3 (controller): the operator's dependencies, built once at startup and kept in memo.

Handlers reach everything through `memo.deps`: no module globals, and tests pass their own
`Deps` with a fake KubeApi and a fake clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sluice.controller.observe import Observer
from sluice.controller.programs import ProgramChecker
from sluice.controller.queue import WorkQueue
from sluice.controller.store import Store, WorkKey
from sluice.k8s.api import KubeApi
from sluice.models.settings import OperatorSettings
from sluice.process.client import ProcessClient


def utc_now() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """A timestamp as Kubernetes writes them (second precision would hide lags; keep ms)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Deps:
    """Everything a reconcile needs."""

    settings: OperatorSettings
    kube: KubeApi
    process: ProcessClient
    observer: Observer
    store: Store = field(default_factory=Store)
    queue: WorkQueue[WorkKey] = field(default_factory=WorkQueue)
    clock: Callable[[], datetime] = utc_now
    status_writes: int = 0
    """Status patches sent; the benchmark counts them while nothing changes."""
    failures: dict[WorkKey, int] = field(default_factory=dict)
    programs: ProgramChecker | None = None
    """Checks a changed program before it replaces a running one; None skips the check."""

    def now(self) -> str:
        """The current time as an RFC 3339 string."""
        return rfc3339(self.clock())
