"""Layer 1 (core, pure): Feldera's error responses, `{"message", "error_code", "details"}`.

The runtime, the gateway and local mode raise `ApiError`; their HTTP layers turn it into a
JSON response with the status code Feldera uses for that error code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ApiError(Exception):
    """An error with Feldera's error code, HTTP status and details."""

    status: int
    error_code: str
    message: str
    details: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        """The JSON body Feldera sends for this error."""
        return {"message": self.message, "error_code": self.error_code, "details": self.details}

    def __str__(self) -> str:
        return f"{self.error_code}: {self.message}"


RETRY_AFTER_SECONDS = 5
"""Feldera's Retry-After on 503s the manager produces itself."""


def unknown_pipeline(name: str) -> ApiError:
    return ApiError(
        404, "UnknownPipelineName", f"Unknown pipeline name '{name}'", {"pipeline_name": name}
    )


def pipeline_not_deployed(name: str, status: str, desired_status: str) -> ApiError:
    return ApiError(
        503,
        "PipelineInteractionNotDeployed",
        f"Unable to interact with pipeline '{name}' because it is not deployed "
        f"(status: {status}, desired status: {desired_status})",
        {"pipeline_name": name, "status": status, "desired_status": desired_status},
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def pipeline_unreachable(name: str, request: str, error: str) -> ApiError:
    return ApiError(
        503,
        "PipelineInteractionUnreachable",
        f"Unable to reach pipeline '{name}' to interact with it: {error}",
        {"pipeline_name": name, "request": request, "error": error},
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def unknown_input_endpoint(endpoint: str) -> ApiError:
    return ApiError(
        404,
        "UnknownInputEndpoint",
        f"unknown input endpoint name '{endpoint}'",
        {"endpoint_name": endpoint},
    )


def unknown_output_endpoint(endpoint: str) -> ApiError:
    return ApiError(
        404,
        "UnknownOutputEndpoint",
        f"unknown output endpoint name '{endpoint}'",
        {"endpoint_name": endpoint},
    )


def invalid_param(error: str) -> ApiError:
    return ApiError(400, "InvalidParam", f"Invalid parameter: {error}", {"error": error})


def pipeline_restarted(error: str) -> ApiError:
    return ApiError(410, "PipelineRestarted", error, {"error": error})


def unknown_endpoint_in_token(endpoint_id: int) -> ApiError:
    return ApiError(
        410,
        "UnknownEndpointInCompletionToken",
        f"completion token refers to input endpoint {endpoint_id}, which does not exist; "
        "the input connector was deleted after the completion token was generated",
        {"endpoint_id": endpoint_id},
    )


def authentication_failed(message: str) -> ApiError:
    return ApiError(401, "AuthenticationFailed", message, None, {"WWW-Authenticate": "Bearer"})


def insufficient_permissions(message: str) -> ApiError:
    return ApiError(403, "InsufficientPermissions", message, None)


class UserError(Exception):
    """A problem with the user's input or environment, reported as one line (no traceback)."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def parse_errors(num_errors: int, errors: list[Any]) -> ApiError:
    return ApiError(
        400,
        "ParseErrors",
        f"Errors parsing input data ({num_errors} errors)",
        {"num_errors": num_errors, "errors": errors},
    )


def unknown_input_stream(endpoint: str, stream: str) -> ApiError:
    return ApiError(
        404,
        "ConfigError.UnknownInputStream",
        f"Input endpoint '{endpoint}' specifies unknown table '{stream}'",
        {"config_error": {"endpoint_name": endpoint, "stream_name": stream}},
    )


def unknown_output_stream(endpoint: str, stream: str) -> ApiError:
    return ApiError(
        404,
        "ConfigError.UnknownOutputStream",
        f"Output endpoint '{endpoint}' specifies unknown view '{stream}'",
        {"config_error": {"endpoint_name": endpoint, "stream_name": stream}},
    )


def initializing() -> ApiError:
    return ApiError(503, "Initializing", "The pipeline is initializing", None)


def terminating() -> ApiError:
    return ApiError(410, "Terminating", "The pipeline is terminating", None)
