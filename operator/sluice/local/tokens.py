"""Layer 4 (local): follow CompletionToken documents as the operator would, on this machine.

Once the pipeline's process runs, the token is minted once (through the same client the
operator uses), then followed until it completes, or fails: unknown connector, pipeline
restarted (the token can never complete), or the document's timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from sluice.core.directory import PipelineDirectory
from sluice.core.naming import endpoint_name
from sluice.local.manifests import LOCAL_NAMESPACE, LocalToken
from sluice.process.client import ProcessClient, ProcessError, ProcessUnreachable

POLL_SECONDS = 0.1


@dataclass
class TokenOutcome:
    """How a followed token ended."""

    name: str
    status: str
    """complete, or failed."""
    reason: str
    token: str | None = None
    seconds: float = 0.0


async def follow_token(
    spec: LocalToken,
    directory: PipelineDirectory,
    client: ProcessClient,
    report: Callable[[str], None],
) -> TokenOutcome:
    """Mint the token when the pipeline runs, then wait until it completes or fails."""
    endpoint = endpoint_name(spec.table, spec.connector)
    started = time.monotonic()
    minted: str | None = None
    minted_at = 0.0
    incarnation: str | None = None
    while True:
        waited = time.monotonic() - started
        if spec.timeout_seconds is not None and waited > spec.timeout_seconds:
            report(f"completion token {spec.name}: failed (Timeout after {spec.timeout_seconds} s)")
            return TokenOutcome(spec.name, "failed", "Timeout", minted, waited)
        entry = directory.get(LOCAL_NAMESPACE, spec.pipeline)
        ready = entry is not None and entry.location is not None
        if ready and entry is not None and entry.deployment_status in ("Running", "Paused"):
            assert entry.location is not None
            try:
                if minted is None and spec.wait_for_end_of_input:
                    stats = await client.input_endpoint_stats(entry.location, endpoint)
                    if not stats.get("metrics", {}).get("end_of_input"):
                        await asyncio.sleep(POLL_SECONDS)
                        continue
                if minted is None:
                    minted = await client.completion_token(entry.location, endpoint)
                    minted_at = time.monotonic()
                    incarnation = entry.incarnation
                    report(f"completion token {spec.name}: minted for {spec.pipeline}/{endpoint}")
                else:
                    answer = await client.completion_status(entry.location, minted)
                    if answer.get("status") == "complete":
                        seconds = time.monotonic() - minted_at
                        report(
                            f"completion token {spec.name}: complete "
                            f"({seconds:.2f} s after minting; step {answer.get('step')})"
                        )
                        return TokenOutcome(spec.name, "complete", "Complete", minted, seconds)
            except ProcessError as error:
                failure = error.api_error()
                if failure.error_code in (
                    "UnknownInputEndpoint",
                    "PipelineRestarted",
                    "UnknownEndpointInCompletionToken",
                ):
                    report(
                        f"completion token {spec.name}: failed ({failure.error_code}: "
                        f"{failure.message})"
                    )
                    return TokenOutcome(spec.name, "failed", failure.error_code, minted, waited)
            except ProcessUnreachable:
                pass
        elif (
            minted is not None
            and entry is not None
            and entry.incarnation
            not in (
                None,
                incarnation,
            )
        ):
            report(f"completion token {spec.name}: failed (PipelineRestarted)")
            return TokenOutcome(spec.name, "failed", "PipelineRestarted", minted, waited)
        await asyncio.sleep(POLL_SECONDS)
