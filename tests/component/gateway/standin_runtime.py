"""A stand-in pipeline process speaking the `sluice runtime` contract (CLI and HTTP API).

It exists so the gateway and local mode could be built while the runtime was written in
parallel; the component tests run the real `sluice runtime`. It applies no SQL: every record
it receives completes after a short, controllable delay (`SLUICE_STANDIN_STEP_SECONDS`).

Run: python -m tests.component.gateway.standin_runtime --config C --port 0 --port-file F
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sys
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web

from sluice.core.naming import canonical_sql_name, endpoint_name
from sluice.core.tokens import CompletionToken, InvalidToken, decode_token

VIEW_PATTERN = r"CREATE\s+(?:MATERIALIZED\s+)?VIEW\s+(\"?\w+\"?)"


def error(status: int, code: str, message: str, details: Any = None) -> web.Response:
    return web.json_response(
        {"message": message, "error_code": code, "details": details}, status=status
    )


class StandIn:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.incarnation = str(uuid.uuid4())
        self.state = config.get("initial_state", "Running")
        self.steps = 0
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.changed = asyncio.Event()
        self.step_seconds = float(os.environ.get("SLUICE_STANDIN_STEP_SECONDS", "0.01"))
        self.tables = [
            m.group(1) for m in re.finditer(r"CREATE\s+TABLE\s+(\"?\w+\"?)", config["sql"], re.I)
        ]
        self.views = [m.group(1) for m in re.finditer(VIEW_PATTERN, config["sql"], re.I)]
        for connector in config.get("connectors", []):
            if connector["direction"] == "input":
                self.endpoint(endpoint_name(connector["relation"], connector["name"]))

    def endpoint(self, name: str) -> dict[str, Any]:
        if name not in self.endpoints:
            self.endpoints[name] = {"id": len(self.endpoints), "received": 0, "completed": 0}
        return self.endpoints[name]

    def frontier(self) -> dict[str, Any]:
        return {
            "incarnation": self.incarnation,
            "total_completed_steps": self.steps,
            "endpoints": {
                str(e["id"]): {"name": name, "completed_records": e["completed"]}
                for name, e in self.endpoints.items()
            },
        }

    async def step_loop(self) -> None:
        while True:
            await asyncio.sleep(self.step_seconds)
            if self.state != "Running":
                continue
            moved = False
            for e in self.endpoints.values():
                if e["completed"] < e["received"]:
                    e["completed"] = e["received"]
                    moved = True
            if moved:
                self.steps += 1
                changed, self.changed = self.changed, asyncio.Event()
                changed.set()

    def app(self) -> web.Application:
        app = web.Application()
        r = app.router
        r.add_get("/healthz", self.healthz)
        r.add_get("/status", self.status)
        r.add_get("/metadata", self.metadata)
        r.add_get("/start", self.start)
        r.add_get("/pause", self.pause)
        r.add_get("/stats", self.stats)
        r.add_get("/metrics", self.metrics)
        r.add_get("/completion_frontier", self.follow)
        r.add_get("/completion_status", self.completion_status)
        r.add_get("/input_endpoints/{ep}/completion_token", self.token)
        r.add_get("/input_endpoints/{ep}/stats", self.input_stats)
        r.add_get("/input_endpoints/{ep}/{action:start|pause}", self.connector_action)
        r.add_get("/output_endpoints/{ep}/stats", self.output_stats)
        r.add_post("/ingress/{table}", self.ingress)
        r.add_post("/egress/{view}", self.egress)
        r.add_get("/query", self.query)
        return app

    async def healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def metrics(self, _: web.Request) -> web.Response:
        return web.Response(text="# standin\n")

    async def status(self, _: web.Request) -> web.Response:
        return web.json_response(
            {
                "runtime_status": self.state,
                "runtime_desired_status": self.state,
                "runtime_status_details": None,
                "storage_status_details": None,
                "incarnation_uuid": self.incarnation,
            }
        )

    async def metadata(self, _: web.Request) -> web.Response:
        def relation(name: str) -> dict[str, Any]:
            return {
                "name": canonical_sql_name(name),
                "case_sensitive": False,
                "materialized": False,
                "fields": [],
            }

        return web.json_response(
            {
                "pipeline_name": self.config["pipeline_name"],
                "program_code": self.config["sql"],
                "incarnation_uuid": self.incarnation,
                "schema": {
                    "inputs": [relation(t) for t in self.tables],
                    "outputs": [relation(v) for v in self.views],
                },
                "connectors": [],
            }
        )

    async def start(self, _: web.Request) -> web.Response:
        self.state = "Running"
        return web.json_response("Pipeline transitioning to Running", status=202)

    async def pause(self, _: web.Request) -> web.Response:
        self.state = "Paused"
        return web.json_response("Pipeline transitioning to Paused", status=202)

    async def stats(self, _: web.Request) -> web.Response:
        return web.json_response(
            {
                "global_metrics": {"state": self.state, "total_completed_steps": self.steps},
                "inputs": [],
                "outputs": [],
            }
        )

    async def follow(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_type = "application/x-ndjson"
        await response.prepare(request)
        while True:
            await response.write(json.dumps(self.frontier()).encode() + b"\n")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), 5)

    async def completion_status(self, request: web.Request) -> web.Response:
        try:
            token = decode_token(request.query["token"])
        except (InvalidToken, KeyError) as failure:
            text = f"invalid completion token: {failure}"
            return error(400, "InvalidParam", f"Invalid parameter: {text}", {"error": text})
        if token.incarnation != self.incarnation:
            text = "the pipeline was restarted after the token was generated"
            return error(410, "PipelineRestarted", text, {"error": text})
        for e in self.endpoints.values():
            if e["id"] == token.endpoint_id:
                done = e["completed"] >= token.records
                return web.json_response(
                    {
                        "status": "complete" if done else "inprogress",
                        "step": self.steps if done else None,
                    }
                )
        return error(410, "UnknownEndpointInCompletionToken", "gone", {"endpoint_id": 0})

    async def token(self, request: web.Request) -> web.Response:
        name = request.match_info["ep"]
        if name not in self.endpoints:
            return error(
                404,
                "UnknownInputEndpoint",
                f"unknown input endpoint name '{name}'",
                {"endpoint_name": name},
            )
        e = self.endpoints[name]
        return web.json_response(
            {"token": CompletionToken(self.incarnation, e["id"], e["received"]).encode()}
        )

    async def input_stats(self, request: web.Request) -> web.Response:
        name = request.match_info["ep"]
        if name not in self.endpoints:
            return error(
                404,
                "UnknownInputEndpoint",
                f"unknown input endpoint name '{name}'",
                {"endpoint_name": name},
            )
        return web.json_response(
            {"endpoint_name": name, "metrics": {"total_records": self.endpoints[name]["received"]}}
        )

    async def connector_action(self, request: web.Request) -> web.Response:
        if request.match_info["ep"] not in self.endpoints:
            return error(404, "UnknownInputEndpoint", "unknown", {"endpoint_name": "x"})
        return web.Response()

    async def output_stats(self, request: web.Request) -> web.Response:
        name = request.match_info["ep"]
        return error(
            404,
            "UnknownOutputEndpoint",
            f"unknown output endpoint name '{name}'",
            {"endpoint_name": name},
        )

    async def ingress(self, request: web.Request) -> web.Response:
        table = canonical_sql_name(request.match_info["table"])
        if table not in [canonical_sql_name(t) for t in self.tables]:
            return error(
                404,
                "ConfigError.UnknownInputStream",
                f"unknown table '{table}'",
                {"config_error": {"stream_name": table}},
            )
        body = await request.read()
        try:
            parsed = (
                json.loads(body)
                if request.query.get("array") == "true"
                else [json.loads(line) for line in body.splitlines() if line.strip()]
            )
        except ValueError as failure:
            return error(
                400, "ParseErrors", "parse errors", {"num_errors": 1, "errors": [str(failure)]}
            )
        e = self.endpoint(f"{table}.api-ingress-standin")
        e["received"] += len(parsed)
        return web.json_response(
            {"token": CompletionToken(self.incarnation, e["id"], e["received"]).encode()}
        )

    async def egress(self, request: web.Request) -> web.StreamResponse:
        view = canonical_sql_name(request.match_info["view"])
        if view not in [canonical_sql_name(v) for v in self.views]:
            return error(
                404,
                "ConfigError.UnknownOutputStream",
                f"unknown view '{view}'",
                {"config_error": {"stream_name": view}},
            )
        response = web.StreamResponse()
        response.content_type = "application/json"
        await response.prepare(request)
        for sequence in range(3):
            await response.write(json.dumps({"sequence_number": sequence}).encode() + b"\n")
        await response.write_eof()
        return response

    async def query(self, request: web.Request) -> web.Response:
        return web.Response(text=f"query: {request.query.get('sql', '')}\n")


async def main(args: argparse.Namespace, config: dict[str, Any]) -> None:
    standin = StandIn(config)
    runner = web.AppRunner(standin.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    port = runner.addresses[0][1]
    if args.port_file:
        write_port_file(args.port_file, f"{args.host}:{port}")
    await standin.step_loop()


def write_port_file(path: str, location: str) -> None:
    temporary = Path(path + ".tmp")
    temporary.write_text(location)
    temporary.replace(path)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    try:
        arguments = parser.parse_args()
        asyncio.run(main(arguments, json.loads(Path(arguments.config).read_text())))
    except KeyboardInterrupt:
        sys.exit(0)
