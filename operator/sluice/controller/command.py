"""`sluice operator`: start the operator (placeholder until the part lands)."""

from __future__ import annotations

import argparse

from sluice.core.errors import UserError

HELP = "Run the operator."


def configure(parser: argparse.ArgumentParser) -> None:
    del parser


def run(args: argparse.Namespace) -> int:
    del args
    raise UserError("the operator is not implemented yet", exit_code=3)
