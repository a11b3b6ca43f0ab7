"""Layer 4 (local): the PipelineDirectory of local mode, fed by the local supervisor.

The supervisor publishes an entry whenever a pipeline process starts, changes status or
dies; the gateway reads entries from memory. Desired-state changes the gateway asks for go
back to the supervisor, which is local mode's source of truth.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sluice.core.directory import DesiredState, PipelineEntry

DesiredStateSink = Callable[[str, DesiredState], Awaitable[None]]


class LocalDirectory:
    """In-memory directory of one namespace; `publish` replaces an entry."""

    def __init__(self, namespace: str, on_desired_state: DesiredStateSink | None = None) -> None:
        self.namespace = namespace
        self.on_desired_state = on_desired_state
        self._entries: dict[str, PipelineEntry] = {}
        self._revision = 0
        self._changed = asyncio.Event()

    def namespaces(self) -> frozenset[str]:
        return frozenset({self.namespace})

    def get(self, namespace: str, name: str) -> PipelineEntry | None:
        if namespace != self.namespace:
            return None
        return self._entries.get(name)

    def list(self, namespace: str) -> list[PipelineEntry]:
        if namespace != self.namespace:
            return []
        return [self._entries[name] for name in sorted(self._entries)]

    @property
    def revision(self) -> int:
        return self._revision

    async def wait_changed(self, since: int) -> int:
        while self._revision <= since:
            await self._changed.wait()
        return self._revision

    async def set_desired_state(self, namespace: str, name: str, state: DesiredState) -> None:
        if namespace != self.namespace or name not in self._entries:
            raise KeyError(name)
        if self.on_desired_state is not None:
            await self.on_desired_state(name, state)

    def publish(self, entry: PipelineEntry) -> None:
        """Add or replace an entry (no-op when nothing changed)."""
        if self._entries.get(entry.name) == entry:
            return
        self._entries[entry.name] = entry
        self._bump()

    def remove(self, name: str) -> None:
        """Forget a pipeline."""
        if self._entries.pop(name, None) is not None:
            self._bump()

    def _bump(self) -> None:
        self._revision += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
