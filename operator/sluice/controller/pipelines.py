"""Layer 3 (controller): reconcile one Pipeline — gather, plan, apply, compute status.

1. gather: the Pipeline, its Connectors and children from the store, the SQL, the pod and
   the process's own status;
2. plan (pure): the children to apply or delete, the start/pause call;
3. apply: server-side apply and deletes through KubeApi, the call through the process client;
4. status (pure): computed from the snapshot and written only when it changed.
An invalid spec renders nothing, so the children of the last good spec keep running.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from sluice.controller.deps import Deps
from sluice.controller.observe import endpoint_stats
from sluice.controller.writer import post_event, write_status
from sluice.core import conditions, manifests, naming, planning
from sluice.core import status as status_rules
from sluice.core.runtime_config import build_runtime_config
from sluice.k8s.api import CONFIG_MAP, POD, kind_of
from sluice.models.resources import (
    ConnectorSpec,
    ConnectorSummary,
    PipelineSpec,
    PipelineStatus,
)
from sluice.process.client import ProcessError, ProcessUnreachable

logger = logging.getLogger(__name__)


class InvalidSpec(Exception):
    """The current generation cannot be rendered."""


def _validation_message(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))


async def _sql(deps: Deps, namespace: str, spec: PipelineSpec) -> str:
    if spec.sql is not None:
        return spec.sql
    assert spec.sql_from is not None
    ref = spec.sql_from.config_map_key_ref
    config_map = deps.store.get("ConfigMap", namespace, ref.name)
    if config_map is None:
        config_map = await deps.kube.get(CONFIG_MAP, namespace, ref.name)
        if config_map is not None:
            deps.store.objects["ConfigMap"][(namespace, ref.name)] = config_map
    if config_map is None:
        raise InvalidSpec(f"ConfigMap {ref.name!r} (sqlFrom) does not exist")
    sql = (config_map.get("data") or {}).get(ref.key)
    if not sql:
        raise InvalidSpec(f"ConfigMap {ref.name!r} has no key {ref.key!r} (sqlFrom)")
    return str(sql)


def _connectors(deps: Deps, namespace: str, pipeline: str) -> list[tuple[str, ConnectorSpec]]:
    found = []
    for body in deps.store.related("Connector", namespace, pipeline):
        if (body.get("metadata") or {}).get("deletionTimestamp"):
            continue
        try:
            found.append(
                (str(body["metadata"]["name"]), ConnectorSpec.model_validate(body["spec"]))
            )
        except ValidationError:
            continue  # the Connector reports its own InvalidSpec
    return found


def _running_config_hash(children: dict[tuple[str, str], dict[str, Any]]) -> str | None:
    """The config hash the pipeline's StatefulSet runs now, if it exists."""
    for (kind, _), body in children.items():
        if kind == "StatefulSet":
            template = body.get("spec", {}).get("template", {})
            annotations = template.get("metadata", {}).get("annotations") or {}
            value = annotations.get(manifests.ANNOTATION_CONFIG_HASH)
            return str(value) if value else None
    return None


def pod_state(pod: dict[str, Any] | None) -> status_rules.PodState | None:
    """The parts of a Pod object the status rules use."""
    if pod is None:
        return None
    status = pod.get("status") or {}
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    containers = status.get("containerStatuses") or []
    container = next(
        (c for c in containers if c.get("name") == manifests.CONTAINER_NAME),
        containers[0] if containers else {},
    )
    waiting = (container.get("state") or {}).get("waiting") or {}
    terminated = (container.get("lastState") or {}).get("terminated") or (
        (container.get("state") or {}).get("terminated") or {}
    )
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    return status_rules.PodState(
        phase=status.get("phase"),
        ready=ready,
        ip=status.get("podIP"),
        restart_count=int(container.get("restartCount") or 0),
        waiting_reason=waiting.get("reason"),
        waiting_message=waiting.get("message"),
        last_termination_message=terminated.get("message"),
        config_hash=annotations.get(manifests.ANNOTATION_CONFIG_HASH),
        restart_request=annotations.get(manifests.ANNOTATION_RESTART_REQUEST, ""),
        deleting=bool((pod.get("metadata") or {}).get("deletionTimestamp")),
    )


def _summaries(
    connectors: list[tuple[str, ConnectorSpec]], stats: dict[str, Any] | None
) -> tuple[ConnectorSummary, ...] | None:
    if stats is None:
        return None
    summaries = []
    for name, spec in connectors:
        endpoint = naming.endpoint_name(spec.relation, name)
        figures = endpoint_stats(stats, endpoint, spec.direction)
        summaries.append(
            ConnectorSummary(
                name=name,
                endpoint_name=endpoint,
                direction=spec.direction,
                paused=figures.paused if figures else spec.paused,
                end_of_input=figures.end_of_input if figures else False,
                records=figures.records if figures else 0,
                errors=(
                    figures.parse_errors + figures.transport_errors + figures.encode_errors
                    if figures
                    else 0
                ),
            )
        )
    return tuple(summaries)


async def reconcile_pipeline(deps: Deps, namespace: str, name: str) -> float | None:
    """Converge one Pipeline; returns when to look again (seconds), None to wait for events."""
    body = deps.store.get("Pipeline", namespace, name)
    key = (namespace, name)
    if body is None:
        deps.observer.forget(key)
        return None
    metadata = body["metadata"]
    generation = int(metadata.get("generation") or 1)
    previous = PipelineStatus.model_validate(body.get("status") or {})
    settings = deps.settings
    spec: PipelineSpec | None = None
    spec_error: str | None = None
    desired_hash: str | None = None
    try:
        spec = PipelineSpec.model_validate(body.get("spec") or {})
        connectors = _connectors(deps, namespace, name)
        sql = await _sql(deps, namespace, spec)
        config = build_runtime_config(
            pipeline_name=name,
            namespace=namespace,
            spec=spec,
            sql=sql,
            connectors=connectors,
            storage_path=manifests.storage_path(spec),
        )
    except ValidationError as error:
        spec_error = _validation_message(error)
        connectors = []
    except InvalidSpec as error:
        spec_error = str(error)
    if spec is not None and spec_error is None and deps.programs is not None:
        running_hash = _running_config_hash(deps.store.children(namespace, name))
        new_hash = manifests.config_hash(config)
        if running_hash is not None and running_hash != new_hash:
            # Only a change is checked: a new pipeline has nothing to protect, and its pod
            # reports an invalid program itself.
            problem = await deps.programs.problem(config, new_hash)
            if problem is not None:
                spec_error = f"the changed program is invalid: {problem}"
    desired_state = (
        spec.desired_state
        if spec is not None
        else (previous.deployment_desired_status or "Running")
    )
    deleting = bool(metadata.get("deletionTimestamp"))
    children = deps.store.children(namespace, name)
    if spec is not None and spec_error is None and not deleting:
        owner = manifests.Owner(name, namespace, str(metadata.get("uid", "")), generation)
        defaults = manifests.RuntimeDefaults(
            settings.runtime_image, settings.runtime_image_pull_policy
        )
        desired = manifests.build_children(owner, spec, config, defaults)
        desired_hash = manifests.config_hash(config)
        actions = planning.plan_children(desired, children)
        for action in actions:
            if isinstance(action, planning.Apply):
                applied = await deps.kube.apply(action.manifest)
                if applied:
                    deps.store.record(action.manifest["kind"], "MODIFIED", applied)
            else:
                await deps.kube.delete(kind_of({"kind": action.kind}), namespace, action.name)
    pod_body = deps.store.get("Pod", namespace, f"{naming.pipeline_child_name(name)}-0")
    pod = pod_state(pod_body)
    if (
        pod is not None
        and desired_hash is not None
        and not pod.ready
        and not pod.deleting
        and spec is not None
        and (pod.config_hash != desired_hash or pod.restart_request != (spec.restart_request or ""))
    ):
        # A StatefulSet never replaces a pod that is not Ready; a stuck old pod must go.
        await deps.kube.delete(POD, namespace, f"{naming.pipeline_child_name(name)}-0")
    runtime = None
    stats: dict[str, Any] | None = None
    unreachable_error = None
    location = f"{pod.ip}:8080" if pod is not None and pod.ip and pod.phase == "Running" else None
    if location is not None and not deleting:
        observation = await deps.observer.observe(key, location)
        runtime, unreachable_error = observation.runtime, observation.error
        stats = observation.stats if runtime is not None else None
        current = pod is not None and pod.config_hash == desired_hash
        call = planning.plan_runtime(
            desired_state,
            runtime.runtime_status if runtime else None,
            runtime.runtime_desired_status if runtime else None,
        )
        if call is not None and current:
            try:
                await (deps.process.start if call == "start" else deps.process.pause)(location)
                observation = await deps.observer.observe(key, location, fresh=True)
                runtime = observation.runtime or runtime
            except (ProcessError, ProcessUnreachable) as error:
                logger.info("%s/%s: %s failed: %s", namespace, name, call, error)
    deps.observer.frontier(key, location, lambda: _wake_waiters(deps, namespace, name))
    snapshot = status_rules.PipelineSnapshot(
        generation=generation,
        desired_state=desired_state,
        config_hash=desired_hash,
        restart_request=spec.restart_request if spec is not None else None,
        spec_error=spec_error,
        pod=pod,
        runtime=runtime,
        unreachable_polls=deps.observer.failures(key) if location else 0,
        unreachable_error=unreachable_error,
        connectors=_summaries(connectors, stats),
        deleting=deleting,
        restart_budget=settings.restart_budget,
        unreachable_threshold=settings.unreachable_threshold,
    )
    new = status_rules.compute_pipeline_status(snapshot, previous, deps.now())
    if await write_status(deps, body, new):
        await _announce(deps, body, previous, new)
    settled = conditions.is_true(new.conditions, conditions.READY)
    if settled or conditions.is_true(new.conditions, conditions.STALLED):
        # Stalled waits for a change (which comes as an event), not for time.
        return settings.resync_interval
    return settings.status_poll_interval


def _wake_waiters(deps: Deps, namespace: str, pipeline: str) -> None:
    """The frontier moved: look at tokens and connectors that wait for completion."""
    for body in deps.store.related("CompletionToken", namespace, pipeline):
        if (body.get("status") or {}).get("status") != "complete":
            deps.queue.add(("CompletionToken", namespace, str(body["metadata"]["name"])))
    for body in deps.store.related("Connector", namespace, pipeline):
        completion = (body.get("status") or {}).get("completion") or {}
        if completion.get("status") == "inprogress":
            deps.queue.add(("Connector", namespace, str(body["metadata"]["name"])))


_TRANSITIONS = {
    "Running": ("Started", "the pipeline is running"),
    "Paused": ("Paused", "the pipeline is paused"),
    "Stopped": ("Stopped", "the pipeline is stopped"),
}


async def _announce(
    deps: Deps, body: dict[str, Any], previous: PipelineStatus, new: PipelineStatus
) -> None:
    """Events for the transitions users care about."""
    stalled = conditions.find(new.conditions, conditions.STALLED)
    was_stalled = conditions.find(previous.conditions, conditions.STALLED)
    if (
        stalled is not None
        and stalled.status == "True"
        and (
            was_stalled is None
            or (was_stalled.status, was_stalled.reason) != ("True", stalled.reason)
        )
    ):
        reason = "CompilationFailed" if stalled.reason == "SqlCompilationFailed" else stalled.reason
        await post_event(deps, body, reason, stalled.message, warning=True)
    ready = conditions.find(new.conditions, conditions.READY)
    was_ready = conditions.find(previous.conditions, conditions.READY)
    if (
        ready is not None
        and ready.status == "True"
        and ready.reason in _TRANSITIONS
        and (was_ready is None or (was_ready.status, was_ready.reason) != ("True", ready.reason))
    ):
        await post_event(deps, body, *_TRANSITIONS[ready.reason])
    if (
        new.last_handled_restart_request
        and new.last_handled_restart_request != previous.last_handled_restart_request
    ):
        await post_event(
            deps, body, "Restarted", f"restarted for request {new.last_handled_restart_request!r}"
        )
