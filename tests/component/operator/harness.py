"""A running operator core without kopf: FakeKube, a fake kubelet and fake pipeline processes.

The informers feed the store and the work queue exactly as the kopf handlers do (through
`Store.record`), so these tests exercise the reconcilers, the queue and the status writer
end to end. The pipeline process is a real HTTP server on a loopback address, port 8080,
speaking the pipeline-process API the operator uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web

from sluice.controller import lifecycle
from sluice.controller.deps import Deps
from sluice.controller.observe import Observer
from sluice.core.tokens import CompletionToken, decode_token
from sluice.k8s.api import KINDS, WatchEvent
from sluice.k8s.informer import Informer
from sluice.models.runtime_config import RuntimeConfig
from sluice.models.settings import OperatorSettings
from sluice.process.client import ProcessClient
from tests.component.operator.fake_kube import FakeKube

NAMESPACE = "team"


@dataclass
class Endpoint:
    name: str
    endpoint_id: int
    records: int = 0
    end_of_input: bool = False
    paused: bool = False


@dataclass
class FakeProcess:
    """The pipeline-process API of one pod, backed by its rendered config."""

    config: RuntimeConfig
    incarnation: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: str = "Running"
    desired: str = "Running"
    completed: dict[int, int] = field(default_factory=dict)
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.status = self.desired = self.config.initial_state
        for number, connector in enumerate(
            c for c in self.config.connectors if c.direction == "input"
        ):
            name = f"{connector.relation.lower()}.{connector.name}"
            self.endpoints[name] = Endpoint(name, number, paused=connector.paused)

    def feed(self, endpoint: str, records: int, *, end: bool = False) -> None:
        self.endpoints[endpoint].records += records
        self.endpoints[endpoint].end_of_input = end

    def complete_all(self) -> None:
        for endpoint in self.endpoints.values():
            self.completed[endpoint.endpoint_id] = endpoint.records
        self._publish()

    def _publish(self) -> None:
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()

    def app(self) -> web.Application:
        app = web.Application()
        routes = web.RouteTableDef()

        @routes.get("/status")
        async def status(request: web.Request) -> web.Response:
            return web.json_response(
                {
                    "runtime_status": self.status,
                    "runtime_desired_status": self.desired,
                    "runtime_status_details": None,
                    "incarnation_uuid": self.incarnation,
                }
            )

        @routes.get("/stats")
        async def stats(request: web.Request) -> web.Response:
            return web.json_response(
                {
                    "global_metrics": {"incarnation_uuid": self.incarnation},
                    "inputs": [
                        {
                            "endpoint_name": e.name,
                            "paused": e.paused,
                            "fatal_error": None,
                            "metrics": {
                                "total_records": e.records,
                                "total_bytes": e.records * 10,
                                "buffered_records": 0,
                                "num_parse_errors": 0,
                                "num_transport_errors": 0,
                                "end_of_input": e.end_of_input,
                            },
                        }
                        for e in self.endpoints.values()
                    ],
                    "outputs": [],
                }
            )

        @routes.get("/metadata")
        async def metadata(request: web.Request) -> web.Response:
            # The shape `sluice runtime` serves at /metadata (program schema, Feldera-style).
            return web.json_response(
                {
                    "schema": {
                        "inputs": [{"name": "t", "fields": []}],
                        "outputs": [{"name": "v", "fields": []}],
                    }
                }
            )

        @routes.get("/start")
        async def start(request: web.Request) -> web.Response:
            self.calls.append("start")
            self.status = self.desired = "Running"
            return web.json_response("ok", status=202)

        @routes.get("/pause")
        async def pause(request: web.Request) -> web.Response:
            self.calls.append("pause")
            self.status = self.desired = "Paused"
            return web.json_response("ok", status=202)

        @routes.get("/input_endpoints/{endpoint}/{action:pause|start}")
        async def connector_action(request: web.Request) -> web.Response:
            endpoint = self.endpoints[request.match_info["endpoint"]]
            endpoint.paused = request.match_info["action"] == "pause"
            self.calls.append(f"{request.match_info['action']} {endpoint.name}")
            return web.Response()

        @routes.get("/input_endpoints/{endpoint}/completion_token")
        async def mint(request: web.Request) -> web.Response:
            endpoint = self.endpoints.get(request.match_info["endpoint"])
            if endpoint is None:
                return web.json_response(
                    {"message": "unknown", "error_code": "UnknownInputEndpoint", "details": None},
                    status=404,
                )
            self.calls.append(f"mint {endpoint.name}")
            token = CompletionToken(self.incarnation, endpoint.endpoint_id, endpoint.records)
            return web.json_response({"token": token.encode()})

        @routes.get("/completion_status")
        async def completion_status(request: web.Request) -> web.Response:
            self.calls.append("completion_status")
            token = decode_token(request.query["token"])
            if token.incarnation != self.incarnation:
                return web.json_response(
                    {"message": "restarted", "error_code": "PipelineRestarted", "details": None},
                    status=410,
                )
            done = self.completed.get(token.endpoint_id, 0) >= token.records
            return web.json_response({"status": "complete" if done else "inprogress"})

        @routes.get("/completion_frontier")
        async def frontier(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse()
            await response.prepare(request)
            while True:
                line = {
                    "incarnation": self.incarnation,
                    "total_completed_steps": 1,
                    "endpoints": {
                        str(e.endpoint_id): {
                            "name": e.name,
                            "completed_records": self.completed.get(e.endpoint_id, 0),
                        }
                        for e in self.endpoints.values()
                    },
                }
                await response.write(json.dumps(line).encode() + b"\n")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5):
                        await self.changed.wait()

        app.add_routes(routes)
        return app


def free_loopback() -> str:
    return f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"


class FakeKubelet:
    """Turns StatefulSets into one running pod each, served by a FakeProcess."""

    def __init__(self, kube: FakeKube) -> None:
        self.kube = kube
        self.processes: dict[str, FakeProcess] = {}
        self.runners: dict[str, tuple[web.AppRunner, str, str]] = {}
        self.errors: list[str] = []

    async def sync(self) -> None:
        for (kind, namespace, name), sts in list(self.kube.objects.items()):
            if kind != "StatefulSet":
                continue
            template = sts["spec"]["template"]
            pod_name = f"{name}-0"
            pod = self.kube.objects.get(("Pod", namespace, pod_name))
            annotations = template["metadata"]["annotations"]
            if pod is not None and pod["metadata"]["annotations"] == annotations:
                continue
            await self.stop(pod_name)
            config_map = self.kube.objects[("ConfigMap", namespace, name)]
            config = RuntimeConfig.model_validate_json(config_map["data"]["config.json"])
            process = FakeProcess(config)
            runner = web.AppRunner(process.app(), shutdown_timeout=0.1)
            await runner.setup()
            ip = free_loopback()
            await web.TCPSite(runner, ip, 8080).start()
            self.processes[sts["metadata"]["labels"]["sluice.dev/pipeline"]] = process
            self.runners[pod_name] = (runner, namespace, ip)
            self.kube.set_object(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": pod_name,
                        "namespace": namespace,
                        "labels": dict(template["metadata"]["labels"]),
                        "annotations": dict(annotations),
                    },
                    "status": {
                        "phase": "Running",
                        "podIP": ip,
                        "conditions": [{"type": "Ready", "status": "True"}],
                        "containerStatuses": [
                            {"name": "pipeline", "restartCount": 0, "ready": True}
                        ],
                    },
                }
            )
        for kind, namespace, name in list(self.kube.objects):
            if kind == "Pod" and ("StatefulSet", namespace, name[:-2]) not in self.kube.objects:
                await self.stop(name)
                self.kube.remove("Pod", namespace, name)

    async def stop(self, pod_name: str) -> None:
        entry = self.runners.pop(pod_name, None)
        if entry is not None:
            await entry[0].cleanup()

    async def run(self) -> None:
        while True:
            changed = self.kube.changed
            try:
                await self.sync()
            except Exception as error:
                self.errors.append(repr(error))
            await changed.wait()

    async def close(self) -> None:
        for pod_name in list(self.runners):
            await self.stop(pod_name)


@contextlib.asynccontextmanager
async def running_operator(
    settings: OperatorSettings | None = None, clock: Callable[[], datetime] | None = None
) -> AsyncIterator[tuple[FakeKube, Deps, FakeKubelet]]:
    """FakeKube + operator core + fake kubelet, all running."""
    kube = FakeKube()
    settings = settings or OperatorSettings(
        namespaces=(NAMESPACE,),
        resync_interval=0.5,
        status_poll_interval=0.1,
        freshness_interval=0.3,
        liveness_endpoint=None,
        workers=4,
    )
    async with aiohttp.ClientSession() as session:
        process = ProcessClient(session, timeout=2)
        deps = Deps(
            settings=settings,
            kube=kube,
            process=process,
            observer=Observer(process, session, max_age=0.05),
        )
        if clock is not None:
            deps.clock = clock

        def listener(kind: str) -> Callable[[WatchEvent], None]:
            def route(event: WatchEvent) -> None:
                for key in deps.store.record(kind, event.type, event.object):
                    deps.queue.add(key)

            return route

        informers = [
            Informer(kube, KINDS[kind], NAMESPACE, listener=listener(kind))
            for kind in (
                "Pipeline",
                "Connector",
                "CompletionToken",
                "StatefulSet",
                "Pod",
                "ConfigMap",
                "Service",
            )
        ]
        kubelet = FakeKubelet(kube)
        tasks = [asyncio.create_task(kubelet.run())]
        for informer in informers:
            informer.start()
        tasks += lifecycle.start_workers(deps)
        try:
            yield kube, deps, kubelet
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for informer in informers:
                await informer.close()
            await deps.observer.close()
            deps.process.close()
            await kubelet.close()


async def eventually(check: Callable[[], Any], within: float = 10.0) -> Any:
    """Poll `check` until it returns something truthy (the reconcile loop is asynchronous)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            result = check()
        except (KeyError, TypeError, StopIteration):
            result = None
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.02)


def condition(obj: dict[str, Any] | None, type_: str) -> tuple[str, str] | None:
    for item in ((obj or {}).get("status") or {}).get("conditions") or []:
        if item["type"] == type_:
            return (item["status"], item["reason"])
    return None
