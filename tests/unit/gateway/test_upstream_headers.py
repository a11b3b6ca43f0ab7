"""What crosses the gateway: no hop-by-hop headers, no credentials, no routing headers."""

from __future__ import annotations

from multidict import CIMultiDict, CIMultiDictProxy

from sluice.gateway.upstream import request_headers_for_pod, response_headers_for_client


def test_request_headers_drop_hop_by_hop_credentials_and_connection_tokens() -> None:
    headers = CIMultiDict(
        {
            "Authorization": "Bearer secret",
            "Connection": "keep-alive, X-Private",
            "X-Private": "also hop-by-hop (named by Connection)",
            "Keep-Alive": "timeout=5",
            "Transfer-Encoding": "chunked",
            "TE": "trailers",
            "Upgrade": "h2c",
            "Proxy-Authorization": "Basic x",
            "Host": "gateway:8080",
            "Feldera-Tenant": "team-a",
            "Content-Type": "application/json",
            "User-Agent": "feldera-python-sdk/v1",
            "X-Request-Id": "42",
        }
    )
    forwarded = request_headers_for_pod(headers)
    assert dict(forwarded) == {
        "Content-Type": "application/json",
        "User-Agent": "feldera-python-sdk/v1",
        "X-Request-Id": "42",
    }


def test_response_headers_drop_framing() -> None:
    headers = CIMultiDictProxy(
        CIMultiDict(
            {
                "Content-Type": "application/json",
                "Content-Length": "10",
                "Transfer-Encoding": "chunked",
                "Connection": "close",
                "X-Pod": "1",
            }
        )
    )
    assert dict(response_headers_for_client(headers)) == {
        "Content-Type": "application/json",
        "X-Pod": "1",
    }
