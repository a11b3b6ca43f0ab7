"""Layer 3 (gateway): API keys kept in a local file (local mode), and the store protocol.

Only `{name, role, hash}` is stored, the hash being SHA-256 of the whole key in standard
base64 (`sluice.core.auth.hash_api_key`). The file is re-read when it changes, so a key
created with `sluice apikey create` while the gateway runs works at once. On Kubernetes the
same protocol is served from labelled Secrets (`sluice.k8s.apikey_store`).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from sluice.core.auth import Role, StoredApiKey, check_api_key_name, parse_role


class ApiKeyStore(Protocol):
    """Where the gateway looks API-key hashes up."""

    async def lookup(self, key_hash: str) -> StoredApiKey | None:
        """The stored key with this hash, or None."""
        ...


class FileApiKeyStore:
    """API keys in a JSON file: `{"api_keys": [{"name", "role", "hash", "created_at"}]}`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._by_hash: dict[str, StoredApiKey] = {}

    def load(self) -> list[StoredApiKey]:
        """Every stored key (an absent file holds none)."""
        try:
            document = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as error:
            raise ValueError(f"{self.path}: not a readable API-key file: {error}") from None
        keys = []
        for item in document.get("api_keys", []):
            keys.append(
                StoredApiKey(
                    name=str(item["name"]),
                    role=parse_role(str(item["role"])),
                    hash=str(item["hash"]),
                    created_at=str(item.get("created_at", "")),
                )
            )
        return keys

    def add(self, name: str, role: Role, key_hash: str) -> StoredApiKey:
        """Store a new key's hash; raises ValueError when the name is taken or invalid."""
        check_api_key_name(name)
        keys = self.load()
        if any(key.name == name for key in keys):
            raise ValueError(f"an API key named {name!r} already exists in {self.path}")
        stored = StoredApiKey(name, role, key_hash, datetime.now(UTC).isoformat(timespec="seconds"))
        keys.append(stored)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        document = {"api_keys": [key.__dict__ for key in keys]}
        temporary = self.path.with_name(self.path.name + ".tmp")
        # Only hashes are in the file, but there is no reason for anyone else to read it.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle, indent=2)
        temporary.replace(self.path)
        return stored

    async def lookup(self, key_hash: str) -> StoredApiKey | None:
        """Look a hash up, re-reading the file when it changed."""
        try:
            status = self.path.stat()
            stamp: tuple[int, int] | None = (status.st_mtime_ns, status.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            self._by_hash = {key.hash: key for key in self.load()}
            self._stamp = stamp
        return self._by_hash.get(key_hash)
