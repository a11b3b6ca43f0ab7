"""The OpenAPI document is valid OpenAPI 3 and lists exactly the routes the gateway serves."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

from sluice.gateway.app import GatewaySettings, create_app
from sluice.gateway.routes import ROUTES, build_openapi
from sluice.local.directory import LocalDirectory


def served_routes() -> set[tuple[str, str]]:
    app = create_app(GatewaySettings(namespace="default", version="1"), LocalDirectory("default"))
    served = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        info = route.resource.get_info() if route.resource is not None else {}
        if "app" in info:  # the /v0 sub-application
            for inner in info["app"].router.routes():
                if inner.method != "HEAD" and inner.resource is not None:
                    served.add((inner.method, "/v0" + inner.resource.canonical))
        elif route.resource is not None:
            served.add((route.method, route.resource.canonical))
    return served


def test_document_validates_as_openapi_3() -> None:
    for auth in (False, True):
        validate(build_openapi("0.1.0", auth_enabled=auth))


def test_document_matches_the_routes_served() -> None:
    document = build_openapi("0.1.0", auth_enabled=True)
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    assert documented == served_routes()


def test_path_parameters_are_declared_and_public_routes_need_no_auth() -> None:
    document = build_openapi("0.1.0", auth_enabled=True)
    for path, operations in document["paths"].items():
        for operation in operations.values():
            declared = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert declared == set(re.findall(r"{([a-z_]+)}", path))
    public = {
        path
        for path, operations in document["paths"].items()
        if any(op.get("security") == [] for op in operations.values())
    }
    assert public == {"/healthz", "/metrics", "/v0/config/authentication", "/v0/openapi.json"}
    roles = {route.operation_id: route.role for route in ROUTES}
    assert roles["completion_token"] == "write"
    assert roles["http_input"] == "write"
    assert roles["completion_status"] == "read"
    assert roles["get_pipeline_stats"] == "read"
