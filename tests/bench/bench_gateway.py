"""Gateway benchmarks: the gateway against the pipeline process it fronts, in one run.

Run: .venv/bin/python -m tests.bench.bench_gateway   (by `make bench`)

1. completion_status and completion_token at 32 concurrent clients on loopback, through the
   gateway (`sluice local up`, its own process) and directly on the pipeline process: ratio
   of throughputs, latency percentiles, added median latency.
2. Long-poll: the pipeline is paused, data is pushed, a client long-polls its token through
   the gateway, the pipeline resumes; latency = the client's answer minus the moment the
   process's own completion-frontier stream (followed directly) showed the token complete.
3. Gateway memory (RSS) with 1,000 pipelines in its directory, each followed by a live
   completion-frontier stream, after listing them all once.

Numbers are printed, never asserted; the machine may be shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from sluice.core.tokens import CompletionToken, decode_token
from sluice.local.supervisor import default_runtime_command
from sluice.process.client import FrontierFollower
from sluice.process.http import KeepAlivePool
from tests.component.gateway.pipelines import write_manifests

CLIENTS = 32
PHASE_SECONDS = 3.0
LONG_POLL_ROUNDS = 40


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def hammer(
    session: aiohttp.ClientSession, url: str, clients: int = CLIENTS
) -> tuple[float, list[float]]:
    """`clients` concurrent clients, each one request at a time, for PHASE_SECONDS.

    The clients share one keep-alive connection pool of the small HTTP/1.1 client the
    gateway itself uses for pods: it costs the load generator a fraction of aiohttp's
    client, so that on two cores the servers, not the generator, set the pace.
    """
    del session
    location, _, rest = url.removeprefix("http://").partition("/")
    target = "/" + rest
    pool = KeepAlivePool(max_idle_per_host=clients)
    latencies: list[float] = []
    deadline = time.perf_counter() + PHASE_SECONDS

    async def client() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            answer = await pool.request("GET", location, target)
            if answer.status != 200:
                raise RuntimeError(f"{url}: {answer.status} {answer.body[:200]!r}")
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    try:
        await asyncio.gather(*(client() for _ in range(clients)))
    finally:
        pool.close()
    return len(latencies) / (time.perf_counter() - started), latencies


def describe(name: str, throughput: float, latencies: list[float]) -> str:
    return (
        f"  {name:<34} {throughput:8.0f} req/s   p50 {percentile(latencies, 0.5) * 1e3:6.2f} ms"
        f"   p99 {percentile(latencies, 0.99) * 1e3:6.2f} ms"
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pids(parent: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == parent:
                children.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return children


async def measured(
    session: aiohttp.ClientSession, url: str, pids: dict[str, int]
) -> tuple[float, list[float], dict[str, float]]:
    """hammer(), plus the CPU microseconds each server process spent per request."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    rate, latencies = await hammer(session, url)
    spent = {
        name: (cpu_seconds(pid) - before[name]) * 1e6 / max(1, len(latencies))
        for name, pid in pids.items()
    }
    return rate, latencies, spent


async def compare(
    session: aiohttp.ClientSession,
    label: str,
    direct_url: str,
    gateway_url: str,
    pids: dict[str, int],
) -> None:
    await hammer(session, gateway_url)  # warm-up: connections, caches, followers
    direct_rate, direct, direct_cpu = await measured(session, direct_url, pids)
    gateway_rate, through, through_cpu = await measured(session, gateway_url, pids)
    print(f"{label} ({CLIENTS} concurrent clients, {PHASE_SECONDS:g} s each):")
    print(describe("direct on the pipeline process", direct_rate, direct))
    print(describe("through the gateway", gateway_rate, through))
    added = (percentile(through, 0.5) - percentile(direct, 0.5)) * 1e3
    print(f"  gateway/direct throughput ratio {gateway_rate / direct_rate:.2f}x;"
          f" added median latency {added:+.2f} ms")  # fmt: skip
    # Closed-loop throughput on a shared 2-core machine mostly measures who gets the CPU;
    # the CPU each server spends per request is the steadier figure.
    print(f"  server CPU per request: direct: pipeline process {direct_cpu['pod']:.0f} us;"
          f" through the gateway: gateway {through_cpu['gateway']:.0f} us"
          f" + pipeline process {through_cpu['pod']:.0f} us")  # fmt: skip
    _, alone_direct = await hammer(session, direct_url, clients=1)
    _, alone_through = await hammer(session, gateway_url, clients=1)
    alone = (percentile(alone_through, 0.5) - percentile(alone_direct, 0.5)) * 1e3
    print(f"  one client at a time: p50 direct {percentile(alone_direct, 0.5) * 1e3:.2f} ms,"
          f" through the gateway {percentile(alone_through, 0.5) * 1e3:.2f} ms"
          f" (added {alone:+.2f} ms)")  # fmt: skip


async def watch(follower: FrontierFollower, token: CompletionToken, seen: list[float]) -> None:
    """Record when the process's own frontier stream first shows `token` complete."""
    while follower.current is None or not follower.current.is_complete(token):
        await follower.wait_changed(20)
    seen.append(time.perf_counter())


async def long_poll(session: aiohttp.ClientSession, gateway: str, location: str) -> None:
    follower = FrontierFollower(session, location)
    follower.start()
    base = f"{gateway}/v0/pipelines/shop"
    delays: list[float] = []
    try:
        for round_number in range(LONG_POLL_ROUNDS):
            async with session.get(f"http://{location}/pause") as response:
                await response.read()
            rows = json.dumps({"id": 10_000 + round_number, "customer": "bench", "amount": 1})
            async with session.post(
                f"{base}/ingress/orders?format=json&update_format=raw&force=true",
                data=rows.encode() + b"\n",
            ) as response:
                token = (await response.json())["token"]
            decoded = decode_token(token)
            poll = asyncio.create_task(
                session.get(f"{base}/completion_status?token={token}&wait_ms=20000")
            )
            await asyncio.sleep(0.05)  # the long-poll is waiting in the gateway
            completed_at: list[float] = []
            watcher = asyncio.create_task(watch(follower, decoded, completed_at))
            async with session.get(f"http://{location}/start") as response:
                await response.read()
            answer = await poll
            answered_at = time.perf_counter()
            body = await answer.json()
            answer.release()
            await watcher
            if body.get("status") != "complete":
                raise RuntimeError(f"long-poll answered {body}")
            delays.append(answered_at - completed_at[0])
    finally:
        await follower.close()
    print(f"Long-poll completion_status?wait_ms (through the gateway, {LONG_POLL_ROUNDS} rounds):")
    median, p99 = statistics.median(delays) * 1e3, percentile(delays, 0.99) * 1e3
    print(f"  completion -> client answer: median {median:.2f} ms, p99 {p99:.2f} ms,"
          f" max {max(delays) * 1e3:.2f} ms")  # fmt: skip
    # The SDK's wait_for_token sleeps min(5, 0.1 * 1.2**n) s between polls: the first
    # sleeps are 0.12 s, 0.144 s, ..., so a completion lands on average half a sleep early.
    print("  baseline, SDK polling: a completion waits half a poll interval on average:"
          " 60 ms after the first poll, up to 2.5 s once polls are 5 s apart")  # fmt: skip


def memory_child(location: str, count: int) -> None:
    """Run in a child process: a gateway over `count` pipelines; prints RSS figures as JSON."""
    from aiohttp import web

    from sluice.core.directory import ConnectorEntry, PipelineEntry
    from sluice.gateway.app import PODS, GatewaySettings, create_app
    from sluice.local.directory import LocalDirectory

    async def main() -> dict[str, float]:
        baseline = rss_mib()
        directory = LocalDirectory("default")
        program = (Path(__file__).parents[2] / "examples/quickstart/pipeline.yaml").read_text()
        for index in range(count):
            name = f"pipeline-{index:04d}"
            directory.publish(
                PipelineEntry(
                    namespace="default",
                    name=name,
                    program_code=program,
                    deployment_status="Running",
                    desired_status="Running",
                    location=location,
                    incarnation="00000000-0000-4000-8000-000000000000",
                    tables=("orders",),
                    views=("large_orders", "revenue_by_customer"),
                    connectors=(
                        ConnectorEntry("orders-file", "orders", "input", "orders.orders-file"),
                        ConnectorEntry(
                            "revenue-file", "revenue_by_customer", "output",
                            "revenue_by_customer.revenue-file",
                        ),
                    ),
                    created_at="2026-12-03T00:00:00Z",
                )
            )  # fmt: skip
        app = create_app(GatewaySettings(namespace="default", version="bench"), directory)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            followers = app[PODS].followers
            if len(followers) == count and all(f.current for f in followers.values()):
                break
            await asyncio.sleep(0.2)
        connected = sum(1 for f in app[PODS].followers.values() if f.current is not None)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/v0/pipelines?selector=all") as response,
        ):
            listed = len(await response.json())
        figures = {
            "baseline_mib": baseline,
            "rss_mib": rss_mib(),
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "pipelines_listed": listed,
            "frontier_streams_connected": connected,
        }
        await runner.cleanup()
        return figures

    print(json.dumps(asyncio.run(main())))


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def start_local_mode(folder: Path) -> tuple[subprocess.Popen[str], str]:
    manifest = write_manifests(folder)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sluice", "local", "up", "-f", str(manifest), "--port", str(port)],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    return process, f"http://127.0.0.1:{port}"


async def wait_running(session: aiohttp.ClientSession, gateway: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            async with session.get(f"{gateway}/v0/pipelines/shop?selector=status") as response:
                if response.status == 200:
                    body = await response.json()
                    if body["deployment_status"] == "Running":
                        return str(body["deployment_location"])
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("local mode did not start")


async def main() -> None:
    load = os.getloadavg()[0]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python"
          f" {platform.python_version()}, load average {load:.2f} (shared machine)")  # fmt: skip
    runtime = " ".join(Path(part).name for part in default_runtime_command())
    print(f"pipeline process: {runtime} (override with SLUICE_RUNTIME_COMMAND)")
    with tempfile.TemporaryDirectory() as folder:
        process, gateway = start_local_mode(Path(folder))
        try:
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector) as session:
                location = await wait_running(session, gateway)
                pids = {"gateway": process.pid, "pod": child_pids(process.pid)[0]}
                endpoint = "orders.shop-in"
                async with session.get(
                    f"http://{location}/input_endpoints/{endpoint}/completion_token"
                ) as response:
                    token = (await response.json())["token"]
                await asyncio.sleep(0.5)
                await compare(
                    session,
                    "completion_status (token complete)",
                    f"http://{location}/completion_status?token={token}",
                    f"{gateway}/v0/pipelines/shop/completion_status?token={token}",
                    pids,
                )
                await compare(
                    session,
                    "completion_token",
                    f"http://{location}/input_endpoints/{endpoint}/completion_token",
                    f"{gateway}/v0/pipelines/shop/tables/orders/connectors/shop-in/completion_token",
                    pids,
                )
                await long_poll(session, gateway, location)
                child = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "tests.bench.bench_gateway", "--memory-child",
                    location, "--pipelines", "1000", stdout=asyncio.subprocess.PIPE,
                )  # fmt: skip
                output, _ = await asyncio.wait_for(child.communicate(), 180)
                figures = json.loads(output.decode().strip().splitlines()[-1])
                print("Gateway memory with 1,000 pipelines in its directory:")
                print(f"  RSS {figures['rss_mib']:.1f} MiB (peak {figures['peak_mib']:.1f} MiB;"
                      f" {figures['baseline_mib']:.1f} MiB after imports, before the directory),"
                      f" {figures['frontier_streams_connected']} frontier streams connected,"
                      f" {figures['pipelines_listed']} pipelines listed")  # fmt: skip
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--memory-child", metavar="LOCATION")
    parser.add_argument("--pipelines", type=int, default=1000)
    arguments = parser.parse_args()
    if arguments.memory_child:
        memory_child(arguments.memory_child, arguments.pipelines)
    else:
        asyncio.run(main())
