"""Layer 3 (controller): reconcile one CompletionToken — mint once, then follow the frontier.

The token is minted through the process client (the gateway's code path) and written to
status at once, so it is never minted twice. Completion is read from the pod's completion
frontier, which wakes this reconcile when it moves; the pod's `/completion_status` answers
only when the frontier cannot decide. Finished tokens are deleted after
`ttlSecondsAfterFinished`.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from sluice.controller.connectors import is_token_complete
from sluice.controller.deps import Deps
from sluice.controller.writer import post_event, write_status
from sluice.core import conditions, naming
from sluice.core import status as status_rules
from sluice.k8s.api import COMPLETION_TOKEN
from sluice.models.resources import CompletionTokenSpec, CompletionTokenStatus, PipelineStatus
from sluice.process.client import ProcessError, ProcessUnreachable

logger = logging.getLogger(__name__)

FALLBACK_CHECK_SECONDS = 5.0
"""How often an in-progress token is re-checked when no frontier change wakes it."""


async def _expire(
    deps: Deps, namespace: str, name: str, status: CompletionTokenStatus, ttl: int | None
) -> float | None:
    finished = status_rules.finished_at(status)
    if ttl is None or finished is None:
        return None
    left = ttl - status_rules.seconds_between(finished, deps.now())
    if left > 0:
        return left
    await deps.kube.delete(COMPLETION_TOKEN, namespace, name)
    return None


def _declared(deps: Deps, namespace: str, spec: CompletionTokenSpec) -> bool:
    """Whether a Connector resource declares this connector for this pipeline and table."""
    connector = deps.store.get("Connector", namespace, spec.connector)
    if connector is None:
        return False
    connector_spec = connector.get("spec") or {}
    return bool(
        (connector_spec.get("pipelineRef") or {}).get("name") == spec.pipeline_ref.name
        and naming.canonical_sql_name(str(connector_spec.get("table") or ""))
        == naming.canonical_sql_name(spec.table)
    )


async def reconcile_token(deps: Deps, namespace: str, name: str) -> float | None:
    """Converge one CompletionToken's status; returns when to look again."""
    body = deps.store.get("CompletionToken", namespace, name)
    if body is None:
        return None
    metadata = body["metadata"]
    previous = CompletionTokenStatus.model_validate(body.get("status") or {})
    try:
        spec = CompletionTokenSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        return None  # admission rejects these; nothing sensible to report
    if status_rules.is_finished(previous):
        return await _expire(deps, namespace, name, previous, spec.ttl_seconds_after_finished)
    endpoint = naming.endpoint_name(spec.table, spec.connector)
    pipeline_key = (namespace, spec.pipeline_ref.name)
    pipeline = deps.store.get("Pipeline", namespace, spec.pipeline_ref.name)
    pipeline_status = PipelineStatus.model_validate((pipeline or {}).get("status") or {})
    location = pipeline_status.endpoint
    interactive = location is not None and pipeline_status.deployment_status in (
        "Running",
        "Paused",
    )
    token, minted_at = previous.token, previous.minted_at
    connector_exists: bool | None = None
    complete = False
    declared = _declared(deps, namespace, spec)
    loaded = any(c.endpoint_name == endpoint for c in pipeline_status.connectors)
    end_of_input = any(
        c.endpoint_name == endpoint and c.end_of_input for c in pipeline_status.connectors
    )
    waiting_for_end_of_input = spec.wait_for_end_of_input and not end_of_input
    # Mint only on a pod that runs the current config, and, for a Connector resource, once
    # the pod has loaded it: a token from an older pod would belong to another incarnation.
    settled = conditions.is_true(pipeline_status.conditions, conditions.READY)
    if (
        token is None
        and interactive
        and location is not None
        and settled
        and (loaded or not declared)
        and not waiting_for_end_of_input
    ):
        try:
            token = await deps.process.completion_token(location, endpoint)
            minted_at = deps.now()
        except ProcessError as error:
            if error.status == 404 and not declared:
                connector_exists = False
            else:
                logger.info("%s/%s: minting failed: %s", namespace, name, error)
        except (ProcessUnreachable, KeyError) as error:
            logger.info("%s/%s: minting failed: %s", namespace, name, error)
        if token is not None:
            # Persist the token before anything else: it is minted exactly once.
            minted = previous.model_copy(
                update={"token": token, "minted_at": minted_at, "endpoint_name": endpoint}
            )
            await write_status(deps, body, minted)
            body = deps.store.get("CompletionToken", namespace, name) or body
    if token is not None and interactive and location is not None:
        complete = await is_token_complete(deps, pipeline_key, location, token)
    snap = status_rules.TokenSnapshot(
        generation=int(metadata.get("generation") or 1),
        pipeline_exists=pipeline is not None,
        endpoint_name=endpoint,
        connector_exists=connector_exists,
        token=token,
        minted_at=minted_at,
        current_incarnation=pipeline_status.incarnation,
        complete=complete,
        timeout_seconds=spec.timeout_seconds,
        created_at=metadata.get("creationTimestamp"),
        waiting_for_end_of_input=token is None and waiting_for_end_of_input,
    )
    new = status_rules.compute_token_status(snap, previous, deps.now())
    await write_status(deps, body, new)
    if status_rules.is_finished(new):
        if new.status == "complete":
            await post_event(deps, body, "TokenCompleted", f"token of {endpoint} completed")
        else:
            failed = next((c for c in new.conditions if c.type == status_rules.FAILED), None)
            await post_event(
                deps,
                body,
                failed.reason if failed else "Failed",
                failed.message if failed else "",
                warning=True,
            )
        return await _expire(deps, namespace, name, new, spec.ttl_seconds_after_finished)
    if spec.timeout_seconds is not None and minted_at is not None:
        left = spec.timeout_seconds - status_rules.seconds_between(minted_at, deps.now())
        return max(0.05, min(FALLBACK_CHECK_SECONDS, left))
    return FALLBACK_CHECK_SECONDS
