"""Layer 3 (controller): reconcile one Connector's status from its pipeline's process.

The Connector's figures mirror the endpoint's stats; every `freshnessInterval` the operator
mints a completion token for an input connector itself and follows it through the frontier,
so `status.completion` says how fresh the outputs are and `InputComplete` says when a
finished input has been fully processed. An unchanged input mints an unchanged token, so a
quiet connector causes no status writes.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from sluice.controller.deps import Deps
from sluice.controller.observe import endpoint_stats
from sluice.controller.writer import post_event, write_status
from sluice.core import conditions, naming
from sluice.core import status as status_rules
from sluice.core.tokens import InvalidToken, decode_token
from sluice.models.resources import (
    ConnectorCompletion,
    ConnectorSpec,
    ConnectorStatus,
    PipelineStatus,
)
from sluice.process.client import ProcessError, ProcessUnreachable

logger = logging.getLogger(__name__)


async def is_token_complete(
    deps: Deps, pipeline_key: tuple[str, str], location: str, token: str
) -> bool:
    """Whether the token completed: from the frontier when it can tell, else from the pod."""
    try:
        decoded = decode_token(token)
    except InvalidToken:
        return False
    follower = deps.observer.follower(pipeline_key)
    if follower is not None and follower.current is not None:
        verdict = follower.current.is_complete(decoded)
        if verdict is not None:
            return verdict
    try:
        answer = await deps.process.completion_status(location, token)
    except (ProcessError, ProcessUnreachable):
        return False
    return answer.get("status") == "complete"


async def reconcile_connector(deps: Deps, namespace: str, name: str) -> float | None:
    """Converge one Connector's status; returns when to look again."""
    body = deps.store.get("Connector", namespace, name)
    if body is None:
        return None
    settings = deps.settings
    previous = ConnectorStatus.model_validate(body.get("status") or {})
    generation = int(body["metadata"].get("generation") or 1)
    try:
        spec = ConnectorSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        snap = status_rules.ConnectorSnapshot(
            generation=generation,
            endpoint_name=previous.endpoint_name or "",
            direction="input",
            pipeline_exists=False,
            spec_error=str(error.errors()[0].get("msg")),
        )
        await write_status(
            deps, body, status_rules.compute_connector_status(snap, previous, deps.now())
        )
        return None
    endpoint = naming.endpoint_name(spec.relation, name)
    pipeline_name = spec.pipeline_ref.name
    pipeline = deps.store.get("Pipeline", namespace, pipeline_name)
    pipeline_status = PipelineStatus.model_validate((pipeline or {}).get("status") or {})
    location = pipeline_status.endpoint
    running = pipeline_status.deployment_status in ("Running", "Paused")
    stats = None
    completion = previous.completion
    if pipeline is not None and location is not None and running:
        observation = await deps.observer.observe((namespace, pipeline_name), location)
        if observation.runtime is not None:
            stats = endpoint_stats(observation.stats, endpoint, spec.direction)
        if stats is not None and spec.direction == "input" and stats.paused != spec.paused:
            # spec.paused changes go through the connector API: they never roll the pod.
            action = "pause" if spec.paused else "start"
            try:
                await deps.process.connector_action(location, endpoint, action)
                observation = await deps.observer.observe(
                    (namespace, pipeline_name), location, fresh=True
                )
                stats = endpoint_stats(observation.stats, endpoint, spec.direction) or stats
            except (ProcessError, ProcessUnreachable) as error:
                logger.info("%s/%s: %s failed: %s", namespace, name, action, error)
        if stats is not None and spec.direction == "input":
            completion = await _freshness(
                deps, (namespace, pipeline_name), location, endpoint, previous
            )
    snap = status_rules.ConnectorSnapshot(
        generation=generation,
        endpoint_name=endpoint,
        direction=spec.direction,
        pipeline_exists=pipeline is not None,
        pipeline_desired_state=(pipeline or {}).get("spec", {}).get("desiredState", "Running"),
        pipeline_running=running,
        stats=stats,
        completion=completion,
    )
    new = status_rules.compute_connector_status(snap, previous, deps.now())
    if (
        await write_status(deps, body, new)
        and conditions.is_true(new.conditions, status_rules.INPUT_COMPLETE)
        and not conditions.is_true(previous.conditions, status_rules.INPUT_COMPLETE)
    ):
        await post_event(deps, body, "InputComplete", "every input record was processed")
    if pipeline is None:
        return settings.resync_interval
    if completion is not None and completion.status == "inprogress":
        return min(settings.freshness_interval, 5.0)
    return settings.freshness_interval if spec.direction == "input" else settings.resync_interval


async def _freshness(
    deps: Deps,
    pipeline_key: tuple[str, str],
    location: str,
    endpoint: str,
    previous: ConnectorStatus,
) -> ConnectorCompletion | None:
    """Mint a freshness token when the last is older than the interval, and follow it."""
    current = previous.completion
    due = (
        current is None
        or current.minted_at is None
        or status_rules.seconds_between(current.minted_at, deps.now())
        >= deps.settings.freshness_interval
    )
    token = current.token if current is not None else None
    if due or token is None:
        try:
            token = await deps.process.completion_token(location, endpoint)
        except (ProcessError, ProcessUnreachable, KeyError) as error:
            logger.debug("freshness token for %s not minted: %s", endpoint, error)
            return current
    if token is None:
        return current
    complete = current is not None and current.token == token and current.status == "complete"
    if not complete:
        complete = await is_token_complete(deps, pipeline_key, location, token)
    return status_rules.next_completion(current, token, complete, deps.now())
