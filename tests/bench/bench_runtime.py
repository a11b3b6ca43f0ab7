"""Benchmarks of the pipeline runtime: the four figures of the runtime issue.

Run: `.venv/bin/python -m tests.bench.bench_runtime` (add `--rows N` for a quicker run).

1. Throughput: a CSV file of N rows -> table -> view -> CSV file output, for a linear view
   (filter + projection) and for an aggregate view; each run in a fresh child process, timed
   from start to the moment the token minted after end of input is complete. Baseline: the
   same process parsing the same file with pyarrow's CSV reader alone.
2. Incremental cost: one-row steps into a table of 1M rows vs of 1k rows, linear view.
3. Completion latency: POST one row to `/ingress` over loopback TCP, then poll
   `/completion_status` with no sleep; time from the ingress response to `complete`.
4. Memory: peak RSS (ru_maxrss) of the child process of the linear throughput run.
"""

from __future__ import annotations

import argparse
import asyncio
import decimal
import http.client
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv

from sluice.core.tokens import decode_token
from sluice.models.runtime_config import RuntimeConfig
from sluice.runtime.connectors import run_input
from sluice.runtime.controller import Controller
from sluice.runtime.engine import WEIGHT, Engine
from sluice.runtime.program import parse_program

TABLE = (
    "CREATE TABLE orders (id BIGINT NOT NULL, customer VARCHAR NOT NULL, "
    "amount DECIMAL(10, 2) NOT NULL)"
)
VIEWS = {
    "linear": "SELECT id, customer, amount * 2 AS doubled FROM orders WHERE amount >= 50",
    "aggregate": (
        "SELECT customer, COUNT(*) AS orders, SUM(amount) AS revenue FROM orders GROUP BY customer"
    ),
}


def write_csv(path: Path, rows: int) -> None:
    """`rows` orders: sequential ids, 1000 customers, amounts 0.00..99.99."""
    ids = pa.array(range(rows), pa.int64())
    table = pa.table(
        {
            "id": ids,
            "customer": pa.array([f"customer-{i % 1000}" for i in range(rows)]),
            "amount": pa.array([f"{(i * 7919) % 10000 / 100:.2f}" for i in range(rows)]),
        }
    )
    pa_csv.write_csv(table, path, write_options=pa_csv.WriteOptions(include_header=False))


def config_for(kind: str, data: Path, output: Path) -> RuntimeConfig:
    return RuntimeConfig.model_validate(
        {
            "pipeline_name": f"bench-{kind}",
            "sql": f"{TABLE};\nCREATE VIEW v AS {VIEWS[kind]};",
            "connectors": [
                {
                    "name": "csv",
                    "relation": "orders",
                    "direction": "input",
                    "transport": {"name": "file_input", "config": {"path": str(data)}},
                    "format": {"name": "csv"},
                },
                {
                    "name": "out",
                    "relation": "v",
                    "direction": "output",
                    "transport": {"name": "file_output", "config": {"path": str(output)}},
                    "format": {"name": "csv"},
                },
            ],
        }
    )


async def run_throughput(kind: str, data: Path, output: Path) -> dict[str, Any]:
    """Child-process body: run the pipeline over the file until its final token completes."""
    controller = Controller(config_for(kind, data, output))
    started, cpu_started = time.perf_counter(), cpu_seconds()
    await controller.start(run_input)
    endpoint = controller.inputs["orders.csv"]
    while not endpoint.end_of_input:
        await controller.frontier_changed(0.005)
    token = decode_token(controller.mint(endpoint))
    while controller.completion_status(token).status != "complete":
        await controller.frontier_changed(0.005)
    elapsed = time.perf_counter() - started
    steps = controller.tracker.completed_steps
    await controller.stop()
    return {
        "kind": kind,
        "rows": token.records,
        "seconds": elapsed,
        "steps": steps,
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "cpu_seconds": cpu_seconds() - cpu_started,
    }


def cpu_seconds() -> float:
    """User and system CPU time of this process (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def throughput(kind: str, data: Path, workdir: Path) -> dict[str, Any]:
    """Run one throughput scenario in a fresh child process (clean memory, one engine)."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.bench.bench_runtime",
            "--child",
            kind,
            "--data",
            str(data),
            "--output",
            str(workdir / f"{kind}.csv"),
        ],
        capture_output=True,
        check=True,
        text=True,
    )
    parsed: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed


def csv_baseline(data: Path) -> float:
    """Seconds for pyarrow alone to parse the file (the floor of any CSV pipeline)."""
    started = time.perf_counter()
    pa_csv.read_csv(data, read_options=pa_csv.ReadOptions(column_names=["id", "c", "a"]))
    return time.perf_counter() - started


def loaded_engine(table_rows: int, keyed: bool) -> Engine:
    """An engine whose table (with a primary key or not) holds `table_rows` rows."""
    table = (
        TABLE.replace("id BIGINT NOT NULL", "id BIGINT NOT NULL PRIMARY KEY") if keyed else TABLE
    )
    engine = Engine(parse_program(f"{table};\nCREATE VIEW v AS {VIEWS['linear']};"))
    schema = engine.tables["orders"].schema
    bulk = pa.table(
        {
            "id": pa.array(range(table_rows), pa.int64()),
            "customer": pa.array([f"c{i % 1000}" for i in range(table_rows)]),
            "amount": pa.array(
                [decimal.Decimal(i % 10000) / 100 for i in range(table_rows)],
                schema.field("amount").type,
            ),
        }
    )
    engine.step({"orders": [bulk.append_column(WEIGHT, pa.array([1] * table_rows, pa.int64()))]})
    return engine


def incremental(sizes: tuple[int, ...], keyed: bool, steps: int = 100) -> list[float]:
    """Median seconds of a one-row step into each table size (linear view).

    Steps into the different sizes are interleaved, so load from other processes on the
    machine affects them alike.
    """
    engines = [loaded_engine(size, keyed) for size in sizes]
    schema = engines[0].tables["orders"].schema
    timings: list[list[float]] = [[] for _ in sizes]
    for step in range(steps):
        for index, (size, engine) in enumerate(zip(sizes, engines, strict=True)):
            row = pa.Table.from_pylist(
                [{"id": size + step, "customer": "new", "amount": 75}], schema=schema
            ).append_column(WEIGHT, pa.array([1], pa.int64()))
            started = time.perf_counter()
            engine.step({"orders": [row]})
            timings[index].append(time.perf_counter() - started)
    for engine in engines:
        engine.close()
    return [statistics.median(series) for series in timings]


def completion_latency(workdir: Path, samples: int = 300) -> list[float]:
    """Seconds from each ingress response to the first `complete` answer.

    The pipeline runs as a real `sluice runtime` process; the client polls over one
    keep-alive loopback connection, with no sleep between polls.
    """
    config = workdir / "latency.json"
    config.write_text(
        json.dumps(
            {
                "pipeline_name": "bench-latency",
                "sql": f"{TABLE};\nCREATE VIEW v AS {VIEWS['linear']};",
            }
        )
    )
    port_file = workdir / "latency.port"
    sluice = Path(sys.executable).parent / "sluice"
    server = subprocess.Popen(
        [
            str(sluice),
            "runtime",
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--port-file",
            str(port_file),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not port_file.exists():
            time.sleep(0.05)
        host, port = port_file.read_text().split(":")
        connection = http.client.HTTPConnection(host, int(port))

        def call(method: str, path: str, body: str | None = None) -> Any:
            connection.request(method, path, body=body)
            return json.loads(connection.getresponse().read())

        latencies = []
        for index in range(samples):
            row = json.dumps({"insert": {"id": index, "customer": "c", "amount": 60}})
            token = call("POST", "/ingress/orders?format=json", row)["token"]
            answered = time.perf_counter()
            while call("GET", f"/completion_status?token={token}")["status"] != "complete":
                pass
            latencies.append(time.perf_counter() - answered)
        connection.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child")
    parser.add_argument("--data")
    parser.add_argument("--output")
    args = parser.parse_args()
    if args.child:
        output = Path(args.output)
        result = asyncio.run(run_throughput(args.child, Path(args.data), output))
        print(json.dumps({**result, "output_bytes": output.stat().st_size}))
        return

    print(f"machine: {os.cpu_count()} CPUs (shared with other work while measuring)")
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        data = workdir / "orders.csv"
        write_csv(data, args.rows)
        baseline = csv_baseline(data)
        print(
            f"baseline: pyarrow parses {args.rows} CSV rows in {baseline:.3f} s "
            f"({args.rows / baseline:,.0f} rows/s)"
        )
        for kind in VIEWS:
            result = throughput(kind, data, workdir)
            rate = result["rows"] / result["seconds"]
            print(
                f"throughput {kind}: {result['rows']} rows in {result['seconds']:.2f} s = "
                f"{rate:,.0f} rows/s ({result['steps']} steps; {baseline / result['seconds']:.2f}"
                f" x the parse-only baseline's speed); CPU {result['cpu_seconds']:.2f} s = "
                f"{result['rows'] / result['cpu_seconds']:,.0f} rows per CPU-second; peak RSS "
                f"{result['max_rss_bytes'] / 2**20:,.0f} MiB (target < 1024 MiB)"
            )
    for keyed in (False, True):
        small, large = incremental((1_000, 1_000_000), keyed)
        print(
            f"incremental ({'primary key' if keyed else 'no key'}): 1-row step into 1k rows "
            f"{small * 1000:.2f} ms, into 1M rows {large * 1000:.2f} ms; ratio "
            f"{large / small:.2f} (target < 2)"
        )
    with tempfile.TemporaryDirectory() as folder:
        latencies = completion_latency(Path(folder))
    print(
        f"completion latency: median {statistics.median(latencies) * 1000:.2f} ms, "
        f"min {min(latencies) * 1000:.2f} ms, "
        f"p90 {sorted(latencies)[int(len(latencies) * 0.9)] * 1000:.2f} ms over "
        f"{len(latencies)} samples (target median < 5 ms)"
    )


if __name__ == "__main__":
    main()
