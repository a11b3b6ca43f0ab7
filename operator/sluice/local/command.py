"""`sluice local up`: run pipelines from manifests on this machine (placeholder)."""

from __future__ import annotations

import argparse

from sluice.core.errors import UserError

HELP = "Run pipelines locally from Pipeline/Connector/CompletionToken YAML, without Kubernetes."


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = actions.add_parser("up", help="start the pipelines and the gateway API")
    up.add_argument("-f", "--filename", action="append", required=True, help="YAML file or folder")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=8080)


def run(args: argparse.Namespace) -> int:
    del args
    raise UserError("local mode is not implemented yet", exit_code=3)
