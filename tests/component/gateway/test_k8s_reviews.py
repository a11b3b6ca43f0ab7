"""TokenReview, SubjectAccessReview and Secret-backed API keys through the official
`kubernetes` client, against a stand-in API server on loopback that records what it is sent
(the e2e tier runs the same code against a real kube-apiserver)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from kubernetes import client

from sluice.core.auth import ReviewedUser, generate_api_key, hash_api_key
from sluice.k8s.apikey_store import SecretApiKeyStore, build_secret, parse_secret, secret_name
from sluice.k8s.reviews import KubernetesReviewer


class ApiServerStandIn:
    def __init__(self) -> None:
        self.bodies: list[tuple[str, dict[str, Any]]] = []
        self.secrets: dict[str, list[dict[str, Any]]] = {}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/apis/authentication.k8s.io/v1/tokenreviews", self.token_review)
        app.router.add_post(
            "/apis/authorization.k8s.io/v1/subjectaccessreviews", self.access_review
        )
        app.router.add_get("/api/v1/namespaces/{namespace}/secrets", self.list_secrets)
        app.router.add_post("/api/v1/namespaces/{namespace}/secrets", self.create_secret)
        return app

    async def token_review(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.bodies.append(("tokenreview", body))
        known = body["spec"]["token"] == "good"
        status: dict[str, Any] = {"authenticated": known}
        if known:
            status["user"] = {
                "username": "system:serviceaccount:ns:loader",
                "uid": "u-1",
                "groups": ["system:serviceaccounts"],
            }
        return web.json_response({**body, "status": status}, status=201)

    async def access_review(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.bodies.append(("sar", body))
        allowed = body["spec"]["resourceAttributes"]["verb"] == "get"
        return web.json_response({**body, "status": {"allowed": allowed}}, status=201)

    async def list_secrets(self, request: web.Request) -> web.Response:
        namespace = request.match_info["namespace"]
        selector = request.query.get("labelSelector")
        assert selector == "sluice.dev/api-key=true"
        return web.json_response(
            {
                "apiVersion": "v1",
                "kind": "SecretList",
                "metadata": {},
                "items": self.secrets.get(namespace, []),
            }
        )

    async def create_secret(self, request: web.Request) -> web.Response:
        body = await request.json()
        namespace = request.match_info["namespace"]
        data = {k: base64.b64encode(v.encode()).decode() for k, v in body["stringData"].items()}
        stored = {**body, "data": data, "metadata": {**body["metadata"], "namespace": namespace}}
        stored.pop("stringData")
        self.secrets.setdefault(namespace, []).append(stored)
        return web.json_response(stored, status=201)


@pytest.fixture
async def api() -> AsyncIterator[tuple[ApiServerStandIn, client.ApiClient]]:
    standin = ApiServerStandIn()
    server = TestServer(standin.app(), host="127.0.0.1")
    await server.start_server()
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{server.port}"
    api_client = client.ApiClient(configuration)
    yield standin, api_client
    api_client.close()  # type: ignore[no-untyped-call]
    await server.close()


async def test_token_and_access_reviews(api: tuple[ApiServerStandIn, client.ApiClient]) -> None:
    standin, api_client = api
    reviewer = KubernetesReviewer(api_client, audiences=["sluice"])
    assert await reviewer.review_token("bad") is None
    user = await reviewer.review_token("good")
    assert user == ReviewedUser(
        "system:serviceaccount:ns:loader", "u-1", ("system:serviceaccounts",), {}
    )
    assert await reviewer.review_access(user, "ns", "get", "orders") is True
    assert await reviewer.review_access(user, "ns", "update", "orders") is False
    kind, token_review = standin.bodies[0]
    assert kind == "tokenreview"
    assert token_review["spec"] == {"token": "bad", "audiences": ["sluice"]}
    kind, access_review = standin.bodies[2]
    assert kind == "sar"
    assert access_review["spec"]["user"] == "system:serviceaccount:ns:loader"
    assert access_review["spec"]["groups"] == ["system:serviceaccounts"]
    assert access_review["spec"]["resourceAttributes"] == {
        "group": "sluice.dev",
        "resource": "pipelines",
        "verb": "get",
        "namespace": "ns",
        "name": "orders",
    }


async def test_api_keys_in_labelled_secrets(
    api: tuple[ApiServerStandIn, client.ApiClient],
) -> None:
    standin, api_client = api
    store = SecretApiKeyStore(api_client, frozenset({"ns"}), miss_refresh_seconds=0)
    key = generate_api_key()
    # `add` is the command line's blocking call; the stand-in shares this event loop.
    stored = await asyncio.to_thread(store.add, "ns", "loader", "write", hash_api_key(key))
    (secret,) = standin.secrets["ns"]
    assert secret["metadata"]["name"] == secret_name("loader") == "sluice-apikey-loader"
    assert secret["metadata"]["labels"]["sluice.dev/api-key"] == "true"
    assert key not in str(secret)
    found = await store.lookup(hash_api_key(key))
    assert found is not None
    assert (found.name, found.role, found.namespace) == ("loader", "write", "ns")
    assert found.hash == stored.hash
    assert await store.lookup(hash_api_key(generate_api_key())) is None


def test_secret_round_trip_and_junk() -> None:
    manifest = build_secret("ns", parse_secret({}, "ns") or _stored())
    data = {k: base64.b64encode(v.encode()).decode() for k, v in manifest["stringData"].items()}
    parsed = parse_secret(data, "ns")
    assert parsed is not None
    assert (parsed.name, parsed.role) == ("k", "read")
    assert parse_secret({"name": base64.b64encode(b"x").decode()}) is None
    assert parse_secret(None) is None


def _stored() -> Any:
    from sluice.core.auth import StoredApiKey

    return StoredApiKey("k", "read", "h=", "2026-01-01T00:00:00+00:00", "ns")
