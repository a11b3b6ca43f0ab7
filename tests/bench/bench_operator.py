"""Operator benchmarks on the e2e cluster (real kube-apiserver, controller-manager, node agent).

Run: .venv/bin/python -m tests.bench.bench_operator [--pipelines 200 --running 200]
(by `make bench`; needs the control-plane binaries `make e2e` builds).

1. Ready latency: from the server-side apply of a Pipeline to `Ready=True` in its status,
   against a baseline measured in the same run: from the same apply to the moment its pod
   reports Ready (the cluster's own floor: scheduling, process start, readiness probe).
2. CompletionToken latency: from the moment the token is both minted and complete on the
   pod (the bench follows the pod's completion frontier itself) to `Complete=True` in the
   resource's status; baseline: the API server's own watch latency (a status patch by the
   bench to the bench's watch seeing it).
3. Scale: N Pipelines with 2 Connectors each (`--running` of them Running, the rest
   Stopped), until every one is Ready; then the operator's RSS, and the status writes it
   issues in a quiet window (counted as MODIFIED watch events on all three kinds).

Numbers are printed, never asserted; the machine may be shared.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp

from sluice.core.tokens import decode_token
from sluice.k8s.api import COMPLETION_TOKEN, CONNECTOR, PIPELINE, POD, KubeApi, WatchEvent
from sluice.k8s.client import HttpKubeApi, load_credentials
from sluice.k8s.informer import Informer
from sluice.process.client import FrontierFollower
from tests.e2e.cluster.controlplane import REPO, require_tool, start_control_plane, start_node_agent

NAMESPACE = "bench"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ready(obj: dict[str, Any] | None) -> bool:
    for condition in ((obj or {}).get("status") or {}).get("conditions") or []:
        if condition["type"] == "Ready":
            return bool(condition["status"] == "True")
    return False


def pod_ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def pipeline(name: str, state: str = "Running") -> dict[str, Any]:
    return {
        "apiVersion": "sluice.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "desiredState": state,
            "sql": "CREATE TABLE t (x INT NOT NULL); CREATE VIEW v AS SELECT x FROM t;",
        },
    }


def connectors(name: str, folder: Path) -> list[dict[str, Any]]:
    data = folder / "input.json"
    return [
        {
            "apiVersion": "sluice.dev/v1alpha1",
            "kind": "Connector",
            "metadata": {"name": f"{name}-in", "namespace": NAMESPACE},
            "spec": {
                "pipelineRef": {"name": name},
                "table": "t",
                "transport": {"name": "file_input", "config": {"path": str(data), "follow": True}},
                "format": {"name": "json", "config": {"update_format": "raw"}},
            },
        },
        {
            "apiVersion": "sluice.dev/v1alpha1",
            "kind": "Connector",
            "metadata": {"name": f"{name}-out", "namespace": NAMESPACE},
            "spec": {
                "pipelineRef": {"name": name},
                "view": "v",
                "transport": {
                    "name": "file_output",
                    "config": {"path": str(folder / f"{name}-out.json")},
                },
                "format": {"name": "json", "config": {"update_format": "insert_delete"}},
            },
        },
    ]


class Watched:
    """Informers on the bench namespace, recording when each object first turned Ready."""

    def __init__(self, api: KubeApi) -> None:
        self.ready_at: dict[tuple[str, str], float] = {}
        self.token_seen_at: dict[str, float] = {}
        self.modified: dict[str, int] = {"Pipeline": 0, "Connector": 0, "CompletionToken": 0}
        self.informers = [
            Informer(api, kind, NAMESPACE, listener=self._listener(kind.kind))
            for kind in (PIPELINE, CONNECTOR, COMPLETION_TOKEN, POD)
        ]
        self.changed = asyncio.Event()

    def _listener(self, kind: str) -> Any:
        def listen(event: WatchEvent) -> None:
            name = str(event.object["metadata"]["name"])
            if event.type == "MODIFIED" and kind in self.modified:
                self.modified[kind] += 1
            if kind == "CompletionToken" and (event.object.get("status") or {}).get("token"):
                self.token_seen_at.setdefault(name, time.perf_counter())
            is_ready = pod_ready(event.object) if kind == "Pod" else ready(event.object)
            if is_ready and (kind, name) not in self.ready_at:
                self.ready_at[(kind, name)] = time.perf_counter()
            changed, self.changed = self.changed, asyncio.Event()
            changed.set()

        return listen

    async def start(self) -> None:
        for informer in self.informers:
            informer.start()
        await asyncio.gather(*(informer.synced.wait() for informer in self.informers))

    async def until(self, check: Any, within: float) -> None:
        deadline = time.perf_counter() + within
        while not check():
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError("benchmark condition not reached")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 1.0))

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        for informer in self.informers:
            if informer.kind.kind == kind:
                return informer.cache.get((NAMESPACE, name))
        return None

    async def close(self) -> None:
        for informer in self.informers:
            await informer.close()


async def ready_latency(api: HttpKubeApi, watched: Watched, rounds: int) -> None:
    pipeline_latency, pod_latency = [], []
    for number in range(rounds):
        name = f"ready-{number}"
        started = time.perf_counter()
        await api.apply(pipeline(name))
        await watched.until(
            lambda n=name: (
                ("Pipeline", n) in watched.ready_at and ("Pod", f"sluice-{n}-0") in watched.ready_at
            ),
            120,
        )
        pod = ("Pod", f"sluice-{name}-0")
        pipeline_latency.append(watched.ready_at[("Pipeline", name)] - started)
        pod_latency.append(watched.ready_at[pod] - started)
        await api.delete(PIPELINE, NAMESPACE, name)
    median, floor = statistics.median(pipeline_latency), statistics.median(pod_latency)
    print(
        f"1. apply -> Ready=True: median {median:.2f} s over {rounds} pipelines "
        f"(min {min(pipeline_latency):.2f}, max {max(pipeline_latency):.2f})"
    )
    print(
        f"   baseline apply -> pod Ready: median {floor:.2f} s; "
        f"ratio {median / floor:.2f}; operator's own share {median - floor:.2f} s"
    )


async def token_latency(
    api: HttpKubeApi, watched: Watched, session: aiohttp.ClientSession, folder: Path, rounds: int
) -> None:
    (folder / "input.json").write_text("")
    await api.apply(pipeline("tokens"))
    for document in connectors("tokens", folder):
        await api.apply(document)
    await watched.until(
        lambda: (
            ready(watched.get("Connector", "tokens-in"))
            and ready(watched.get("Pipeline", "tokens"))
        ),
        120,
    )
    endpoint = watched.get("Pipeline", "tokens")["status"]["endpoint"]  # type: ignore[index]
    follower = FrontierFollower(session, endpoint)
    lines: list[tuple[float, Any]] = []

    async def record() -> None:
        while True:
            await follower.wait_changed(30)
            if follower.current is not None:
                lines.append((time.perf_counter(), follower.current))

    follower.start()
    recorder = asyncio.create_task(record())
    samples, value = [], 0
    try:
        for number in range(rounds):
            with (folder / "input.json").open("a") as data:
                for _ in range(1000):
                    value += 1
                    data.write(f'{{"x": {value}}}\n')
            name = f"token-{number}"
            await api.apply(
                {
                    "apiVersion": "sluice.dev/v1alpha1",
                    "kind": "CompletionToken",
                    "metadata": {"name": name, "namespace": NAMESPACE},
                    "spec": {
                        "pipelineRef": {"name": "tokens"},
                        "table": "t",
                        "connector": "tokens-in",
                    },
                }
            )
            await watched.until(lambda n=name: ("CompletionToken", n) in watched.ready_at, 60)
            token = decode_token(watched.get("CompletionToken", name)["status"]["token"])  # type: ignore[index]
            covered = next(at for at, frontier in lines if frontier.is_complete(token))
            complete_at = watched.ready_at[("CompletionToken", name)]
            # A token can be complete on the pod before it is even minted: count from the
            # later of "complete on the pod" and "minted, as seen in status".
            samples.append(complete_at - max(covered, watched.token_seen_at[name]))
    finally:
        recorder.cancel()
        await follower.close()
    # Baseline: the API server's own round trip, a status patch until our watch sees it.
    trips = []
    for number in range(rounds):
        before = watched.modified["Pipeline"]
        started = time.perf_counter()
        await api.patch(
            PIPELINE, NAMESPACE, "tokens", {"metadata": {"labels": {"bench": str(number)}}}
        )
        await watched.until(lambda b=before: watched.modified["Pipeline"] > b, 10)
        trips.append(time.perf_counter() - started)
    median = statistics.median(samples)
    print(
        f"2. pod completion -> Complete=True: median {median * 1000:.0f} ms over {rounds} tokens "
        f"(max {max(samples) * 1000:.0f} ms)"
    )
    print(
        f"   baseline API write -> watch: median {statistics.median(trips) * 1000:.0f} ms; "
        f"ratio {median / statistics.median(trips):.1f}"
    )


async def scale(
    api: HttpKubeApi,
    watched: Watched,
    folder: Path,
    total: int,
    running: int,
    quiet: float,
    operator_pid: int,
) -> None:
    (folder / "input.json").write_text('{"x": 1}\n')
    started = time.perf_counter()
    for number in range(total):
        name = f"scale-{number}"
        await api.apply(pipeline(name, "Running" if number < running else "Stopped"))
        for document in connectors(name, folder):
            await api.apply(document)
    names = [f"scale-{number}" for number in range(total)]
    await watched.until(
        lambda: all(ready(watched.get("Pipeline", name)) for name in names), 60 + total * 5
    )
    converged = time.perf_counter() - started
    print(f"3. {total} pipelines ({running} running) x 2 connectors converged in {converged:.0f} s")
    # Let the first freshness tokens complete (every 10 s) before counting.
    await asyncio.sleep(25)
    before = dict(watched.modified)
    await asyncio.sleep(quiet)
    writes = {kind: watched.modified[kind] - before[kind] for kind in before}
    print(
        f"   operator RSS {rss_mib(operator_pid):.0f} MiB; "
        f"status writes in {quiet:.0f} quiet s: {sum(writes.values())} {writes}"
    )


@contextlib.contextmanager
def cluster(root: Path) -> Iterator[tuple[Path, int]]:
    plane = start_control_plane(root / "cp")
    operator = None
    try:
        start_node_agent(plane)
        kubectl = str(require_tool("kubectl"))
        env = {**os.environ, "KUBECONFIG": str(plane.kubeconfig)}
        subprocess.run(
            [kubectl, "apply", "--server-side", "-f", str(REPO / "crds")],
            check=True,
            env=env,
            capture_output=True,
        )
        subprocess.run(
            [kubectl, "create", "namespace", NAMESPACE], check=True, env=env, capture_output=True
        )
        with (root / "operator.log").open("wb") as log:
            operator = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "sluice",
                    "operator",
                    "--namespace",
                    NAMESPACE,
                    "--liveness",
                    f"http://127.0.0.1:{free_port()}/healthz",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        yield plane.kubeconfig, operator.pid
    finally:
        if operator is not None:
            operator.send_signal(signal.SIGTERM)
            try:
                operator.wait(20)
            except subprocess.TimeoutExpired:
                operator.kill()
        plane.stop()


async def measure(args: argparse.Namespace, root: Path, pid: int) -> None:
    async with aiohttp.ClientSession() as session:
        api = HttpKubeApi(load_credentials(), session)
        watched = Watched(api)
        await watched.start()
        try:
            if args.ready_rounds:
                await ready_latency(api, watched, args.ready_rounds)
            if args.token_rounds:
                await token_latency(api, watched, session, root, args.token_rounds)
            if args.pipelines:
                await scale(
                    api, watched, root, args.pipelines, args.running, args.quiet_seconds, pid
                )
        finally:
            await watched.close()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_operator")
    parser.add_argument("--ready-rounds", type=int, default=7)
    parser.add_argument("--token-rounds", type=int, default=9)
    parser.add_argument("--pipelines", type=int, default=200)
    parser.add_argument(
        "--running",
        type=int,
        default=20,
        help="how many of the pipelines run (a pipeline pod is a ~200 MiB process here)",
    )
    parser.add_argument("--quiet-seconds", type=float, default=60.0)
    args = parser.parse_args()
    # A SIGTERM (a timeout, make) must still stop the control plane and every pod process.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="sluice-bench-") as scratch:
        root = Path(scratch)
        with cluster(root) as (kubeconfig, pid):
            os.environ["KUBECONFIG"] = str(kubeconfig)
            asyncio.run(measure(args, root, pid))
    return 0


if __name__ == "__main__":
    sys.exit(main())
