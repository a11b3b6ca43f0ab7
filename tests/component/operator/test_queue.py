"""The work queue: events collapse, one worker per key, delayed re-checks keep the earliest."""

from __future__ import annotations

import asyncio

from sluice.controller.queue import WorkQueue


async def test_events_collapse_and_a_key_is_never_processed_twice_at_once() -> None:
    queue: WorkQueue[str] = WorkQueue()
    running: set[str] = set()
    seen: list[str] = []
    overlap = False
    release = asyncio.Event()

    async def process(key: str) -> None:
        nonlocal overlap
        overlap = overlap or key in running
        running.add(key)
        seen.append(key)
        await release.wait()
        running.discard(key)

    for _ in range(5):
        queue.add("a")
    queue.add("b")
    workers = [asyncio.create_task(queue.run_worker(process)) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert sorted(seen) == ["a", "b"]
    queue.add("a")  # arrives while "a" is being processed: runs once more afterwards
    queue.add("a")
    await asyncio.sleep(0.05)
    assert seen.count("a") == 1
    release.set()
    await asyncio.sleep(0.05)
    assert seen.count("a") == 2
    assert not overlap
    for worker in workers:
        worker.cancel()
    await asyncio.gather(*workers, return_exceptions=True)


async def test_delayed_adds_keep_the_earliest_time() -> None:
    queue: WorkQueue[str] = WorkQueue()
    seen: list[tuple[str, float]] = []
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def process(key: str) -> None:
        seen.append((key, loop.time() - started))

    tasks = [
        asyncio.create_task(queue.run_timers()),
        asyncio.create_task(queue.run_worker(process)),
    ]
    queue.add_after("a", 5.0)
    queue.add_after("a", 0.1)  # earlier wins
    queue.add_after("a", 3.0)  # later is ignored
    queue.add_after("b", 0.2)
    await asyncio.sleep(0.4)
    assert [key for key, _ in seen] == ["a", "b"]
    assert 0.09 <= seen[0][1] < 0.3
    assert len(queue) == 0
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
