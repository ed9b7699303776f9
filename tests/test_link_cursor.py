"""The link's read cursor: a draining backlog is read once, and nothing due is skipped."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from edge_agent.contract import DeliveryReceipt
from edge_agent.link.delivery import Delivery
from edge_agent.outbox import EventState, MemoryOutbox, OutboxEvent
from tests.test_link_delivery import DEV, LIB, NOW, Clock, Wire, ack


class RecordingOutbox(MemoryOutbox):
    """A memory outbox that records each due() call's cursor and how many rows it gave."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock=clock)
        self.reads: list[tuple[int, int]] = []

    def due(self, *args: Any, **kwargs: Any) -> list[OutboxEvent]:
        rows = super().due(*args, **kwargs)
        self.reads.append((kwargs.get("after_seq", 0), len(rows)))
        return rows


def make(
    n: int, *, read_ahead: int, resend: float = 30.0
) -> tuple[Delivery, RecordingOutbox, Wire, Clock]:
    clock = Clock()
    outbox = RecordingOutbox(clock)
    for i in range(n):
        outbox.append(DEV, "checkin", json.dumps({"type": "checkin", "item_id": f"I{i}"}))
    delivery = Delivery(
        outbox,
        device_id=DEV,
        library_id=LIB,
        device_kind="kiosk",
        window=8,
        receipt_window=1000,
        resend_after_s=resend,
        read_ahead=read_ahead,
        queue_factor=1,
        monotonic=clock,
        wall=clock,
    )
    delivery.connected(1)
    return delivery, outbox, Wire(), clock


def confirm(delivery: Delivery, seqs: Iterable[int]) -> None:
    delivery.receipt(
        DeliveryReceipt(library_id=LIB, device_id=DEV, confirmed=list(seqs), rejected=[], time=NOW)
    )
    delivery.flush(force=True)


def test_a_backlog_is_read_once_block_after_block_past_the_cursor() -> None:
    """Draining 100 events in blocks of 10 reads each row once, every read after the first past a cursor."""
    delivery, outbox, wire, _ = make(100, read_ahead=10)
    published: list[int] = []
    while len(published) < 100:
        assert delivery.pump(wire) > 0
        sent = wire.take()
        published += [env.seq for _, _, env in sent]
        ack(delivery, sent)
    assert published == list(range(1, 101))
    assert outbox.reads[0] == (0, 10 + 0)  # the first read starts at the oldest event
    cursors = [cursor for cursor, _ in outbox.reads[1:]]
    assert cursors == sorted(cursors)
    assert all(c > 0 for c in cursors)
    assert sum(rows for _, rows in outbox.reads) == 100  # no row was read twice


def test_an_event_due_again_below_the_cursor_is_still_resent() -> None:
    """After resend_after, an unconfirmed event below the cursor is published again."""
    delivery, outbox, wire, clock = make(30, read_ahead=10, resend=30.0)
    for _ in range(4):
        sent = wire.take()
        ack(delivery, sent)
        delivery.pump(wire)
    ack(delivery, wire.take())
    confirm(delivery, [s for s in range(1, 31) if s != 5])
    assert delivery.pump(wire) == 0  # everything is out, 5 awaits its receipt
    clock.now += 31
    assert delivery.pump(wire) == 1
    assert [env.seq for _, _, env in wire.take()] == [5]
    assert outbox.reads[-1][0] == 0  # the re-send came from a full read


def test_a_retried_dead_letter_below_the_cursor_is_published_after_a_poke() -> None:
    """An event put back to PENDING below the cursor is found by the read after poke()."""
    delivery, outbox, wire, _ = make(20, read_ahead=10)
    while delivery.pump(wire):
        for mid, _, env in wire.take():
            code = 0x87 if env.seq == 1 else 0  # the broker refuses seq 1
            assert delivery.puback(1, mid, code, "Not authorized" if code else "Success")
        delivery.flush(force=True)
    dead = outbox.get(DEV, 1)
    assert dead is not None
    assert dead.state is EventState.DEAD
    confirm(delivery, range(2, 21))
    assert delivery.pump(wire) == 0
    assert outbox.retry_dead(DEV, 1)
    delivery.poke()
    assert delivery.pump(wire) == 1
    assert [env.seq for _, _, env in wire.take()] == [1]
