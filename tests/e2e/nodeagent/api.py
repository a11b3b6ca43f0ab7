"""Test support (e2e node agent): the few Kubernetes API calls the node agent makes.

A thin aiohttp client (bearer token from a kubeconfig, TLS verified against its CA) so the
agent has no dependency beyond what the project already installs.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml


class ApiStatusError(Exception):
    """The API server answered with an error status."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status


@dataclass(frozen=True)
class Credentials:
    server: str
    token: str
    ca_file: Path

    @classmethod
    def from_kubeconfig(cls, path: Path) -> Credentials:
        config = yaml.safe_load(path.read_text())
        context_name = config["current-context"]
        context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
        return cls(cluster["server"], user["token"], Path(cluster["certificate-authority"]))


class KubeApi:
    """JSON calls against one API server."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self._ssl = ssl.create_default_context(cafile=str(credentials.ca_file))
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> KubeApi:
        self._session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {self.credentials.token}"},
            connector=aiohttp.TCPConnector(ssl=self._ssl),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "use KubeApi as an async context manager"
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
    ) -> Any:
        data = None if body is None else json.dumps(body)
        async with self.session.request(
            method,
            self.credentials.server + path,
            data=data,
            params=params,
            headers={"Content-Type": content_type},
            timeout=aiohttp.ClientTimeout(total=30),
        ) as response:
            text = await response.text()
            if response.status >= 400:
                raise ApiStatusError(response.status, text)
            return json.loads(text) if text else None

    async def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        return await self.request("GET", path, params=params)

    async def merge_patch(self, path: str, body: Any) -> Any:
        return await self.request("PATCH", path, body, "application/merge-patch+json")

    async def watch(self, path: str, params: dict[str, str]) -> AsyncIterator[dict[str, Any]]:
        """Events of one watch request, until the server closes it."""
        async with self.session.get(
            self.credentials.server + path,
            params={**params, "watch": "true", "allowWatchBookmarks": "true"},
            timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
        ) as response:
            if response.status >= 400:
                raise ApiStatusError(response.status, await response.text())
            async for line in response.content:
                if line.strip():
                    event: dict[str, Any] = json.loads(line)
                    yield event
