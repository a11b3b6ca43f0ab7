"""Authentication and roles at the gateway: real API keys, real signed JWTs (RS256 and ES256)
checked against a JWKS server on loopback, and Kubernetes ServiceAccount tokens through a
reviewer stand-in (a TokenReview needs an API server; the e2e tier runs the real one).

The pipeline "pod" here is a recording aiohttp app, so the tests can also see exactly which
headers reach it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from sluice.core.auth import ReviewedUser, generate_api_key, hash_api_key
from sluice.core.directory import PipelineEntry
from sluice.core.tokens import CompletionToken
from sluice.gateway.apikeys import FileApiKeyStore
from sluice.gateway.app import GatewaySettings, create_app
from sluice.gateway.auth import (
    ApiKeyAuthenticator,
    Authenticator,
    OidcAuthenticator,
    OidcSettings,
    ServiceAccountAuthenticator,
)
from sluice.local.directory import LocalDirectory

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[[list[Authenticator]], Awaitable[Client]]
ISSUER = "https://issuer.example"
AUDIENCE = "feldera-api"
TOKEN = CompletionToken("00000000-0000-4000-8000-000000000001", 0, 0).encode()


class RecordingPod:
    """A pipeline process that records the headers it receives."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.answer)
        return app

    async def answer(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/completion_frontier":
            return web.Response(status=404)
        self.headers.append(dict(request.headers))
        await request.read()
        if "completion_token" in request.path or request.path.startswith("/ingress"):
            return web.json_response({"token": TOKEN})
        if request.path == "/completion_status":
            return web.json_response({"status": "complete", "step": 1})
        return web.json_response({"global_metrics": {}})


@pytest.fixture
async def pod() -> AsyncIterator[tuple[RecordingPod, str]]:
    recorder = RecordingPod()
    server = TestServer(recorder.app(), host="127.0.0.1")
    await server.start_server()
    yield recorder, f"127.0.0.1:{server.port}"
    await server.close()


@pytest.fixture
async def make_client(pod: tuple[RecordingPod, str]) -> AsyncIterator[MakeClient]:
    clients: list[Client] = []
    directory = LocalDirectory("default")
    directory.publish(
        PipelineEntry(
            namespace="default",
            name="p",
            program_code="",
            deployment_status="Running",
            desired_status="Running",
            location=pod[1],
        )
    )

    async def make(authenticators: list[Authenticator]) -> Client:
        settings = GatewaySettings(namespace="default", version="1", authenticators=authenticators)
        client = TestClient(TestServer(create_app(settings, directory), host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


TOKEN_ROUTE = "/v0/pipelines/p/tables/t/connectors/c/completion_token"
STATUS_ROUTE = f"/v0/pipelines/p/completion_status?token={TOKEN}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def expect_401(client: Client, headers: dict[str, str]) -> None:
    response = await client.get(TOKEN_ROUTE, headers=headers)
    assert response.status == 401, await response.text()
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await response.json())["error_code"] == "AuthenticationFailed"


# --- API keys --------------------------------------------------------------------------------


async def test_api_keys_and_roles(tmp_path: Path, make_client: MakeClient) -> None:
    store = FileApiKeyStore(tmp_path / "keys.json")
    reader, writer = generate_api_key(), generate_api_key()
    store.add("reader", "read", hash_api_key(reader))
    store.add("writer", "write", hash_api_key(writer))
    assert reader not in (tmp_path / "keys.json").read_text()
    client = await make_client([ApiKeyAuthenticator(store)])

    await expect_401(client, {})
    await expect_401(client, bearer(generate_api_key()))
    await expect_401(client, {"Authorization": f"Basic {writer}"})
    assert (await client.get(STATUS_ROUTE, headers=bearer(reader))).status == 200
    forbidden = await client.get(TOKEN_ROUTE, headers=bearer(reader))
    assert forbidden.status == 403
    assert (await forbidden.json())["error_code"] == "InsufficientPermissions"
    assert (await client.get(TOKEN_ROUTE, headers=bearer(writer))).status == 200
    ingress = await client.post("/v0/pipelines/p/ingress/t", data=b"{}", headers=bearer(reader))
    assert ingress.status == 403

    # Public routes; everything else under /v0 needs credentials, /v0/config included.
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/v0/config/authentication")).status == 200
    assert (await client.get("/v0/config")).status == 401

    # A key created while the gateway runs works at once (the file is re-read).
    late = generate_api_key()
    store.add("late", "write", hash_api_key(late))
    assert (await client.get(TOKEN_ROUTE, headers=bearer(late))).status == 200


async def test_credentials_and_hop_by_hop_headers_never_reach_the_pod(
    tmp_path: Path, make_client: MakeClient, pod: tuple[RecordingPod, str]
) -> None:
    store = FileApiKeyStore(tmp_path / "keys.json")
    key = generate_api_key()
    store.add("writer", "write", hash_api_key(key))
    client = await make_client([ApiKeyAuthenticator(store)])
    headers = {
        **bearer(key),
        "Connection": "keep-alive, X-Secret-Hop",
        "X-Secret-Hop": "1",
        "Proxy-Authorization": "Basic eA==",
        "Feldera-Tenant": "default",
        "X-Request-Id": "r-1",
    }
    assert (await client.get(TOKEN_ROUTE, headers=headers)).status == 200
    response = await client.post("/v0/pipelines/p/ingress/t", data=b"{}", headers=headers)
    assert response.status == 200
    recorder, _ = pod
    assert len(recorder.headers) == 2
    for seen in recorder.headers:
        lowered = {name.lower() for name in seen}
        assert "authorization" not in lowered
        assert "proxy-authorization" not in lowered
        assert "x-secret-hop" not in lowered
        assert "feldera-tenant" not in lowered
    assert {name.lower(): value for name, value in recorder.headers[1].items()}[
        "x-request-id"
    ] == "r-1"


# --- OIDC ------------------------------------------------------------------------------------


@dataclass
class Issuer:
    """Signing keys and the JWKS they publish."""

    keys: dict[str, tuple[str, Any]] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)
    fetches: int = 0

    def add_rsa(self, kid: str) -> None:
        self.keys[kid] = ("RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def add_ec(self, kid: str) -> None:
        self.keys[kid] = ("ES256", ec.generate_private_key(ec.SECP256R1()))

    def jwks(self) -> dict[str, Any]:
        documents = []
        for kid in self.published:
            algorithm, private = self.keys[kid]
            exporter = RSAAlgorithm if algorithm == "RS256" else ECAlgorithm
            jwk = exporter.to_jwk(private.public_key(), as_dict=True)
            documents.append({**jwk, "kid": kid, "alg": algorithm, "use": "sig"})
        return {"keys": documents}

    def sign(self, kid: str, **claims: Any) -> str:
        algorithm, private = self.keys[kid]
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 300}
        body.update(claims)
        body = {key: value for key, value in body.items() if value is not None}
        return jwt.encode(body, private, algorithm=algorithm, headers={"kid": kid})

    async def serve(self, request: web.Request) -> web.Response:
        del request
        self.fetches += 1
        return web.json_response(self.jwks())


@pytest.fixture
async def oidc(make_client: MakeClient) -> AsyncIterator[tuple[Issuer, Client]]:
    issuer = Issuer()
    issuer.add_rsa("rsa-1")
    issuer.add_ec("ec-1")
    issuer.published = ["rsa-1", "ec-1"]
    app = web.Application()
    app.router.add_get("/jwks.json", issuer.serve)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    settings = OidcSettings(
        issuer=ISSUER,
        audience=AUDIENCE,
        jwks_url=f"http://127.0.0.1:{server.port}/jwks.json",
        refresh_interval_seconds=0.0,
    )
    # The authenticator's JWKS downloads share the gateway's lifetime, not a request's.
    async with aiohttp.ClientSession() as session:
        client = await make_client([OidcAuthenticator(settings, session)])
        yield issuer, client
    await server.close()


async def test_oidc_rs256_and_es256(oidc: tuple[Issuer, Client]) -> None:
    issuer, client = oidc
    for kid in ("rsa-1", "ec-1"):
        token = issuer.sign(kid, sluice_role="write")
        response = await client.get(TOKEN_ROUTE, headers=bearer(token))
        assert response.status == 200, (kid, await response.text())
    # Without the role claim a valid token gets the default role, read.
    plain = issuer.sign("rsa-1")
    assert (await client.get(STATUS_ROUTE, headers=bearer(plain))).status == 200
    assert (await client.get(TOKEN_ROUTE, headers=bearer(plain))).status == 403
    assert issuer.fetches == 1  # cached


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": int(time.time()) - 3600},  # long expired (beyond the leeway)
        {"nbf": int(time.time()) + 3600},  # not yet valid
        {"aud": "someone-else"},
        {"aud": None},
        {"exp": None},
        {"iss": "https://other.example"},
    ],
)
async def test_oidc_rejects_invalid_tokens(
    oidc: tuple[Issuer, Client], claims: dict[str, Any]
) -> None:
    issuer, client = oidc
    await expect_401(client, bearer(issuer.sign("rsa-1", sluice_role="write", **claims)))


async def test_oidc_small_leeway_and_tampering(oidc: tuple[Issuer, Client]) -> None:
    issuer, client = oidc
    recent = issuer.sign("rsa-1", sluice_role="write", exp=int(time.time()) - 5)
    assert (await client.get(TOKEN_ROUTE, headers=bearer(recent))).status == 200
    header, payload, signature = issuer.sign("rsa-1", sluice_role="read").split(".")
    forged_payload = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(payload).replace(b'"read"', b'"write"')
    ).decode()
    await expect_401(client, bearer(f"{header}.{forged_payload}.{signature}"))
    hs256 = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60}, "k" * 32)
    await expect_401(client, bearer(hs256))
    await expect_401(client, bearer("not-a-jwt"))


async def test_oidc_unknown_kid_refreshes_the_jwks(oidc: tuple[Issuer, Client]) -> None:
    issuer, client = oidc
    assert (await client.get(STATUS_ROUTE, headers=bearer(issuer.sign("rsa-1")))).status == 200
    issuer.add_rsa("rsa-2")
    unpublished = issuer.sign("rsa-2")
    await expect_401(client, bearer(unpublished))
    issuer.published.append("rsa-2")  # key rotation at the issuer
    assert (await client.get(STATUS_ROUTE, headers=bearer(unpublished))).status == 200
    assert issuer.fetches >= 2


# --- Kubernetes ServiceAccount tokens ----------------------------------------------------------


class ReviewerStandIn:
    """Answers TokenReview and SubjectAccessReview like an API server with fixed RBAC."""

    def __init__(self) -> None:
        self.tokens = {"sa-token": ReviewedUser("system:serviceaccount:default:loader", "u1")}
        self.allowed = {("system:serviceaccount:default:loader", "default", "get", "p")}
        self.token_reviews = 0
        self.access_reviews: list[tuple[str, str, str, str | None]] = []

    async def review_token(self, token: str) -> ReviewedUser | None:
        self.token_reviews += 1
        return self.tokens.get(token)

    async def review_access(
        self, user: ReviewedUser, namespace: str, verb: str, name: str | None
    ) -> bool:
        self.access_reviews.append((user.username, namespace, verb, name))
        return (user.username, namespace, verb, name) in self.allowed


async def test_service_account_tokens(make_client: MakeClient) -> None:
    reviewer = ReviewerStandIn()
    client = await make_client([ServiceAccountAuthenticator(reviewer)])
    await expect_401(client, bearer("forged"))
    assert (await client.get(STATUS_ROUTE, headers=bearer("sa-token"))).status == 200
    forbidden = await client.get(TOKEN_ROUTE, headers=bearer("sa-token"))
    assert forbidden.status == 403
    assert ("system:serviceaccount:default:loader", "default", "update", "p") in (
        reviewer.access_reviews
    )
    assert (await client.get("/v0/pipelines", headers=bearer("sa-token"))).status == 403
    assert reviewer.access_reviews[-1][2] == "list"
    reviewer.allowed.add(("system:serviceaccount:default:loader", "default", "update", "p"))
    # Decisions are cached briefly, so the new RoleBinding shows after the cache expires.
    for _ in range(3):
        await client.get(STATUS_ROUTE, headers=bearer("sa-token"))
    assert reviewer.token_reviews == 2  # "forged" once, "sa-token" once: cached


async def test_mechanisms_together_dispatch_by_token_shape(
    tmp_path: Path, make_client: MakeClient
) -> None:
    store = FileApiKeyStore(tmp_path / "keys.json")
    key = generate_api_key()
    store.add("writer", "write", hash_api_key(key))
    reviewer = ReviewerStandIn()
    client = await make_client([ApiKeyAuthenticator(store), ServiceAccountAuthenticator(reviewer)])
    assert (await client.get(TOKEN_ROUTE, headers=bearer(key))).status == 200
    assert reviewer.token_reviews == 0  # API keys never go to the API server
    assert (await client.get(STATUS_ROUTE, headers=bearer("sa-token"))).status == 200
    assert reviewer.token_reviews == 1


async def test_oidc_discovery_finds_the_jwks(make_client: MakeClient) -> None:
    issuer = Issuer()
    issuer.add_ec("ec-1")
    issuer.published = ["ec-1"]

    async def discovery(request: web.Request) -> web.Response:
        here = f"http://{request.host}"
        return web.json_response({"issuer": here, "jwks_uri": f"{here}/keys"})

    app = web.Application()
    app.router.add_get("/.well-known/openid-configuration", discovery)
    app.router.add_get("/keys", issuer.serve)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    base = f"http://127.0.0.1:{server.port}"
    try:
        async with aiohttp.ClientSession() as session:
            settings = OidcSettings(issuer=base, audience=AUDIENCE)
            client = await make_client([OidcAuthenticator(settings, session)])
            token = issuer.sign("ec-1", iss=base, sluice_role="write")
            response = await client.get(TOKEN_ROUTE, headers=bearer(token))
            assert response.status == 200, await response.text()
    finally:
        await server.close()
