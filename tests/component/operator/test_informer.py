"""The informer: list, watch from the list's version, relist after 410, survive listener bugs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from sluice.k8s.api import PIPELINE, Kind, Page, WatchEvent, WatchExpired
from sluice.k8s.informer import Informer


def _obj(name: str, version: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "team", "resourceVersion": version}}


class ScriptedApi:
    """Answers lists from `pages` and watches from `watches`, recording the versions asked.

    A watch with events ends after them (as a server-side timeout does); an empty one stays open.
    """

    def __init__(self) -> None:
        self.pages = [Page([_obj("a", "1"), _obj("b", "2")], "2"), Page([_obj("a", "9")], "9")]
        self.watches: list[list[WatchEvent] | type[Exception]] = [
            [WatchEvent("ADDED", _obj("c", "3"))],
            WatchExpired,
            [],
        ]
        self.watched_from: list[str] = []

    async def list(
        self, kind: Kind, namespace: str | None, label_selector: str | None = None
    ) -> Page:
        return self.pages.pop(0)

    async def watch(
        self,
        kind: Kind,
        namespace: str | None,
        resource_version: str,
        label_selector: str | None = None,
    ) -> AsyncIterator[WatchEvent]:
        self.watched_from.append(resource_version)
        script = self.watches.pop(0) if self.watches else []
        if isinstance(script, type):
            raise script("expired")
        for event in script:
            yield event
        if not script:
            await asyncio.Event().wait()  # the last watch stays open


async def test_relists_after_expiry_and_reports_what_vanished() -> None:
    api = ScriptedApi()
    events: list[tuple[str, str]] = []

    def listener(event: WatchEvent) -> None:
        events.append((event.type, event.object["metadata"]["name"]))
        if event.object["metadata"]["name"] == "b":
            raise RuntimeError("a buggy listener must not stop the watch")

    informer = Informer(api, PIPELINE, "team", listener=listener)  # type: ignore[arg-type]
    informer.start()
    try:
        await asyncio.wait_for(informer.synced.wait(), 5)
        for _ in range(100):
            if len(api.watched_from) >= 3:
                break
            await asyncio.sleep(0.05)
        assert api.watched_from[:3] == ["2", "3", "9"]
        assert set(informer.cache) == {("team", "a")}
        assert informer.cache[("team", "a")]["metadata"]["resourceVersion"] == "9"
        assert ("DELETED", "b") in events
        assert ("DELETED", "c") in events
        assert informer.cache[("team", "a")]["kind"] == "Pipeline"
    finally:
        await informer.close()
