"""Entry point (`sluice`): one command line for every part; one container image runs them all.

Sub-commands live in the package of the part they start (`sluice.<part>.command`), each with
`configure(parser)` and `run(args) -> int`. Heavy imports happen inside `run`, so `--help` is
fast. A `UserError` becomes one line on stderr and its exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Protocol, cast

from sluice import __version__
from sluice.core.errors import UserError


class Command(Protocol):
    """The shape of a `sluice.<part>.command` module."""

    HELP: str

    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


COMMANDS: dict[str, str] = {
    "operator": "sluice.controller.command",
    "gateway": "sluice.gateway.command",
    "runtime": "sluice.runtime.command",
    "local": "sluice.local.command",
    "crds": "sluice.crds_command",
    "apikey": "sluice.gateway.apikey_command",
    "version": "sluice.version_command",
}


def build_parser() -> argparse.ArgumentParser:
    """The `sluice` argument parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="sluice",
        description="Sluice runs Feldera-compatible streaming SQL pipelines on Kubernetes.",
    )
    parser.add_argument("--version", action="version", version=f"sluice {__version__}")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log verbosity (default: INFO)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        module = cast(Command, importlib.import_module(module_name))
        sub = commands.add_parser(name, help=module.HELP, description=module.HELP)
        module.configure(sub)
        sub.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `sluice` with `argv`; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.handler(args))
    except UserError as error:
        print(f"sluice {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
