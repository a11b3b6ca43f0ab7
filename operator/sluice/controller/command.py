"""`sluice operator`: run the operator (kopf) for one or more namespaces, or all of them."""

from __future__ import annotations

import argparse
from typing import Any

from sluice.core.errors import UserError

HELP = "Run the operator: reconcile Pipelines, Connectors and CompletionTokens."


def configure(parser: argparse.ArgumentParser) -> None:
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        dest="namespaces",
        action="append",
        default=None,
        help="namespace to watch (repeatable; default: the kubeconfig's namespace)",
    )
    scope.add_argument(
        "-A", "--all-namespaces", action="store_true", default=None, help="watch every namespace"
    )
    parser.add_argument("--runtime-image", help="image of pipeline pods (env SLUICE_RUNTIME_IMAGE)")
    parser.add_argument(
        "--freshness-interval",
        type=float,
        help="seconds between freshness tokens per input connector (default 10)",
    )
    parser.add_argument("--workers", type=int, help="objects reconciled concurrently (default 8)")
    parser.add_argument(
        "--liveness",
        dest="liveness_endpoint",
        help="liveness probe endpoint (default http://0.0.0.0:8081/healthz; 'off' disables it)",
    )


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from sluice.controller.lifecycle import run_operator
    from sluice.k8s.client import load_credentials
    from sluice.models.settings import OperatorSettings

    overrides: dict[str, Any] = {
        key: value
        for key, value in {
            "namespaces": tuple(args.namespaces) if args.namespaces else None,
            "all_namespaces": args.all_namespaces,
            "runtime_image": args.runtime_image,
            "freshness_interval": args.freshness_interval,
            "workers": args.workers,
        }.items()
        if value is not None
    }
    if args.liveness_endpoint is not None:
        overrides["liveness_endpoint"] = (
            None if args.liveness_endpoint == "off" else args.liveness_endpoint
        )
    try:
        settings = OperatorSettings(**overrides)
    except ValidationError as error:
        raise UserError(f"invalid setting: {error.errors()[0]['msg']}") from error
    if not settings.namespaces and not settings.all_namespaces:
        try:
            namespace = load_credentials().default_namespace
        except Exception as error:
            raise UserError(f"no Kubernetes credentials: {error}") from error
        settings = settings.model_copy(update={"namespaces": (namespace,)})
    run_operator(settings)
    return 0
