"""Layer 2 (k8s): a list-then-watch cache of one kind, the building block of watch-fed views.

An `Informer` lists the objects once, then follows the watch from the list's
resourceVersion, relisting only when the server says the version expired (410). Every change
updates its in-memory cache and is handed to a callback, so readers never ask the API server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aiohttp

from sluice.k8s.api import Kind, KubeApi, KubeApiError, WatchEvent, WatchExpired

logger = logging.getLogger(__name__)

ObjectKey = tuple[str, str]
"""(namespace, name)."""
Listener = Callable[[WatchEvent], None]


def object_key(obj: dict[str, Any]) -> ObjectKey:
    """The (namespace, name) of an object."""
    metadata = obj.get("metadata") or {}
    return (str(metadata.get("namespace", "")), str(metadata.get("name", "")))


class Informer:
    """Keeps `cache` equal to the server's objects of one kind, in one namespace or all."""

    def __init__(
        self,
        api: KubeApi,
        kind: Kind,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        listener: Listener | None = None,
        max_backoff: float = 10.0,
    ) -> None:
        self.api = api
        self.kind = kind
        self.namespace = namespace
        self.label_selector = label_selector
        self.listener = listener
        self.max_backoff = max_backoff
        self.cache: dict[ObjectKey, dict[str, Any]] = {}
        self.synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start listing and watching in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"informer {self.kind.plural}")

    async def close(self) -> None:
        """Stop watching."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _emit(self, event: WatchEvent) -> None:
        key = object_key(event.object)
        if event.type == "DELETED":
            self.cache.pop(key, None)
        else:
            event.object.setdefault("apiVersion", self.kind.api_version)
            event.object.setdefault("kind", self.kind.kind)
            self.cache[key] = event.object
        if self.listener is not None:
            try:
                self.listener(event)
            except Exception:  # a listener bug must not stop the watch
                logger.exception("listener of %s failed", self.kind.plural)

    async def _relist(self) -> str:
        page = await self.api.list(self.kind, self.namespace, self.label_selector)
        fresh = {object_key(item): item for item in page.items}
        for key, gone in list(self.cache.items()):
            if key not in fresh:
                self._emit(WatchEvent("DELETED", gone))
        for key, item in fresh.items():
            self._emit(WatchEvent("MODIFIED" if key in self.cache else "ADDED", item))
        self.synced.set()
        return page.resource_version

    async def run(self) -> None:
        """List, then watch forever; back off on errors, relist on 410."""
        backoff = 0.2
        version: str | None = None
        while True:
            try:
                if version is None:
                    version = await self._relist()
                started = asyncio.get_running_loop().time()
                async for event in self.api.watch(
                    self.kind, self.namespace, version, self.label_selector
                ):
                    version = str(event.object.get("metadata", {}).get("resourceVersion", version))
                    self._emit(event)
                    backoff = 0.2
                if asyncio.get_running_loop().time() - started < 1.0:
                    # A watch that ends at once would otherwise spin.
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
            except asyncio.CancelledError:
                raise
            except WatchExpired:
                version = None
                continue
            except (aiohttp.ClientError, KubeApiError, TimeoutError, ValueError) as error:
                logger.warning("watching %s failed: %s", self.kind.plural, error)
                version = None
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
