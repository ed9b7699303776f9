"""``due(after_seq=...)`` on both outboxes, the row decoder, and the seq runs of the marks."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from edge_agent.outbox import (
    EventState,
    InvalidArgument,
    MemoryOutbox,
    Outbox,
    OutboxStorageError,
    SqliteOutbox,
)
from edge_agent.outbox.contract import MAX_SEQ, check_cursor
from edge_agent.outbox.sqlite_jobs import COLUMNS, decode, seq_runs

PAYLOAD = json.dumps({"type": "checkin", "item_id": "I1"})


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 5_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Outbox, Clock]]:
    clock = Clock()
    outbox: Outbox
    if request.param == "memory":
        outbox = MemoryOutbox(clock=clock)
    else:
        outbox = SqliteOutbox(tmp_path / "outbox.sqlite", clock=clock)
    try:
        yield outbox, clock
    finally:
        outbox.close()


def test_after_seq_returns_only_later_events_of_that_device_in_order(
    store: tuple[Outbox, Clock],
) -> None:
    """A cursor skips the device's events up to it, and never returns another device's."""
    outbox, _ = store
    for _ in range(6):
        outbox.append("a", "checkin", PAYLOAD)
        outbox.append("b", "checkin", PAYLOAD)
    got = outbox.due("a", 100, resend_after=10, after_seq=3)
    assert [(e.device_id, e.seq) for e in got] == [("a", 4), ("a", 5), ("a", 6)]
    assert [e.seq for e in outbox.due("a", 2, resend_after=10, after_seq=1)] == [2, 3]
    assert outbox.due("a", 100, resend_after=10, after_seq=6) == []
    assert len(outbox.due("a", 100, resend_after=10)) == 6  # the default reads from the start


def test_after_seq_applies_to_resendable_events_too(store: tuple[Outbox, Clock]) -> None:
    """A SENT event due again is returned only above the cursor; a full read finds it."""
    outbox, clock = store
    for _ in range(4):
        outbox.append("a", "checkin", PAYLOAD)
    outbox.mark_sent("a", [1, 3])
    clock.now += 60
    assert [e.seq for e in outbox.due("a", 10, resend_after=30, after_seq=2)] == [3, 4]
    assert [e.seq for e in outbox.due("a", 10, resend_after=30)] == [1, 2, 3, 4]
    assert [e.state for e in outbox.due("a", 1, resend_after=30, after_seq=2)] == [EventState.SENT]


def test_after_seq_without_a_device_is_refused(store: tuple[Outbox, Clock]) -> None:
    """Seqs are per device, so a cursor over every device is an error that says so."""
    outbox, _ = store
    with pytest.raises(InvalidArgument, match="after_seq needs a device_id"):
        outbox.due(None, 10, resend_after=1, after_seq=5)
    assert outbox.due(None, 10, resend_after=1, after_seq=0) == []


@given(
    st.one_of(
        st.integers(max_value=-1),
        st.integers(min_value=MAX_SEQ + 1),
        st.booleans().filter(bool),
        st.floats(),
        st.text(max_size=5),
        st.none(),
        st.binary(max_size=5),
    )
)
def test_a_garbage_cursor_is_refused_by_name(value: object) -> None:
    """Anything but 0 or a seq as the cursor raises InvalidArgument naming seq."""
    with pytest.raises(InvalidArgument, match="seq"):
        check_cursor("a", value)


@given(st.integers(min_value=1, max_value=MAX_SEQ))
def test_any_seq_is_a_valid_cursor(value: int) -> None:
    """Every valid seq is accepted as a cursor for a device, and returned unchanged."""
    assert check_cursor("a", value) == value


ROW = ("a", 7, "id-7", "checkin", PAYLOAD, 1.5, 1, "sent", 2, 1.0, 2.0, None, None, None)


def test_decode_turns_tuples_and_mappings_into_the_same_event() -> None:
    """A tuple row and a mapping row with the same values decode to equal events."""
    from_tuple = decode(ROW)
    from_mapping = decode(dict(zip(COLUMNS, ROW, strict=True)))
    assert from_tuple == from_mapping
    assert (from_tuple.seq, from_tuple.state, from_tuple.clock_trusted) == (
        7,
        EventState.SENT,
        True,
    )
    assert (from_tuple.attempts, from_tuple.sent_at, from_tuple.discarded_at) == (2, 2.0, None)


@given(st.lists(st.one_of(st.none(), st.integers(), st.text(max_size=8)), max_size=20))
def test_decode_rejects_garbage_rows_by_name(values: list[object]) -> None:
    """A row of the wrong length or with an unknown state is an OutboxStorageError."""
    row = tuple(values)
    assume(not (len(row) == len(COLUMNS) and row[7] in {s.value for s in EventState}))
    with pytest.raises(OutboxStorageError, match=r"columns|unknown state"):
        decode(row)


@given(st.lists(st.integers(min_value=1, max_value=60), max_size=40))
def test_seq_runs_cover_exactly_the_seqs_in_disjoint_ascending_runs(seqs: list[int]) -> None:
    """The runs hold every seq once and nothing else, ascending, never touching."""
    runs = seq_runs(tuple(seqs))
    covered = [seq for lo, hi in runs for seq in range(lo, hi + 1)]
    assert covered == sorted(set(seqs))
    assert all(lo <= hi for lo, hi in runs)
    assert all(a[1] + 1 < b[0] for a, b in itertools.pairwise(runs))


def test_marks_over_runs_count_each_changed_event_once(tmp_path: Path) -> None:
    """Marking scattered and repeated seqs changes exactly those events, counted once."""
    with SqliteOutbox(tmp_path / "o.sqlite") as outbox:
        for _ in range(10):
            outbox.append("a", "checkin", PAYLOAD)
        outbox.mark_sent("a", [2, 3, 4, 7, 9, 3])
        assert outbox.mark_confirmed("a", [9, 1, 2, 3, 12]) == 4
        states = {e.seq: e.state for e in outbox.due("a", 100, resend_after=0)}
        assert states == {
            4: EventState.SENT,
            5: EventState.PENDING,
            6: EventState.PENDING,
            7: EventState.SENT,
            8: EventState.PENDING,
            10: EventState.PENDING,
        }
        assert outbox.stats().counts[EventState.CONFIRMED] == 4
