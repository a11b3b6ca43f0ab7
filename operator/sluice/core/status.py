"""Layer 1 (core, pure): what the status of each resource should say, from one snapshot.

The controller gathers a snapshot (the pod, the process's own status and stats, the
frontier) and these functions map it onto kstatus conditions and Feldera's status names,
following the state mapping in docs/operator.md. They never look at the clock: `now` comes
in, so the same snapshot always yields the same status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sluice.core import conditions
from sluice.core.conditions import ConditionStatus, Want
from sluice.core.tokens import InvalidToken, decode_token
from sluice.models.resources import (
    CompletionTokenStatus,
    ConnectorCompletion,
    ConnectorMetrics,
    ConnectorStatus,
    ConnectorSummary,
    DeploymentStatus,
    LastError,
    PipelineStatus,
)
from sluice.models.settings import RUNTIME_PORT

BOOTING_RUNTIME_STATUSES = frozenset(
    {
        "Initializing",
        "Replaying",
        "Bootstrapping",
        "ConcurrentBootstrapping",
        "Synchronizing",
        "Coordination",
        "Standby",
        "Unavailable",
    }
)
FATAL_WAITING_REASONS = frozenset(
    {"InvalidImageName", "CreateContainerConfigError", "CreateContainerError"}
)
RETRY_WAITING_REASONS = frozenset(
    {"CrashLoopBackOff", "ErrImagePull", "ImagePullBackOff", "RunContainerError"}
)
SQL_ERROR_MARKERS = (
    "SqlError",
    "SqlCompilationFailed",
    "Parser Error",
    "Binder Error",
    "Catalog Error",
    "syntax error",
)
"""Words in a failed process's last message that mean the program does not compile."""

TERMINAL_TOKEN_REASONS = frozenset({"PipelineRestarted", "Timeout"})

PAUSED = "Paused"
INPUT_COMPLETE = "InputComplete"
COMPLETE = "Complete"
FAILED = "Failed"


# --- Pipeline -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PodState:
    """The pipeline pod as the API server reports it."""

    phase: str | None = None
    ready: bool = False
    ip: str | None = None
    restart_count: int = 0
    waiting_reason: str | None = None
    waiting_message: str | None = None
    last_termination_message: str | None = None
    config_hash: str | None = None
    restart_request: str = ""
    deleting: bool = False


@dataclass(frozen=True)
class RuntimeState:
    """The pipeline process's own account (`/status`, `/stats`, `/metadata`)."""

    runtime_status: str
    runtime_desired_status: str | None = None
    incarnation: str | None = None
    error: str | None = None
    tables: tuple[str, ...] = ()
    views: tuple[str, ...] = ()


@dataclass(frozen=True)
class PipelineSnapshot:
    """Everything the Pipeline's status is computed from."""

    generation: int
    desired_state: Literal["Running", "Paused", "Stopped"]
    config_hash: str | None = None
    """Hash of the config the pod should run; None while the spec is invalid."""
    restart_request: str | None = None
    spec_error: str | None = None
    """Why the current generation cannot be rendered (InvalidSpec), if it cannot."""
    pod: PodState | None = None
    runtime: RuntimeState | None = None
    unreachable_polls: int = 0
    unreachable_error: str | None = None
    connectors: tuple[ConnectorSummary, ...] | None = None
    deleting: bool = False
    restart_budget: int = 5
    unreachable_threshold: int = 3


@dataclass(frozen=True)
class _Verdict:
    deployment: DeploymentStatus
    ready: tuple[ConditionStatus, str, str]
    reconciling: tuple[str, str] | None = None
    stalled: tuple[str, str] | None = None
    error: tuple[str, str] | None = None
    extra: list[Want] = field(default_factory=list)


def _deployment_name(runtime_status: str) -> DeploymentStatus:
    if runtime_status in ("Paused", "Running", "Suspended", "Stopping", "Stopped"):
        return runtime_status  # type: ignore[return-value]
    return "Initializing"


def _looks_like_sql_error(message: str | None) -> bool:
    return message is not None and any(marker in message for marker in SQL_ERROR_MARKERS)


def _pod_verdict(snap: PipelineSnapshot, pod: PodState) -> _Verdict | None:
    """A verdict from the pod alone, when its container is failing or not up yet."""
    message = pod.last_termination_message or pod.waiting_message or ""
    if pod.waiting_reason in FATAL_WAITING_REASONS:
        reason = pod.waiting_reason or "ContainerError"
        return _Verdict("Provisioning", ("False", reason, message), stalled=(reason, message))
    crashing = pod.waiting_reason in RETRY_WAITING_REASONS or (
        pod.restart_count > 0 and not pod.ready and pod.last_termination_message
    )
    if crashing:
        if _looks_like_sql_error(message):
            reason = "SqlCompilationFailed"
            return _Verdict(
                "Stopped",
                ("False", reason, message),
                stalled=(reason, message),
                error=(reason, message),
            )
        cause = pod.waiting_reason or "ContainerRestarting"
        if pod.restart_count >= snap.restart_budget:
            text = f"the pipeline process restarted {pod.restart_count} times: {message}"
            return _Verdict(
                "Stopped",
                ("False", cause, text),
                stalled=("RestartBudgetExhausted", text),
                error=(cause, message),
            )
        return _Verdict(
            "Provisioning",
            ("False", cause, message),
            reconciling=("ProgressingWithRetry", f"retrying after: {message}"),
            error=(cause, message) if message else None,
        )
    if pod.phase in (None, "Pending") or not pod.ip:
        text = pod.waiting_message or "waiting for the pipeline pod to start"
        return _Verdict(
            "Provisioning", ("Unknown", "Provisioning", text), reconciling=("Provisioning", text)
        )
    return None


def _runtime_verdict(snap: PipelineSnapshot, runtime: RuntimeState, current: bool) -> _Verdict:
    status = runtime.runtime_status
    deployment = _deployment_name(status)
    if runtime.error and status not in ("Running", "Paused"):
        reason = "SqlCompilationFailed" if _looks_like_sql_error(runtime.error) else "RuntimeError"
        return _Verdict(
            "Stopped",
            ("False", reason, runtime.error),
            stalled=(reason, runtime.error),
            error=(reason, runtime.error),
        )
    if status == "AwaitingApproval":
        text = "the pipeline waits for approval of a program change"
        return _Verdict(
            deployment,
            ("False", "AwaitingApproval", text),
            extra=[Want("AwaitingApproval", "True", "AwaitingApproval", text)],
        )
    if status in BOOTING_RUNTIME_STATUSES:
        reason = "Bootstrapping" if status in ("Bootstrapping", "Replaying") else "Provisioning"
        text = f"the pipeline process is {status}"
        return _Verdict(deployment, ("Unknown", reason, text), reconciling=(reason, text))
    if not current:
        text = "rolling the pipeline pod out to the new configuration"
        return _Verdict(
            deployment, ("Unknown", "Progressing", text), reconciling=("Progressing", text)
        )
    if status == snap.desired_state:
        return _Verdict(deployment, ("True", status, f"the pipeline is {status.lower()}"))
    text = f"moving the pipeline from {status} to {snap.desired_state}"
    return _Verdict(deployment, ("Unknown", "Progressing", text), reconciling=("Progressing", text))


def _verdict(snap: PipelineSnapshot, previous: PipelineStatus) -> _Verdict | None:
    pod = snap.pod
    if snap.deleting:
        return _Verdict("Stopping", ("False", "Deleting", "the pipeline is being deleted"))
    if snap.spec_error is not None:
        running = previous.running_generation
        suffix = (
            f"; still running generation {running}"
            if pod is not None and running is not None
            else ""
        )
        text = f"generation {snap.generation} is invalid: {snap.spec_error}{suffix}"
        deployment: DeploymentStatus = (
            "Stopped"
            if pod is None
            else (_deployment_name(snap.runtime.runtime_status) if snap.runtime else "Unavailable")
        )
        return _Verdict(deployment, ("False", "InvalidSpec", text), stalled=("InvalidSpec", text))
    if snap.desired_state == "Stopped":
        if pod is None:
            return _Verdict("Stopped", ("True", "Stopped", "the pipeline is stopped"))
        text = "stopping the pipeline process"
        return _Verdict("Stopping", ("Unknown", "Stopping", text), reconciling=("Stopping", text))
    if pod is None:
        text = "creating the pipeline pod"
        return _Verdict(
            "Provisioning", ("Unknown", "Provisioning", text), reconciling=("Provisioning", text)
        )
    from_pod = _pod_verdict(snap, pod)
    if from_pod is not None:
        return from_pod
    current = pod.config_hash == snap.config_hash and pod.restart_request == (
        snap.restart_request or ""
    )
    if snap.runtime is None:
        if snap.unreachable_polls >= snap.unreachable_threshold and pod.ready:
            text = f"the pipeline process does not answer: {snap.unreachable_error or 'unknown'}"
            reconciling = conditions.find(previous.conditions, conditions.RECONCILING)
            keep = (
                (reconciling.reason, reconciling.message)
                if reconciling is not None and reconciling.status == "True"
                else None
            )
            return _Verdict("Unavailable", ("Unknown", "StatusUnavailable", text), reconciling=keep)
        if snap.unreachable_polls > 0 and pod.ready and previous.conditions:
            return None  # a blip: keep what was said until it lasts
        text = "waiting for the pipeline process to answer"
        return _Verdict(
            "Initializing", ("Unknown", "Provisioning", text), reconciling=("Provisioning", text)
        )
    return _runtime_verdict(snap, snap.runtime, current)


def compute_pipeline_status(
    snap: PipelineSnapshot, previous: PipelineStatus | None, now: str
) -> PipelineStatus:
    """The Pipeline's status for this snapshot (see the state mapping in docs/operator.md)."""
    previous = previous or PipelineStatus()
    verdict = _verdict(snap, previous)
    if verdict is None:
        return previous
    pod = snap.pod
    runtime = snap.runtime
    wants = conditions.kstatus_triplet(
        ready=verdict.ready, reconciling=verdict.reconciling, stalled=verdict.stalled
    )
    paused = runtime is not None and runtime.runtime_status == "Paused"
    wants.append(
        Want(PAUSED, "True", "Paused", "the pipeline is paused")
        if paused
        else Want(PAUSED, "False", "NotPaused")
    )
    wants.extend(verdict.extra)
    healthy = verdict.ready[0] == "True"
    current = (
        pod is not None
        and pod.config_hash == snap.config_hash
        and pod.restart_request == (snap.restart_request or "")
    )
    last_error = previous.last_error
    if verdict.error is not None:
        reason, message = verdict.error
        reason = conditions.sanitize_reason(reason)
        message = conditions.truncate_message(message, 4096)
        if last_error is None or (last_error.reason, last_error.message) != (reason, message):
            last_error = LastError(reason=reason, message=message, time=now)
    endpoint = (
        f"{pod.ip}:{RUNTIME_PORT}"
        if pod is not None and pod.ip and not pod.deleting and snap.desired_state != "Stopped"
        else None
    )
    return PipelineStatus(
        observed_generation=snap.generation,
        conditions=conditions.merge_conditions(
            previous.conditions, wants, generation=snap.generation, now=now
        ),
        deployment_status=verdict.deployment,
        deployment_desired_status=snap.desired_state,
        incarnation=runtime.incarnation if runtime else None,
        endpoint=endpoint,
        running_generation=(
            snap.generation if healthy and current else previous.running_generation
        ),
        config_hash=pod.config_hash if pod is not None else None,
        tables=list(runtime.tables) if runtime else list(previous.tables),
        views=list(runtime.views) if runtime else list(previous.views),
        connectors=(
            list(snap.connectors) if snap.connectors is not None else list(previous.connectors)
        ),
        last_error=last_error,
        restart_count=pod.restart_count if pod is not None else previous.restart_count,
        last_handled_restart_request=(
            snap.restart_request
            if healthy and current and snap.restart_request
            else previous.last_handled_restart_request
        ),
    )


# --- Connector ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointStats:
    """One endpoint of the process's `/stats`."""

    records: int = 0
    bytes: int = 0
    buffered_records: int = 0
    parse_errors: int = 0
    transport_errors: int = 0
    encode_errors: int = 0
    end_of_input: bool = False
    paused: bool = False
    fatal_error: str | None = None


@dataclass(frozen=True)
class ConnectorSnapshot:
    """Everything a Connector's status is computed from."""

    generation: int
    endpoint_name: str
    direction: Literal["input", "output"]
    pipeline_exists: bool
    pipeline_desired_state: str | None = None
    pipeline_running: bool = False
    """The pipeline process answers and runs (or is paused)."""
    stats: EndpointStats | None = None
    completion: ConnectorCompletion | None = None
    spec_error: str | None = None


def _connector_metrics(stats: EndpointStats, direction: str) -> ConnectorMetrics:
    if direction == "input":
        return ConnectorMetrics(
            records_received=stats.records,
            bytes_received=stats.bytes,
            buffered_records=stats.buffered_records,
            parse_errors=stats.parse_errors,
            transport_errors=stats.transport_errors,
            end_of_input=stats.end_of_input,
        )
    return ConnectorMetrics(
        records_transmitted=stats.records,
        buffered_records=stats.buffered_records,
        transport_errors=stats.transport_errors,
        encode_errors=stats.encode_errors,
    )


def input_complete(stats: EndpointStats | None, completion: ConnectorCompletion | None) -> bool:
    """End of input reached, and a token covering every record received has completed."""
    if stats is None or not stats.end_of_input or completion is None:
        return False
    if completion.status != "complete" or completion.token is None:
        return False
    try:
        token = decode_token(completion.token)
    except InvalidToken:
        return False
    return token.records >= stats.records


def compute_connector_status(
    snap: ConnectorSnapshot, previous: ConnectorStatus | None, now: str
) -> ConnectorStatus:
    """The Connector's status for this snapshot."""
    previous = previous or ConnectorStatus()
    stats = snap.stats
    state: Literal["Running", "Paused", "EndOfInput", "Stopped", "Pending"] = "Pending"
    stalled = reconciling = None
    if snap.spec_error is not None:
        ready: tuple[ConditionStatus, str, str] = ("False", "InvalidSpec", snap.spec_error)
        stalled = ("InvalidSpec", snap.spec_error)
    elif not snap.pipeline_exists:
        text = "the pipeline this connector references does not exist"
        ready = ("False", "PipelineNotFound", text)
        stalled = ("PipelineNotFound", text)
    elif snap.pipeline_desired_state == "Stopped":
        state = "Stopped"
        ready = ("True", "PipelineStopped", "the pipeline is stopped")
    elif stats is None:
        text = (
            "waiting for the pipeline to load this connector"
            if snap.pipeline_running
            else "waiting for the pipeline to run"
        )
        ready = ("Unknown", "WaitingForPipeline", text)
        reconciling = ("WaitingForPipeline", text)
    elif stats.fatal_error:
        ready = ("False", "ConnectorFailed", stats.fatal_error)
        stalled = ("ConnectorFailed", stats.fatal_error)
    elif snap.direction == "input" and stats.end_of_input:
        state = "EndOfInput"
        ready = ("True", "EndOfInput", "the input reached its end")
    elif stats.paused:
        state = "Paused"
        ready = ("True", "Paused", "the connector is paused")
    else:
        state = "Running"
        ready = ("True", "Running", "the connector is running")
    wants = conditions.kstatus_triplet(ready=ready, reconciling=reconciling, stalled=stalled)
    if snap.direction == "input":
        if input_complete(stats, snap.completion):
            wants.append(
                Want(INPUT_COMPLETE, "True", "InputComplete", "every input record was processed")
            )
        elif stats is not None and stats.end_of_input:
            wants.append(Want(INPUT_COMPLETE, "False", "Processing", "end of input reached"))
        else:
            wants.append(Want(INPUT_COMPLETE, "False", "Receiving"))
    return ConnectorStatus(
        observed_generation=snap.generation,
        conditions=conditions.merge_conditions(
            previous.conditions, wants, generation=snap.generation, now=now
        ),
        connector_status=state,
        endpoint_name=snap.endpoint_name,
        metrics=_connector_metrics(stats, snap.direction) if stats else previous.metrics,
        completion=snap.completion if snap.completion is not None else previous.completion,
    )


def next_completion(
    previous: ConnectorCompletion | None,
    token: str | None,
    complete: bool,
    now: str,
) -> ConnectorCompletion | None:
    """Freshness bookkeeping: a new token restarts the clock, completion stops it once."""
    if token is None:
        return previous
    if previous is None or previous.token != token:
        previous = ConnectorCompletion(token=token, minted_at=now, status="inprogress")
    if complete and previous.status != "complete":
        return previous.model_copy(
            update={
                "status": "complete",
                "completed_at": now,
                "lag_seconds": round(seconds_between(previous.minted_at, now), 3),
            }
        )
    return previous


# --- CompletionToken ------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenSnapshot:
    """Everything a CompletionToken's status is computed from."""

    generation: int
    pipeline_exists: bool
    endpoint_name: str
    connector_exists: bool | None = None
    """Whether the pipeline runs this connector; None while that cannot be known."""
    token: str | None = None
    minted_at: str | None = None
    current_incarnation: str | None = None
    complete: bool = False
    timeout_seconds: int | None = None
    created_at: str | None = None
    waiting_for_end_of_input: bool = False
    """Not minted yet because the spec asks to mint after the connector's end of input."""


def seconds_between(start: str | None, end: str) -> float:
    """Seconds from `start` to `end` (RFC 3339); 0 when `start` is unknown."""
    if start is None:
        return 0.0
    return (parse_time(end) - parse_time(start)).total_seconds()


def parse_time(value: str) -> datetime:
    """An RFC 3339 timestamp as an aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def token_failure(snap: TokenSnapshot, now: str) -> tuple[str, str] | None:
    """Why the token can never complete, if it cannot."""
    if snap.token is not None and snap.current_incarnation is not None:
        try:
            incarnation = decode_token(snap.token).incarnation
        except InvalidToken:
            return ("InvalidToken", "the minted token cannot be decoded")
        if incarnation != snap.current_incarnation:
            return (
                "PipelineRestarted",
                "the pipeline restarted after the token was minted; it can never complete",
            )
    if snap.timeout_seconds is not None:
        started = snap.minted_at or snap.created_at
        if started is not None and seconds_between(started, now) >= snap.timeout_seconds:
            return ("Timeout", f"not complete within {snap.timeout_seconds} s")
    if not snap.pipeline_exists:
        return ("PipelineNotFound", "the pipeline this token references does not exist")
    if snap.connector_exists is False:
        return (
            "ConnectorNotFound",
            f"the pipeline has no input connector {snap.endpoint_name!r}",
        )
    return None


def is_finished(status: CompletionTokenStatus | None) -> bool:
    """Complete, or failed for good."""
    if status is None:
        return False
    if status.status == "complete":
        return True
    failed = conditions.find(status.conditions, FAILED)
    return (
        failed is not None and failed.status == "True" and failed.reason in TERMINAL_TOKEN_REASONS
    )


def finished_at(status: CompletionTokenStatus | None) -> str | None:
    """When the token completed or failed, for ttlSecondsAfterFinished."""
    if status is None:
        return None
    if status.status == "complete":
        return status.completed_at
    failed = conditions.find(status.conditions, FAILED)
    if failed is not None and failed.status == "True":
        return failed.last_transition_time
    return None


def compute_token_status(
    snap: TokenSnapshot, previous: CompletionTokenStatus | None, now: str
) -> CompletionTokenStatus:
    """The CompletionToken's status for this snapshot; finished tokens keep their verdict."""
    if previous is not None and is_finished(previous):
        return previous
    previous = previous or CompletionTokenStatus()
    completed_at = None
    failure = None if snap.complete else token_failure(snap, now)
    if snap.complete:
        completed_at = previous.completed_at or now
        text = "every record the token covers was processed and delivered"
        wants = conditions.kstatus_triplet(ready=("True", "Complete", text))
        wants += [Want(COMPLETE, "True", "Complete", text), Want(FAILED, "False", "Complete")]
    elif failure is not None:
        reason, text = failure
        wants = conditions.kstatus_triplet(ready=("False", reason, text), stalled=(reason, text))
        wants += [Want(COMPLETE, "False", reason, text), Want(FAILED, "True", reason, text)]
    elif snap.token is None:
        reason, text = ("Minting", "waiting for the pipeline to mint the token")
        if snap.waiting_for_end_of_input:
            reason = "WaitingForEndOfInput"
            text = "waiting for the connector to reach end of input before minting the token"
        wants = conditions.kstatus_triplet(
            ready=("Unknown", reason, text), reconciling=(reason, text)
        )
        wants += [Want(COMPLETE, "Unknown", reason, text), Want(FAILED, "False", reason)]
    else:
        text = "waiting for the pipeline to process the records the token covers"
        wants = conditions.kstatus_triplet(
            ready=("Unknown", "InProgress", text), reconciling=("InProgress", text)
        )
        wants += [Want(COMPLETE, "False", "InProgress", text), Want(FAILED, "False", "InProgress")]
    step = previous.step
    return CompletionTokenStatus(
        observed_generation=snap.generation,
        conditions=conditions.merge_conditions(
            previous.conditions, wants, generation=snap.generation, now=now
        ),
        token=snap.token,
        minted_at=snap.minted_at,
        endpoint_name=snap.endpoint_name,
        status=(
            "complete" if snap.complete else ("inprogress" if snap.token is not None else None)
        ),
        completed_at=completed_at,
        step=step,
    )
