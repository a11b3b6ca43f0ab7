"""Test support (e2e tier): examples/quickstart, made runnable by pods that are local processes.

The quickstart's connector paths are relative to its folder (local mode resolves them there).
Pipeline pods here are processes on the test machine, so the e2e tier applies a copy of the
Connectors whose input path is the absolute path of the example's data file and whose output
path is a file in the test's temporary folder. Everything else is applied unchanged.
"""

from __future__ import annotations

import copy
import json
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from tests.factories import QUICKSTART

ORDERS = QUICKSTART / "data" / "orders.json"


def quickstart_documents(output: Path) -> list[dict[str, Any]]:
    documents = []
    for path in sorted(QUICKSTART.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if not document:
                continue
            document = copy.deepcopy(document)
            if document["kind"] == "Connector":
                config = document["spec"]["transport"]["config"]
                if document["spec"].get("table"):
                    config["path"] = str((QUICKSTART / config["path"]).resolve())
                else:
                    config["path"] = str(output)
            documents.append(document)
    return documents


def expected_revenue(orders: Path = ORDERS) -> Counter[tuple[str, int, Decimal]]:
    """revenue_by_customer computed here, independently of the engine."""
    counts: Counter[str] = Counter()
    revenue: dict[str, Decimal] = {}
    for line in orders.read_text().splitlines():
        order = json.loads(line, parse_float=Decimal)
        counts[order["customer"]] += 1
        revenue[order["customer"]] = revenue.get(order["customer"], Decimal(0)) + order["amount"]
    return Counter({(c, counts[c], revenue[c].quantize(Decimal("0.01"))): 1 for c in counts})


def net_output(path: Path) -> Counter[tuple[str, int, Decimal]]:
    """The rows an insert_delete JSON output file holds once its changes are applied."""
    rows: Counter[tuple[str, int, Decimal]] = Counter()
    if not path.exists():
        return rows
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        change = json.loads(line, parse_float=Decimal)
        for kind, weight in (("insert", 1), ("delete", -1)):
            if kind in change:
                row = change[kind]
                key = (
                    row["customer"],
                    int(row["order_count"]),
                    Decimal(str(row["revenue"])).quantize(Decimal("0.01")),
                )
                rows[key] += weight
    return +rows


def main() -> None:
    """Prints the runnable quickstart (for `make cluster-up`): `... OUTPUT | kubectl apply -f -`."""
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.e2e.quickstart OUTPUT_FILE")
    output = Path(sys.argv[1])
    sys.stdout.write(yaml.safe_dump_all(quickstart_documents(output.resolve()), sort_keys=False))


if __name__ == "__main__":
    main()
