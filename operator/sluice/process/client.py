"""Layer 2 (process): the client of one pipeline process's HTTP API.

The gateway and the operator reach pipeline pods through this module only, so both mint
tokens, read status and follow the completion frontier the same way. Every call has an
explicit timeout (10 s, 30 s for ingress, as Feldera's manager); a transport failure raises
`ProcessUnreachable`, a non-2xx answer raises `ProcessError` carrying the pod's status and
body untouched so that callers can pass it through verbatim.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp

from sluice.core.errors import ApiError
from sluice.core.tokens import CompletionToken
from sluice.process.http import HttpProtocolError, KeepAlivePool

logger = logging.getLogger(__name__)

REQUEST_TIMEOUT_SECONDS = 10.0
"""Feldera's PIPELINE_HTTP_REQUEST_TIMEOUT for forwarded calls."""
INGRESS_TIMEOUT_SECONDS = 30.0
"""Feldera's timeout for forwarded ingress."""


class ProcessUnreachable(Exception):
    """The pipeline process could not be reached or did not answer in time."""

    def __init__(self, location: str, request: str, reason: str) -> None:
        super().__init__(f"{request} on {location}: {reason}")
        self.location = location
        self.request = request
        self.reason = reason


class ProcessError(Exception):
    """The pipeline process answered with an error status (its body is kept verbatim)."""

    def __init__(self, status: int, body: bytes, content_type: str) -> None:
        super().__init__(f"pipeline process answered {status}: {body[:200]!r}")
        self.status = status
        self.body = body
        self.content_type = content_type

    def api_error(self) -> ApiError:
        """The pod's error as an ApiError (Feldera's shape when the body has it)."""
        try:
            parsed = json.loads(self.body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("error_code"), str):
            return ApiError(
                self.status,
                parsed["error_code"],
                str(parsed.get("message", "")),
                parsed.get("details"),
            )
        return ApiError(
            self.status,
            "PipelineInteractionInvalidResponse",
            self.body.decode("utf-8", "replace")[:1000],
            None,
        )


def build_url(location: str, path: str, query: str | Mapping[str, str] = "") -> str:
    """`http://{location}/{path}?{query}`; `path` segments must already be quoted."""
    if not isinstance(query, str):
        query = urlencode(dict(query))
    url = f"http://{location}/{path.lstrip('/')}"
    return f"{url}?{query}" if query else url


def endpoint_path(direction: str, endpoint: str, action: str) -> str:
    """Path of an endpoint call, e.g. `input_endpoints/orders.file/stats` (name quoted)."""
    return f"{direction}_endpoints/{quote(endpoint, safe='')}/{action}"


@dataclass(frozen=True)
class ProcessResponse:
    """A buffered answer of the pipeline process."""

    status: int
    body: bytes
    content_type: str

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)


class ProcessClient:
    """Calls on pipeline processes, addressed by `location` (host:port)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        self.session = session
        """For streams (the completion frontier); buffered calls use `pool`."""
        self.timeout = timeout
        self.pool = KeepAlivePool()

    async def request(
        self,
        method: str,
        location: str,
        path: str,
        query: str | Mapping[str, str] = "",
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        limit_seconds: float | None = None,
    ) -> ProcessResponse:
        """One buffered call; raises ProcessUnreachable on transport failure or timeout."""
        seconds = limit_seconds or self.timeout
        if not isinstance(query, str):
            query = urlencode(dict(query))
        target = "/" + path.lstrip("/") + (f"?{query}" if query else "")
        try:
            async with asyncio.timeout(seconds):
                answer = await self.pool.request(
                    method, location, target, body, dict(headers) if headers else None
                )
        except TimeoutError:
            raise ProcessUnreachable(
                location, f"{method} /{path}", f"timeout after {seconds:g} s"
            ) from None
        except (OSError, HttpProtocolError, ValueError) as error:
            raise ProcessUnreachable(
                location, f"{method} /{path}", str(error) or repr(error)
            ) from None
        return ProcessResponse(answer.status, answer.body, answer.content_type)

    def close(self) -> None:
        """Close the idle connections to pipeline processes."""
        self.pool.close()

    async def call_json(
        self,
        method: str,
        location: str,
        path: str,
        query: str | Mapping[str, str] = "",
        *,
        limit_seconds: float | None = None,
    ) -> Any:
        """A call whose 2xx answer is JSON (or empty: None); raises ProcessError otherwise."""
        response = await self.request(method, location, path, query, limit_seconds=limit_seconds)
        if response.status >= 300:
            raise ProcessError(response.status, response.body, response.content_type)
        if not response.body:
            return None
        try:
            return response.json()
        except ValueError:
            return response.body.decode("utf-8", "replace")

    async def completion_token(self, location: str, endpoint: str) -> str:
        """Mint a completion token for an input endpoint (`table.connector`)."""
        answer = await self.call_json(
            "GET", location, endpoint_path("input", endpoint, "completion_token")
        )
        return str(answer["token"])

    async def completion_status(self, location: str, token: str) -> dict[str, Any]:
        """`{"status": "complete"|"inprogress", "step": n|null}` for a token."""
        answer = await self.call_json("GET", location, "completion_status", {"token": token})
        return dict(answer)

    async def status(self, location: str) -> dict[str, Any]:
        """The runtime status document of the process."""
        return dict(await self.call_json("GET", location, "status"))

    async def stats(self, location: str) -> dict[str, Any]:
        """Feldera's ControllerStatus."""
        return dict(await self.call_json("GET", location, "stats"))

    async def metadata(self, location: str) -> dict[str, Any]:
        """Program, schema and connectors of the process."""
        return dict(await self.call_json("GET", location, "metadata"))

    async def input_endpoint_stats(self, location: str, endpoint: str) -> dict[str, Any]:
        """InputEndpointStatus of one input connector."""
        return dict(
            await self.call_json("GET", location, endpoint_path("input", endpoint, "stats"))
        )

    async def output_endpoint_stats(self, location: str, endpoint: str) -> dict[str, Any]:
        """OutputEndpointStatus of one output connector."""
        return dict(
            await self.call_json("GET", location, endpoint_path("output", endpoint, "stats"))
        )

    async def connector_action(self, location: str, endpoint: str, action: str) -> None:
        """Start or pause an input connector (Feldera uses GET on the process)."""
        if action not in ("start", "pause"):
            raise ValueError(f"unknown connector action {action!r}")
        await self.call_json("GET", location, endpoint_path("input", endpoint, action))

    async def start(self, location: str) -> Any:
        """Ask the process to run (Feldera's `/start`)."""
        return await self.call_json("GET", location, "start")

    async def pause(self, location: str) -> Any:
        """Ask the process to pause (Feldera's `/pause`)."""
        return await self.call_json("GET", location, "pause")


# --- the completion frontier ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frontier:
    """One line of `/completion_frontier`: how many records of each endpoint are complete."""

    incarnation: str
    total_completed_steps: int
    completed: Mapping[int, int]
    """endpoint id -> completed records."""

    @classmethod
    def parse(cls, line: bytes | str) -> Frontier:
        """Decode one NDJSON line; raises ValueError on a malformed line."""
        document = json.loads(line)
        if not isinstance(document, dict) or not isinstance(document.get("incarnation"), str):
            raise ValueError("frontier line without an incarnation")
        endpoints = document.get("endpoints") or {}
        if not isinstance(endpoints, dict):
            raise ValueError("frontier endpoints must be an object")
        completed = {
            int(endpoint_id): int(progress.get("completed_records", 0))
            for endpoint_id, progress in endpoints.items()
            if isinstance(progress, dict)
        }
        return cls(
            document["incarnation"], int(document.get("total_completed_steps", 0)), completed
        )

    def is_complete(self, token: CompletionToken) -> bool | None:
        """True/False when this frontier decides the token, None when it cannot.

        It cannot when the token belongs to another incarnation (the pod answers 410) or names
        an endpoint this frontier does not list yet (the pod knows better).
        """
        if token.incarnation != self.incarnation:
            return None
        done = self.completed.get(token.endpoint_id)
        if done is None:
            return None
        return done >= token.records


class FrontierFollower:
    """Follows one process's `/completion_frontier` stream, reconnecting with back-off.

    `current` is the latest frontier while the stream is connected and None otherwise: a
    frontier kept across a disconnect could belong to a process that has since restarted.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        location: str,
        *,
        initial_backoff: float = 0.1,
        max_backoff: float = 5.0,
        read_timeout: float = 15.0,
    ) -> None:
        self.session = session
        self.location = location
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.read_timeout = read_timeout
        self.reconnects = 0
        self._current: Frontier | None = None
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def current(self) -> Frontier | None:
        """The latest frontier, or None while not connected."""
        return self._current

    def start(self) -> None:
        """Start following in the background (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._follow(), name=f"frontier {self.location}")

    async def close(self) -> None:
        """Stop following and wake every waiter."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                # Re-raise only if *we* are being cancelled, not the task we cancelled.
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
        self._publish(None)

    def _publish(self, frontier: Frontier | None) -> None:
        self._current = frontier
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_changed(self, within: float) -> bool:
        """Wait for the next frontier (or disconnect); False on timeout."""
        changed = self._changed
        try:
            # asyncio.timeout keeps a racing cancellation a cancellation (wait_for on 3.11 may not).
            async with asyncio.timeout(within):
                await changed.wait()
        except TimeoutError:
            return False
        return True

    async def wait_complete(self, token: CompletionToken, within: float) -> bool | None:
        """Wait until the frontier decides `token` complete, or `within` seconds pass.

        Returns True when complete, False when still in progress at the deadline, None as soon
        as the frontier cannot decide (not connected, other incarnation, unknown endpoint).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            frontier = self._current
            verdict = frontier.is_complete(token) if frontier is not None else None
            if verdict is None or verdict:
                return verdict
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await self.wait_changed(remaining)

    async def _follow(self) -> None:
        backoff = self.initial_backoff
        url = build_url(self.location, "completion_frontier")
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=REQUEST_TIMEOUT_SECONDS, sock_read=self.read_timeout
        )
        while True:
            try:
                async with self.session.get(url, timeout=timeout) as response:
                    if response.status != 200:
                        raise ProcessError(response.status, await response.read(), "")
                    async for line in response.content:
                        if not line.strip():
                            continue
                        self._publish(Frontier.parse(line))
                        backoff = self.initial_backoff
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, TimeoutError, ProcessError, ValueError) as error:
                logger.debug("frontier stream of %s interrupted: %s", self.location, error)
            self._publish(None)
            self.reconnects += 1
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)
