"""Layer 3 (runtime), I/O: Feldera's pipeline-process HTTP API over one Controller.

`create_app(controller)` has no side effects: the controller's step loop and connectors start
in the app's startup hook and drain in its cleanup hook. Errors are `ApiError`s rendered as
`{"message", "error_code", "details"}` by one middleware. Besides Feldera's routes it serves
`/healthz`, `/readyz` and `/completion_frontier`, the NDJSON stream of the completion frontier.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal

import duckdb
from aiohttp import web

from sluice.core import errors
from sluice.core.errors import ApiError
from sluice.core.tokens import InvalidToken, decode_token
from sluice.models.runtime_config import FormatConfig
from sluice.runtime import formats
from sluice.runtime.completion import TokenForUnknownEndpoint, TokenFromOtherIncarnation
from sluice.runtime.connectors import run_input
from sluice.runtime.controller import END_OF_STREAM, Controller, OutputEndpoint

logger = logging.getLogger(__name__)

CONTROLLER = web.AppKey("controller", Controller)
FRONTIER_HEARTBEAT_SECONDS = 5.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(controller: Controller) -> web.Application:
    """The pipeline-process API of `controller`."""
    app = web.Application(middlewares=[_errors], client_max_size=1 << 30)
    app[CONTROLLER] = controller
    app.on_startup.append(_start)
    app.on_shutdown.append(_stop)
    routes = [
        web.get("/healthz", healthz),
        web.get("/readyz", readyz),
        web.get("/status", status),
        web.get("/stats", stats),
        web.get("/metrics", metrics),
        web.get("/metadata", metadata),
        web.get("/start", start),
        web.post("/start", start),
        web.get("/pause", pause),
        web.post("/pause", pause),
        web.get("/completion_status", completion_status),
        web.get("/completion_frontier", completion_frontier),
        web.get("/input_endpoints/{endpoint}/completion_token", completion_token),
        web.get("/input_endpoints/{endpoint}/stats", input_stats),
        web.get("/input_endpoints/{endpoint}/start", input_start),
        web.post("/input_endpoints/{endpoint}/start", input_start),
        web.get("/input_endpoints/{endpoint}/pause", input_pause),
        web.post("/input_endpoints/{endpoint}/pause", input_pause),
        web.get("/output_endpoints/{endpoint}/stats", output_stats),
        web.post("/ingress/{table}", ingress),
        web.post("/egress/{view}", egress),
        web.get("/query", query),
    ]
    app.add_routes(routes)
    return app


async def _start(app: web.Application) -> None:
    await app[CONTROLLER].start(run_input)


async def _stop(app: web.Application) -> None:
    await app[CONTROLLER].stop()


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        return web.json_response(error.body(), status=error.status, headers=error.headers)


def _controller(request: web.Request) -> Controller:
    return request.app[CONTROLLER]


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "healthy"})


async def readyz(request: web.Request) -> web.Response:
    controller = _controller(request)
    if controller.status == "Initializing":
        raise errors.initializing()
    return web.json_response({"status": "ready"})


async def status(request: web.Request) -> web.Response:
    controller = _controller(request)
    return web.json_response(
        {
            "runtime_status": controller.status,
            "runtime_desired_status": controller.desired,
            "runtime_status_details": (
                {"reason": "StepFailed", "error": controller.failure}
                if controller.failure
                else None
            ),
            "storage_status_details": None,
            "incarnation_uuid": controller.incarnation,
        }
    )


def _flag(request: web.Request, name: str, default: bool = False) -> bool:
    value = request.query.get(name)
    if value is None:
        return default
    if value.lower() in ("true", "1", ""):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise errors.invalid_param(f"parameter '{name}' must be true or false, not '{value}'")


async def stats(request: web.Request) -> web.Response:
    include = _flag(request, "include_connector_errors", default=False)
    return web.json_response(_controller(request).stats(include_errors=include))


async def metrics(request: web.Request) -> web.Response:
    body = _controller(request).global_metrics()
    if request.query.get("format") == "json":
        return web.json_response(body)
    lines: list[str] = []
    for key, value in body.items():
        if isinstance(value, bool | int | float) and not isinstance(value, str):
            lines.append(f"# TYPE sluice_{key} gauge")
            lines.append(f"sluice_{key} {int(value) if isinstance(value, bool) else value}")
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


async def metadata(request: web.Request) -> web.Response:
    return web.json_response(_controller(request).metadata())


async def start(request: web.Request) -> web.Response:
    return web.json_response(_controller(request).set_desired("Running"), status=202)


async def pause(request: web.Request) -> web.Response:
    return web.json_response(_controller(request).set_desired("Paused"), status=202)


async def completion_token(request: web.Request) -> web.Response:
    controller = _controller(request)
    endpoint = controller.input_endpoint(request.match_info["endpoint"])
    return web.json_response({"token": controller.mint(endpoint)})


async def completion_status(request: web.Request) -> web.Response:
    controller = _controller(request)
    text = request.query.get("token")
    if text is None:
        raise errors.invalid_param("missing query parameter 'token'")
    try:
        token = decode_token(text)
    except InvalidToken as error:
        raise errors.invalid_param(f"invalid completion token: {error}") from error
    try:
        answer = controller.completion_status(token)
    except TokenFromOtherIncarnation as error:
        raise errors.pipeline_restarted(
            f"completion token was generated by a previous incarnation of the pipeline "
            f"({token.incarnation}); the pipeline was restarted since "
            f"(current incarnation: {controller.incarnation})"
        ) from error
    except TokenForUnknownEndpoint as error:
        raise errors.unknown_endpoint_in_token(token.endpoint_id) from error
    return web.json_response(answer.body())


async def completion_frontier(request: web.Request) -> web.StreamResponse:
    controller = _controller(request)
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    while not controller.stopping:
        waiting = asyncio.ensure_future(controller.frontier_changed(FRONTIER_HEARTBEAT_SECONDS))
        line = json.dumps(controller.tracker.frontier(), separators=(",", ":")) + "\n"
        try:
            await response.write(line.encode())
            await waiting
        except (ConnectionResetError, asyncio.CancelledError):
            waiting.cancel()
            break
    return response


async def input_stats(request: web.Request) -> web.Response:
    controller = _controller(request)
    endpoint = controller.input_endpoint(request.match_info["endpoint"])
    return web.json_response(controller.input_status(endpoint))


async def input_start(request: web.Request) -> web.Response:
    controller = _controller(request)
    controller.set_connector_paused(
        controller.input_endpoint(request.match_info["endpoint"]), False
    )
    return web.Response(status=200)


async def input_pause(request: web.Request) -> web.Response:
    controller = _controller(request)
    controller.set_connector_paused(controller.input_endpoint(request.match_info["endpoint"]), True)
    return web.Response(status=200)


async def output_stats(request: web.Request) -> web.Response:
    controller = _controller(request)
    endpoint = controller.output_endpoint(request.match_info["endpoint"])
    return web.json_response(controller.output_status(endpoint))


def _format(request: web.Request, default: Literal["csv", "json"]) -> FormatConfig:
    name = request.query.get("format", default)
    if name not in ("csv", "json"):
        raise errors.invalid_param(f"unknown format '{name}'")
    config: dict[str, Any] = {}
    if name == "json":
        update_format = request.query.get("update_format", "insert_delete")
        if update_format not in ("insert_delete", "raw"):
            raise errors.invalid_param(f"unsupported update_format '{update_format}'")
        config = {"update_format": update_format, "array": _flag(request, "array")}
    return FormatConfig(name=name, config=config)


async def ingress(request: web.Request) -> web.Response:
    controller = _controller(request)
    fmt = _format(request, "csv")

    async def body() -> AsyncIterator[bytes]:
        async for chunk in request.content.iter_chunked(1 << 20):
            yield chunk

    token = await controller.ingest(request.match_info["table"], fmt, body())
    return web.json_response({"token": token})


async def egress(request: web.Request) -> web.StreamResponse:
    controller = _controller(request)
    fmt = _format(request, "csv")
    output = controller.subscribe(request.match_info["view"], fmt)
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    try:
        await response.prepare(request)
        await _stream_output(controller, output, response)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        controller.unsubscribe(output)
    return response


async def _stream_output(
    controller: Controller, output: OutputEndpoint, response: web.StreamResponse
) -> None:
    assert output.stream is not None
    sequence = 0
    while True:
        step, delta = await output.stream.get()
        if step == END_OF_STREAM:
            output.stream.task_done()
            return
        if delta is not None and delta.num_rows:
            if output.encoder.is_json:
                chunk: dict[str, Any] = {
                    "sequence_number": sequence,
                    "json_data": output.encoder.json_records(delta),
                }
            else:
                chunk = {"sequence_number": sequence, "text_data": output.encoder.csv_text(delta)}
            data = (formats.dumps(chunk) + "\r\n").encode()
            await response.write(data)
            sequence += 1
            output.transmitted_bytes += len(data)
            output.transmitted_records += delta.num_rows
        controller.delivered(output, step)
        output.stream.task_done()


async def query(request: web.Request) -> web.StreamResponse:
    controller = _controller(request)
    sql = request.query.get("sql")
    if not sql:
        raise errors.invalid_param("missing query parameter 'sql'")
    fmt = request.query.get("format", "json")
    if fmt != "json":
        raise errors.invalid_param(f"unsupported ad-hoc query format '{fmt}'")

    def run() -> list[dict[str, Any]]:
        cursor = controller.engine.cursor()
        try:
            checked = cursor.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()
            parsed = json.loads(checked[0][0]) if checked else {"error": True}
            if parsed.get("error"):
                raise errors.invalid_param(
                    f"ad-hoc queries must be one SELECT: {parsed.get('error_message', '')}"
                )
            rows: list[dict[str, Any]] = formats.json_ready(
                cursor.sql(sql).to_arrow_table()
            ).to_pylist()
            return rows
        except duckdb.Error as error:
            raise errors.invalid_param(str(error).splitlines()[0]) from error
        finally:
            cursor.close()

    rows = await asyncio.to_thread(run)
    text = "".join(formats.dumps(row) + "\n" for row in rows)
    return web.Response(text=text, content_type="application/x-ndjson")
