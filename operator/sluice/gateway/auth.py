"""Layer 3 (gateway): who is calling (`Authorization: Bearer`), and may they call this route.

Three mechanisms can be on at once, dispatched like Feldera: a token starting `apikey:` is an
API key; a JWT whose `iss` is the configured OIDC issuer is an OIDC token; anything else goes
to Kubernetes (TokenReview, then a SubjectAccessReview per pipeline and verb). Failures are
401 `AuthenticationFailed` with `WWW-Authenticate: Bearer`; a known caller without the role
the route needs gets 403 `InsufficientPermissions`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import jwt

from sluice.core import errors
from sluice.core.auth import (
    RBAC_VERBS,
    Principal,
    ReviewedUser,
    Role,
    hash_api_key,
    looks_like_api_key,
    parse_role,
    role_allows,
)
from sluice.gateway.apikeys import ApiKeyStore

logger = logging.getLogger(__name__)


class Authenticator(Protocol):
    """One authentication mechanism."""

    name: str

    def accepts(self, token: str) -> bool:
        """Whether this mechanism is the one meant for `token`."""
        ...

    async def authenticate(self, token: str) -> Principal:
        """The caller; raises ApiError 401 when the token is not valid."""
        ...

    async def authorize(
        self, principal: Principal, required: Role, namespace: str, pipeline: str | None
    ) -> bool:
        """Whether the caller may do what needs `required` on the pipeline (or all of them)."""
        ...


class RoleAuthorizer:
    """Authorization by the role that authentication granted (API keys, OIDC)."""

    async def authorize(
        self, principal: Principal, required: Role, namespace: str, pipeline: str | None
    ) -> bool:
        del namespace, pipeline
        return principal.role is not None and role_allows(principal.role, required)


class ApiKeyAuthenticator(RoleAuthorizer):
    """`apikey:...` bearer tokens, checked by hash against a store."""

    name = "apikey"

    def __init__(self, store: ApiKeyStore) -> None:
        self.store = store

    def accepts(self, token: str) -> bool:
        return looks_like_api_key(token)

    async def authenticate(self, token: str) -> Principal:
        stored = await self.store.lookup(hash_api_key(token))
        if stored is None:
            raise errors.authentication_failed("Unauthorized API key")
        return Principal(
            subject=f"apikey:{stored.name}",
            mechanism="apikey",
            role=stored.role,
            attributes={"namespace": stored.namespace} if stored.namespace else {},
        )

    async def authorize(
        self, principal: Principal, required: Role, namespace: str, pipeline: str | None
    ) -> bool:
        # A key kept in a namespace's Secret opens that namespace only.
        bound = principal.attributes.get("namespace")
        if bound is not None and bound != namespace:
            return False
        return await super().authorize(principal, required, namespace, pipeline)


# --- OIDC ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OidcSettings:
    """How to validate OIDC JWTs."""

    issuer: str
    audience: str
    jwks_url: str | None = None
    """Defaults to the `jwks_uri` of the issuer's discovery document."""
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    leeway_seconds: int = 30
    role_claim: str = "sluice_role"
    default_role: Role = "read"
    client_id: str = ""
    """Shown by /v0/config/authentication for clients that log in."""
    jwks_ttl_seconds: float = 300.0
    refresh_interval_seconds: float = 10.0
    """Fewest seconds between two JWKS downloads triggered by unknown `kid`s."""


class OidcAuthenticator(RoleAuthorizer):
    """JWTs of one OIDC issuer, verified by PyJWT against the issuer's JWKS (cached)."""

    name = "jwt"

    def __init__(self, settings: OidcSettings, session: aiohttp.ClientSession) -> None:
        self.settings = settings
        self.session = session
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    def accepts(self, token: str) -> bool:
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return False
        return bool(claims.get("iss") == self.settings.issuer)

    async def _jwks_url(self) -> str:
        if self.settings.jwks_url:
            return self.settings.jwks_url
        discovery = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
        async with self.session.get(discovery, timeout=aiohttp.ClientTimeout(total=10)) as reply:
            reply.raise_for_status()
            document = await reply.json()
        return str(document["jwks_uri"])

    async def _refresh(self, *, forced: bool) -> None:
        async with self._lock:
            age = time.monotonic() - self._fetched_at
            if forced and age < self.settings.refresh_interval_seconds:
                return
            if not forced and age < self.settings.jwks_ttl_seconds:
                return
            url = await self._jwks_url()
            async with self.session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as reply:
                reply.raise_for_status()
                document = await reply.json(content_type=None)
            keys = jwt.PyJWKSet.from_dict(document).keys
            self._keys = {str(key.key_id): key for key in keys if key.key_id}
            self._fetched_at = time.monotonic()

    async def _key(self, kid: str) -> jwt.PyJWK | None:
        try:
            await self._refresh(forced=False)
            if kid not in self._keys:
                await self._refresh(forced=True)
        except (aiohttp.ClientError, TimeoutError, KeyError, ValueError, jwt.PyJWTError) as error:
            logger.warning("cannot fetch the JWKS of %s: %s", self.settings.issuer, error)
        return self._keys.get(kid)

    async def authenticate(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise errors.authentication_failed(f"Malformed JWT: {error}") from None
        if header.get("alg") not in self.settings.algorithms:
            raise errors.authentication_failed(f"JWT algorithm {header.get('alg')!r} not allowed")
        key = await self._key(str(header.get("kid", "")))
        if key is None:
            raise errors.authentication_failed("JWT signed with an unknown key (kid)")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=list(self.settings.algorithms),
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway_seconds,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as error:
            raise errors.authentication_failed(f"Invalid JWT: {error}") from None
        claimed = claims.get(self.settings.role_claim)
        try:
            role = parse_role(claimed) if isinstance(claimed, str) else self.settings.default_role
        except ValueError:
            raise errors.insufficient_permissions(
                f"unknown role {claimed!r} in claim {self.settings.role_claim!r}"
            ) from None
        return Principal(subject=str(claims.get("sub", "")), mechanism="jwt", role=role)


# --- Kubernetes ServiceAccounts -------------------------------------------------------------------


class AccessReviewer(Protocol):
    """TokenReview and SubjectAccessReview (implemented in sluice.k8s.reviews)."""

    async def review_token(self, token: str) -> ReviewedUser | None:
        """The authenticated user, or None when the API server rejects the token."""
        ...

    async def review_access(
        self, user: ReviewedUser, namespace: str, verb: str, name: str | None
    ) -> bool:
        """Whether RBAC allows `verb` on `pipelines.sluice.dev` (named, or all) to the user."""
        ...


class ServiceAccountAuthenticator:
    """Kubernetes tokens: TokenReview once per token, then cached SubjectAccessReviews."""

    name = "serviceaccount"

    def __init__(
        self, reviewer: AccessReviewer, *, token_ttl: float = 60.0, access_ttl: float = 10.0
    ) -> None:
        self.reviewer = reviewer
        self.token_ttl = token_ttl
        self.access_ttl = access_ttl
        self._users: dict[str, tuple[float, ReviewedUser]] = {}
        self._decisions: dict[tuple[str, str, str, str | None], tuple[float, bool]] = {}
        self._reviewed: dict[str, ReviewedUser] = {}

    def accepts(self, token: str) -> bool:
        return not looks_like_api_key(token)

    async def authenticate(self, token: str) -> Principal:
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        cached = self._users.get(digest)
        if cached is not None and now - cached[0] < self.token_ttl:
            user = cached[1]
        else:
            reviewed = await self.reviewer.review_token(token)
            if reviewed is None:
                raise errors.authentication_failed("Kubernetes rejected the bearer token")
            user = reviewed
            if len(self._users) > 10_000:
                self._users.clear()
            self._users[digest] = (now, user)
        self._reviewed[user.username] = user
        return Principal(subject=user.username, mechanism="serviceaccount", role=None)

    async def authorize(
        self, principal: Principal, required: Role, namespace: str, pipeline: str | None
    ) -> bool:
        user = self._reviewed.get(principal.subject)
        if user is None:
            return False
        verb = RBAC_VERBS[required] if pipeline is not None else "list"
        key = (user.username, namespace, verb, pipeline)
        now = time.monotonic()
        cached = self._decisions.get(key)
        if cached is not None and now - cached[0] < self.access_ttl:
            return cached[1]
        allowed = await self.reviewer.review_access(user, namespace, verb, pipeline)
        if len(self._decisions) > 10_000:
            self._decisions.clear()
        self._decisions[key] = (now, allowed)
        return allowed


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def choose(authenticators: Sequence[Authenticator], token: str) -> Authenticator | None:
    """The first mechanism that accepts the token, in configuration order."""
    for authenticator in authenticators:
        if authenticator.accepts(token):
            return authenticator
    return None
