"""The outbox contract, one scenario run against every back-end (SQLite file and memory).

Durability-specific behaviour (reopening, crashes, disk full, migrations) is in
test_outbox_sqlite.py and test_outbox_crash.py.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.outbox import (
    EventIdConflict,
    EventNotFound,
    EventState,
    InvalidArgument,
    MemoryOutbox,
    Outbox,
    OutboxClosed,
    OutboxEvent,
    OutboxFull,
    OutboxLimits,
    SqliteOutbox,
)

BACKENDS = ("sqlite", "memory")


class Clock:
    """A settable clock, so that every timestamp a test expects is exact."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


MakeOutbox = Callable[..., Outbox]


@pytest.fixture(params=BACKENDS)
def make_outbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeOutbox]:
    """A factory for outboxes of one back-end; every outbox it made is closed afterwards."""
    made: list[Outbox] = []

    def make(**kwargs: object) -> Outbox:
        outbox: Outbox
        if request.param == "sqlite":
            outbox = SqliteOutbox(tmp_path / f"outbox-{len(made)}.sqlite", **kwargs)  # type: ignore[arg-type]
        else:
            outbox = MemoryOutbox(**kwargs)  # type: ignore[arg-type]
        made.append(outbox)
        return outbox

    yield make
    for outbox in made:
        outbox.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outbox(make_outbox: MakeOutbox, clock: Clock) -> Outbox:
    return make_outbox(clock=clock)


def seqs(events: list[OutboxEvent]) -> list[tuple[str, int]]:
    return [(e.device_id, e.seq) for e in events]


# ----------------------------------------------------------------------------- append


def test_backend_satisfies_the_protocol(outbox: Outbox) -> None:
    """Each back-end is an Outbox as far as a runtime protocol check can tell."""
    assert isinstance(outbox, Outbox)


def test_append_numbers_each_device_from_one(outbox: Outbox) -> None:
    """Seqs start at 1 and count up per device, independently of other devices."""
    got = [outbox.append(d, "loan", "{}").seq for d in ("kiosk-1", "kiosk-1", "gate-1", "kiosk-1")]
    assert got == [1, 2, 1, 3]


def test_append_returns_the_committed_event(outbox: Outbox, clock: Clock) -> None:
    """The returned event carries the arguments, a fresh UUID and the commit's clock time."""
    event = outbox.append(
        "kiosk-1", "loan", '{"item": "3900"}', event_time=123.5, clock_trusted=False
    )
    assert (event.device_id, event.seq, event.kind, event.payload) == (
        "kiosk-1",
        1,
        "loan",
        '{"item": "3900"}',
    )
    assert (event.event_time, event.clock_trusted) == (123.5, False)
    assert uuid.UUID(event.event_id).version == 4
    assert str(uuid.UUID(event.event_id)) == event.event_id
    assert (event.state, event.attempts, event.created_at) == (EventState.PENDING, 0, clock.now)
    assert (event.sent_at, event.confirmed_at, event.dead_reason, event.discarded_at) == (
        None,
        None,
        None,
        None,
    )
    assert outbox.get("kiosk-1", 1) == event


def test_event_time_defaults_to_the_clock(outbox: Outbox, clock: Clock) -> None:
    """Without an event_time, the event happened now by the outbox's clock."""
    clock.now = 42.0
    assert outbox.append("kiosk-1", "loan", "{}").event_time == 42.0


def test_payload_is_stored_exactly_as_given(outbox: Outbox) -> None:
    """The JSON text comes back byte for byte: spacing, key order and non-ASCII kept."""
    text = '{ "z" : 1,\n "a":["é", "日本", "\\u00e9"] }'
    outbox.append("kiosk-1", "loan", text)
    stored = outbox.get("kiosk-1", 1)
    assert stored is not None
    assert stored.payload == text


def test_event_ids_are_unique(outbox: Outbox) -> None:
    """Every append without an event_id gets an id no other event has."""
    ids = {outbox.append("kiosk-1", "loan", "{}").event_id for _ in range(200)}
    assert len(ids) == 200


BAD_APPENDS = [
    pytest.param({"device_id": ""}, "device_id", id="empty-device"),
    pytest.param({"device_id": "   "}, "device_id", id="blank-device"),
    pytest.param({"device_id": 7}, "device_id", id="device-not-str"),
    pytest.param({"device_id": "k\n1"}, "device_id", id="device-control-char"),
    pytest.param({"device_id": "k" * 129}, "device_id", id="device-too-long"),
    pytest.param({"kind": ""}, "kind", id="empty-kind"),
    pytest.param({"payload": "{not json"}, "payload", id="payload-not-json"),
    pytest.param({"payload": b"{}"}, "payload", id="payload-bytes"),
    pytest.param({"payload": '"\ud800"'}, "payload", id="payload-lone-surrogate"),
    pytest.param({"payload": '{"patron": "1", "PIN": "1234"}'}, "PIN", id="payload-with-pin"),
    pytest.param(
        {"payload": '{"a": [{"staff_pin": "9"}]}'}, "staff_pin", id="payload-nested-staff-pin"
    ),
    pytest.param({"event_time": float("nan")}, "event_time", id="time-nan"),
    pytest.param({"event_time": "now"}, "event_time", id="time-str"),
    pytest.param({"clock_trusted": 1}, "clock_trusted", id="trusted-not-bool"),
    pytest.param({"event_id": "not-a-uuid"}, "event_id", id="id-not-uuid"),
    pytest.param(
        {"event_id": "7D444840-9DC0-11D1-B245-5FFDCE74FAD2"}, "event_id", id="id-not-canonical"
    ),
]


@pytest.mark.parametrize(("change", "named"), BAD_APPENDS)
def test_bad_append_is_refused_by_name(
    outbox: Outbox, change: dict[str, object], named: str
) -> None:
    """A malformed argument raises InvalidArgument naming it, and nothing is stored."""
    args: dict[str, object] = {"device_id": "kiosk-1", "kind": "loan", "payload": "{}"}
    args.update(change)
    with pytest.raises(InvalidArgument, match=named):
        outbox.append(**args)  # type: ignore[arg-type]
    assert outbox.stats().held_rows == 0
    assert outbox.append("kiosk-1", "loan", "{}").seq == 1


def test_oversized_payload_is_refused(make_outbox: MakeOutbox) -> None:
    """A payload above max_payload_bytes is an InvalidArgument saying the size."""
    outbox = make_outbox(limits=OutboxLimits(max_payload_bytes=16))
    with pytest.raises(InvalidArgument, match="20 bytes"):
        outbox.append("kiosk-1", "loan", '"' + "x" * 18 + '"')


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=60))
def test_any_text_is_stored_exactly_or_refused(outbox: Outbox, text: str) -> None:
    """Garbage payloads either raise InvalidArgument or round-trip exactly as JSON text."""
    try:
        text.encode("utf-8")
        json.loads(text)
    except ValueError:  # not JSON, or a lone surrogate that UTF-8 cannot store
        with pytest.raises(InvalidArgument, match="payload"):
            outbox.append("fuzz", "x", text)
        return
    try:
        event = outbox.append("fuzz", "x", text)
    except InvalidArgument as exc:
        refusal = str(exc)
        assert "never stored" in refusal, refusal  # valid JSON is refused only for secrets
        return
    stored = outbox.get("fuzz", event.seq)
    assert stored is not None
    assert stored.payload == text
    json.loads(text)


def test_same_event_id_and_content_is_a_safe_retry(outbox: Outbox) -> None:
    """Appending again with the same event_id and content returns the stored event."""
    event_id = str(uuid.uuid4())
    first = outbox.append("kiosk-1", "loan", '{"a":1}', event_id=event_id)
    again = outbox.append("kiosk-1", "loan", '{"a":1}', event_id=event_id)
    assert again == first
    assert outbox.stats().counts[EventState.PENDING] == 1
    assert outbox.append("kiosk-1", "loan", "{}").seq == 2


def test_same_event_id_for_other_content_conflicts(outbox: Outbox) -> None:
    """Reusing an event_id for a different event raises EventIdConflict and stores nothing."""
    event_id = str(uuid.uuid4())
    outbox.append("kiosk-1", "loan", '{"a":1}', event_id=event_id)
    with pytest.raises(EventIdConflict, match="seq 1"):
        outbox.append("kiosk-1", "loan", '{"a":2}', event_id=event_id)
    with pytest.raises(EventIdConflict):
        outbox.append("gate-1", "loan", '{"a":1}', event_id=event_id)
    assert outbox.stats().counts[EventState.PENDING] == 1


# ----------------------------------------------------------------------------- due


def test_due_is_oldest_first_in_append_order(outbox: Outbox) -> None:
    """due() lists pending events in the order they were appended, across devices."""
    for device in ("b", "a", "b", "a"):
        outbox.append(device, "loan", "{}")
    assert seqs(outbox.due(None, 10, resend_after=30)) == [("b", 1), ("a", 1), ("b", 2), ("a", 2)]
    assert seqs(outbox.due("a", 10, resend_after=30)) == [("a", 1), ("a", 2)]
    assert seqs(outbox.due(None, 2, resend_after=30)) == [("b", 1), ("a", 1)]
    assert outbox.due(None, 0, resend_after=30) == []


def test_sent_events_come_back_only_after_resend_after(outbox: Outbox, clock: Clock) -> None:
    """A SENT event is due again once its broker ack is resend_after seconds old."""
    outbox.append("k", "loan", "{}")
    outbox.append("k", "loan", "{}")
    outbox.mark_sent("k", [1])
    assert seqs(outbox.due(None, 10, resend_after=30)) == [("k", 2)]
    clock.advance(29.5)
    assert seqs(outbox.due(None, 10, resend_after=30)) == [("k", 2)]
    clock.advance(0.5)
    due = outbox.due(None, 10, resend_after=30)
    assert seqs(due) == [("k", 1), ("k", 2)]
    assert due[0].state is EventState.SENT
    assert seqs(outbox.due(None, 10, resend_after=30, now=clock.now - 1)) == [("k", 2)]


def test_due_never_lists_confirmed_dead_or_discarded(outbox: Outbox) -> None:
    """Only PENDING and re-sendable SENT events are due."""
    for _ in range(4):
        outbox.append("k", "loan", "{}")
    outbox.mark_confirmed("k", [1])
    outbox.dead_letter("k", 2, "refused by the central system")
    outbox.dead_letter("k", 3, "refused")
    assert outbox.discard_dead("k", 3)
    assert seqs(outbox.due(None, 10, resend_after=0)) == [("k", 4)]


def test_due_rejects_bad_arguments(outbox: Outbox) -> None:
    """A negative limit or a non-number resend_after raises InvalidArgument."""
    with pytest.raises(InvalidArgument, match="limit"):
        outbox.due(None, -1, resend_after=1)
    with pytest.raises(InvalidArgument, match="resend_after"):
        outbox.due(None, 1, resend_after="soon")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- marks


def test_mark_sent_counts_attempts_and_stamps_time(outbox: Outbox, clock: Clock) -> None:
    """Each broker ack makes the event SENT, adds an attempt and records when."""
    outbox.append("k", "loan", "{}")
    clock.now = 10.0
    outbox.mark_sent("k", [1])
    clock.now = 50.0
    outbox.mark_sent("k", [1, 1])  # a repeat within one call counts once
    event = outbox.get("k", 1)
    assert event is not None
    assert (event.state, event.attempts, event.sent_at) == (EventState.SENT, 2, 50.0)


def test_mark_sent_ignores_unknown_and_never_downgrades(outbox: Outbox) -> None:
    """A late broker ack leaves CONFIRMED and DEAD events as they are."""
    for _ in range(2):
        outbox.append("k", "loan", "{}")
    outbox.mark_confirmed("k", [1])
    outbox.dead_letter("k", 2, "refused")
    outbox.mark_sent("k", [1, 2, 99])
    outbox.mark_sent("nobody", [1])
    states = [outbox.get("k", s).state for s in (1, 2)]  # type: ignore[union-attr]
    assert states == [EventState.CONFIRMED, EventState.DEAD]


def test_mark_confirmed_counts_changes_and_is_idempotent(outbox: Outbox, clock: Clock) -> None:
    """The first receipt changes the events and says how many; a repeat changes none."""
    for _ in range(3):
        outbox.append("k", "loan", "{}")
    outbox.mark_sent("k", [1])
    clock.now = 77.0
    assert outbox.mark_confirmed("k", [1, 2, 2, 42]) == 2
    assert outbox.mark_confirmed("k", [1, 2]) == 0
    event = outbox.get("k", 1)
    assert event is not None
    assert (event.state, event.confirmed_at, event.sent_at) == (EventState.CONFIRMED, 77.0, 1e6)
    assert outbox.get("k", 3).state is EventState.PENDING  # type: ignore[union-attr]


def test_confirmation_wins_over_dead_letter(outbox: Outbox) -> None:
    """A receipt for a dead or discarded event confirms it: the centre has it."""
    for _ in range(2):
        outbox.append("k", "loan", "{}")
    outbox.dead_letter("k", 1, "timed out")
    outbox.dead_letter("k", 2, "timed out")
    outbox.discard_dead("k", 2)
    assert outbox.mark_confirmed("k", [1, 2]) == 2
    assert outbox.dead_letters() == []
    event = outbox.get("k", 2)
    assert event is not None
    assert (event.state, event.dead_reason) == (EventState.CONFIRMED, "timed out")


@pytest.mark.parametrize("bad", [[0], [-3], ["1"], [True], "12", [2**63]])
def test_marks_reject_bad_seqs(outbox: Outbox, bad: object) -> None:
    """A seq that is not an int in range raises InvalidArgument; nothing changes."""
    outbox.append("k", "loan", "{}")
    with pytest.raises(InvalidArgument, match="seq"):
        outbox.mark_sent("k", bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="seq"):
        outbox.mark_confirmed("k", bad)  # type: ignore[arg-type]
    assert outbox.get("k", 1).state is EventState.PENDING  # type: ignore[union-attr]


# ----------------------------------------------------------------------------- dead letters


def test_dead_letter_keeps_the_reason_and_lists_oldest_first(outbox: Outbox) -> None:
    """Dead letters carry their reason and come back oldest first, limited."""
    for _ in range(3):
        outbox.append("k", "loan", "{}")
    outbox.mark_sent("k", [2])
    outbox.dead_letter("k", 2, "rejected: unknown item")
    outbox.dead_letter("k", 1, "rejected: bad patron")
    dead = outbox.dead_letters()
    assert seqs(dead) == [("k", 1), ("k", 2)]
    assert [e.dead_reason for e in dead] == ["rejected: bad patron", "rejected: unknown item"]
    assert seqs(outbox.dead_letters(limit=1)) == [("k", 1)]


def test_dead_letter_of_unknown_event_raises(outbox: Outbox) -> None:
    """Dead-lettering an event the outbox does not hold raises EventNotFound naming it."""
    with pytest.raises(EventNotFound, match="'k' seq 5"):
        outbox.dead_letter("k", 5, "why")


def test_dead_letter_leaves_confirmed_events_alone(outbox: Outbox) -> None:
    """A confirmed event stays confirmed when a dead-letter order arrives late."""
    outbox.append("k", "loan", "{}")
    outbox.mark_confirmed("k", [1])
    outbox.dead_letter("k", 1, "too late")
    event = outbox.get("k", 1)
    assert event is not None
    assert (event.state, event.dead_reason) == (EventState.CONFIRMED, None)


def test_dead_letter_needs_a_reason(outbox: Outbox) -> None:
    """An empty reason raises InvalidArgument."""
    outbox.append("k", "loan", "{}")
    with pytest.raises(InvalidArgument, match="reason"):
        outbox.dead_letter("k", 1, " ")


def test_retry_dead_puts_it_back_in_the_queue(outbox: Outbox) -> None:
    """A retried dead letter is PENDING again, due in its original place, reason kept."""
    for _ in range(2):
        outbox.append("k", "loan", "{}")
    outbox.mark_sent("k", [1])
    outbox.dead_letter("k", 1, "broker refused")
    assert outbox.retry_dead("k", 1) is True
    assert outbox.retry_dead("k", 1) is False
    assert outbox.retry_dead("k", 2) is False
    assert outbox.retry_dead("k", 99) is False
    event = outbox.get("k", 1)
    assert event is not None
    assert (event.state, event.sent_at, event.attempts, event.dead_reason) == (
        EventState.PENDING,
        None,
        1,
        "broker refused",
    )
    assert seqs(outbox.due(None, 10, resend_after=30)) == [("k", 1), ("k", 2)]


def test_discard_dead_keeps_an_audit_trail(outbox: Outbox, clock: Clock) -> None:
    """A discarded event stays readable with its reason and time, and is never pruned."""
    outbox.append("k", "loan", '{"item": "1"}')
    outbox.dead_letter("k", 1, "item withdrawn")
    clock.now = 5000.0
    assert outbox.discard_dead("k", 1) is True
    assert outbox.discard_dead("k", 1) is False
    assert outbox.dead_letters() == []
    [kept] = outbox.discarded()
    assert (kept.state, kept.dead_reason, kept.discarded_at, kept.payload) == (
        EventState.DISCARDED,
        "item withdrawn",
        5000.0,
        '{"item": "1"}',
    )
    clock.advance(10**6)
    assert outbox.prune_confirmed(0) == 0
    assert outbox.get("k", 1) == kept
    assert outbox.retry_dead("k", 1) is False


def test_discard_needs_a_dead_letter(outbox: Outbox) -> None:
    """Only DEAD events can be discarded."""
    outbox.append("k", "loan", "{}")
    assert outbox.discard_dead("k", 1) is False
    assert outbox.discard_dead("k", 2) is False
    assert outbox.get("k", 1).state is EventState.PENDING  # type: ignore[union-attr]


# ----------------------------------------------------------------------------- retention


def test_prune_deletes_only_old_confirmed_events(outbox: Outbox, clock: Clock) -> None:
    """Pruning removes CONFIRMED events at least older_than_s old, and nothing else."""
    for _ in range(4):
        outbox.append("k", "loan", "{}")
    clock.now = 100.0
    outbox.mark_confirmed("k", [1])
    clock.now = 200.0
    outbox.mark_confirmed("k", [2])
    outbox.dead_letter("k", 3, "refused")
    clock.now = 300.0
    assert outbox.prune_confirmed(150) == 1  # confirmed at 100: age 200 >= 150
    assert outbox.get("k", 1) is None
    assert outbox.prune_confirmed(100) == 1  # confirmed at 200: age exactly 100
    assert [outbox.get("k", s) is not None for s in (2, 3, 4)] == [False, True, True]
    assert outbox.prune_confirmed(0) == 0
    with pytest.raises(InvalidArgument, match="older_than_s"):
        outbox.prune_confirmed(-1)


def test_seq_is_never_reused_after_pruning(outbox: Outbox) -> None:
    """When every event of a device was pruned, its next seq still follows the last one."""
    for _ in range(3):
        outbox.append("k", "loan", "{}")
    outbox.mark_confirmed("k", [1, 2, 3])
    assert outbox.prune_confirmed(0) == 3
    assert outbox.stats().last_seq == {"k": 3}
    assert outbox.append("k", "loan", "{}").seq == 4


# ----------------------------------------------------------------------------- stats


def test_stats_count_states_bytes_ages_and_seqs(outbox: Outbox, clock: Clock) -> None:
    """stats() agrees with what was done: counts, UTF-8 bytes, ages, last seqs."""
    clock.now = 1000.0
    outbox.append("k", "loan", '"é"')  # 4 bytes in UTF-8
    clock.now = 1010.0
    outbox.append("k", "loan", "{}")
    outbox.append("g", "pass", "[1]")
    outbox.mark_sent("k", [1])
    outbox.dead_letter("g", 1, "refused")
    clock.now = 1100.0
    stats = outbox.stats()
    assert dict(stats.counts) == {
        EventState.PENDING: 1,
        EventState.SENT: 1,
        EventState.CONFIRMED: 0,
        EventState.DEAD: 1,
        EventState.DISCARDED: 0,
    }
    assert stats.payload_bytes[EventState.SENT] == 4
    assert stats.payload_bytes[EventState.PENDING] == 2
    assert (stats.held_rows, stats.held_bytes) == (3, 9)
    assert stats.oldest_unconfirmed_age_s == 100.0
    assert stats.oldest_dead_age_s == 90.0
    assert dict(stats.last_seq) == {"k": 2, "g": 1}
    assert stats.storage_bytes > 0
    outbox.mark_confirmed("k", [1, 2])
    assert outbox.stats().oldest_unconfirmed_age_s is None


# ----------------------------------------------------------------------------- caps


def test_row_cap_refuses_new_events_and_keeps_old_ones(make_outbox: MakeOutbox) -> None:
    """At the row cap append raises OutboxFull naming cap and depth; nothing is dropped."""
    outbox = make_outbox(limits=OutboxLimits(max_rows=3, max_bytes=None))
    for _ in range(3):
        outbox.append("k", "loan", "{}")
    with pytest.raises(OutboxFull, match="3 of 3 events") as caught:
        outbox.append("k", "loan", "{}")
    assert (caught.value.depth_rows, caught.value.max_rows) == (3, 3)
    assert seqs(outbox.due(None, 10, resend_after=0)) == [("k", 1), ("k", 2), ("k", 3)]
    outbox.mark_confirmed("k", [1])
    assert outbox.append("k", "loan", "{}").seq == 4


def test_byte_cap_counts_dead_letters_but_not_discarded(make_outbox: MakeOutbox) -> None:
    """Dead letters hold space until staff discard them; the byte cap says so."""
    outbox = make_outbox(limits=OutboxLimits(max_rows=None, max_bytes=10))
    outbox.append("k", "loan", '"abcdef"')  # 8 bytes
    outbox.dead_letter("k", 1, "refused")
    with pytest.raises(OutboxFull, match="8 of 10 payload bytes"):
        outbox.append("k", "loan", '"ab"')
    outbox.append("k", "loan", "{}")  # exactly 10
    outbox.discard_dead("k", 1)
    assert outbox.append("k", "loan", '"abcdef"').seq == 3


def test_limits_reject_nonsense() -> None:
    """A cap of zero or a negative size is an InvalidArgument."""
    with pytest.raises(InvalidArgument, match="max_rows"):
        OutboxLimits(max_rows=0)
    with pytest.raises(InvalidArgument, match="max_payload_bytes"):
        OutboxLimits(max_payload_bytes=0)


# ----------------------------------------------------------------------------- life


def test_closed_outbox_refuses_everything(outbox: Outbox) -> None:
    """After close() every call raises OutboxClosed; close() may be called again."""
    outbox.append("k", "loan", "{}")
    outbox.close()
    outbox.close()
    calls: list[Callable[[], object]] = [
        lambda: outbox.append("k", "loan", "{}"),
        lambda: outbox.due(None, 1, resend_after=0),
        lambda: outbox.mark_sent("k", [1]),
        lambda: outbox.mark_confirmed("k", [1]),
        lambda: outbox.dead_letter("k", 1, "x"),
        lambda: outbox.retry_dead("k", 1),
        lambda: outbox.discard_dead("k", 1),
        outbox.dead_letters,
        outbox.discarded,
        lambda: outbox.get("k", 1),
        outbox.stats,
        lambda: outbox.prune_confirmed(0),
    ]
    for call in calls:
        with pytest.raises(OutboxClosed):
            call()


def test_concurrent_appends_get_distinct_contiguous_seqs(outbox: Outbox) -> None:
    """Threads appending at once get every seq exactly once, for each device."""
    threads, per_thread = 8, 40
    results: list[list[OutboxEvent]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads)

    def work(index: int) -> None:
        start.wait()
        for _ in range(per_thread):
            results[index].append(outbox.append(f"dev-{index % 2}", "loan", "{}"))

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    events = [e for chunk in results for e in chunk]
    for device in ("dev-0", "dev-1"):
        got = sorted(e.seq for e in events if e.device_id == device)
        assert got == list(range(1, threads * per_thread // 2 + 1))
    assert len({e.event_id for e in events}) == threads * per_thread
    for chunk in results:  # each thread saw its own appends in increasing order
        for device in ("dev-0", "dev-1"):
            mine = [e.seq for e in chunk if e.device_id == device]
            assert mine == sorted(mine)
