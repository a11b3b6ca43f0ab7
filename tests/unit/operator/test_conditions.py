"""Conditions: sanitised reasons, truncated messages, quiet transition times."""

from __future__ import annotations

import re

import pytest

from sluice.core import conditions
from sluice.core.conditions import Want
from sluice.models.resources import Condition

REASON = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Running", "Running"),
        ("crash loop back-off", "CrashLoopBackOff"),
        ("sql.error/parse", "SqlErrorParse"),
        ("404 not found", "Reason404NotFound"),
        ("", "Reason"),
        ("ends,with:", "EndsWith"),
    ],
)
def test_sanitize_reason(raw: str, expected: str) -> None:
    assert conditions.sanitize_reason(raw) == expected
    assert REASON.match(conditions.sanitize_reason(raw))


def test_truncate_message() -> None:
    assert conditions.truncate_message("  short ") == "short"
    long = conditions.truncate_message("x" * 5000)
    assert len(long) == conditions.MAX_MESSAGE_CHARS
    assert long.endswith("...")


def test_transition_time_kept_unless_status_flips() -> None:
    first = conditions.merge_conditions(
        [], [Want("Ready", "Unknown", "Provisioning")], generation=1, now="T1"
    )
    same = conditions.merge_conditions(
        first, [Want("Ready", "Unknown", "Bootstrapping", "other reason")], generation=2, now="T2"
    )
    assert same[0].last_transition_time == "T1"
    assert same[0].reason == "Bootstrapping"
    assert same[0].observed_generation == 2
    flipped = conditions.merge_conditions(
        same, [Want("Ready", "True", "Running")], generation=2, now="T3"
    )
    assert flipped[0].last_transition_time == "T3"


def test_kstatus_triplet_never_reconciling_and_stalled() -> None:
    wants = conditions.kstatus_triplet(
        ready=("False", "X", ""), reconciling=("Progressing", ""), stalled=("Broken", "")
    )
    by_type = {want.type: want.status for want in wants}
    assert by_type == {"Ready": "False", "Reconciling": "False", "Stalled": "True"}
    assert [want.type for want in wants] == ["Ready", "Reconciling", "Stalled"]


def test_status_differs_ignores_timestamps_only() -> None:
    old = {
        "observedGeneration": 1,
        "conditions": [
            Condition(
                type="Ready", status="True", reason="Running", last_transition_time="T1"
            ).model_dump(by_alias=True)
        ],
    }
    same_but_later = {
        "observedGeneration": 1,
        "conditions": [{**old["conditions"][0], "lastTransitionTime": "T9"}],  # type: ignore[index]
    }
    assert not conditions.status_differs(old, same_but_later)
    changed = {**old, "observedGeneration": 2}
    assert conditions.status_differs(old, changed)
    assert conditions.status_differs(None, old)
