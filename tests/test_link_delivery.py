"""The delivery rules (window, receipts, re-sends, refusals) driven step by step, no broker.

The broker is replaced by a recording ``publish`` function: these tests drive the exact
sequences (a PUBACK here, a drop there) that a real broker produces only by chance. The
same rules run against a real Mosquitto in tests/test_link_mqtt.py.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable

from edge_agent.contract import DeliveryReceipt, Envelope, decode
from edge_agent.link.delivery import FLUSH_AGE_S, QUEUE_FACTOR, SENT_MARK_AFTER_S, Delivery
from edge_agent.outbox import EventState, MemoryOutbox, OutboxStorageError

LIB, DEV = "lib", "kiosk-1"
NOW = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


class Clock:
    """A clock the test moves by hand (both the monotonic and the wall one)."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class Wire:
    """Records what was published and hands out packet ids like a connection would."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str, Envelope]] = []
        self.up = True
        self._mid = 0

    def __call__(self, topic: str, payload: bytes) -> int | None:
        if not self.up:
            return None
        self._mid += 1
        self.sent.append((self._mid, topic, decode(Envelope, payload)))
        return self._mid

    def seqs(self) -> list[int]:
        return [env.seq for _, _, env in self.sent]

    def take(self) -> list[tuple[int, str, Envelope]]:
        sent, self.sent = self.sent, []
        return sent


def fill(outbox: MemoryOutbox, n: int) -> None:
    """Append ``n`` checkins to ``outbox``."""
    for i in range(n):
        outbox.append(DEV, "checkin", json.dumps({"type": "checkin", "item_id": f"I{i}"}))


def new_delivery(
    outbox: MemoryOutbox,
    clock: Clock,
    *,
    window: int = 4,
    receipt_window: int = 100,
    resend: float = 30.0,
    queue_factor: int = 1,  # the window as paho would enforce it on the wire
    read_ahead: int | None = None,
) -> Delivery:
    """A Delivery for ``outbox`` on the test's clock (a new one is a restarted agent)."""
    return Delivery(
        outbox,
        device_id=DEV,
        library_id=LIB,
        device_kind="kiosk",
        window=window,
        receipt_window=receipt_window,
        resend_after_s=resend,
        queue_factor=queue_factor,
        read_ahead=read_ahead,
        monotonic=clock,
        wall=clock,
    )


def make(
    n: int = 0, *, window: int = 4, receipt_window: int = 100, resend: float = 30.0
) -> tuple[Delivery, MemoryOutbox, Wire, Clock]:
    clock = Clock()
    outbox = MemoryOutbox(clock=clock)
    fill(outbox, n)
    delivery = new_delivery(
        outbox, clock, window=window, receipt_window=receipt_window, resend=resend
    )
    return delivery, outbox, Wire(), clock


def ack(delivery: Delivery, sent: Iterable[tuple[int, str, Envelope]], code: int = 0) -> None:
    for mid, _, _ in sent:
        assert delivery.puback(1, mid, code, "Success" if code < 0x80 else "Not authorized")
    delivery.flush(force=True)


def receipt(
    delivery: Delivery, confirmed: list[int], rejected: dict[int, str] | None = None
) -> None:
    delivery.receipt(
        DeliveryReceipt(
            library_id=LIB,
            device_id=DEV,
            confirmed=confirmed,
            rejected=[{"seq": s, "reason": r} for s, r in (rejected or {}).items()],
            time=NOW,
        )
    )
    delivery.flush(force=True)


def test_publishes_oldest_first_within_the_window_and_marks_on_puback() -> None:
    """At most `window` events are unacknowledged; each PUBACK frees a slot and marks SENT."""
    delivery, outbox, wire, _ = make(10, window=4)
    assert delivery.pump(wire) == 0  # not connected yet
    delivery.connected(1)
    assert delivery.pump(wire) == 4
    assert wire.seqs() == [1, 2, 3, 4]
    assert delivery.pump(wire) == 0  # window full
    ack(delivery, wire.take())
    assert [e.state for e in map(lambda s: outbox.get(DEV, s), range(1, 6))] == [
        EventState.SENT,
        EventState.SENT,
        EventState.SENT,
        EventState.SENT,
        EventState.PENDING,
    ]
    assert delivery.pump(wire) == 4
    assert wire.seqs() == [5, 6, 7, 8]
    topic = wire.sent[0][1]
    assert topic == f"libedge/v1/{LIB}/{DEV}/up/event/checkin"


def test_receipt_window_pauses_publishing_until_central_confirms() -> None:
    """With receipt_window events awaiting central's receipt, nothing more is published."""
    delivery, outbox, wire, _ = make(20, window=4, receipt_window=8)
    delivery.connected(1)
    for _ in range(2):
        delivery.pump(wire)
        ack(delivery, wire.take())
    assert delivery.awaiting_receipt == 8
    assert delivery.pump(wire) == 0
    receipt(delivery, [1, 2, 3, 4])
    assert delivery.pump(wire) == 4
    assert wire.seqs() == [9, 10, 11, 12]
    assert outbox.stats().counts[EventState.CONFIRMED] == 4


def test_receipt_confirms_and_rejections_dead_letter_with_centrals_reason() -> None:
    """Confirmed seqs become CONFIRMED; a rejected one is DEAD with central's reason."""
    delivery, outbox, wire, _ = make(3)
    delivery.connected(1)
    delivery.pump(wire)
    ack(delivery, wire.take())
    receipt(delivery, [1, 3], {2: "payload.item_id: Field required"})
    assert outbox.get(DEV, 1).state == EventState.CONFIRMED  # type: ignore[union-attr]
    dead = outbox.get(DEV, 2)
    assert dead is not None
    assert dead.state == EventState.DEAD
    assert dead.dead_reason == "rejected by central: payload.item_id: Field required"
    assert delivery.counters.rejected == 1
    # Out-of-range seqs in a (forged or buggy) receipt are dropped, not fatal.
    receipt(delivery, [0, -5, 2**70])
    assert outbox.stats().counts[EventState.CONFIRMED] == 2


def test_failure_puback_dead_letters_but_quota_exceeded_is_retried_later() -> None:
    """PUBACK >= 0x80 dead-letters with the reason; 0x97 (quota exceeded) waits and retries."""
    delivery, outbox, wire, clock = make(3)
    delivery.connected(1)
    delivery.pump(wire)
    (m1, _, _), (m2, _, _), (m3, _, _) = wire.take()
    assert delivery.puback(1, m1, 0x87, "Not authorized")
    assert delivery.puback(1, m2, 0x97, "Quota exceeded")
    assert delivery.puback(1, m3, 0x10, "No matching subscribers")  # < 0x80: a success
    delivery.flush(force=True)
    first = outbox.get(DEV, 1)
    assert first is not None
    assert first.state == EventState.DEAD
    assert "Not authorized (0x87)" in (first.dead_reason or "")
    assert outbox.get(DEV, 3).state == EventState.SENT  # type: ignore[union-attr]
    assert delivery.pump(wire) == 0  # seq 2 is held back for a moment
    clock.now += 5
    assert delivery.pump(wire) == 1
    assert wire.seqs() == [2]


def test_unconfirmed_events_are_resent_after_resend_after() -> None:
    """An event acknowledged by the broker but not confirmed is published again later."""
    delivery, _, wire, clock = make(2, resend=30)
    delivery.connected(1)
    delivery.pump(wire)
    ack(delivery, wire.take())
    clock.now += 29
    assert delivery.pump(wire) == 0
    assert delivery.next_deadline() == clock.now + 1
    clock.now += 1
    assert delivery.pump(wire) == 2
    assert wire.seqs() == [1, 2]
    assert delivery.counters.resent == 2


def test_after_a_restart_every_unconfirmed_event_is_resent_at_once() -> None:
    """A new Delivery (a restarted agent) re-sends SENT events without waiting resend_after."""
    delivery, outbox, wire, clock = make(3, resend=30)
    delivery.connected(1)
    delivery.pump(wire)
    ack(delivery, wire.take())
    clock.now += 1
    restarted = new_delivery(outbox, clock, window=8)
    restarted.connected(1)
    clock.now += 0.5
    assert restarted.pump(wire) == 3
    ack(restarted, wire.take())
    clock.now += 5  # re-sent after the restart: now they wait resend_after again
    assert restarted.pump(wire) == 0


def test_a_drop_with_events_in_flight_makes_the_next_connection_probe_one_at_a_time() -> None:
    """After a suspicious drop one event goes alone; its PUBACK ends the suspicion."""
    delivery, _, wire, _ = make(10, window=4)
    delivery.connected(1)
    delivery.pump(wire)
    wire.take()
    delivery.disconnected(1, "Unspecified error", by_server=False)
    assert delivery.suspect
    delivery.connected(2)
    assert delivery.pump(wire) == 1
    ((mid, _, env),) = wire.take()
    assert env.seq == 1
    assert delivery.pump(wire) == 0  # nothing else while the probe is out
    assert delivery.puback(2, mid, 0, "Success")
    delivery.flush(force=True)
    assert not delivery.suspect
    assert delivery.pump(wire) == 4


def test_an_event_that_drops_the_connection_every_time_is_dead_lettered() -> None:
    """Alone in flight at `refused_after` drops, the event is dead-lettered saying why."""
    delivery, outbox, wire, _ = make(2, window=4)
    delivery.connected(1)
    delivery.pump(wire)
    wire.take()
    delivery.disconnected(1, "Unspecified error", by_server=False)
    for generation in (2, 3, 4):
        delivery.connected(generation)
        assert delivery.pump(wire) == 1
        assert wire.take()[0][2].seq == 1
        delivery.disconnected(generation, "Unspecified error", by_server=False)
        delivery.flush()
    dead = outbox.get(DEV, 1)
    assert dead is not None
    assert dead.state == EventState.DEAD
    assert "closed the connection each of the 3 times" in (dead.dead_reason or "")
    delivery.connected(5)
    assert delivery.pump(wire) == 1
    assert wire.seqs() == [2]


def test_a_broker_shutting_down_is_not_blamed_on_the_events_in_flight() -> None:
    """A DISCONNECT 'Server shutting down' is an outage, not a refusal: no probing."""
    delivery, _, wire, _ = make(10, window=4)
    delivery.connected(1)
    delivery.pump(wire)
    delivery.disconnected(1, "Server shutting down", by_server=True)
    assert not delivery.suspect
    delivery.connected(2)
    assert delivery.pump(wire) == 4
    assert wire.seqs()[-4:] == [1, 2, 3, 4]  # the unacknowledged ones went again


def test_pubacks_of_an_old_connection_are_ignored() -> None:
    """A late PUBACK from a dropped connection cannot mark an event of the next one."""
    delivery, outbox, wire, _ = make(2, window=4)
    delivery.connected(1)
    delivery.pump(wire)
    (mid, _, _), _ = wire.take()
    delivery.disconnected(1, "EOF", by_server=False)
    delivery.connected(2)
    assert not delivery.puback(1, mid, 0, "Success")
    assert outbox.get(DEV, 1).state == EventState.PENDING  # type: ignore[union-attr]


class FlakyOutbox(MemoryOutbox):
    """A memory outbox whose mark_sent fails a given number of times, like a full disk."""

    failures = 2

    def mark_sent(self, device_id: str, seqs: Iterable[int]) -> None:
        if self.failures:
            self.failures -= 1
            raise OutboxStorageError("cannot commit: database or disk is full (SQLITE_FULL)")
        super().mark_sent(device_id, seqs)


def test_a_failing_outbox_write_is_kept_and_retried_not_lost() -> None:
    """When marking SENT fails, the marks are kept and committed on a later pass."""
    clock = Clock()
    outbox = FlakyOutbox(clock=clock)
    fill(outbox, 3)
    delivery = new_delivery(outbox, clock, receipt_window=10)
    wire = Wire()
    delivery.connected(1)
    delivery.pump(wire)
    ack(delivery, wire.take())
    assert delivery.counters.storage_errors == 1
    assert delivery.pending_writes() == 3
    assert delivery.pump(wire) == 0  # acknowledged events are not published twice meanwhile
    delivery.flush(force=True)
    delivery.flush(force=True)
    assert delivery.pending_writes() == 0
    assert outbox.stats().counts[EventState.SENT] == 3


def test_an_event_with_an_unusable_kind_is_dead_lettered_not_published() -> None:
    """A row whose kind cannot be a topic segment is dead-lettered with the reason."""
    delivery, outbox, wire, _ = make(0)
    outbox.append(DEV, "bad kind/with slash", json.dumps({"type": "checkin", "item_id": "X"}))
    outbox.append(DEV, "checkin", json.dumps({"type": "checkin", "item_id": "I"}))
    delivery.connected(1)
    assert delivery.pump(wire) == 1
    assert wire.seqs() == [2]
    delivery.flush()
    dead = outbox.get(DEV, 1)
    assert dead is not None
    assert dead.state == EventState.DEAD
    assert "cannot be published" in (dead.dead_reason or "")


class CountingOutbox(MemoryOutbox):
    """A memory outbox that counts how often it is queried and written."""

    due_calls = 0
    sent_calls = 0

    def due(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.due_calls += 1
        return super().due(*args, **kwargs)

    def mark_sent(self, device_id: str, seqs: Iterable[int]) -> None:
        self.sent_calls += 1
        super().mark_sent(device_id, seqs)


def test_due_events_are_read_in_blocks_and_marks_committed_in_batches() -> None:
    """Draining 1,000 events takes a handful of outbox reads and commits, not one per event."""
    clock = Clock()
    outbox = CountingOutbox(clock=clock)
    fill(outbox, 1000)
    delivery = new_delivery(
        outbox, clock, window=16, receipt_window=5000, queue_factor=QUEUE_FACTOR, read_ahead=256
    )
    wire = Wire()
    delivery.connected(1)
    while delivery.pump(wire):
        for mid, _, _ in wire.take():
            delivery.puback(1, mid, 0, "Success")
        delivery.flush()  # not forced: SENT marks wait for SENT_MARK_AFTER_S
        clock.now += 0.001
    assert delivery.counters.acked == 1000
    assert outbox.due_calls <= 6  # 1000 / 256 blocks, plus the short last read
    assert outbox.sent_calls == 0  # reads after the cursor do not wait for marks
    assert delivery.pending_writes() == 1000  # the marks wait for their moment...
    assert delivery.next_deadline() is not None
    clock.now += SENT_MARK_AFTER_S
    delivery.flush()
    assert delivery.pending_writes() == 0  # ...and are committed together once it comes
    assert outbox.sent_calls == 1
    assert outbox.stats().counts[EventState.SENT] == 1000


def test_an_event_confirmed_soon_after_its_puback_gets_no_sent_mark() -> None:
    """Confirmed within SENT_MARK_AFTER_S: PENDING -> CONFIRMED; later ones become SENT."""
    delivery, outbox, wire, clock = make(6, window=6)
    delivery.connected(1)
    assert delivery.pump(wire) == 6
    for mid, _, _ in wire.take():
        assert delivery.puback(1, mid, 0, "Success")
    delivery.flush()
    assert outbox.stats().counts[EventState.PENDING] == 6  # nothing written yet
    delivery.receipt(
        DeliveryReceipt(library_id=LIB, device_id=DEV, confirmed=[1, 2, 3], rejected=[], time=NOW)
    )
    deadline = delivery.next_deadline()
    assert deadline == clock.now + FLUSH_AGE_S
    clock.now = deadline
    delivery.flush()
    counts = outbox.stats().counts
    assert (counts[EventState.CONFIRMED], counts[EventState.PENDING]) == (3, 3)
    deadline = delivery.next_deadline()
    assert deadline is not None
    clock.now = deadline
    delivery.flush()
    states = [outbox.get(DEV, seq).state for seq in range(1, 7)]  # type: ignore[union-attr]
    assert states == [EventState.CONFIRMED] * 3 + [EventState.SENT] * 3
    assert all(outbox.get(DEV, s).sent_at is None for s in (1, 2, 3))  # type: ignore[union-attr]


def test_a_few_windows_are_handed_to_paho_which_keeps_one_on_the_wire() -> None:
    """By default QUEUE_FACTOR windows are handed over at once (paho enforces the window)."""
    clock = Clock()
    outbox = MemoryOutbox(clock=clock)
    fill(outbox, 100)
    delivery = new_delivery(outbox, clock, window=8, receipt_window=1000, queue_factor=QUEUE_FACTOR)
    wire = Wire()
    delivery.connected(1)
    assert delivery.pump(wire) == QUEUE_FACTOR * 8
    assert wire.seqs() == list(range(1, QUEUE_FACTOR * 8 + 1))
