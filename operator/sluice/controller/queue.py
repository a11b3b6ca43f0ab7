"""Layer 3 (controller): a keyed work queue, the heart of level-based reconciliation.

Many events about one object collapse into one pending entry; an object is never reconciled
by two workers at once (a change arriving meanwhile runs it once more afterwards); delayed
re-checks keep the earliest requested time. This is what keeps hundreds of objects cheap and
a failing one from looping hot.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    """Pending keys, ready now or at a time, each handed to at most one worker at a time."""

    def __init__(self) -> None:
        self._ready: asyncio.Queue[K] = asyncio.Queue()
        self._queued: set[K] = set()
        self._active: set[K] = set()
        self._again: set[K] = set()
        self._timers: list[tuple[float, int, K]] = []
        self._due: dict[K, float] = {}
        self._counter = itertools.count()
        self._wakeup = asyncio.Event()

    def __len__(self) -> int:
        return len(self._queued) + len(self._due)

    def add(self, key: K) -> None:
        """Reconcile `key` as soon as a worker is free."""
        if key in self._active:
            self._again.add(key)
            return
        if key not in self._queued:
            self._queued.add(key)
            self._ready.put_nowait(key)

    def add_after(self, key: K, delay: float) -> None:
        """Reconcile `key` after `delay` seconds (an earlier request wins)."""
        if delay <= 0:
            self.add(key)
            return
        when = asyncio.get_running_loop().time() + delay
        if self._due.get(key, float("inf")) <= when:
            return
        self._due[key] = when
        heapq.heappush(self._timers, (when, next(self._counter), key))
        self._wakeup.set()

    async def run_timers(self) -> None:
        """Move keys whose time has come to the ready queue (run this as one task)."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            while self._timers and self._timers[0][0] <= now:
                when, _, key = heapq.heappop(self._timers)
                if self._due.get(key) == when:
                    del self._due[key]
                    self.add(key)
            self._wakeup.clear()
            timeout = self._timers[0][0] - now if self._timers else None
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can turn a cancellation
            # that races its timeout into TimeoutError, and this loop would then never end.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wakeup.wait()

    async def run_worker(self, process: Callable[[K], Awaitable[None]]) -> None:
        """Take keys one at a time and process them (run several of these)."""
        while True:
            key = await self._ready.get()
            self._queued.discard(key)
            self._active.add(key)
            try:
                await process(key)
            finally:
                self._active.discard(key)
                if key in self._again:
                    self._again.discard(key)
                    self.add(key)
