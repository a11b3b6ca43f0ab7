"""`sluice version`: print the version of Sluice and of the Feldera API it speaks."""

from __future__ import annotations

import argparse

from sluice import __version__

HELP = "Print the Sluice version."


def configure(parser: argparse.ArgumentParser) -> None:
    del parser


def run(args: argparse.Namespace) -> int:
    del args
    print(f"sluice {__version__}")
    return 0
