"""Layer 3 (gateway): what the gateway keeps per running pipeline process.

For every pipeline the directory shows at a location, one `FrontierFollower` keeps the
pod's completion frontier in memory (so `completion_status` needs no hop), and the pod's
`/metadata` (schema, connectors) is fetched once per location and kept. A background task
follows the directory: new or moved pipelines get a follower, gone ones lose theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aiohttp

from sluice.core.directory import PipelineDirectory, PipelineEntry
from sluice.process.client import FrontierFollower, ProcessClient, ProcessError, ProcessUnreachable

logger = logging.getLogger(__name__)

PipelineKey = tuple[str, str]


def is_provisioned(entry: PipelineEntry) -> bool:
    """Whether the pipeline has a process the gateway may forward to (Feldera: Provisioned)."""
    return entry.location is not None and entry.deployment_status not in (
        "Stopped",
        "Provisioning",
        "Stopping",
    )


class PodRegistry:
    """Followers and metadata of the pipeline processes in a directory."""

    def __init__(
        self,
        directory: PipelineDirectory,
        session: aiohttp.ClientSession,
        client: ProcessClient,
    ) -> None:
        self.directory = directory
        self.session = session
        self.client = client
        self._followers: dict[PipelineKey, FrontierFollower] = {}
        self._metadata: dict[tuple[PipelineKey, str], dict[str, Any]] = {}
        self._task: asyncio.Task[None] | None = None

    def follower(self, entry: PipelineEntry) -> FrontierFollower | None:
        """The follower of this pipeline's current process (started on first use)."""
        if entry.location is None:
            return None
        key = (entry.namespace, entry.name)
        follower = self._followers.get(key)
        if follower is not None and follower.location != entry.location:
            asyncio.create_task(follower.close())  # noqa: RUF006 - close() never raises
            follower = None
        if follower is None:
            follower = FrontierFollower(self.session, entry.location)
            follower.start()
            self._followers[key] = follower
        return follower

    @property
    def followers(self) -> dict[PipelineKey, FrontierFollower]:
        """The live followers (read-only view for metrics and tests)."""
        return dict(self._followers)

    async def metadata(self, entry: PipelineEntry) -> dict[str, Any] | None:
        """The process's `/metadata`, cached per location; None when it cannot be had."""
        if entry.location is None:
            return None
        cache_key = ((entry.namespace, entry.name), entry.location)
        cached = self._metadata.get(cache_key)
        if cached is not None:
            return cached
        try:
            metadata = await self.client.metadata(entry.location)
        except (ProcessUnreachable, ProcessError) as error:
            logger.debug("no metadata from %s: %s", entry.location, error)
            return None
        self._metadata = {
            key: value for key, value in self._metadata.items() if key[0] != cache_key[0]
        }
        self._metadata[cache_key] = metadata
        return metadata

    def start(self) -> None:
        """Follow the directory in the background."""
        self._task = asyncio.create_task(self._follow_directory(), name="pod registry")

    async def close(self) -> None:
        """Stop following the directory and every pod."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        followers, self._followers = self._followers, {}
        await asyncio.gather(*(follower.close() for follower in followers.values()))

    def sync(self) -> None:
        """Match the followers to the directory as it is now."""
        wanted: dict[PipelineKey, PipelineEntry] = {}
        for namespace in self.directory.namespaces():
            for entry in self.directory.list(namespace):
                if is_provisioned(entry):
                    wanted[(entry.namespace, entry.name)] = entry
        for key in list(self._followers):
            if key not in wanted:
                asyncio.create_task(self._followers.pop(key).close())  # noqa: RUF006
        for entry in wanted.values():
            self.follower(entry)

    async def _follow_directory(self) -> None:
        while True:
            revision = self.directory.revision
            self.sync()
            await self.directory.wait_changed(revision)
