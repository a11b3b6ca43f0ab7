"""`sluice apikey create NAME --role read|write`: make an API key for the gateway.

The key (`apikey:` + 128 alphanumerics) is printed once and never stored: only its SHA-256
hash is kept, with the name and role, in a local file (local mode, `--file`) or in a
labelled Secret (`--kubernetes`, for a gateway on a cluster).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sluice.core.auth import ROLES, generate_api_key, hash_api_key, parse_role
from sluice.core.errors import UserError

HELP = "Create API keys for the gateway (the key is printed once; only its hash is stored)."
DEFAULT_FILE = ".sluice/api-keys.json"


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create a key and print it once")
    create.add_argument("name", help="key name: letters, digits, '_' or '-' (at most 100)")
    create.add_argument("--role", choices=ROLES[:2], default="read", help="read (default) or write")
    where = create.add_mutually_exclusive_group()
    where.add_argument(
        "--file", default=None, help=f"store the hash in this file (default {DEFAULT_FILE})"
    )
    where.add_argument(
        "--kubernetes", action="store_true", help="store the hash in a Secret in the cluster"
    )
    create.add_argument("--namespace", default=None, help="with --kubernetes: the namespace")
    create.add_argument("--context", default=None, help="with --kubernetes: kubeconfig context")


def run(args: argparse.Namespace) -> int:
    role = parse_role(args.role)
    key = generate_api_key()
    key_hash = hash_api_key(key)
    try:
        if args.kubernetes:
            from sluice.k8s import client as k8s_client
            from sluice.k8s.apikey_store import SecretApiKeyStore
            from sluice.k8s.reviews import load_api_client

            namespace = (
                args.namespace or k8s_client.load_credentials(args.context).default_namespace
            )
            store = SecretApiKeyStore(load_api_client(args.context), frozenset({namespace}))
            store.add(namespace, args.name, role, key_hash)
            where = f"Secret in namespace {namespace}"
        else:
            from sluice.gateway.apikeys import FileApiKeyStore

            path = Path(args.file or DEFAULT_FILE)
            FileApiKeyStore(path).add(args.name, role, key_hash)
            where = str(path)
    except ValueError as error:
        raise UserError(str(error)) from None
    except Exception as error:
        if type(error).__name__ in ("ApiException", "ConfigException", "MaxRetryError"):
            raise UserError(f"cannot store the key: {error}") from None
        raise
    print(key)
    print(
        f"API key {args.name!r} (role {role}) created; its hash is stored in {where}. "
        "This is the only time the key is shown.",
        file=sys.stderr,
    )
    return 0
