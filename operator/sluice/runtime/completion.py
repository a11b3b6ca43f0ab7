"""Layer 3 (runtime), pure: which input records are complete, per endpoint and step.

Feldera's rule: a token `(u, e, c)` completes once the step that consumed the c-th record of
endpoint e has finished and every output connector has delivered that step (and all earlier
ones). Here that is kept as a *frontier*: for each endpoint, how many of its records were
consumed by steps `<= total_completed_steps`. A token is complete iff its incarnation is ours
and the endpoint's completed records reach `c`; `/completion_status` and the frontier stream
read the same numbers, so they always agree.

Each step that consumes records from an endpoint leaves a pending `(step, cumulative
consumed)` mark; marks are retired when the step completes. A token whose records are still
queued has no step yet (`null`); one whose records are in a running step carries that step.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from sluice.core.tokens import CompletionToken


class TokenFromOtherIncarnation(LookupError):
    """The token was minted by an earlier process."""


class TokenForUnknownEndpoint(LookupError):
    """The token's endpoint does not exist (any more)."""


@dataclass(frozen=True)
class TokenStatus:
    """Answer of `/completion_status`."""

    status: Literal["complete", "inprogress"]
    step: int | None

    def body(self) -> dict[str, Any]:
        return {"status": self.status, "step": self.step}


@dataclass
class _EndpointProgress:
    name: str
    consumed: int = 0
    completed_records: int = 0
    last_completed_step: int = 0
    pending_steps: deque[int] = field(default_factory=deque)
    pending_counts: deque[int] = field(default_factory=deque)


class CompletionTracker:
    """Steps initiated and completed, and each input endpoint's completion frontier."""

    def __init__(self, incarnation: str) -> None:
        self.incarnation = incarnation
        self.initiated_steps = 0
        self.completed_steps = 0
        self._endpoints: dict[int, _EndpointProgress] = {}

    def add_endpoint(self, endpoint_id: int, name: str) -> None:
        self._endpoints[endpoint_id] = _EndpointProgress(name)

    def remove_endpoint(self, endpoint_id: int) -> None:
        self._endpoints.pop(endpoint_id, None)

    def consumed(self, endpoint_id: int) -> int:
        """Records of the endpoint pushed into a step so far (running steps included)."""
        return self._endpoints[endpoint_id].consumed

    def start_step(self, consumed: dict[int, int]) -> int:
        """Open the next step, which consumes `consumed[endpoint id]` records; its number."""
        self.initiated_steps += 1
        for endpoint_id, count in consumed.items():
            progress = self._endpoints.get(endpoint_id)
            if progress is None or count <= 0:
                continue
            progress.consumed += count
            progress.pending_steps.append(self.initiated_steps)
            progress.pending_counts.append(progress.consumed)
        return self.initiated_steps

    def complete_through(self, step: int) -> bool:
        """Every output delivered steps `<= step`; True when the frontier moved."""
        step = min(step, self.initiated_steps)
        if step <= self.completed_steps:
            return False
        self.completed_steps = step
        for progress in self._endpoints.values():
            while progress.pending_steps and progress.pending_steps[0] <= step:
                progress.last_completed_step = progress.pending_steps.popleft()
                progress.completed_records = progress.pending_counts.popleft()
        return True

    def status(self, token: CompletionToken) -> TokenStatus:
        """Feldera's answer for a token; raises for another incarnation or endpoint."""
        if token.incarnation != self.incarnation:
            raise TokenFromOtherIncarnation(token.incarnation)
        progress = self._endpoints.get(token.endpoint_id)
        if progress is None:
            raise TokenForUnknownEndpoint(token.endpoint_id)
        if token.records <= progress.completed_records:
            return TokenStatus("complete", progress.last_completed_step)
        index = bisect.bisect_left(progress.pending_counts, token.records)
        if index < len(progress.pending_steps):
            return TokenStatus("inprogress", progress.pending_steps[index])
        return TokenStatus("inprogress", None)

    def frontier(self) -> dict[str, Any]:
        """One line of the completion frontier stream."""
        return {
            "incarnation": self.incarnation,
            "total_completed_steps": self.completed_steps,
            "endpoints": {
                str(endpoint_id): {
                    "name": progress.name,
                    "completed_records": progress.completed_records,
                }
                for endpoint_id, progress in self._endpoints.items()
            },
        }


def frontier_says_complete(frontier: dict[str, Any], token: CompletionToken) -> bool:
    """The contract consumers of the frontier stream apply to a token."""
    endpoint = frontier["endpoints"].get(str(token.endpoint_id))
    return (
        token.incarnation == frontier["incarnation"]
        and endpoint is not None
        and endpoint["completed_records"] >= token.records
    )
