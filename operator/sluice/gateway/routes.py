"""Layer 3 (gateway): the table of routes the gateway serves, and the OpenAPI document of it.

One table drives registration, the minimum role of each route (as Feldera's RBAC maps them)
and `/v0/openapi.json`, so the document cannot drift from what is served.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sluice.core.auth import Role


@dataclass(frozen=True)
class Route:
    """One route of the /v0 API."""

    method: str
    path: str
    """Path below /v0, with aiohttp `{placeholders}`."""
    operation_id: str
    role: Role | None
    """Minimum role; None for public routes."""
    summary: str
    tag: str
    query: tuple[tuple[str, str, bool], ...] = ()
    """(name, description, required) of documented query parameters."""
    responses: dict[int, str] = field(default_factory=dict)
    body: str | None = None
    """Content type of the request body, when it takes one."""
    response_schema: str | None = None
    prefix: str = "/v0"
    """Routes outside /v0 (health, metrics) have an empty prefix."""


PIPELINE = "/pipelines/{pipeline_name}"
INPUT_CONNECTOR = PIPELINE + "/tables/{table_name}/connectors/{connector_name}"
OUTPUT_CONNECTOR = PIPELINE + "/views/{view_name}/connectors/{connector_name}"

NOT_DEPLOYED = {404: "Unknown pipeline", 503: "Pipeline not deployed or unreachable"}

ROUTES: tuple[Route, ...] = (
    # The hot routes first: aiohttp tries dynamic routes in registration order.
    Route("GET", PIPELINE + "/completion_status", "completion_status", "read",
          "Check a completion token (wait_ms: long-poll up to N ms)", "Input Connectors",
          query=(("token", "Completion token", True),
                 ("wait_ms", "Answer as soon as complete, or after this many ms", False)),
          responses={200: "complete or inprogress", 400: "Invalid token",
                     410: "Pipeline restarted", **NOT_DEPLOYED},
          response_schema="CompletionStatusResponse"),
    Route("GET", INPUT_CONNECTOR + "/completion_token", "completion_token", "write",
          "Generate a completion token for an input connector", "Input Connectors",
          responses={200: "Token", 404: "Unknown pipeline or input endpoint", 503: "Not deployed"},
          response_schema="CompletionTokenResponse"),
    Route("POST", PIPELINE + "/ingress/{table_name}", "http_input", "write",
          "Push data to a table; returns a completion token", "HTTP input/output",
          query=(("format", "json | csv", False), ("force", "push while paused", False),
                 ("update_format", "JSON update format", False), ("array", "JSON array", False)),
          responses={200: "Token", 400: "Parse errors", 404: "Unknown table",
                     413: "Body too large", **NOT_DEPLOYED},
          body="application/octet-stream", response_schema="CompletionTokenResponse"),
    Route("GET", "/config", "get_config", "read", "Gateway configuration", "Configuration",
          responses={200: "Configuration"}, response_schema="Configuration"),
    Route("GET", "/config/authentication", "get_config_authentication", None,
          "Authentication provider clients should use", "Configuration",
          responses={200: "Provider, or {} when auth is off"}),
    Route("GET", "/openapi.json", "get_openapi", None, "This document", "Configuration",
          responses={200: "OpenAPI 3 document"}),
    Route("GET", "/pipelines", "list_pipelines", "read", "List pipelines", "Pipeline management",
          query=(("selector", "all | status", False),),
          responses={200: "Pipeline descriptors"}, response_schema="PipelineList"),
    Route("GET", PIPELINE, "get_pipeline", "read", "Get a pipeline", "Pipeline management",
          query=(("selector", "all | status", False),),
          responses={200: "Pipeline descriptor", 404: "Unknown pipeline"},
          response_schema="Pipeline"),
    Route("POST", PIPELINE + "/start", "post_pipeline_start", "write",
          "Set the desired state to Running (or Paused with initial=paused)", "Pipeline lifecycle",
          query=(("initial", "running | paused", False),),
          responses={202: "Accepted", 404: "Unknown pipeline"}),
    Route("POST", PIPELINE + "/pause", "post_pipeline_pause", "write",
          "Set the desired state to Paused", "Pipeline lifecycle",
          responses={202: "Accepted", 404: "Unknown pipeline"}),
    Route("POST", PIPELINE + "/resume", "post_pipeline_resume", "write",
          "Set the desired state to Running", "Pipeline lifecycle",
          responses={202: "Accepted", 404: "Unknown pipeline"}),
    Route("POST", PIPELINE + "/stop", "post_pipeline_stop", "write",
          "Set the desired state to Stopped", "Pipeline lifecycle",
          query=(("force", "accepted for compatibility; every stop is immediate", False),),
          responses={202: "Accepted", 404: "Unknown pipeline"}),
    Route("POST", PIPELINE + "/dismiss_error", "post_pipeline_dismiss_error", "write",
          "Acknowledge the deployment error (cleared by the next start)", "Pipeline lifecycle",
          responses={202: "Accepted", 404: "Unknown pipeline"}),
    Route("GET", PIPELINE + "/stats", "get_pipeline_stats", "read", "Pipeline statistics",
          "Metrics & Debugging", responses={200: "ControllerStatus", **NOT_DEPLOYED}),
    Route("GET", PIPELINE + "/metrics", "get_pipeline_metrics", "read",
          "Pipeline circuit metrics", "Metrics & Debugging",
          query=(("format", "prometheus | json", False),),
          responses={200: "Metrics", **NOT_DEPLOYED}),
    Route("POST", PIPELINE + "/egress/{view_name}", "http_output", "write",
          "Stream the changes of a view", "HTTP input/output",
          query=(("format", "json | csv", False), ("array", "JSON array", False),
                 ("backpressure", "apply back-pressure", False)),
          responses={200: "Stream of changes", 404: "Unknown view", **NOT_DEPLOYED}),
    Route("GET", PIPELINE + "/query", "pipeline_adhoc_sql", "read", "Ad-hoc SQL query",
          "Pipeline interaction",
          query=(("sql", "SQL query", True),
                 ("format", "json (passed to the pipeline process)", False)),
          responses={200: "Query result", **NOT_DEPLOYED}),
    Route("GET", INPUT_CONNECTOR + "/stats", "get_pipeline_input_connector_status", "read",
          "Input connector statistics", "Input Connectors",
          responses={200: "InputEndpointStatus", 404: "Unknown endpoint", 503: "Not deployed"}),
    Route("POST", INPUT_CONNECTOR + "/{action}", "post_pipeline_input_connector_action", "write",
          "Start or pause an input connector (action: start | pause)", "Input Connectors",
          responses={200: "Done", 400: "Invalid action", 404: "Unknown endpoint",
                     503: "Not deployed"}),
    Route("GET", OUTPUT_CONNECTOR + "/stats", "get_pipeline_output_connector_status", "read",
          "Output connector statistics", "Output Connectors",
          responses={200: "OutputEndpointStatus", 404: "Unknown endpoint", 503: "Not deployed"}),
)  # fmt: skip

ROOT_ROUTES: tuple[Route, ...] = (
    Route("GET", "/healthz", "get_health", None, "Liveness of the gateway", "Configuration",
          responses={200: "healthy"}, prefix=""),
    Route("GET", "/metrics", "get_metrics", None, "Prometheus metrics of the gateway",
          "Metrics & Debugging", responses={200: "Prometheus text format"}, prefix=""),
)  # fmt: skip

ROUTES_BY_ID = {route.operation_id: route for route in ROUTES + ROOT_ROUTES}

_PLACEHOLDER = re.compile(r"{([a-z_]+)}")

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["message", "error_code", "details"],
    "properties": {
        "message": {"type": "string"},
        "error_code": {"type": "string"},
        "details": {},
    },
}

SCHEMAS: dict[str, Any] = {
    "ErrorResponse": ERROR_SCHEMA,
    "CompletionTokenResponse": {
        "type": "object",
        "required": ["token"],
        "properties": {"token": {"type": "string"}},
    },
    "CompletionStatusResponse": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"type": "string", "enum": ["complete", "inprogress"]},
            "step": {"type": ["integer", "null"]},
        },
    },
    "Configuration": {
        "type": "object",
        "required": ["version", "edition"],
        "properties": {"version": {"type": "string"}, "edition": {"type": "string"}},
    },
    "Pipeline": {
        "type": "object",
        "required": ["name", "deployment_status", "deployment_desired_status"],
        "properties": {
            "name": {"type": "string"},
            "program_code": {"type": "string"},
            "deployment_status": {"type": "string"},
            "deployment_desired_status": {"type": "string"},
            "deployment_location": {"type": ["string", "null"]},
            "deployment_error": {},
            "program_info": {},
        },
    },
    "PipelineList": {"type": "array", "items": {"$ref": "#/components/schemas/Pipeline"}},
}


def build_openapi(version: str, *, auth_enabled: bool) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route served (paths include the /v0 prefix)."""
    paths: dict[str, dict[str, Any]] = {}
    for route in ROOT_ROUTES + ROUTES:
        operation: dict[str, Any] = {
            "operationId": route.operation_id,
            "summary": route.summary,
            "tags": [route.tag],
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in _PLACEHOLDER.findall(route.path)
            ]
            + [
                {
                    "name": name,
                    "in": "query",
                    "required": required,
                    "description": description,
                    "schema": {"type": "string"},
                }
                for name, description, required in route.query
            ],
            "responses": {
                str(status): _response(status, text, route.response_schema)
                for status, text in route.responses.items()
            },
        }
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {route.body: {"schema": {"type": "string", "format": "binary"}}},
            }
        if route.role is None:
            operation["security"] = []
        else:
            operation["x-minimum-role"] = route.role
        paths.setdefault(route.prefix + route.path, {})[route.method.lower()] = operation
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Sluice gateway (Feldera-compatible API)",
            "version": version,
            "description": (
                "Feldera's /v0 REST API for the pipelines this gateway routes to. Errors are "
                '`{"message", "error_code", "details"}`; 503s from the gateway carry Retry-After.'
            ),
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            # Feldera names the scheme "JSON web token (JWT) or API key", which OpenAPI's
            # component-name pattern does not allow; the description keeps the wording.
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "JSON web token (JWT) or API key (apikey:...)",
                }
            },
        },
    }
    if auth_enabled:
        document["security"] = [{"bearerAuth": []}]
    return document


def _response(status: int, text: str, schema: str | None) -> dict[str, Any]:
    if status >= 400:
        return {
            "description": text,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}
            },
        }
    if schema is None:
        return {"description": text}
    return {
        "description": text,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }
