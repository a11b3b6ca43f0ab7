"""Layer 1 (core, pure): kstatus conditions that the API server accepts and that stay quiet.

One place builds every condition: reasons are sanitised to the metav1.Condition pattern,
messages truncated, `lastTransitionTime` kept unless the status flips, and
`status_differs` tells whether a recomputed status is worth a write (timestamps ignored).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sluice.models.resources import Condition

ConditionStatus = Literal["True", "False", "Unknown"]

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
KSTATUS_TYPES = (READY, RECONCILING, STALLED)

MAX_MESSAGE_CHARS = 1024
"""Far below the API's 32768: status stays small and readable in `kubectl describe`."""

_REASON_CHARS = re.compile(r"[^A-Za-z0-9_,:]")
_TIMESTAMP_KEYS = frozenset({"lastTransitionTime", "mintedAt", "completedAt", "time", "lagSeconds"})


@dataclass(frozen=True)
class Want:
    """A condition as computed, before timestamps are attached."""

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""


def sanitize_reason(reason: str) -> str:
    """A CamelCase reason matching `^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`."""
    words = re.split(r"[^A-Za-z0-9_]+", reason.strip())
    camel = "".join(word[:1].upper() + word[1:] for word in words if word)
    cleaned = _REASON_CHARS.sub("", camel).rstrip(",:")
    if not cleaned or not cleaned[0].isalpha():
        cleaned = "Reason" + cleaned
    return cleaned[:1024]


def truncate_message(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """The message, cut to `limit` characters with an ellipsis when longer."""
    message = message.strip()
    if len(message) <= limit:
        return message
    return message[: limit - 3] + "..."


def merge_conditions(
    previous: Sequence[Condition], wanted: Iterable[Want], *, generation: int, now: str
) -> list[Condition]:
    """The new condition list: `wanted` in order, transition times kept where status held."""
    by_type = {condition.type: condition for condition in previous}
    merged = []
    for want in wanted:
        old = by_type.get(want.type)
        keep_time = old is not None and old.status == want.status
        merged.append(
            Condition(
                type=want.type,
                status=want.status,
                reason=sanitize_reason(want.reason),
                message=truncate_message(want.message),
                last_transition_time=old.last_transition_time if keep_time and old else now,
                observed_generation=max(generation, 0),
            )
        )
    return merged


def kstatus_triplet(
    *,
    ready: tuple[ConditionStatus, str, str],
    reconciling: tuple[str, str] | None = None,
    stalled: tuple[str, str] | None = None,
) -> list[Want]:
    """Ready, Reconciling and Stalled, the latter two False unless a (reason, message) is given.

    Never both Reconciling and Stalled: a stalled object is not progressing.
    """
    if stalled is not None:
        reconciling = None
    wants = [Want(READY, *ready)]
    if reconciling is not None:
        wants.append(Want(RECONCILING, "True", *reconciling))
    else:
        wants.append(Want(RECONCILING, "False", "Reconciled"))
    if stalled is not None:
        wants.append(Want(STALLED, "True", *stalled))
    else:
        wants.append(Want(STALLED, "False", "NotStalled"))
    return wants


def find(conditions: Sequence[Condition] | None, type_: str) -> Condition | None:
    """The condition of this type, if present."""
    for condition in conditions or ():
        if condition.type == type_:
            return condition
    return None


def is_true(conditions: Sequence[Condition] | None, type_: str) -> bool:
    """Whether the condition of this type is present with status True."""
    condition = find(conditions, type_)
    return condition is not None and condition.status == "True"


def without_timestamps(document: Any) -> Any:
    """The document with every timestamp-like field removed, for change detection."""
    if isinstance(document, Mapping):
        return {
            key: without_timestamps(value)
            for key, value in document.items()
            if key not in _TIMESTAMP_KEYS
        }
    if isinstance(document, list):
        return [without_timestamps(item) for item in document]
    return document


def status_differs(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether writing `new` over `old` changes anything but timestamps."""
    if old is None:
        return True
    return bool(without_timestamps(dict(old)) != without_timestamps(dict(new)))
