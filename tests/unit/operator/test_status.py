"""Status: every row of the state mapping, read back the way kstatus and Argo CD read it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from sluice.core import status as compute
from sluice.core.status import PipelineSnapshot, PodState, RuntimeState
from sluice.core.tokens import CompletionToken
from sluice.models.resources import ConnectorCompletion, PipelineStatus
from tests.unit.operator.kstatus import argo_health, kstatus

NOW = "2026-01-01T00:00:10Z"
GEN = 4
UP = PodState(phase="Running", ready=True, ip="127.0.0.5", config_hash="h1")
RUNNING = RuntimeState(runtime_status="Running", runtime_desired_status="Running", incarnation="u1")


def _snap(**fields: Any) -> PipelineSnapshot:
    base: dict[str, Any] = {"generation": GEN, "desired_state": "Running", "config_hash": "h1"}
    return PipelineSnapshot(**{**base, **fields})


def _conditions(result: PipelineStatus) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in result.conditions}


def _wire(result: PipelineStatus) -> dict[str, Any]:
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)


def test_unseen_pipeline_reads_in_progress() -> None:
    """Row 1: the CRD default observedGeneration -1 keeps kstatus waiting."""
    assert PipelineStatus().observed_generation == -1
    assert kstatus(1, _wire(PipelineStatus())) == "InProgress"
    assert argo_health(1, _wire(PipelineStatus())) == "Progressing"


ROWS = [
    # (row, snapshot, Ready, Reconciling, Stalled, deploymentStatus, kstatus, argo)
    (
        "first visit, no pod yet (provisioning)",
        _snap(),
        ("Unknown", "Provisioning"),
        "True",
        "False",
        "Provisioning",
        "InProgress",
        "Progressing",
    ),
    (
        "pod pending",
        _snap(pod=PodState(phase="Pending", config_hash="h1")),
        ("Unknown", "Provisioning"),
        "True",
        "False",
        "Provisioning",
        "InProgress",
        "Progressing",
    ),
    (
        "program compiling (process initializing)",
        _snap(pod=UP, runtime=RuntimeState(runtime_status="Initializing")),
        ("Unknown", "Provisioning"),
        "True",
        "False",
        "Initializing",
        "InProgress",
        "Progressing",
    ),
    (
        "bootstrapping",
        _snap(pod=UP, runtime=RuntimeState(runtime_status="Bootstrapping")),
        ("Unknown", "Bootstrapping"),
        "True",
        "False",
        "Initializing",
        "InProgress",
        "Progressing",
    ),
    (
        "compile error reported by the process",
        _snap(pod=UP, runtime=RuntimeState(runtime_status="Stopped", error="Parser Error: near x")),
        ("False", "SqlCompilationFailed"),
        "False",
        "True",
        "Stopped",
        "Failed",
        "Degraded",
    ),
    (
        "compile error: the process exits with it",
        _snap(
            pod=PodState(
                phase="Running",
                ip="127.0.0.5",
                restart_count=1,
                config_hash="h1",
                waiting_reason="CrashLoopBackOff",
                last_termination_message="SqlError: bad",
            )
        ),
        ("False", "SqlCompilationFailed"),
        "False",
        "True",
        "Stopped",
        "Failed",
        "Degraded",
    ),
    (
        "awaiting approval",
        _snap(pod=UP, runtime=RuntimeState(runtime_status="AwaitingApproval")),
        ("False", "AwaitingApproval"),
        "False",
        "False",
        "Initializing",
        "InProgress",
        "Suspended",
    ),
    (
        "desired Running, running",
        _snap(pod=UP, runtime=RUNNING),
        ("True", "Running"),
        "False",
        "False",
        "Running",
        "Current",
        "Healthy",
    ),
    (
        "desired Paused, paused",
        _snap(
            desired_state="Paused",
            pod=UP,
            runtime=RuntimeState(runtime_status="Paused", runtime_desired_status="Paused"),
        ),
        ("True", "Paused"),
        "False",
        "False",
        "Paused",
        "Current",
        "Healthy",
    ),
    (
        "desired Paused, still running",
        _snap(desired_state="Paused", pod=UP, runtime=RUNNING),
        ("Unknown", "Progressing"),
        "True",
        "False",
        "Running",
        "InProgress",
        "Progressing",
    ),
    (
        "desired Stopped, pod gone",
        _snap(desired_state="Stopped"),
        ("True", "Stopped"),
        "False",
        "False",
        "Stopped",
        "Current",
        "Healthy",
    ),
    (
        "desired Stopped, pod still there",
        _snap(desired_state="Stopped", pod=UP, runtime=RUNNING),
        ("Unknown", "Stopping"),
        "True",
        "False",
        "Stopping",
        "InProgress",
        "Progressing",
    ),
    (
        "transient error, will retry",
        _snap(
            pod=PodState(
                phase="Running",
                ip="127.0.0.5",
                restart_count=2,
                config_hash="h1",
                waiting_reason="CrashLoopBackOff",
                last_termination_message="connection refused",
            )
        ),
        ("False", "CrashLoopBackOff"),
        "True",
        "False",
        "Provisioning",
        "InProgress",
        "Progressing",
    ),
    (
        "retries exhausted",
        _snap(
            pod=PodState(
                phase="Running",
                ip="127.0.0.5",
                restart_count=5,
                config_hash="h1",
                waiting_reason="CrashLoopBackOff",
                last_termination_message="boom",
            )
        ),
        ("False", "CrashLoopBackOff"),
        "False",
        "True",
        "Stopped",
        "Failed",
        "Degraded",
    ),
    (
        "image that can never start",
        _snap(pod=PodState(phase="Pending", waiting_reason="InvalidImageName", config_hash="h1")),
        ("False", "InvalidImageName"),
        "False",
        "True",
        "Provisioning",
        "Failed",
        "Degraded",
    ),
    (
        "invalid spec while the previous generation runs",
        _snap(config_hash=None, spec_error="ConfigMap cm has no key sql", pod=UP, runtime=RUNNING),
        ("False", "InvalidSpec"),
        "False",
        "True",
        "Running",
        "Failed",
        "Degraded",
    ),
    (
        "process unreachable for K polls",
        _snap(pod=UP, unreachable_polls=3, unreachable_error="timeout"),
        ("Unknown", "StatusUnavailable"),
        "False",
        "False",
        "Unavailable",
        "InProgress",
        "Progressing",
    ),
    (
        "process not answering yet while the pod starts",
        _snap(pod=replace(UP, ready=False), unreachable_polls=5, unreachable_error="refused"),
        ("Unknown", "Provisioning"),
        "True",
        "False",
        "Initializing",
        "InProgress",
        "Progressing",
    ),
    (
        "new config rolling out",
        _snap(pod=replace(UP, config_hash="old"), runtime=RUNNING),
        ("Unknown", "Progressing"),
        "True",
        "False",
        "Running",
        "InProgress",
        "Progressing",
    ),
    (
        "being deleted",
        _snap(deleting=True, pod=UP, runtime=RUNNING),
        ("False", "Deleting"),
        "False",
        "False",
        "Stopping",
        "Terminating",
        "Degraded",
    ),
]


@pytest.mark.parametrize(
    ("snap", "ready", "reconciling", "stalled", "deployment", "kstat", "argo"),
    [row[1:] for row in ROWS],
    ids=[row[0] for row in ROWS],
)
def test_state_mapping(
    snap: PipelineSnapshot,
    ready: tuple[str, str],
    reconciling: str,
    stalled: str,
    deployment: str,
    kstat: str,
    argo: str,
) -> None:
    result = compute.compute_pipeline_status(snap, None, NOW)
    found = _conditions(result)
    assert found["Ready"] == ready
    assert found["Reconciling"][0] == reconciling
    assert found["Stalled"][0] == stalled
    assert not (found["Reconciling"][0] == "True" and found["Stalled"][0] == "True")
    assert [c.type for c in result.conditions][:3] == ["Ready", "Reconciling", "Stalled"]
    assert all(c.observed_generation == GEN for c in result.conditions)
    assert result.observed_generation == GEN
    assert result.deployment_status == deployment
    assert kstatus(GEN, _wire(result), deleting=snap.deleting) == kstat
    assert argo_health(GEN, _wire(result)) == argo
    # What the API server would accept.
    PipelineStatus.model_validate(_wire(result))


def test_running_status_carries_the_domain_fields() -> None:
    snap = _snap(
        pod=replace(UP, restart_count=1),
        runtime=replace(RUNNING, tables=("t",), views=("v",)),
        restart_request="r1",
    )
    snap = replace(snap, pod=replace(UP, restart_request="r1"))
    result = compute.compute_pipeline_status(snap, None, NOW)
    assert result.endpoint == "127.0.0.5:8080"
    assert result.incarnation == "u1"
    assert result.tables == ["t"]
    assert result.views == ["v"]
    assert result.running_generation == GEN
    assert result.last_handled_restart_request == "r1"


def test_restart_request_acknowledged_only_once_the_new_pod_runs() -> None:
    old_pod = _snap(pod=UP, runtime=RUNNING, restart_request="r2")
    result = compute.compute_pipeline_status(old_pod, None, NOW)
    assert result.last_handled_restart_request is None
    assert _conditions(result)["Reconciling"] == ("True", "Progressing")


def test_invalid_spec_names_the_running_generation() -> None:
    good = compute.compute_pipeline_status(_snap(generation=3, pod=UP, runtime=RUNNING), None, NOW)
    bad = compute.compute_pipeline_status(
        _snap(config_hash=None, spec_error="no such key", pod=UP, runtime=RUNNING), good, NOW
    )
    ready = next(c for c in bad.conditions if c.type == "Ready")
    assert "still running generation 3" in ready.message
    assert bad.running_generation == 3


def test_short_unreachability_keeps_the_previous_status() -> None:
    good = compute.compute_pipeline_status(_snap(pod=UP, runtime=RUNNING), None, NOW)
    blip = compute.compute_pipeline_status(
        _snap(pod=UP, unreachable_polls=1, unreachable_error="reset"), good, "later"
    )
    assert blip == good


def test_transition_times_and_last_error_stay_put_while_nothing_changes() -> None:
    crashing = _snap(
        pod=PodState(
            phase="Running",
            ip="127.0.0.5",
            restart_count=1,
            config_hash="h1",
            waiting_reason="CrashLoopBackOff",
            last_termination_message="boom",
        )
    )
    first = compute.compute_pipeline_status(crashing, None, "T1")
    again = compute.compute_pipeline_status(crashing, first, "T2")
    assert again == first
    assert first.last_error is not None
    assert first.last_error.time == "T1"


# --- Connector ------------------------------------------------------------------------------


def _token(records: int) -> str:
    return CompletionToken("u1", 0, records).encode()


INPUT_STATS = compute.EndpointStats(records=10, bytes=100, buffered_records=2)
EOI_STATS = compute.EndpointStats(records=10, end_of_input=True)
DONE = ConnectorCompletion(token=_token(10), minted_at="T1", status="complete", completed_at="T2")

CONNECTOR_ROWS = [
    (
        "pipeline missing",
        {"pipeline_exists": False},
        ("False", "PipelineNotFound"),
        "True",
        "Pending",
        "False",
    ),
    (
        "pipeline stopped",
        {"pipeline_desired_state": "Stopped"},
        ("True", "PipelineStopped"),
        "False",
        "Stopped",
        "False",
    ),
    ("pipeline not running", {}, ("Unknown", "WaitingForPipeline"), "False", "Pending", "False"),
    ("running", {"stats": INPUT_STATS}, ("True", "Running"), "False", "Running", "False"),
    (
        "paused",
        {"stats": replace(INPUT_STATS, paused=True)},
        ("True", "Paused"),
        "False",
        "Paused",
        "False",
    ),
    (
        "failed",
        {"stats": replace(INPUT_STATS, fatal_error="no such file")},
        ("False", "ConnectorFailed"),
        "True",
        "Pending",
        "False",
    ),
    (
        "end of input, not yet processed",
        {"stats": EOI_STATS},
        ("True", "EndOfInput"),
        "False",
        "EndOfInput",
        "False",
    ),
    (
        "end of input, processed",
        {"stats": EOI_STATS, "completion": DONE},
        ("True", "EndOfInput"),
        "False",
        "EndOfInput",
        "True",
    ),
    (
        "end of input, token older than the last records",
        {"stats": replace(EOI_STATS, records=11), "completion": DONE},
        ("True", "EndOfInput"),
        "False",
        "EndOfInput",
        "False",
    ),
]


@pytest.mark.parametrize(
    ("fields", "ready", "stalled", "state", "input_complete"),
    [row[1:] for row in CONNECTOR_ROWS],
    ids=[row[0] for row in CONNECTOR_ROWS],
)
def test_connector_status(
    fields: dict[str, Any], ready: tuple[str, str], stalled: str, state: str, input_complete: str
) -> None:
    snap = compute.ConnectorSnapshot(
        **{
            "generation": 1,
            "endpoint_name": "t.in",
            "direction": "input",
            "pipeline_exists": True,
            "pipeline_desired_state": "Running",
            **fields,
        }
    )
    result = compute.compute_connector_status(snap, None, NOW)
    found = {c.type: (c.status, c.reason) for c in result.conditions}
    assert found["Ready"] == ready
    assert found["Stalled"][0] == stalled
    assert found["InputComplete"][0] == input_complete
    assert result.connector_status == state
    if "stats" in fields:
        assert result.metrics is not None
        assert result.metrics.records_received == fields["stats"].records


def test_output_connector_has_no_input_complete_and_counts_transmitted() -> None:
    snap = compute.ConnectorSnapshot(
        generation=1,
        endpoint_name="v.out",
        direction="output",
        pipeline_exists=True,
        pipeline_desired_state="Running",
        stats=compute.EndpointStats(records=7),
    )
    result = compute.compute_connector_status(snap, None, NOW)
    assert "InputComplete" not in {c.type for c in result.conditions}
    assert result.metrics is not None
    assert result.metrics.records_transmitted == 7


def test_freshness_bookkeeping() -> None:
    first = compute.next_completion(None, "tok1", False, "2026-01-01T00:00:00Z")
    assert first is not None
    assert first.status == "inprogress"
    same = compute.next_completion(first, "tok1", False, "2026-01-01T00:00:05Z")
    assert same == first  # an unchanged token keeps its mintedAt: no status churn
    done = compute.next_completion(same, "tok1", True, "2026-01-01T00:00:01.5Z")
    assert done is not None
    assert done.status == "complete"
    assert done.lag_seconds == 1.5
    assert compute.next_completion(done, "tok1", True, "later") == done
    newer = compute.next_completion(done, "tok2", False, "2026-01-01T00:01:00Z")
    assert newer is not None
    assert (newer.token, newer.status, newer.completed_at) == ("tok2", "inprogress", None)


# --- CompletionToken ------------------------------------------------------------------------


TOKEN = _token(5)

TOKEN_ROWS = [
    ("pipeline missing", {"pipeline_exists": False}, "False", "True", "PipelineNotFound", None),
    ("connector missing", {"connector_exists": False}, "False", "True", "ConnectorNotFound", None),
    ("not minted yet", {}, "Unknown", "False", "Minting", None),
    (
        "waiting for end of input",
        {"waiting_for_end_of_input": True},
        "Unknown",
        "False",
        "WaitingForEndOfInput",
        None,
    ),
    (
        "in progress",
        {"token": TOKEN, "current_incarnation": "u1"},
        "False",
        "False",
        "InProgress",
        "inprogress",
    ),
    (
        "complete",
        {"token": TOKEN, "current_incarnation": "u1", "complete": True},
        "True",
        "False",
        "Complete",
        "complete",
    ),
    (
        "pipeline restarted",
        {"token": TOKEN, "current_incarnation": "u2"},
        "False",
        "True",
        "PipelineRestarted",
        "inprogress",
    ),
    (
        "timed out",
        {
            "token": TOKEN,
            "current_incarnation": "u1",
            "timeout_seconds": 5,
            "minted_at": "2026-01-01T00:00:00Z",
        },
        "False",
        "True",
        "Timeout",
        "inprogress",
    ),
    (
        "not yet timed out",
        {
            "token": TOKEN,
            "current_incarnation": "u1",
            "timeout_seconds": 60,
            "minted_at": "2026-01-01T00:00:00Z",
        },
        "False",
        "False",
        "InProgress",
        "inprogress",
    ),
]


@pytest.mark.parametrize(
    ("fields", "complete", "failed", "reason", "status"),
    [row[1:] for row in TOKEN_ROWS],
    ids=[row[0] for row in TOKEN_ROWS],
)
def test_token_status(
    fields: dict[str, Any], complete: str, failed: str, reason: str, status: str | None
) -> None:
    snap = compute.TokenSnapshot(
        **{"generation": 1, "pipeline_exists": True, "endpoint_name": "t.in", **fields}
    )
    result = compute.compute_token_status(snap, None, NOW)
    found = {c.type: (c.status, c.reason) for c in result.conditions}
    assert found["Complete"][0] == complete
    assert found["Failed"][0] == failed
    if failed == "True":
        assert found["Failed"][1] == reason
    assert found["Ready"][1] == reason
    assert result.status == status
    wire = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    expected = {"True": "Current", "False": "InProgress", "Unknown": "InProgress"}[complete]
    if failed == "True":
        expected = "Failed"
    assert kstatus(1, wire) == expected


def test_finished_token_keeps_its_verdict() -> None:
    snap = compute.TokenSnapshot(
        generation=1,
        pipeline_exists=True,
        endpoint_name="t.in",
        token=TOKEN,
        current_incarnation="u1",
        complete=True,
    )
    done = compute.compute_token_status(snap, None, NOW)
    assert compute.is_finished(done)
    assert compute.finished_at(done) == NOW
    later = compute.compute_token_status(
        replace(snap, complete=False, current_incarnation="u9", pipeline_exists=False), done, "X"
    )
    assert later == done


def test_token_never_completes_early() -> None:
    snap = compute.TokenSnapshot(
        generation=1,
        pipeline_exists=True,
        endpoint_name="t.in",
        token=TOKEN,
        current_incarnation="u1",
    )
    result = compute.compute_token_status(snap, None, NOW)
    assert result.status == "inprogress"
    assert result.completed_at is None
    assert not compute.is_finished(result)
