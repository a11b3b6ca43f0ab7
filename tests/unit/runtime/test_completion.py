"""The completion tracker: token status and frontier agree, including races with steps."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sluice.core.tokens import CompletionToken
from sluice.runtime.completion import (
    CompletionTracker,
    TokenForUnknownEndpoint,
    TokenFromOtherIncarnation,
    frontier_says_complete,
)

INCARNATION = "0196b120-6203-7b90-b6bd-16890df15e28"


def _token(endpoint: int, records: int) -> CompletionToken:
    return CompletionToken(INCARNATION, endpoint, records)


def test_token_for_queued_records_has_no_step_until_consumed() -> None:
    tracker = CompletionTracker(INCARNATION)
    tracker.add_endpoint(0, "t.c")
    assert tracker.status(_token(0, 3)).body() == {"status": "inprogress", "step": None}
    step = tracker.start_step({0: 3})
    assert tracker.status(_token(0, 3)).body() == {"status": "inprogress", "step": step}
    tracker.complete_through(step)
    assert tracker.status(_token(0, 3)).body() == {"status": "complete", "step": step}


def test_token_minted_while_a_step_runs_waits_for_that_step() -> None:
    tracker = CompletionTracker(INCARNATION)
    tracker.add_endpoint(0, "t.c")
    first = tracker.start_step({0: 2})
    tracker.complete_through(first)
    running = tracker.start_step({0: 5})
    # Minted now: the 7 received records are all inside the running step.
    token = _token(0, 7)
    assert tracker.status(token).body() == {"status": "inprogress", "step": running}
    assert not frontier_says_complete(tracker.frontier(), token)
    tracker.complete_through(running)
    assert tracker.status(token).status == "complete"
    assert frontier_says_complete(tracker.frontier(), token)


def test_outputs_lagging_keep_tokens_in_progress() -> None:
    tracker = CompletionTracker(INCARNATION)
    tracker.add_endpoint(0, "t.c")
    one = tracker.start_step({0: 1})
    two = tracker.start_step({0: 1})
    assert tracker.complete_through(one)
    assert tracker.status(_token(0, 1)).status == "complete"
    assert tracker.status(_token(0, 2)).body() == {"status": "inprogress", "step": two}
    assert not tracker.complete_through(one)


def test_zero_record_token_is_complete_at_once() -> None:
    tracker = CompletionTracker(INCARNATION)
    tracker.add_endpoint(0, "t.c")
    assert tracker.status(_token(0, 0)).status == "complete"


def test_other_incarnation_and_unknown_endpoint() -> None:
    tracker = CompletionTracker(INCARNATION)
    tracker.add_endpoint(0, "t.c")
    with pytest.raises(TokenFromOtherIncarnation):
        tracker.status(CompletionToken("other", 0, 0))
    with pytest.raises(TokenForUnknownEndpoint):
        tracker.status(_token(1, 0))
    tracker.remove_endpoint(0)
    with pytest.raises(TokenForUnknownEndpoint):
        tracker.status(_token(0, 0))


def test_frontier_lists_endpoints_as_soon_as_they_exist() -> None:
    tracker = CompletionTracker(INCARNATION)
    tracker.add_endpoint(3, "t.api-ingress-1")
    assert tracker.frontier() == {
        "incarnation": INCARNATION,
        "total_completed_steps": 0,
        "endpoints": {"3": {"name": "t.api-ingress-1", "completed_records": 0}},
    }


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("step"), st.integers(0, 3), st.integers(0, 3)),
            st.tuples(st.just("complete"), st.integers(0, 5), st.just(0)),
        ),
        max_size=30,
    ),
    st.integers(0, 40),
    st.integers(0, 1),
)
def test_status_and_frontier_always_agree(
    actions: list[tuple[str, int, int]], records: int, endpoint: int
) -> None:
    tracker = CompletionTracker(INCARNATION)
    tracker.add_endpoint(0, "a.x")
    tracker.add_endpoint(1, "b.y")
    for action, first, second in actions:
        if action == "step":
            tracker.start_step({0: first, 1: second})
        else:
            tracker.complete_through(tracker.completed_steps + first)
        token = _token(endpoint, records)
        status = tracker.status(token)
        assert (status.status == "complete") == frontier_says_complete(tracker.frontier(), token)
        if status.status == "complete":
            assert status.step is not None
            assert status.step <= tracker.completed_steps
        elif status.step is not None:
            assert tracker.completed_steps < status.step <= tracker.initiated_steps
