"""Layer 2 (k8s): `HttpKubeApi`, the real KubeApi, over aiohttp.

Credentials come from the `kubernetes` package's config loaders (the in-cluster service
account, else the kubeconfig named by KUBECONFIG or ~/.kube/config), so Sluice accepts
exactly what kubectl accepts; requests go through one shared aiohttp session, which keeps
every call asynchronous and cheap for hundreds of objects.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from sluice.k8s.api import (
    EVENT,
    FIELD_MANAGER,
    Kind,
    KubeApiError,
    Page,
    WatchEvent,
    WatchExpired,
    kind_of,
)

logger = logging.getLogger(__name__)

WATCH_SECONDS = 240
"""Server-side watch timeout; the informer re-watches from the last resourceVersion."""


@dataclass(frozen=True)
class Credentials:
    """Where the API server is and how to authenticate to it."""

    host: str
    ssl_context: ssl.SSLContext | None
    authorization: str | None
    default_namespace: str


def load_credentials(context: str | None = None) -> Credentials:
    """Credentials from the in-cluster service account, else from the kubeconfig."""
    from kubernetes import client, config

    configuration = client.Configuration()
    namespace = "default"
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as file:  # noqa: PTH123
            namespace = file.read().strip() or namespace
    except config.ConfigException:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            context=context, client_configuration=configuration
        )
        _, active = config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
        namespace = (active or {}).get("context", {}).get("namespace") or namespace
    ssl_context: ssl.SSLContext | None = None
    if configuration.host.startswith("https"):
        ssl_context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
        if configuration.cert_file:
            ssl_context.load_cert_chain(configuration.cert_file, configuration.key_file)
        if not configuration.verify_ssl:
            ssl_context.check_hostname = False
            ssl_context.verify_mode = ssl.CERT_NONE
    # The kubernetes client files a kubeconfig or in-cluster token under "BearerToken"
    # (older releases used "authorization").
    authorization = (
        configuration.get_api_key_with_prefix("BearerToken", alias="authorization") or None
    )
    return Credentials(configuration.host.rstrip("/"), ssl_context, authorization, namespace)


class HttpKubeApi:
    """KubeApi over HTTP with one aiohttp session."""

    def __init__(self, credentials: Credentials, session: aiohttp.ClientSession) -> None:
        """Any session works: credentials travel with every request, not with the session."""
        self.credentials = credentials
        self.session = session
        self._headers = {"Accept": "application/json"}
        if credentials.authorization:
            self._headers["Authorization"] = credentials.authorization
        self._ssl: ssl.SSLContext | bool = credentials.ssl_context or False
        self.calls: dict[str, int] = {}
        """Requests made, by verb; read by benchmarks and metrics."""

    @classmethod
    def create(cls, credentials: Credentials) -> HttpKubeApi:
        """A client with its own session (close it with `close`)."""
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=32),
            timeout=aiohttp.ClientTimeout(total=30, sock_connect=10),
        )
        return cls(credentials, session)

    async def close(self) -> None:
        """Close the session."""
        await self.session.close()

    def _count(self, verb: str) -> None:
        self.calls[verb] = self.calls.get(verb, 0) + 1

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        missing_ok: bool = False,
    ) -> dict[str, Any] | None:
        self._count(method if "status" not in path.rsplit("/", 1)[-1] else f"{method} status")
        data = json.dumps(body) if body is not None else None
        headers = dict(self._headers)
        if data is not None:
            headers["Content-Type"] = content_type
        async with self.session.request(
            method,
            self.credentials.host + path,
            params=params,
            data=data,
            headers=headers,
            ssl=self._ssl,
            timeout=aiohttp.ClientTimeout(total=30, sock_connect=10),
        ) as response:
            payload = await response.read()
            if response.status == 404 and missing_ok:
                return None
            if response.status >= 300:
                raise KubeApiError(response.status, _message(payload))
            parsed = json.loads(payload) if payload else {}
            return parsed if isinstance(parsed, dict) else {}

    async def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._request("GET", kind.path(namespace, name), missing_ok=True)

    async def list(
        self, kind: Kind, namespace: str | None, label_selector: str | None = None
    ) -> Page:
        params = {"labelSelector": label_selector} if label_selector else None
        answer = await self._request("GET", kind.path(namespace), params=params) or {}
        items = answer.get("items") or []
        for item in items:
            item.setdefault("apiVersion", kind.api_version)
            item.setdefault("kind", kind.kind)
        return Page(items, str(answer.get("metadata", {}).get("resourceVersion", "")))

    async def watch(
        self,
        kind: Kind,
        namespace: str | None,
        resource_version: str,
        label_selector: str | None = None,
    ) -> AsyncIterator[WatchEvent]:
        self._count("WATCH")
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_SECONDS),
        }
        if label_selector:
            params["labelSelector"] = label_selector
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=WATCH_SECONDS + 30)
        async with self.session.get(
            self.credentials.host + kind.path(namespace),
            params=params,
            headers=self._headers,
            ssl=self._ssl,
            timeout=timeout,
        ) as response:
            if response.status == 410:
                raise WatchExpired(kind.kind)
            if response.status >= 300:
                raise KubeApiError(response.status, _message(await response.read()))
            async for line in response.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                event_type, obj = event.get("type"), event.get("object") or {}
                if event_type == "ERROR":
                    if obj.get("code") == 410:
                        raise WatchExpired(kind.kind)
                    raise KubeApiError(int(obj.get("code") or 500), str(obj.get("message")))
                if event_type == "BOOKMARK":
                    continue
                if event_type in ("ADDED", "MODIFIED", "DELETED"):
                    yield WatchEvent(event_type, obj)

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        metadata = manifest["metadata"]
        answer = await self._request(
            "PATCH",
            kind_of(manifest).path(metadata["namespace"], metadata["name"]),
            params={"fieldManager": FIELD_MANAGER, "force": "true"},
            body=manifest,
            content_type="application/apply-patch+yaml",
        )
        return answer or {}

    async def delete(self, kind: Kind, namespace: str, name: str) -> bool:
        answer = await self._request(
            "DELETE",
            kind.path(namespace, name),
            body={"propagationPolicy": "Background"},
            missing_ok=True,
        )
        return answer is not None

    async def patch(
        self, kind: Kind, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any] | None:
        return await self._request(
            "PATCH",
            kind.path(namespace, name),
            body=patch,
            content_type="application/merge-patch+json",
            missing_ok=True,
        )

    async def patch_status(
        self, kind: Kind, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any] | None:
        return await self._request(
            "PATCH",
            kind.path(namespace, name, "status"),
            body={"status": status},
            content_type="application/merge-patch+json",
            missing_ok=True,
        )

    async def create_event(self, event: dict[str, Any]) -> None:
        namespace = event["metadata"]["namespace"]
        await self._request("POST", EVENT.path(namespace), body=event)


def _message(payload: bytes) -> str:
    try:
        document = json.loads(payload)
    except ValueError:
        return payload.decode("utf-8", "replace")[:500]
    if isinstance(document, dict):
        return str(document.get("message", document))[:500]
    return str(document)[:500]
