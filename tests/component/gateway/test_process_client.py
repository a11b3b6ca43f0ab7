"""The pipeline-process client against a small stand-in process (an aiohttp app on loopback).

The stand-in speaks only the contract (paths, bodies, the NDJSON frontier stream); the same
client is exercised against real `sluice runtime` processes in test_gateway_routes.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from sluice.core.tokens import CompletionToken
from sluice.process.client import (
    Frontier,
    FrontierFollower,
    ProcessClient,
    ProcessError,
    ProcessUnreachable,
    build_url,
    endpoint_path,
)

INCARNATION = "6f1c1b7e-0000-4000-8000-000000000001"


class StandIn:
    """State of the stand-in process: frontier lines are pushed by the test."""

    def __init__(self) -> None:
        self.lines: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        self.seen_paths: list[str] = []
        self.streams = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/input_endpoints/{endpoint}/completion_token", self.token)
        app.router.add_get("/input_endpoints/{endpoint}/stats", self.stats)
        app.router.add_get("/completion_status", self.status)
        app.router.add_get("/completion_frontier", self.frontier)
        app.router.add_get("/slow", self.slow)
        return app

    async def token(self, request: web.Request) -> web.Response:
        self.seen_paths.append(request.raw_path)
        if request.match_info["endpoint"] != "orders.file":
            return web.json_response(
                {"message": "unknown", "error_code": "UnknownInputEndpoint", "details": {}},
                status=404,
            )
        return web.json_response({"token": CompletionToken(INCARNATION, 0, 3).encode()})

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response({"endpoint_name": request.match_info["endpoint"]})

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "inprogress", "step": None, "q": request.query_string})

    async def slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response()

    async def frontier(self, request: web.Request) -> web.StreamResponse:
        self.streams += 1
        response = web.StreamResponse()
        response.content_type = "application/x-ndjson"
        await response.prepare(request)
        while True:
            line = await self.lines.get()
            if line.get("hangup"):
                return response
            await response.write(json.dumps(line).encode() + b"\n")


@pytest.fixture
async def standin() -> AsyncIterator[tuple[StandIn, str, aiohttp.ClientSession]]:
    state = StandIn()
    server = TestServer(state.app(), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        yield state, f"127.0.0.1:{server.port}", session
    await server.close()


def frontier_line(records: int, steps: int = 1) -> dict[str, object]:
    return {
        "incarnation": INCARNATION,
        "total_completed_steps": steps,
        "endpoints": {"0": {"name": "orders.file", "completed_records": records}},
    }


def test_url_helpers_quote_endpoint_names() -> None:
    assert endpoint_path("input", "orders.my file/x", "stats") == (
        "input_endpoints/orders.my%20file%2Fx/stats"
    )
    assert build_url("h:1", "completion_status", {"token": "a+b"}) == (
        "http://h:1/completion_status?token=a%2Bb"
    )
    assert build_url("h:1", "/status") == "http://h:1/status"


def test_frontier_decides_only_what_it_knows() -> None:
    frontier = Frontier.parse(json.dumps(frontier_line(5)))
    assert frontier.is_complete(CompletionToken(INCARNATION, 0, 5)) is True
    assert frontier.is_complete(CompletionToken(INCARNATION, 0, 6)) is False
    assert frontier.is_complete(CompletionToken(INCARNATION, 1, 0)) is None
    assert frontier.is_complete(CompletionToken("other", 0, 0)) is None
    with pytest.raises(ValueError, match="incarnation"):
        Frontier.parse(b'{"endpoints": {}}')


async def test_calls_and_errors(standin: tuple[StandIn, str, aiohttp.ClientSession]) -> None:
    _, location, session = standin
    client = ProcessClient(session)
    token = await client.completion_token(location, "orders.file")
    assert token == CompletionToken(INCARNATION, 0, 3).encode()
    with pytest.raises(ProcessError) as raised:
        await client.completion_token(location, "orders.nope")
    assert raised.value.status == 404
    assert raised.value.api_error().error_code == "UnknownInputEndpoint"
    answer = await client.completion_status(location, "a+b")
    assert answer["q"] == "token=a%2Bb"
    assert (await client.input_endpoint_stats(location, "a b"))["endpoint_name"] == "a b"


async def test_unreachable_and_timeout(
    standin: tuple[StandIn, str, aiohttp.ClientSession],
) -> None:
    _, location, session = standin
    with pytest.raises(ProcessUnreachable, match="timeout"):
        await ProcessClient(session, timeout=0.2).call_json("GET", location, "slow")
    with pytest.raises(ProcessUnreachable):
        # Port 1 on loopback: nothing listens there.
        await ProcessClient(session).status("127.0.0.1:1")


async def test_follower_tracks_and_reconnects(
    standin: tuple[StandIn, str, aiohttp.ClientSession],
) -> None:
    state, location, session = standin
    follower = FrontierFollower(session, location, initial_backoff=0.01)
    follower.start()
    try:
        token = CompletionToken(INCARNATION, 0, 4)
        assert await follower.wait_complete(token, 0.05) is None  # not connected yet
        await state.lines.put(frontier_line(1))
        while follower.current is None:
            await follower.wait_changed(1)
        waiter = asyncio.create_task(follower.wait_complete(token, 5))
        await asyncio.sleep(0.05)
        assert not waiter.done()
        await state.lines.put(frontier_line(4, steps=2))
        assert await waiter is True
        assert await follower.wait_complete(CompletionToken(INCARNATION, 0, 9), 0.05) is False

        await state.lines.put({"hangup": True})
        while state.streams < 2:
            await follower.wait_changed(1)
        assert follower.reconnects >= 1
        await state.lines.put(frontier_line(9, steps=3))
        while follower.current is None:
            await follower.wait_changed(1)
        assert await follower.wait_complete(CompletionToken(INCARNATION, 0, 9), 5) is True
    finally:
        await follower.close()
    assert follower.current is None
