"""HttpKubeApi speaks the API server's HTTP: paths, content types, SSA parameters, watches.

The API server is a small aiohttp app here; tests/e2e runs the same client against a real one.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from sluice.k8s.api import CONFIG_MAP, PIPELINE, KubeApiError, WatchExpired
from sluice.k8s.client import Credentials, HttpKubeApi


@pytest.fixture
async def server() -> Any:
    seen: list[dict[str, Any]] = []

    async def record(request: web.Request) -> web.StreamResponse:
        body = await request.text()
        seen.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "content_type": request.headers.get("Content-Type"),
                "authorization": request.headers.get("Authorization"),
                "body": json.loads(body) if body else None,
            }
        )
        if request.query.get("watch") == "true":
            if request.query.get("resourceVersion") == "old":
                return web.json_response({"kind": "Status", "code": 410}, status=410)
            response = web.StreamResponse()
            await response.prepare(request)
            for event in (
                {"type": "ADDED", "object": {"metadata": {"name": "a", "resourceVersion": "5"}}},
                {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "6"}}},
                {"type": "DELETED", "object": {"metadata": {"name": "a", "resourceVersion": "7"}}},
                {"type": "ERROR", "object": {"code": 410, "message": "too old"}},
            ):
                await response.write(json.dumps(event).encode() + b"\n")
            return response
        if request.path.endswith("/missing"):
            return web.json_response({"message": "not found"}, status=404)
        if "/bad" in request.path:
            return web.json_response({"message": "reason: Invalid value"}, status=422)
        if request.method == "GET":
            return web.json_response(
                {"metadata": {"resourceVersion": "4"}, "items": [{"metadata": {"name": "a"}}]}
            )
        return web.json_response({"metadata": {"name": "x"}})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    yield test_server, seen
    await test_server.close()


async def test_requests_have_the_right_shape(server: Any) -> None:
    test_server, seen = server
    credentials = Credentials(str(test_server.make_url("")).rstrip("/"), None, "Bearer t0k", "ns")
    async with aiohttp.ClientSession() as session:
        api = HttpKubeApi(credentials, session)
        page = await api.list(CONFIG_MAP, "team", "a=b")
        assert page.resource_version == "4"
        assert page.items[0]["kind"] == "ConfigMap"
        assert await api.get(PIPELINE, "team", "missing") is None
        await api.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "c", "namespace": "team"},
            }
        )
        await api.patch_status(PIPELINE, "team", "p", {"observedGeneration": 2})
        with pytest.raises(KubeApiError) as refused:
            await api.patch_status(PIPELINE, "team", "bad", {})
        assert refused.value.status == 422
        events: list[tuple[str, str]] = []

        async def follow(version: str) -> None:
            async for event in api.watch(PIPELINE, None, version):
                events.append((event.type, event.object["metadata"]["name"]))

        with pytest.raises(WatchExpired):
            await follow("4")
        assert events == [("ADDED", "a"), ("DELETED", "a")]
        with pytest.raises(WatchExpired):
            await follow("old")
    by_path = {(call["method"], call["path"]): call for call in seen}
    listing = by_path[("GET", "/api/v1/namespaces/team/configmaps")]
    assert listing["query"] == {"labelSelector": "a=b"}
    assert listing["authorization"] == "Bearer t0k"
    apply = by_path[("PATCH", "/api/v1/namespaces/team/configmaps/c")]
    assert apply["content_type"] == "application/apply-patch+yaml"
    assert apply["query"] == {"fieldManager": "sluice", "force": "true"}
    status = by_path[("PATCH", "/apis/sluice.dev/v1alpha1/namespaces/team/pipelines/p/status")]
    assert status["content_type"] == "application/merge-patch+json"
    assert status["body"] == {"status": {"observedGeneration": 2}}
    watches = [call["query"] for call in seen if call["query"].get("watch") == "true"]
    assert [query["resourceVersion"] for query in watches] == ["4", "old"]
    assert watches[0]["allowWatchBookmarks"] == "true"
