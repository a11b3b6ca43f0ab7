"""Layer 3 (controller): what the operator learns from pipeline pods, remembered briefly.

`Observer` asks a pod for `/status` and `/stats` (and `/metadata` once per incarnation)
through the shared process client, caches the answer for a moment so the Pipeline and its
Connectors share one round trip, counts consecutive failures, and keeps one completion
frontier follower per running pod. A frontier change wakes the objects waiting on it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from sluice.core.status import EndpointStats, RuntimeState
from sluice.process.client import FrontierFollower, ProcessClient, ProcessError, ProcessUnreachable

logger = logging.getLogger(__name__)

PipelineKey = tuple[str, str]
"""(namespace, pipeline name)."""


@dataclass
class Observation:
    """The latest answer of one pipeline process."""

    location: str
    at: float
    runtime: RuntimeState | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class _Memory:
    observation: Observation | None = None
    failures: int = 0
    metadata: dict[str, Any] | None = None
    metadata_incarnation: str | None = None
    follower: FrontierFollower | None = None
    waker: asyncio.Task[None] | None = None


def _schema(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """The program schema of a process's `/metadata`: `inputs` (tables), `outputs` (views)."""
    schema = (metadata or {}).get("schema")
    return schema if isinstance(schema, dict) else {}


def _names(items: Any) -> tuple[str, ...]:
    names = []
    for item in items or []:
        name = item.get("name") if isinstance(item, dict) else item
        if isinstance(name, str):
            names.append(name)
    return tuple(names)


def endpoint_stats(stats: dict[str, Any], endpoint: str, direction: str) -> EndpointStats | None:
    """One endpoint's figures from Feldera's ControllerStatus, or None when it is not there."""
    for entry in stats.get("inputs" if direction == "input" else "outputs") or []:
        if entry.get("endpoint_name") != endpoint:
            continue
        metrics = entry.get("metrics") or {}
        return EndpointStats(
            records=int(
                metrics.get("total_records" if direction == "input" else "transmitted_records") or 0
            ),
            bytes=int(metrics.get("total_bytes") or metrics.get("transmitted_bytes") or 0),
            buffered_records=int(metrics.get("buffered_records") or 0),
            parse_errors=int(metrics.get("num_parse_errors") or 0),
            transport_errors=int(metrics.get("num_transport_errors") or 0),
            encode_errors=int(metrics.get("num_encode_errors") or 0),
            end_of_input=bool(metrics.get("end_of_input")),
            paused=bool(entry.get("paused")),
            fatal_error=entry.get("fatal_error") or None,
        )
    return None


class Observer:
    """Per-pipeline observations and frontier followers."""

    def __init__(
        self,
        process: ProcessClient,
        session: aiohttp.ClientSession,
        *,
        max_age: float = 1.0,
    ) -> None:
        self.process = process
        self.session = session
        self.max_age = max_age
        self._memory: dict[PipelineKey, _Memory] = {}

    def failures(self, key: PipelineKey) -> int:
        """Consecutive failed observations of the pipeline's process."""
        memory = self._memory.get(key)
        return memory.failures if memory else 0

    async def observe(self, key: PipelineKey, location: str, *, fresh: bool = False) -> Observation:
        """The process's status and stats, at most `max_age` old unless `fresh`."""
        memory = self._memory.setdefault(key, _Memory())
        loop = asyncio.get_running_loop()
        cached = memory.observation
        if (
            not fresh
            and cached is not None
            and cached.location == location
            and loop.time() - cached.at < self.max_age
        ):
            return cached
        observation = Observation(location=location, at=loop.time())
        try:
            status = await self.process.status(location)
            stats = await self.process.stats(location)
            incarnation = status.get("incarnation_uuid") or (stats.get("global_metrics") or {}).get(
                "incarnation_uuid"
            )
            if memory.metadata is None or memory.metadata_incarnation != incarnation:
                memory.metadata = await self.process.metadata(location)
                memory.metadata_incarnation = incarnation
            details = status.get("runtime_status_details")
            error = None
            if isinstance(details, dict):
                error = details.get("error") or details.get("reason")
            elif isinstance(details, str) and details:
                error = (
                    details if status.get("runtime_status") not in ("Running", "Paused") else None
                )
            observation.runtime = RuntimeState(
                runtime_status=str(status.get("runtime_status") or "Unavailable"),
                runtime_desired_status=status.get("runtime_desired_status"),
                incarnation=incarnation,
                error=str(error) if error else None,
                tables=_names(_schema(memory.metadata).get("inputs")),
                views=_names(_schema(memory.metadata).get("outputs")),
            )
            observation.stats = stats
            memory.failures = 0
        except (ProcessUnreachable, ProcessError, ValueError, KeyError, TypeError) as error:
            observation.error = str(error)
            memory.failures += 1
        memory.observation = observation
        return observation

    def frontier(
        self, key: PipelineKey, location: str | None, wake: Callable[[], None]
    ) -> FrontierFollower | None:
        """The follower of the pod's completion frontier (started on first use)."""
        memory = self._memory.setdefault(key, _Memory())
        follower = memory.follower
        if follower is not None and follower.location == location:
            return follower
        if follower is not None:
            self._stop(memory)
        if location is None:
            return None
        follower = FrontierFollower(self.session, location)
        follower.start()
        memory.follower = follower
        memory.waker = asyncio.create_task(_wake_on_change(follower, wake))
        return follower

    def follower(self, key: PipelineKey) -> FrontierFollower | None:
        """The running follower of a pipeline, if any."""
        memory = self._memory.get(key)
        return memory.follower if memory else None

    def _stop(self, memory: _Memory) -> None:
        follower, memory.follower = memory.follower, None
        waker, memory.waker = memory.waker, None
        if waker is not None:
            waker.cancel()
        if follower is not None:
            asyncio.create_task(follower.close())  # noqa: RUF006 - it ends by itself

    def forget(self, key: PipelineKey) -> None:
        """Drop everything about a pipeline that no longer runs."""
        memory = self._memory.pop(key, None)
        if memory is not None:
            self._stop(memory)

    async def close(self) -> None:
        """Stop every follower."""
        for key in list(self._memory):
            memory = self._memory.pop(key)
            if memory.waker is not None:
                memory.waker.cancel()
            if memory.follower is not None:
                await memory.follower.close()


async def _wake_on_change(follower: FrontierFollower, wake: Callable[[], None]) -> None:
    while True:
        await follower.wait_changed(30.0)
        wake()
