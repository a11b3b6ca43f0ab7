"""Planning: applies only for missing or drifted children, deletes only compute."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sluice.core import manifests, planning
from sluice.core.runtime_config import build_runtime_config
from sluice.models.resources import PipelineSpec

OWNER = manifests.Owner(name="orders", namespace="team", uid="uid-1")
DEFAULTS = manifests.RuntimeDefaults(image="example.org/sluice:1")


def _desired(**fields: Any) -> list[dict[str, Any]]:
    spec = PipelineSpec.model_validate({"sql": "CREATE TABLE t (x INT);", **fields})
    config = build_runtime_config(
        pipeline_name="orders", namespace="team", spec=spec, sql=spec.sql or "", connectors=[]
    )
    return manifests.build_children(OWNER, spec, config, DEFAULTS)


def _as_served(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with the extra fields the API server adds."""
    served = copy.deepcopy(manifest)
    served["metadata"]["uid"] = "child"
    served["metadata"]["resourceVersion"] = "7"
    served["metadata"]["labels"]["extra"] = "x"
    if manifest["kind"] == "StatefulSet":
        served["spec"]["revisionHistoryLimit"] = 10
        container = served["spec"]["template"]["spec"]["containers"][0]
        container["readinessProbe"]["httpGet"]["scheme"] = "HTTP"
        container["ports"][0]["containerPort"] = "8080"
    served["status"] = {"anything": 1}
    return served


def _observed(children: list[dict[str, Any]]) -> dict[planning.ChildKey, dict[str, Any]]:
    return {planning.child_key(child): _as_served(child) for child in children}


def test_everything_missing_is_applied_in_order() -> None:
    desired = _desired()
    actions = planning.plan_children(desired, {})
    assert [action.key for action in actions if isinstance(action, planning.Apply)] == [
        planning.child_key(child) for child in desired
    ]


def test_converged_children_need_no_writes() -> None:
    desired = _desired()
    assert planning.plan_children(desired, _observed(desired)) == []


def test_hand_edited_child_is_repaired() -> None:
    desired = _desired()
    observed = _observed(desired)
    sts = observed[("StatefulSet", "sluice-orders")]
    sts["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:1"
    actions = planning.plan_children(desired, observed)
    assert [action.key for action in actions if isinstance(action, planning.Apply)] == [
        ("StatefulSet", "sluice-orders")
    ]


def test_stop_deletes_compute_but_never_storage() -> None:
    running = _desired(runtime={"storage": {"size": "1Gi"}})
    stopped = _desired(desiredState="Stopped", runtime={"storage": {"size": "1Gi"}})
    actions = planning.plan_children(stopped, _observed(running))
    assert actions == [planning.Delete("apps/v1", "StatefulSet", "sluice-orders")]
    no_storage = _desired(desiredState="Stopped")
    actions = planning.plan_children(no_storage, _observed(running))
    assert planning.Delete("apps/v1", "StatefulSet", "sluice-orders") in actions
    assert not any(
        isinstance(action, planning.Delete) and action.kind == "PersistentVolumeClaim"
        for action in actions
    )


def test_child_already_being_deleted_is_not_deleted_again() -> None:
    running = _observed(_desired())
    running[("StatefulSet", "sluice-orders")]["metadata"]["deletionTimestamp"] = "now"
    assert planning.plan_children(_desired(desiredState="Stopped"), running) == []


@pytest.mark.parametrize(
    ("desired", "status", "heading", "call"),
    [
        ("Running", "Running", "Running", None),
        ("Running", "Paused", "Paused", "start"),
        ("Running", "Paused", "Running", None),
        ("Paused", "Running", "Running", "pause"),
        ("Paused", "Paused", "Paused", None),
        ("Paused", "Initializing", "Running", "pause"),
        ("Running", "Initializing", "Running", None),
        ("Running", None, None, None),
        ("Stopped", "Running", "Running", None),
    ],
)
def test_plan_runtime(
    desired: str, status: str | None, heading: str | None, call: str | None
) -> None:
    assert planning.plan_runtime(desired, status, heading) == call


def test_holds_compares_numbers_and_strings_loosely_but_not_booleans() -> None:
    assert planning.holds({"a": 1}, {"a": "1", "b": 2})
    assert not planning.holds({"a": True}, {"a": "True"})
    assert not planning.holds({"a": [1, 2]}, {"a": [1]})
    assert planning.holds({"resources": {"cpu": "0.5"}}, {"resources": {"cpu": "500m"}})
