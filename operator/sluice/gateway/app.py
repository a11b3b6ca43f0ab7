"""Layer 3 (gateway): the aiohttp application serving Feldera's /v0 API over a directory.

`create_app(settings, directory)` has no side effects; the cleanup context creates the one
HTTP client session, the pipeline-process client and the pod registry (frontier followers),
and closes them. Requests are routed from the in-memory `PipelineDirectory` only. Errors
leave in Feldera's shape; an unexpected exception is logged and answered as a JSON 500,
never a traceback.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
import prometheus_client
from aiohttp import web

from sluice.core import errors, naming
from sluice.core.auth import Principal
from sluice.core.directory import DesiredState, PipelineDirectory, PipelineEntry
from sluice.core.errors import ApiError
from sluice.core.tokens import CompletionToken, InvalidToken, decode_token
from sluice.gateway import descriptors, upstream
from sluice.gateway.auth import Authenticator, bearer_token, choose
from sluice.gateway.pods import PodRegistry
from sluice.gateway.routes import ROOT_ROUTES, ROUTES, ROUTES_BY_ID, build_openapi
from sluice.process.client import (
    INGRESS_TIMEOUT_SECONDS,
    REQUEST_TIMEOUT_SECONDS,
    ProcessClient,
    ProcessResponse,
    ProcessUnreachable,
    build_url,
    endpoint_path,
)

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

TENANT_HEADER = "Feldera-Tenant"
MAX_WAIT_MS = 120_000
"""Upper bound of the completion_status long-poll."""
DEFAULT_BODY_LIMIT = 256 * 1024 * 1024


@dataclass(frozen=True)
class GatewaySettings:
    """Everything the gateway needs besides its directory."""

    namespace: str
    """The default namespace (tenant); `Feldera-Tenant` may pick another watched one."""
    version: str
    authenticators: Sequence[Authenticator] = ()
    """Empty: no authentication (every caller is an anonymous admin)."""
    authentication_info: dict[str, Any] = field(default_factory=dict)
    """Body of /v0/config/authentication ({} when auth is off, as Feldera)."""
    body_limit: int = DEFAULT_BODY_LIMIT
    edition: str = "Open source"
    request_timeout: float = REQUEST_TIMEOUT_SECONDS
    ingress_timeout: float = INGRESS_TIMEOUT_SECONDS


class Metrics:
    """Prometheus metrics of one gateway (its own registry, so tests can run side by side)."""

    def __init__(self) -> None:
        self.registry = prometheus_client.CollectorRegistry(auto_describe=True)
        self.requests = prometheus_client.Counter(
            "sluice_gateway_requests",
            "Requests answered, by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = prometheus_client.Histogram(
            "sluice_gateway_request_duration_seconds",
            "Time to answer (to the first byte of streamed answers), by route and method",
            ["route", "method"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30),
            registry=self.registry,
        )
        self.upstream_errors = prometheus_client.Counter(
            "sluice_gateway_upstream_errors",
            "Calls to pipeline processes that failed to connect or timed out",
            ["kind"],
            registry=self.registry,
        )
        self.completion_answers = prometheus_client.Counter(
            "sluice_gateway_completion_status_answers",
            "completion_status answers, by where the answer came from (memory or pod)",
            ["source"],
            registry=self.registry,
        )
        self.completion_answers_memory = self.completion_answers.labels("memory")
        self.completion_answers_pod = self.completion_answers.labels("pod")
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._histograms: dict[tuple[str, str], Any] = {}
        self.followers = prometheus_client.Gauge(
            "sluice_gateway_frontier_streams",
            "Completion-frontier streams followed, by whether they are connected",
            ["connected"],
            registry=self.registry,
        )

    def observe(self, request: web.Request, status: int, started: float) -> None:
        """Count one answer and its latency (label children are cached: they never change)."""
        route = _route_label(request)
        method = request.method
        counter = self._counters.get((route, method, status))
        if counter is None:
            counter = self.requests.labels(route, method, str(status))
            self._counters[(route, method, status)] = counter
        counter.inc()
        histogram = self._histograms.get((route, method))
        if histogram is None:
            histogram = self.latency.labels(route, method)
            self._histograms[(route, method)] = histogram
        histogram.observe(time.perf_counter() - started)


def _route_label(request: web.Request) -> str:
    info = request.match_info
    resource = info.route.resource if info.http_exception is None else None
    return resource.canonical if resource is not None else "unmatched"


SETTINGS = web.AppKey("settings", GatewaySettings)
DIRECTORY = web.AppKey("directory", PipelineDirectory)
METRICS = web.AppKey("metrics", Metrics)
SESSION = web.AppKey("session", aiohttp.ClientSession)
PROCESS = web.AppKey("process", ProcessClient)
PODS = web.AppKey("pods", PodRegistry)
PRINCIPAL = web.RequestKey("principal", Principal)


def create_app(settings: GatewaySettings, directory: PipelineDirectory) -> web.Application:
    """The gateway application (no I/O until it starts)."""
    metrics = Metrics()
    # One application rather than a /v0 sub-application: each request is resolved once and
    # passes two middlewares; completion_status is served from memory and per-request
    # overhead is most of its cost.
    app = web.Application(
        middlewares=[_observe_middleware, _auth_middleware],
        client_max_size=settings.body_limit,
    )
    app[SETTINGS] = settings
    app[DIRECTORY] = directory
    app[METRICS] = metrics
    app.cleanup_ctx.append(_clients)
    RootApi().register(app)
    PipelineApi(app).register(app)
    return app


async def _clients(app: web.Application) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        session = await stack.enter_async_context(
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60),
                auto_decompress=False,
            )
        )
        app[SESSION] = session
        process = ProcessClient(session, timeout=app[SETTINGS].request_timeout)
        stack.callback(process.close)
        app[PROCESS] = process
        pods = PodRegistry(app[DIRECTORY], session, process)
        app[PODS] = pods
        pods.start()
        stack.push_async_callback(pods.close)
        yield


# --- middlewares ----------------------------------------------------------------------------------


@web.middleware
async def _observe_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Feldera-shaped errors, and request metrics."""
    started = time.perf_counter()
    response: web.StreamResponse
    try:
        response = await handler(request)
    except ApiError as error:
        response = error_response(error)
    except web.HTTPRequestEntityTooLarge:
        response = error_response(upstream.payload_too_large(request.app[SETTINGS].body_limit))
    except web.HTTPException as error:
        request.app[METRICS].observe(request, error.status, started)
        raise
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("unexpected error answering %s %s", request.method, request.path)
        response = error_response(
            ApiError(500, "InternalError", "internal error in the gateway; see its log", None)
        )
    request.app[METRICS].observe(request, response.status, started)
    return response


def error_response(error: ApiError) -> web.Response:
    """A Feldera error body with its status and headers."""
    return web.json_response(error.body(), status=error.status, headers=error.headers)


def namespace_of(request: web.Request) -> str:
    """The tenant: `Feldera-Tenant` when it names a watched namespace, else the default."""
    settings = request.app[SETTINGS]
    tenant = request.headers.get(TENANT_HEADER)
    if not tenant or tenant == settings.namespace:
        return settings.namespace
    if tenant not in request.app[DIRECTORY].namespaces():
        raise errors.insufficient_permissions(f"tenant '{tenant}' is not served by this gateway")
    return tenant


@web.middleware
async def _auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    route = ROUTES_BY_ID.get(request.match_info.route.name or "")
    if route is None or route.role is None:
        return await handler(request)
    settings = request.app[SETTINGS]
    if not settings.authenticators:
        request[PRINCIPAL] = Principal("anonymous", "none", "admin")
        return await handler(request)
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        raise errors.authentication_failed("Missing or malformed Authorization: Bearer header")
    authenticator = choose(settings.authenticators, token)
    if authenticator is None:
        raise errors.authentication_failed("No configured authentication accepts this token")
    principal = await authenticator.authenticate(token)
    # The tenant is resolved only for a known caller: strangers learn nothing about tenants.
    namespace = namespace_of(request)
    pipeline = request.match_info.get("pipeline_name")
    if not await authenticator.authorize(principal, route.role, namespace, pipeline):
        raise errors.insufficient_permissions(
            f"'{principal.subject}' lacks the {route.role} role needed for {route.operation_id}"
        )
    request[PRINCIPAL] = principal
    return await handler(request)


# --- views ----------------------------------------------------------------------------------------


class RootApi:
    """Health and metrics, outside /v0 and without authentication."""

    def register(self, app: web.Application) -> None:
        for route in ROOT_ROUTES:
            app.router.add_route(
                route.method, route.path, getattr(self, route.operation_id), name=route.operation_id
            )

    async def get_health(self, request: web.Request) -> web.Response:
        del request
        return web.json_response({"status": "healthy"})

    async def get_metrics(self, request: web.Request) -> web.Response:
        metrics = request.app[METRICS]
        connected = 0
        followers = request.app[PODS].followers if PODS in request.app else {}
        for follower in followers.values():
            connected += follower.current is not None
        metrics.followers.labels("true").set(connected)
        metrics.followers.labels("false").set(len(followers) - connected)
        return web.Response(
            body=prometheus_client.generate_latest(metrics.registry),
            headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST},
        )


class PipelineApi:
    """The /v0 routes (a sub-application; `root` holds the shared clients)."""

    def __init__(self, root: web.Application) -> None:
        self.root = root

    def register(self, app: web.Application) -> None:
        for route in ROUTES:
            app.router.add_route(
                route.method,
                route.prefix + route.path,
                getattr(self, route.operation_id),
                name=route.operation_id,
            )

    # -- helpers

    @property
    def settings(self) -> GatewaySettings:
        return self.root[SETTINGS]

    @property
    def directory(self) -> PipelineDirectory:
        return self.root[DIRECTORY]

    @property
    def process(self) -> ProcessClient:
        return self.root[PROCESS]

    @property
    def pods(self) -> PodRegistry:
        return self.root[PODS]

    def entry(self, request: web.Request) -> PipelineEntry:
        name = request.match_info["pipeline_name"]
        entry = self.directory.get(namespace_of(request), name)
        if entry is None:
            raise errors.unknown_pipeline(name)
        return entry

    def deployed(self, request: web.Request) -> tuple[PipelineEntry, str]:
        """The pipeline and its process location; Feldera's 503s when it has none."""
        entry = self.entry(request)
        if entry.location is None or descriptors.resources_status(entry) != "Provisioned":
            raise errors.pipeline_not_deployed(
                entry.name,
                descriptors.resources_status(entry),
                descriptors.resources_desired_status(entry),
            )
        if entry.deployment_status == "Unavailable":
            raise ApiError(
                503,
                "PipelineUnavailable",
                f"Pipeline '{entry.name}' is unavailable",
                {"pipeline_name": entry.name},
                {"Retry-After": str(errors.RETRY_AFTER_SECONDS)},
            )
        return entry, entry.location

    async def call(
        self,
        entry: PipelineEntry,
        location: str,
        path: str,
        query: str = "",
    ) -> ProcessResponse:
        try:
            return await self.process.request("GET", location, path, query)
        except ProcessUnreachable as failure:
            self.root[METRICS].upstream_errors.labels(
                "timeout" if "timeout" in failure.reason else "connect"
            ).inc()
            raise errors.pipeline_unreachable(entry.name, failure.request, failure.reason) from None

    async def forward(self, request: web.Request, path: str, query: str = "") -> web.Response:
        """A buffered GET on the pod, answered verbatim (status, body, content type)."""
        entry, location = self.deployed(request)
        answer = await self.call(entry, location, path, query)
        return passthrough(answer)

    async def stream(
        self, request: web.Request, method: str, path: str, total_seconds: float | None
    ) -> web.StreamResponse:
        entry, location = self.deployed(request)
        try:
            return await upstream.stream_to_pod(
                request,
                self.root[SESSION],
                pipeline=entry.name,
                url=build_url(location, path, request.query_string),
                method=method,
                total_seconds=total_seconds,
                body_limit=self.settings.body_limit,
            )
        except ApiError as error:
            if error.error_code == "PipelineInteractionUnreachable":
                self.root[METRICS].upstream_errors.labels("stream").inc()
            raise

    # -- configuration

    async def get_config(self, request: web.Request) -> web.Response:
        del request
        return web.json_response(
            {
                "version": self.settings.version,
                "edition": self.settings.edition,
                "revision": "",
                "runtime_version": self.settings.version,
                "changelog_url": "",
                "telemetry": "",
                "update_info": None,
                "license_validity": None,
                "unstable_features": None,
            }
        )

    async def get_config_authentication(self, request: web.Request) -> web.Response:
        del request
        return web.json_response(self.settings.authentication_info)

    async def get_openapi(self, request: web.Request) -> web.Response:
        del request
        return web.json_response(
            build_openapi(self.settings.version, auth_enabled=bool(self.settings.authenticators))
        )

    # -- pipelines

    def selector(self, request: web.Request) -> str:
        selector = request.query.get("selector", "all")
        if selector not in descriptors.SELECTORS:
            raise errors.invalid_param(
                f"unknown selector {selector!r}; expected one of: all, status"
            )
        return selector

    async def describe(self, entry: PipelineEntry, selector: str) -> dict[str, Any]:
        metadata = await self.pods.metadata(entry) if selector == "all" else None
        return descriptors.build_descriptor(
            entry, selector=selector, platform_version=self.settings.version, metadata=metadata
        )

    async def list_pipelines(self, request: web.Request) -> web.Response:
        selector = self.selector(request)
        entries = self.directory.list(namespace_of(request))
        described = await asyncio.gather(*(self.describe(entry, selector) for entry in entries))
        return web.json_response(list(described))

    async def get_pipeline(self, request: web.Request) -> web.Response:
        selector = self.selector(request)
        return web.json_response(await self.describe(self.entry(request), selector))

    async def change_state(
        self, request: web.Request, state: DesiredState, message: str, *, needs_process: bool
    ) -> web.Response:
        entry = self.deployed(request)[0] if needs_process else self.entry(request)
        await self.directory.set_desired_state(entry.namespace, entry.name, state)
        return web.json_response(message, status=202)

    async def post_pipeline_start(self, request: web.Request) -> web.Response:
        initial = request.query.get("initial", "running")
        if initial not in ("running", "paused"):
            raise ApiError(
                405,
                "UnsupportedPipelineAction",
                f"unsupported initial state '{initial}' (expected running or paused)",
                {"action": "start", "reason": f"initial={initial}"},
            )
        state: DesiredState = "Paused" if initial == "paused" else "Running"
        return await self.change_state(request, state, "Pipeline is starting", needs_process=False)

    async def post_pipeline_pause(self, request: web.Request) -> web.Response:
        return await self.change_state(request, "Paused", "Pipeline is pausing", needs_process=True)

    async def post_pipeline_resume(self, request: web.Request) -> web.Response:
        return await self.change_state(
            request, "Running", "Pipeline is resuming", needs_process=True
        )

    async def post_pipeline_stop(self, request: web.Request) -> web.Response:
        return await self.change_state(
            request, "Stopped", "Pipeline is stopping", needs_process=False
        )

    async def post_pipeline_dismiss_error(self, request: web.Request) -> web.Response:
        # The SDK calls this before every start. The error lives in the pipeline's source of
        # truth (resource status, local supervisor) and is replaced when the pipeline starts.
        self.entry(request)
        return web.json_response("Pipeline error dismissed", status=202)

    # -- interaction

    async def get_pipeline_stats(self, request: web.Request) -> web.Response:
        return await self.forward(request, "stats", request.query_string)

    async def get_pipeline_metrics(self, request: web.Request) -> web.Response:
        return await self.forward(request, "metrics", request.query_string)

    async def completion_token(self, request: web.Request) -> web.Response:
        endpoint = naming.endpoint_name(
            request.match_info["table_name"], request.match_info["connector_name"]
        )
        return await self.forward(request, endpoint_path("input", endpoint, "completion_token"))

    async def get_pipeline_input_connector_status(self, request: web.Request) -> web.Response:
        endpoint = naming.endpoint_name(
            request.match_info["table_name"], request.match_info["connector_name"]
        )
        return await self.forward(request, endpoint_path("input", endpoint, "stats"))

    async def get_pipeline_output_connector_status(self, request: web.Request) -> web.Response:
        endpoint = naming.endpoint_name(
            request.match_info["view_name"], request.match_info["connector_name"]
        )
        return await self.forward(request, endpoint_path("output", endpoint, "stats"))

    async def post_pipeline_input_connector_action(self, request: web.Request) -> web.Response:
        action = request.match_info["action"]
        if action not in ("start", "pause"):
            raise ApiError(
                400,
                "InvalidConnectorAction",
                f"Invalid connector action '{action}'; valid actions are: 'start' or 'pause'",
                {"action": action},
            )
        endpoint = naming.endpoint_name(
            request.match_info["table_name"], request.match_info["connector_name"]
        )
        return await self.forward(request, endpoint_path("input", endpoint, action))

    async def http_input(self, request: web.Request) -> web.StreamResponse:
        table = quote(request.match_info["table_name"], safe="")
        return await self.stream(request, "POST", f"ingress/{table}", self.settings.ingress_timeout)

    async def http_output(self, request: web.Request) -> web.StreamResponse:
        view = quote(request.match_info["view_name"], safe="")
        return await self.stream(request, "POST", f"egress/{view}", None)

    async def pipeline_adhoc_sql(self, request: web.Request) -> web.StreamResponse:
        return await self.stream(request, "GET", "query", None)

    async def completion_status(self, request: web.Request) -> web.Response:
        token_text = request.query.get("token")
        if token_text is None:
            raise errors.invalid_param("missing field `token`")
        wait_ms = parse_wait_ms(request.query.get("wait_ms"))
        entry, location = self.deployed(request)
        try:
            token = decode_token_cached(token_text)
        except InvalidToken:
            # The pod words the 400 itself; answering it here could only differ from it.
            return passthrough(await self.ask_pod_status(entry, location, token_text))
        follower = self.pods.follower(entry)
        metrics = self.root[METRICS]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_ms / 1000
        while True:
            frontier = follower.current if follower is not None else None
            verdict = frontier.is_complete(token) if frontier is not None else None
            remaining = deadline - loop.time()
            if frontier is not None and verdict is not None:
                if verdict or remaining <= 0:
                    metrics.completion_answers_memory.inc()
                    return completion_answer(verdict, frontier.total_completed_steps)
                assert follower is not None
                await follower.wait_complete(token, remaining)
                continue
            answer = await self.ask_pod_status(entry, location, token_text)
            metrics.completion_answers_pod.inc()
            if answer.status != 200 or remaining <= 0 or pod_says_complete(answer):
                return passthrough(answer)
            if follower is not None:
                await follower.wait_changed(min(remaining, 0.1))
            else:
                await asyncio.sleep(min(remaining, 0.1))

    async def ask_pod_status(
        self, entry: PipelineEntry, location: str, token_text: str
    ) -> ProcessResponse:
        query = "token=" + quote(token_text, safe="")
        return await self.call(entry, location, "completion_status", query)


@functools.lru_cache(maxsize=4096)
def decode_token_cached(token: str) -> CompletionToken:
    """decode_token, remembered: clients poll the same tokens over and over."""
    return decode_token(token)


def completion_answer(complete: bool, steps: int) -> web.Response:
    """Feldera's CompletionStatusResponse, answered from the frontier."""
    body = b'{"status": "complete", "step": %d}' % steps if complete else INPROGRESS_BODY
    return web.Response(body=body, content_type="application/json")


INPROGRESS_BODY = b'{"status": "inprogress", "step": null}'


def parse_wait_ms(value: str | None) -> int:
    """The long-poll bound in ms (0 when absent); 400 InvalidParam when not a number."""
    if value is None or value == "":
        return 0
    try:
        wait_ms = int(value)
    except ValueError:
        raise errors.invalid_param(f"wait_ms must be an integer, not '{value}'") from None
    if wait_ms < 0:
        raise errors.invalid_param("wait_ms must not be negative")
    return min(wait_ms, MAX_WAIT_MS)


def pod_says_complete(answer: ProcessResponse) -> bool:
    """Whether a pod's completion_status answer says complete."""
    try:
        return bool(answer.json().get("status") == "complete")
    except (ValueError, AttributeError):
        return False


def passthrough(answer: ProcessResponse) -> web.Response:
    """The pod's answer, verbatim."""
    response = web.Response(status=answer.status, body=answer.body)
    response.content_type = answer.content_type or "application/octet-stream"
    return response
