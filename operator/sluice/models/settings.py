"""Layer 0 (models): the operator's settings, read from `SLUICE_*` environment variables.

Command-line flags of `sluice operator` override the environment; both end up in one frozen
`OperatorSettings`, which the controller hands to every part through its dependencies.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from sluice import __version__

DEFAULT_RUNTIME_IMAGE = f"ghcr.io/sluice-dev/sluice:{__version__}"
RUNTIME_PORT = 8080
"""The pipeline process's HTTP port inside the pod (named `http`)."""


class OperatorSettings(BaseSettings):
    """How the operator runs: what it watches, how often it looks, what it renders."""

    model_config = SettingsConfigDict(env_prefix="SLUICE_", frozen=True, extra="ignore")

    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty with all_namespaces false means the kubeconfig's namespace."""
    all_namespaces: bool = False
    """Watch every namespace (needs a ClusterRole)."""
    runtime_image: str = DEFAULT_RUNTIME_IMAGE
    """Image of pipeline pods whose spec.runtime.image is unset."""
    runtime_image_pull_policy: str | None = None
    """Pull policy of pipeline pods whose spec does not set one."""
    freshness_interval: Annotated[float, Field(gt=0)] = 10.0
    """Seconds between the freshness tokens the operator mints per input Connector."""
    resync_interval: Annotated[float, Field(gt=0)] = 30.0
    """Seconds between level-based re-checks of every object when no event arrives."""
    status_poll_interval: Annotated[float, Field(gt=0)] = 0.5
    """Seconds between runtime status polls while a pipeline is not yet where it should be."""
    unreachable_threshold: Annotated[int, Field(ge=1)] = 3
    """Consecutive failed pod calls before Ready turns Unknown (StatusUnavailable)."""
    restart_budget: Annotated[int, Field(ge=1)] = 5
    """Container restarts in a crash loop before the Pipeline is Stalled."""
    request_timeout: Annotated[float, Field(gt=0)] = 5.0
    """Seconds a call to a pipeline pod may take."""
    workers: Annotated[int, Field(ge=1, le=64)] = 8
    """Objects reconciled concurrently."""
    liveness_endpoint: str | None = "http://0.0.0.0:8081/healthz"
    """kopf's liveness probe endpoint; None disables it."""
    max_backoff: Annotated[float, Field(gt=0)] = 60.0
    """Upper bound of the retry delay after failing reconciles."""
