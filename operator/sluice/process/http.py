"""Layer 2 (process): a small keep-alive HTTP/1.1 client for buffered calls on pipeline pods.

Minting a token or reading a status is one tiny request and one tiny answer; the gateway
makes one per client call, so the cost of the hop is the cost of the client. This one keeps
idle connections per pod and parses only what a buffered answer needs (status line,
headers, a Content-Length or chunked body), which costs a fraction of a general client's
work per call. Streaming calls (ingress, egress, the frontier stream) keep using aiohttp.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass


class HttpProtocolError(Exception):
    """The peer did not speak HTTP/1.1 as expected, or closed the connection mid-answer."""


@dataclass(frozen=True)
class RawResponse:
    """A complete, buffered HTTP answer."""

    status: int
    headers: dict[str, str]
    """Lower-cased header names."""
    body: bytes

    @property
    def content_type(self) -> str:
        """The media type without parameters."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip()


class _Connection(asyncio.Protocol):
    """One keep-alive connection; answers one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[RawResponse] | None = None
        self.closed = False
        self.reusable = True
        self._head: tuple[int, dict[str, str]] | None = None
        self._body_start = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            head = self._head
            if head is not None and "content-length" not in head[1] and not _is_chunked(head[1]):
                # An answer delimited by the end of the connection.
                self.waiter.set_result(RawResponse(head[0], head[1], bytes(self.buffer)))
                return
            self.waiter.set_exception(
                HttpProtocolError(f"connection closed before the answer was complete: {exc}")
            )

    def data_received(self, data: bytes) -> None:
        self.buffer.extend(data)
        if self.waiter is None or self.waiter.done():
            return
        try:
            answer = self._parse()
        except HttpProtocolError as error:
            self.reusable = False
            self.waiter.set_exception(error)
            return
        if answer is not None:
            self.waiter.set_result(answer)

    def _parse(self) -> RawResponse | None:
        if self._head is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return None
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            parts = lines[0].split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
                raise HttpProtocolError(f"not an HTTP/1.x status line: {lines[0]!r}")
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if headers.get("connection", "").lower() == "close":
                self.reusable = False
            self._head = (int(parts[1]), headers)
            del self.buffer[: end + 4]
        status, headers = self._head
        if "content-length" in headers:
            length = int(headers["content-length"])
            if len(self.buffer) < length:
                return None
            body = bytes(self.buffer[:length])
            del self.buffer[:length]
        elif _is_chunked(headers):
            decoded = _dechunk(self.buffer)
            if decoded is None:
                return None
            body, used = decoded
            del self.buffer[:used]
        elif status in (204, 304) or 100 <= status < 200:
            body = b""
        else:
            self.reusable = False
            return None  # delimited by the end of the connection
        self._head = None
        return RawResponse(status, headers, body)

    async def exchange(self, request: bytes) -> RawResponse:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        try:
            return await self.waiter
        finally:
            self.waiter = None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _is_chunked(headers: dict[str, str]) -> bool:
    return "chunked" in headers.get("transfer-encoding", "").lower()


def _dechunk(buffer: bytearray) -> tuple[bytes, int] | None:
    """The body of a complete chunked message and the bytes it used, or None if incomplete."""
    body = bytearray()
    position = 0
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        size_text = bytes(buffer[position:line_end]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise HttpProtocolError(f"bad chunk size {size_text!r}") from None
        position = line_end + 2
        if size == 0:
            # Trailers (if any) end with an empty line.
            end = buffer.find(b"\r\n", position)
            while end >= 0 and end != position:
                position = end + 2
                end = buffer.find(b"\r\n", position)
            if end < 0:
                return None
            return bytes(body), end + 2
        if len(buffer) < position + size + 2:
            return None
        body.extend(buffer[position : position + size])
        position += size + 2


class KeepAlivePool:
    """Idle keep-alive connections per `host:port`, reused for buffered calls."""

    def __init__(self, max_idle_per_host: int = 64) -> None:
        self.max_idle_per_host = max_idle_per_host
        self._idle: defaultdict[str, list[_Connection]] = defaultdict(list)

    async def _connect(self, location: str) -> _Connection:
        host, _, port = location.rpartition(":")
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(_Connection, host.strip("[]"), int(port))
        return connection

    async def request(
        self,
        method: str,
        location: str,
        target: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> RawResponse:
        """Send `method target` to `location`; raises OSError / HttpProtocolError on failure.

        A reused connection the pod closed meanwhile is retried once on a fresh one; only
        idempotent methods are retried.
        """
        payload = body or b""
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: {location}\r\n{extra}"
            f"Content-Length: {len(payload)}\r\nAccept-Encoding: identity\r\n\r\n"
        )
        request = head.encode("latin-1") + payload
        idle = self._idle[location]
        while idle:
            connection = idle.pop()
            if connection.closed:
                continue
            try:
                return self._finish(location, connection, await connection.exchange(request))
            except (HttpProtocolError, OSError):
                connection.close()
                if method not in ("GET", "HEAD"):
                    raise
            except BaseException:
                connection.close()  # e.g. a timeout: the answer may still be on its way
                raise
        connection = await self._connect(location)
        try:
            return self._finish(location, connection, await connection.exchange(request))
        except BaseException:
            connection.close()
            raise

    def _finish(self, location: str, connection: _Connection, answer: RawResponse) -> RawResponse:
        idle = self._idle[location]
        if connection.reusable and not connection.closed and len(idle) < self.max_idle_per_host:
            idle.append(connection)
        else:
            connection.close()
        return answer

    def close(self) -> None:
        """Close every idle connection."""
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()
