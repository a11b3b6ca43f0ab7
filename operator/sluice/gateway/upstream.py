"""Layer 3 (gateway): forward a client's request to a pipeline process, streaming both ways.

What is never forwarded: hop-by-hop headers, `Host`, `Authorization` (the pod must never
see the caller's credentials, as in Feldera) and `Feldera-Tenant`. The body is streamed to
the pod while it is counted, so an oversized body stops with 413 without being buffered.
The pod's answer is streamed back with its status and headers, minus hop-by-hop ones.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from sluice.core import errors
from sluice.core.errors import ApiError

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
NOT_FORWARDED_TO_POD = HOP_BY_HOP | {
    "host",
    "authorization",
    "feldera-tenant",
    "content-length",
    "accept-encoding",
    "cookie",
}
NOT_RETURNED_TO_CLIENT = HOP_BY_HOP | {"content-length", "content-encoding", "server", "date"}

CHUNK_BYTES = 64 * 1024


class BodyTooLarge(Exception):
    """The request body exceeded the gateway's limit."""


def payload_too_large(limit: int) -> ApiError:
    """413 in Feldera's error shape."""
    return ApiError(
        413,
        "PayloadTooLarge",
        f"request body exceeds the gateway's limit of {limit} bytes",
        {"limit_bytes": limit},
    )


def request_headers_for_pod(headers: Mapping[str, str]) -> CIMultiDict[str]:
    """The client's headers minus hop-by-hop ones, credentials and routing headers."""
    connection_tokens = {
        token.strip().lower() for token in headers.get("Connection", "").split(",") if token
    }
    kept: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in NOT_FORWARDED_TO_POD or lowered in connection_tokens:
            continue
        kept.add(name, value)
    return kept


def response_headers_for_client(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    """The pod's headers minus hop-by-hop ones (aiohttp sets framing itself)."""
    return CIMultiDict(
        (name, value)
        for name, value in headers.items()
        if name.lower() not in NOT_RETURNED_TO_CLIENT
    )


def check_declared_length(request: web.Request, limit: int) -> None:
    """Reject early when Content-Length already says the body is too large."""
    if request.content_length is not None and request.content_length > limit:
        raise payload_too_large(limit)


class LimitedBody:
    """The request body in chunks; stops with BodyTooLarge past `limit` bytes.

    aiohttp writes a streamed body in its own task and may wrap what the generator raises,
    so the verdict is also kept in `exceeded` for the caller to consult.
    """

    def __init__(self, request: web.Request, limit: int) -> None:
        self.request = request
        self.limit = limit
        self.exceeded = False

    async def chunks(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self.request.content.iter_chunked(CHUNK_BYTES):
            seen += len(chunk)
            if seen > self.limit:
                self.exceeded = True
                raise BodyTooLarge
            yield chunk


async def stream_to_pod(
    request: web.Request,
    session: aiohttp.ClientSession,
    *,
    pipeline: str,
    url: str,
    method: str,
    total_seconds: float | None,
    body_limit: int,
) -> web.StreamResponse:
    """Proxy one request to the pod and stream its answer back.

    Transport failures before the answer starts become 503 PipelineInteractionUnreachable;
    after it started the connection is simply closed (the status is already sent).
    """
    check_declared_length(request, body_limit)
    timeout = aiohttp.ClientTimeout(total=total_seconds, sock_connect=10.0)
    body = LimitedBody(request, body_limit)
    described = f"{method} {url.split('?', 1)[0]}"
    try:
        upstream = await session.request(
            method,
            url,
            data=body.chunks() if request.body_exists else None,
            headers=request_headers_for_pod(request.headers),
            timeout=timeout,
            auto_decompress=False,
        )
    except BodyTooLarge:
        raise payload_too_large(body_limit) from None
    except TimeoutError:
        if body.exceeded:
            raise payload_too_large(body_limit) from None
        raise errors.pipeline_unreachable(
            pipeline, described, f"timeout after {total_seconds:g} s"
        ) from None
    except aiohttp.ClientError as error:
        if body.exceeded:
            raise payload_too_large(body_limit) from None
        raise errors.pipeline_unreachable(pipeline, described, str(error) or repr(error)) from None
    if body.exceeded:
        upstream.close()
        raise payload_too_large(body_limit)
    async with upstream:
        response = web.StreamResponse(
            status=upstream.status,
            reason=upstream.reason,
            headers=response_headers_for_client(upstream.headers),
        )
        if upstream.content_length is not None:
            response.content_length = upstream.content_length
        # Headers go out at once: an egress stream may stay silent until the view changes.
        await response.prepare(request)
        try:
            async for chunk in upstream.content.iter_chunked(CHUNK_BYTES):
                await response.write(chunk)
        except (TimeoutError, aiohttp.ClientError, ConnectionResetError):
            # The client already has the status line: all we can do is end the stream.
            return response
        await response.write_eof()
        return response
