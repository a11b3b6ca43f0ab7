"""The keep-alive HTTP/1.1 client of buffered pod calls, against real sockets on loopback:
Content-Length, chunked and close-delimited answers, reuse, a pod that closed an idle
connection, and a timeout that must not leave a half-read connection in the pool."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from sluice.process.http import HttpProtocolError, KeepAlivePool

Answer = Callable[[bytes], bytes | None]


@pytest.fixture
async def server() -> AsyncIterator[tuple[list[Answer], list[int], str]]:
    """A raw socket server: each request line is answered by the next scripted answer."""
    script: list[Answer] = []
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                answer = script.pop(0)(head + body)
                if answer is None:
                    writer.close()
                    return
                writer.write(answer)
                await writer.drain()
                if b"Connection: close" in answer:
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    yield script, connections, f"127.0.0.1:{port}"
    listener.close()
    await listener.wait_closed()


def fixed(body: bytes, status: str = "200 OK") -> Answer:
    return lambda _: (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


async def test_content_length_chunked_and_reuse(
    server: tuple[list[Answer], list[int], str],
) -> None:
    script, connections, location = server
    pool = KeepAlivePool()
    script.append(fixed(b'{"token": "a"}'))
    script.append(
        lambda _: (
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
            b'4\r\n{"x"\r\n3;ext=1\r\n: 1\r\n1\r\n}\r\n0\r\n\r\n'
        )
    )
    seen: list[bytes] = []

    def recording(request: bytes) -> bytes | None:
        seen.append(request)
        return fixed(b"ok")(request)

    script.append(recording)
    first = await pool.request("GET", location, "/input_endpoints/t.c/completion_token")
    assert (first.status, first.body, first.content_type) == (200, b'{"token": "a"}',
                                                               "application/json")  # fmt: skip
    second = await pool.request("GET", location, "/stats")
    assert (second.status, second.body) == (404, b'{"x": 1}')
    third = await pool.request("POST", location, "/x?y=1", b"payload", {"X-A": "1"})
    assert third.body == b"ok"
    assert seen[0].startswith(b"POST /x?y=1 HTTP/1.1\r\n")
    assert b"X-A: 1\r\n" in seen[0]
    assert seen[0].endswith(b"\r\n\r\npayload")
    assert len(connections) == 1  # one connection, kept alive across the three calls
    pool.close()


async def test_close_delimited_answers_and_closed_idle_connections(
    server: tuple[list[Answer], list[int], str],
) -> None:
    script, connections, location = server
    pool = KeepAlivePool()
    script.append(lambda _: b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
    answer = await pool.request("GET", location, "/a")
    assert answer.body == b"until the end"
    script.append(fixed(b"1"))
    assert (await pool.request("GET", location, "/b")).body == b"1"
    # The server drops the idle connection on the next request: a GET is retried on a new one.
    script.append(lambda _: None)
    script.append(fixed(b"2"))
    assert (await pool.request("GET", location, "/c")).body == b"2"
    assert len(connections) == 3
    pool.close()


async def test_garbage_and_timeouts_never_poison_the_pool(
    server: tuple[list[Answer], list[int], str],
) -> None:
    script, _, location = server
    pool = KeepAlivePool()
    script.append(lambda _: b"SMTP ready\r\n\r\n")
    with pytest.raises(HttpProtocolError):
        await pool.request("GET", location, "/a")
    script.append(lambda _: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await pool.request("GET", location, "/slow")
    script.append(fixed(b"fresh"))
    assert (await pool.request("GET", location, "/after")).body == b"fresh"
    pool.close()
    with pytest.raises(ConnectionRefusedError):
        await pool.request("GET", "127.0.0.1:1", "/nobody")
