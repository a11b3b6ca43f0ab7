"""Test helpers: run real pipeline processes (`sluice runtime`) under the local supervisor,
on loopback."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from sluice.local.manifests import load
from sluice.local.supervisor import Supervisor
from sluice.process.client import ProcessClient

RUNTIME_COMMAND: tuple[str, ...] = (sys.executable, "-m", "sluice", "runtime")

SQL = """
CREATE TABLE orders (
  id BIGINT NOT NULL PRIMARY KEY,
  customer VARCHAR NOT NULL,
  amount DECIMAL(10, 2) NOT NULL
);
CREATE MATERIALIZED VIEW totals AS
  SELECT customer, SUM(amount) AS total FROM orders GROUP BY customer;
"""


def write_manifests(folder: Path, names: tuple[str, ...] = ("shop",)) -> Path:
    """A Pipeline per name, each with a file input and a file output connector."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "data" / "orders.json").write_text(
        '{"id": 1, "customer": "acme", "amount": 10.5}\n'
        '{"id": 2, "customer": "initech", "amount": 20}\n'
        '{"id": 3, "customer": "acme", "amount": 1.25}\n'
    )
    documents = []
    sql = "\n".join("    " + line for line in SQL.strip().splitlines())
    for name in names:
        documents.append(
            f"""apiVersion: sluice.dev/v1alpha1
kind: Pipeline
metadata: {{name: {name}}}
spec:
  sql: |
{sql}
---
apiVersion: sluice.dev/v1alpha1
kind: Connector
metadata: {{name: {name}-in}}
spec:
  pipelineRef: {{name: {name}}}
  table: orders
  transport: {{name: file_input, config: {{path: data/orders.json}}}}
  format: {{name: json, config: {{update_format: raw}}}}
---
apiVersion: sluice.dev/v1alpha1
kind: Connector
metadata: {{name: {name}-out}}
spec:
  pipelineRef: {{name: {name}}}
  view: totals
  transport: {{name: file_output, config: {{path: output/{name}-totals.json}}}}
  format: {{name: json, config: {{update_format: insert_delete}}}}
"""
        )
    manifest = folder / "pipelines.yaml"
    manifest.write_text("---\n".join(documents))
    return manifest


async def wait_for_status(
    supervisor: Supervisor, name: str, status: str, within: float = 30.0
) -> None:
    """Wait until the directory shows the pipeline in `status`."""
    directory = supervisor.directory

    async def reached() -> None:
        while True:
            revision = directory.revision
            entry = directory.get("default", name)
            if entry is not None and entry.deployment_status == status:
                return
            await directory.wait_changed(revision)

    await asyncio.wait_for(reached(), within)


@asynccontextmanager
async def running_pipelines(
    folder: Path, names: tuple[str, ...] = ("shop",)
) -> AsyncIterator[Supervisor]:
    """Supervised pipeline processes, Running, stopped on exit."""
    manifests = load([write_manifests(folder, names)])
    async with aiohttp.ClientSession() as session:
        client = ProcessClient(session)
        supervisor = Supervisor(
            manifests.pipelines,
            state_dir=folder / "state",
            client=client,
            runtime_command=RUNTIME_COMMAND,
            initial_backoff=0.1,
        )
        supervisor.start()
        try:
            for name in names:
                await wait_for_status(supervisor, name, "Running")
            yield supervisor
        finally:
            await supervisor.stop()
            client.close()
