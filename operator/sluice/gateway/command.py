"""`sluice gateway`: serve Feldera's /v0 API for the pipelines of a Kubernetes cluster.

Routing comes from `sluice.k8s.directory.KubernetesDirectory` (watches of Pipelines and
their pods). Auth is on by default (API keys from labelled Secrets and ServiceAccount
tokens); turning it off needs both `--auth none` and `--insecure-no-auth`. Every flag has an
environment variable (the Helm chart sets those).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from typing import Any

from sluice import __version__
from sluice.core.auth import parse_role
from sluice.core.errors import UserError

HELP = "Run the gateway: Feldera's /v0 REST API for the pipelines of a Kubernetes cluster."
MECHANISMS = ("none", "apikey", "serviceaccount", "oidc")

logger = logging.getLogger(__name__)


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def default_mechanisms() -> str:
    """Mechanisms from the chart's SLUICE_AUTH_* variables, else apikey,serviceaccount."""
    if not _env_flag("SLUICE_AUTH_ENABLED", True):
        return "none"
    chosen = []
    if _env_flag("SLUICE_AUTH_API_KEYS", True):
        chosen.append("apikey")
    if _env("SLUICE_AUTH_OIDC_ISSUER"):
        chosen.append("oidc")
    if _env_flag("SLUICE_AUTH_SERVICE_ACCOUNT_TOKENS", True):
        chosen.append("serviceaccount")
    return ",".join(chosen) or "none"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=_env("SLUICE_GATEWAY_HOST", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=int(_env("SLUICE_GATEWAY_PORT", "8080")))
    parser.add_argument(
        "--namespace",
        action="append",
        default=None,
        help="namespace to serve (repeatable; env SLUICE_GATEWAY_NAMESPACES, comma-separated)",
    )
    parser.add_argument(
        "--all-namespaces", action="store_true", help="serve the pipelines of every namespace"
    )
    parser.add_argument(
        "--default-namespace",
        default=_env("SLUICE_GATEWAY_POD_NAMESPACE"),
        help="tenant used without a Feldera-Tenant header (default: first namespace served)",
    )
    parser.add_argument("--context", default=None, help="kubeconfig context (outside a cluster)")
    parser.add_argument(
        "--auth",
        default=default_mechanisms(),
        help="comma-separated: apikey, serviceaccount, oidc, or none (default from SLUICE_AUTH_*)",
    )
    parser.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="required together with --auth none: anyone who reaches the gateway gets admin",
    )
    parser.add_argument("--api-key-file", default=None, help="read API keys from this file")
    parser.add_argument("--oidc-issuer", default=_env("SLUICE_AUTH_OIDC_ISSUER"))
    parser.add_argument("--oidc-audience", default=_env("SLUICE_AUTH_OIDC_AUDIENCE", "feldera-api"))
    parser.add_argument("--oidc-jwks-url", default=_env("SLUICE_AUTH_OIDC_JWKS_URL") or None)
    parser.add_argument(
        "--oidc-role-claim", default=_env("SLUICE_AUTH_OIDC_ROLE_CLAIM", "sluice_role")
    )
    parser.add_argument(
        "--oidc-default-role",
        default=_env("SLUICE_AUTH_OIDC_DEFAULT_ROLE", "read"),
        help="role of a valid JWT without the role claim (default read)",
    )
    parser.add_argument("--oidc-client-id", default=_env("SLUICE_AUTH_OIDC_CLIENT_ID"))
    parser.add_argument(
        "--body-limit-mib",
        type=int,
        default=int(_env("SLUICE_GATEWAY_BODY_LIMIT_MIB", "256")),
        help="largest request body accepted (413 beyond it)",
    )


def parse_mechanisms(text: str, insecure: bool) -> list[str]:
    """The chosen mechanisms; raises UserError for unknown ones or auth off without consent."""
    chosen = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in chosen if item not in MECHANISMS]
    if unknown:
        raise UserError(f"--auth: unknown mechanism {unknown[0]!r} (use {', '.join(MECHANISMS)})")
    if "none" in chosen and len(chosen) > 1:
        raise UserError("--auth: 'none' cannot be combined with other mechanisms")
    if not chosen or chosen == ["none"]:
        if not insecure:
            raise UserError(
                "refusing to serve without authentication: pass --auth none "
                "--insecure-no-auth to run an open gateway (anyone reaching it gets admin)"
            )
        return []
    return chosen


def namespaces_of(args: argparse.Namespace) -> frozenset[str] | None:
    """The namespaces to watch; None for all."""
    if args.all_namespaces:
        return None
    named = args.namespace or [
        item.strip() for item in _env("SLUICE_GATEWAY_NAMESPACES").split(",") if item.strip()
    ]
    return frozenset(named) if named else None


def run(args: argparse.Namespace) -> int:
    mechanisms = parse_mechanisms(args.auth, args.insecure_no_auth)
    if "oidc" in mechanisms and not args.oidc_issuer:
        raise UserError("--auth oidc needs --oidc-issuer (or SLUICE_AUTH_OIDC_ISSUER)")
    try:
        parse_role(args.oidc_default_role)
    except ValueError as error:
        raise UserError(f"--oidc-default-role: {error}") from None
    try:
        from sluice.k8s import directory as k8s_directory
    except ImportError as error:
        raise UserError(f"the Kubernetes directory is not available: {error}") from None
    if not hasattr(k8s_directory, "KubernetesDirectory"):
        raise UserError("sluice.k8s.directory has no KubernetesDirectory")
    if not mechanisms:
        logger.warning("authentication is OFF (--insecure-no-auth): anyone reaching it is admin")
    return asyncio.run(serve(args, mechanisms))


async def serve(args: argparse.Namespace, mechanisms: list[str]) -> int:
    """Run the gateway until SIGTERM / SIGINT."""
    import aiohttp
    from aiohttp import web

    from sluice.gateway.app import GatewaySettings, create_app
    from sluice.gateway.auth import (
        ApiKeyAuthenticator,
        Authenticator,
        OidcAuthenticator,
        OidcSettings,
        ServiceAccountAuthenticator,
    )
    from sluice.k8s import client as k8s_client
    from sluice.k8s.directory import KubernetesDirectory

    namespaces = namespaces_of(args)
    try:
        credentials = k8s_client.load_credentials(args.context)
    except Exception as error:
        raise UserError(f"no Kubernetes credentials: {error}") from None
    default_namespace = (
        args.default_namespace
        or (sorted(namespaces)[0] if namespaces else "")
        or credentials.default_namespace
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())
        api = k8s_client.HttpKubeApi(credentials, session)
        directory = KubernetesDirectory(api, namespaces)
        await directory.start()
        stack.push_async_callback(directory.close)

        authenticators: list[Authenticator] = []
        authentication_info: dict[str, Any] = {}
        api_client: Any = None
        if "apikey" in mechanisms or "serviceaccount" in mechanisms:
            from sluice.k8s import reviews

            api_client = reviews.load_api_client(args.context)
        if "apikey" in mechanisms:
            if args.api_key_file:
                from pathlib import Path

                from sluice.gateway.apikeys import FileApiKeyStore

                authenticators.append(ApiKeyAuthenticator(FileApiKeyStore(Path(args.api_key_file))))
            else:
                from sluice.k8s.apikey_store import SecretApiKeyStore

                store = SecretApiKeyStore(api_client, namespaces)
                authenticators.append(ApiKeyAuthenticator(store))
        if "oidc" in mechanisms:
            oidc = OidcSettings(
                issuer=args.oidc_issuer,
                audience=args.oidc_audience,
                jwks_url=args.oidc_jwks_url,
                role_claim=args.oidc_role_claim,
                default_role=parse_role(args.oidc_default_role),
                client_id=args.oidc_client_id,
            )
            authenticators.append(OidcAuthenticator(oidc, session))
            authentication_info = {
                "GenericOidc": {
                    "issuer": oidc.issuer,
                    "client_id": oidc.client_id,
                    "extra_oidc_scopes": [],
                }
            }
        if "serviceaccount" in mechanisms:
            from sluice.k8s.reviews import KubernetesReviewer

            # Last: it accepts every token the mechanisms before it did not claim.
            authenticators.append(ServiceAccountAuthenticator(KubernetesReviewer(api_client)))

        settings = GatewaySettings(
            namespace=default_namespace,
            version=__version__,
            authenticators=authenticators,
            authentication_info=authentication_info,
            body_limit=args.body_limit_mib * 1024 * 1024,
        )
        runner = web.AppRunner(create_app(settings, directory), access_log=None)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        try:
            await web.TCPSite(runner, args.host, args.port).start()
        except OSError as error:
            raise UserError(f"cannot serve on {args.host}:{args.port}: {error}") from None
        logger.info(
            "gateway on %s:%d, namespaces %s (default %s), auth %s",
            args.host,
            args.port,
            ",".join(sorted(namespaces)) if namespaces else "all",
            default_namespace,
            ",".join(mechanisms) or "OFF",
        )
        await stop.wait()
    return 0
