"""`sluice crds`: write the CustomResourceDefinitions generated from the models."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from sluice.core import crddocs, crdgen

HELP = "Generate the CustomResourceDefinitions from the models into a folder (default: crds/)."


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output-dir",
        "-o",
        type=Path,
        default=Path("crds"),
        help="where to write (default: crds/)",
    )
    parser.add_argument(
        "--docs",
        type=Path,
        default=None,
        help="also write the Markdown field reference to this file (e.g. docs/resources.md)",
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if anything differs"
    )


def render_yaml(document: object) -> str:
    """The exact YAML text committed for a generated document."""
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=100)


def run(args: argparse.Namespace) -> int:
    output_dir: Path = args.output_dir
    outputs = {
        output_dir / file_name: render_yaml(crd)
        for file_name, crd in crdgen.build_all_crds().items()
    }
    if args.docs is not None:
        outputs[args.docs] = crddocs.render_reference()
    stale = []
    for path, text in outputs.items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    if stale:
        print("out of date (run `sluice crds`): " + ", ".join(stale))
        return 1
    return 0
