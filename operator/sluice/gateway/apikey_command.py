"""`sluice apikey`: create API keys for the gateway (placeholder)."""

from __future__ import annotations

import argparse

from sluice.core.errors import UserError

HELP = "Create API keys for the gateway."


def configure(parser: argparse.ArgumentParser) -> None:
    del parser


def run(args: argparse.Namespace) -> int:
    del args
    raise UserError("API keys are not implemented yet", exit_code=3)
