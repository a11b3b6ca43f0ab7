"""Layer 2 (k8s): API keys kept in Secrets labelled `sluice.dev/api-key` (hashes only).

One Secret per key, named `sluice-apikey-<name>`, with `name`, `role` and `hash` (SHA-256 of
the whole key, standard base64). The gateway keeps the hashes in memory, re-listing at most
every `refresh_seconds`, and at once (rate-limited) when it meets an unknown hash, so a key
created while it runs works within seconds without an API call per request.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sluice.core.auth import API_KEY_LABEL, Role, StoredApiKey, check_api_key_name, parse_role
from sluice.core.naming import LABEL_MANAGED_BY, LABEL_PART_OF, MANAGER


def secret_name(key_name: str) -> str:
    """The Secret that holds one key's hash."""
    return f"sluice-apikey-{key_name.lower().replace('_', '-')}"


def build_secret(namespace: str, key: StoredApiKey) -> dict[str, Any]:
    """The Secret manifest for a stored key."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": secret_name(key.name),
            "namespace": namespace,
            "labels": {API_KEY_LABEL: "true", LABEL_MANAGED_BY: MANAGER, LABEL_PART_OF: "sluice"},
        },
        "stringData": {
            "name": key.name,
            "role": key.role,
            "hash": key.hash,
            "created_at": key.created_at,
        },
    }


def parse_secret(
    data: Mapping[str, bytes | str] | None, namespace: str = ""
) -> StoredApiKey | None:
    """The stored key in a Secret's (base64) data, or None when it is not one."""
    if not data:
        return None
    try:
        fields = {key: base64.b64decode(value).decode() for key, value in data.items()}
        return StoredApiKey(
            name=fields["name"],
            role=parse_role(fields["role"]),
            hash=fields["hash"],
            created_at=fields.get("created_at", ""),
            namespace=namespace,
        )
    except (KeyError, ValueError):
        return None


class SecretApiKeyStore:
    """API-key hashes from labelled Secrets of some namespaces (None: all).

    A key opens the pipelines of the namespace its Secret is in, and no others.
    """

    def __init__(
        self,
        api_client: Any,
        namespaces: frozenset[str] | None,
        *,
        refresh_seconds: float = 30.0,
        miss_refresh_seconds: float = 2.0,
    ) -> None:
        from kubernetes import client

        self.namespaces = namespaces
        self.refresh_seconds = refresh_seconds
        self.miss_refresh_seconds = miss_refresh_seconds
        self._core = client.CoreV1Api(api_client)
        self._by_hash: dict[str, StoredApiKey] = {}
        self._listed_at = float("-inf")
        self._lock = asyncio.Lock()

    def _list(self) -> dict[str, StoredApiKey]:
        selector = f"{API_KEY_LABEL}=true"
        if self.namespaces is None:
            items = list(self._core.list_secret_for_all_namespaces(label_selector=selector).items)
        else:
            items = [
                item
                for namespace in sorted(self.namespaces)
                for item in self._core.list_namespaced_secret(
                    namespace, label_selector=selector
                ).items
            ]
        keys = (
            parse_secret(item.data, (item.metadata.namespace if item.metadata else None) or "")
            for item in items
        )
        return {key.hash: key for key in keys if key is not None}

    async def _refresh(self, older_than: float) -> None:
        async with self._lock:
            if time.monotonic() - self._listed_at < older_than:
                return
            self._by_hash = await asyncio.to_thread(self._list)
            self._listed_at = time.monotonic()

    async def lookup(self, key_hash: str) -> StoredApiKey | None:
        """The stored key with this hash, or None."""
        await self._refresh(self.refresh_seconds)
        if key_hash not in self._by_hash:
            await self._refresh(self.miss_refresh_seconds)
        return self._by_hash.get(key_hash)

    def add(self, namespace: str, name: str, role: Role, key_hash: str) -> StoredApiKey:
        """Create the Secret for a new key (blocking; for the command line)."""
        check_api_key_name(name)
        created = datetime.now(UTC).isoformat(timespec="seconds")
        stored = StoredApiKey(name, role, key_hash, created, namespace)
        from kubernetes import client

        manifest = build_secret(namespace, stored)
        secret = client.V1Secret(
            api_version="v1",
            kind="Secret",
            type="Opaque",
            metadata=client.V1ObjectMeta(**manifest["metadata"]),
            string_data=manifest["stringData"],
        )
        self._core.create_namespaced_secret(namespace, secret)
        return stored
