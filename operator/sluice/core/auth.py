"""Layer 1 (core, pure): roles, who may call what, and the API-key format.

Feldera's RBAC: roles `read < write < admin`, a minimum role per route (a completion token
is a *write* even though it is a GET). API keys are `apikey:` + 128 alphanumerics; only the
SHA-256 of the whole key, standard base64 with padding, is ever stored.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import string
from dataclasses import dataclass, field
from typing import Literal

Role = Literal["read", "write", "admin"]
ROLES: tuple[Role, ...] = ("read", "write", "admin")

API_KEY_PREFIX = "apikey:"
API_KEY_LENGTH = 128
API_KEY_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,100}$")
_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Principal:
    """Who is calling, as established by one authentication mechanism."""

    subject: str
    mechanism: Literal["none", "apikey", "jwt", "serviceaccount"]
    role: Role | None = None
    """The granted role; None when each request is authorized elsewhere (RBAC reviews)."""
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredApiKey:
    """What is kept of an API key: never the key itself."""

    name: str
    role: Role
    hash: str
    created_at: str = ""
    namespace: str = ""
    """The namespace whose pipelines the key may reach; "" for every one (local files)."""


@dataclass(frozen=True)
class ReviewedUser:
    """The user a Kubernetes TokenReview established."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, list[str]] = field(default_factory=dict)


def role_allows(granted: Role, required: Role) -> bool:
    """Whether `granted` is at least `required` in `read < write < admin`."""
    return ROLES.index(granted) >= ROLES.index(required)


def parse_role(value: str) -> Role:
    """A role name; raises ValueError for anything else."""
    for role in ROLES:
        if value == role:
            return role
    raise ValueError(f"unknown role {value!r} (expected one of {', '.join(ROLES)})")


def generate_api_key() -> str:
    """A new API key: `apikey:` + 128 random alphanumerics."""
    return API_KEY_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(API_KEY_LENGTH))


def hash_api_key(key: str) -> str:
    """SHA-256 of the whole key (prefix included), standard base64 with padding, as Feldera."""
    return base64.b64encode(hashlib.sha256(key.encode()).digest()).decode("ascii")


def looks_like_api_key(token: str) -> bool:
    """Whether a bearer token is meant as an API key (Feldera dispatches on the prefix)."""
    return token.startswith(API_KEY_PREFIX)


def check_api_key_name(name: str) -> str:
    """The name, if it is a valid API-key name (Feldera's pattern); raises ValueError."""
    if not API_KEY_NAME_PATTERN.match(name):
        raise ValueError(f"invalid API key name {name!r}: use 1-100 letters, digits, '_' or '-'")
    return name


RBAC_VERBS: dict[Role, str] = {"read": "get", "write": "update", "admin": "patch"}
"""The verb on `pipelines.sluice.dev` a ServiceAccount needs for a route of each role
(listing pipelines needs `list`)."""

API_KEY_LABEL = "sluice.dev/api-key"
"""Label on the Secrets that hold API-key hashes."""
