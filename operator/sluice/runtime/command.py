"""`sluice runtime`: start the runtime (placeholder until the part lands)."""

from __future__ import annotations

import argparse

from sluice.core.errors import UserError

HELP = "Run the runtime."


def configure(parser: argparse.ArgumentParser) -> None:
    del parser


def run(args: argparse.Namespace) -> int:
    del args
    raise UserError("the runtime is not implemented yet", exit_code=3)
