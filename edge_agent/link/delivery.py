"""Getting the outbox's events to central: the bounded window, receipts, re-sends, refusals.

:class:`Delivery` is the publishing half of the link's worker thread. It holds no thread and
no socket of its own: the worker calls it with what happened (a connection is up, a PUBACK,
a receipt, the connection dropped) and asks it to :meth:`~Delivery.pump` more events into
the connection. It keeps in memory only what a restart may forget; the outbox is the truth.

The rules:

* Events go out oldest first, at QoS 1, at most ``window`` unacknowledged by the broker at
  once, and at most ``receipt_window`` acknowledged by the broker but not yet confirmed by
  central, so that a backlog of 100,000 events drains at the pace of the slowest party
  instead of flooding the broker (or central's queue). paho enforces ``window`` on the
  wire (its ``max_inflight_messages``); up to ``QUEUE_FACTOR`` windows are handed to it at
  once, so that the next event leaves the moment a PUBACK arrives instead of after a round
  trip through this thread.
* A PUBACK marks the event SENT. Only central's receipt marks it CONFIRMED. The SENT mark
  is committed only for an event central has not confirmed within ``SENT_MARK_AFTER_S``:
  with central answering promptly, an event goes from PENDING straight to CONFIRMED, one
  outbox write instead of two, and SENT shows what central is slow to confirm. An event still
  unconfirmed ``resend_after`` seconds after its PUBACK is published again, and so is every
  unconfirmed event after a restart (its PUBACK may have come from a broker that since lost
  it). Central drops duplicates by (device, seq).
* A PUBACK with a failure reason code (>= 0x80) dead-letters the event with the reason,
  except "quota exceeded" and "packet identifier in use", which are retried later.
* Central's receipt may reject an event (it fails validation); that dead-letters it with
  central's reason.
* A broker may refuse a topic by closing the connection instead of a failure PUBACK
  (Mosquitto 2.0.11 does so for MQTT v5 clients). To tell "this message is refused" from
  "the link dropped", after a drop with events in flight the next connection first
  publishes the oldest event alone (a probe). Only when the connection drops again while a
  probe is alone in flight does that event earn a strike; after ``refused_after`` strikes
  it is dead-lettered, with a reason that says so. A probe that is acknowledged ends the
  suspicion. The device's own status is published and acknowledged before any event, so a
  broker that refuses the whole identity (wrong ACL user) never gets events blamed for it.

Reading and writing the outbox is batched, because a query or a commit per PUBACK would
make the drain as slow as the disk: due events are read ahead in blocks of
``read_ahead`` rows and published from memory as the window frees up; SENT and CONFIRMED
marks are handed to a :class:`~edge_agent.link.marks.MarkWriter` every ``FLUSH_AGE_S``
(or ``FLUSH_ROWS`` marks), which commits them on its own thread. While a backlog drains,
each block is read after the highest seq read so far (a cursor: ``due(after_seq=...)``),
so no row is read twice and no read waits for the marks; a full read (after a re-send
comes due, a new connection, a poke) waits for them first, so that a block never holds
an event already acknowledged.
An event that central confirms before its SENT mark is written gets no SENT mark at all.
Events acknowledged or confirmed but not yet marked are remembered in memory and never
published twice; a mark lost in a crash costs only a duplicate that central drops.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from edge_agent.contract import ContractError, DeliveryReceipt
from edge_agent.contract.topics import event_topic, parse_topic
from edge_agent.link.envelope import envelope_bytes
from edge_agent.link.marks import MarkWriter
from edge_agent.outbox import EventNotFound, InvalidArgument, Outbox, OutboxError, OutboxEvent

__all__ = ["Delivery", "DeliveryCounters", "PublishFn"]

log = logging.getLogger(__name__)

#: Publish one QoS 1 message on the current connection: returns the mid, or None if down.
PublishFn = Callable[[str, bytes], int | None]

#: PUBACK reason codes that say "not now" rather than "never": retry after a pause.
TRANSIENT_PUBACK = frozenset({0x91, 0x97})
#: How long a transiently refused event waits before it is published again.
TRANSIENT_HOLD_S = 2.0
_MAX_SEQ = 2**63 - 1
#: Due events read from the outbox at once (a few hundred kB in memory).
READ_AHEAD = 512
#: Publishes between two yields of the GIL to the network thread (see pump()).
YIELD_EVERY = 32
#: Events handed to paho at once, in windows (paho keeps ``window`` of them on the wire).
QUEUE_FACTOR = 4
#: SENT/CONFIRMED marks are committed once this many are waiting...
FLUSH_ROWS = 2000
#: ...or once the oldest has waited this long (seconds).
FLUSH_AGE_S = 0.05
#: A SENT mark is committed only if central has not confirmed the event this long after its
#: PUBACK (seconds). Unmarked, the event is PENDING in the outbox: a restart re-sends PENDING
#: and SENT events alike, so nothing is lost by the wait; it saves a write per event.
SENT_MARK_AFTER_S = 1.0


@dataclass
class DeliveryCounters:
    """Totals since start, for /metrics (monotonic counters)."""

    published: int = 0
    resent: int = 0
    acked: int = 0
    confirmed: int = 0
    rejected: int = 0
    refused: int = 0
    dead_lettered: int = 0
    probes: int = 0
    storage_errors: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)


class _InFlight(NamedTuple):  # one per publish: a tuple is cheaper than a frozen dataclass
    seq: int
    topic: str
    probe: bool


class Delivery:
    """The worker thread's state for publishing one device's events (not thread-safe)."""

    def __init__(
        self,
        outbox: Outbox,
        *,
        device_id: str,
        library_id: str,
        device_kind: str,
        window: int,
        receipt_window: int,
        resend_after_s: float,
        refused_after: int = 3,
        read_ahead: int | None = None,
        queue_factor: int = QUEUE_FACTOR,
        marks: MarkWriter | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.outbox = outbox
        self.device_id = device_id
        self.library_id = library_id
        self.device_kind = device_kind
        self.window = window
        self.queue_factor = queue_factor
        self.receipt_window = max(receipt_window, queue_factor * window)
        self.resend_after_s = resend_after_s
        self.refused_after = refused_after
        self.read_ahead = read_ahead or READ_AHEAD
        self.marks = marks  # commits marks on its own thread; None: commit here, in flush()
        self._mono = monotonic
        self._wall = wall
        self._started_wall = wall()
        self.counters = DeliveryCounters()
        self._generation: int | None = None
        self._inflight: dict[int, _InFlight] = {}  # mid -> event, on this connection
        self._inflight_seqs: set[int] = set()
        self._awaiting: OrderedDict[int, float] = OrderedDict()  # seq -> re-send deadline
        self._held: dict[int, float] = {}  # seq -> not before (transient refusal)
        # (when acknowledged, seq), oldest first: SENT marks waiting for SENT_MARK_AFTER_S.
        self._to_mark_sent: deque[tuple[float, int]] = deque()
        self._to_confirm: list[int] = []
        self._to_dead: dict[int, str] = {}
        self._confirm_since: float | None = None  # when the oldest unflushed receipt came
        self._ahead: deque[OutboxEvent] = deque()  # due events read, not yet published
        self._dirty = True  # something may have become due since the last read
        # The highest seq read ahead since the last full read: while a backlog drains,
        # each read asks only for later events (see _read_ahead). Reset to 0 whenever an
        # event at or below it may have become due again.
        self._cursor = 0
        self._topics: dict[tuple[str, str], str] = {}
        # Confirmed by central, but the outbox may not say so yet (the mark is on its way):
        # remembered long enough that a read of due events never publishes them again.
        self._confirmed_recently: OrderedDict[int, None] = OrderedDict()
        self._confirmed_memory = max(4 * self.receipt_window, 4 * FLUSH_ROWS)
        self.suspect = False
        self._strikes: dict[int, int] = {}
        self.last_refusal: str | None = None

    # ------------------------------------------------------------ views

    @property
    def inflight(self) -> int:
        """Events published on this connection and not yet acknowledged by the broker."""
        return len(self._inflight)

    @property
    def awaiting_receipt(self) -> int:
        """Events the broker acknowledged that central has not confirmed yet (this run)."""
        return len(self._awaiting)

    # ------------------------------------------------------------ connection events

    def connected(self, generation: int) -> None:
        """A connection is up and the device's status was accepted: events may flow."""
        self._generation = generation
        self._inflight.clear()
        self._inflight_seqs.clear()
        self._ahead.clear()
        self._reread()

    def _reread(self) -> None:
        """Read from the oldest due event on next time (something old may be due again)."""
        self._dirty = True
        self._cursor = 0

    def poke(self) -> None:
        """Events may have been appended (or retried): read the outbox again."""
        self._reread()

    def disconnected(self, generation: int, reason: str, by_server: bool) -> None:
        """The connection ended; judge whether an event in flight may be the cause."""
        if generation != self._generation:
            return
        self._generation = None
        probes = [f for f in self._inflight.values() if f.probe]
        if probes:
            probe = probes[0]
            strikes = self._strikes.get(probe.seq, 0) + 1
            self._strikes[probe.seq] = strikes
            log.warning(
                "connection dropped (%s) while event seq %d was alone in flight (%d of %d)",
                reason,
                probe.seq,
                strikes,
                self.refused_after,
            )
            if strikes >= self.refused_after:
                self._strikes.pop(probe.seq, None)
                self._refuse(
                    probe.seq,
                    f"the broker closed the connection each of the {strikes} times this event "
                    f"was published alone on {probe.topic} (the last time: {reason}); "
                    "brokers such as Mosquitto 2.0.11 do that when their ACL refuses the topic",
                )
        shutting_down = by_server and "shutting down" in reason.lower()
        if self._inflight and not shutting_down:
            self.suspect = True
        self._inflight.clear()
        self._inflight_seqs.clear()
        self._ahead.clear()
        self._reread()

    def puback(self, generation: int, mid: int, code: int, reason: str) -> bool:
        """The broker answered the publish ``mid``; False when it was not one of ours."""
        if generation != self._generation:
            return False
        flight = self._inflight.pop(mid, None)
        if flight is None:
            return False
        self._inflight_seqs.discard(flight.seq)
        if code < 0x80:
            self.counters.acked += 1
            now = self._mono()
            self._to_mark_sent.append((now, flight.seq))
            awaiting = self._awaiting
            if flight.seq in awaiting:  # re-acknowledged: its deadline moves to the end
                awaiting.move_to_end(flight.seq)
            awaiting[flight.seq] = now + self.resend_after_s
            if flight.probe:
                self.suspect = False
                self._strikes.pop(flight.seq, None)
        elif code in TRANSIENT_PUBACK:
            log.info("broker deferred event seq %d (%s); retrying later", flight.seq, reason)
            self._held[flight.seq] = self._mono() + TRANSIENT_HOLD_S
            self._reread()
        else:
            self._refuse(
                flight.seq,
                f"the broker refused the event on {flight.topic}: {reason} (0x{code:02X})",
            )
        return True

    def _refuse(self, seq: int, reason: str) -> None:
        self.counters.refused += 1
        self.last_refusal = reason
        self._dead(seq, reason)

    def _dead(self, seq: int, reason: str) -> None:
        log.warning("dead-lettering event %s/%d: %s", self.device_id, seq, reason)
        self._to_dead[seq] = reason[:1000]
        self._awaiting.pop(seq, None)
        self._held.pop(seq, None)

    def receipt(self, receipt: DeliveryReceipt) -> None:
        """Central committed (or rejected) these events."""
        for seq in receipt.confirmed:
            if 1 <= seq <= _MAX_SEQ:
                if self._confirm_since is None:
                    self._confirm_since = self._mono()
                self._to_confirm.append(seq)
                self._awaiting.pop(seq, None)
                self._held.pop(seq, None)
                self._confirmed_recently[seq] = None
        while len(self._confirmed_recently) > self._confirmed_memory:
            self._confirmed_recently.popitem(last=False)
        for rejected in receipt.rejected:
            self.counters.rejected += 1
            self._dead(rejected.seq, f"rejected by central: {rejected.reason}")

    # ------------------------------------------------------------ outbox writes

    def pending_writes(self) -> int:
        """Outbox changes learned but not yet committed."""
        return len(self._to_mark_sent) + len(self._to_confirm) + len(self._to_dead)

    def flush(self, *, force: bool = False) -> None:
        """Commit dead letters now, and SENT/CONFIRMED marks when enough or old enough."""
        for seq, reason in list(self._to_dead.items()):
            try:
                self.outbox.dead_letter(self.device_id, seq, reason)
            except (EventNotFound, InvalidArgument):
                log.info("dead letter for unknown event %s/%d ignored", self.device_id, seq)
            except OutboxError as exc:
                self._storage_failed("dead-letter", exc)
                return
            self.counters.dead_lettered += 1
            del self._to_dead[seq]
        now = self._mono()
        queued = self._to_mark_sent
        confirm_due = bool(self._to_confirm) and (
            force
            or len(self._to_confirm) >= FLUSH_ROWS
            or now >= (self._confirm_since or now) + FLUSH_AGE_S
        )
        # Written as next_deadline() computes the moment, so that waking at it flushes.
        sent_due = bool(queued) and (force or now >= queued[0][0] + SENT_MARK_AFTER_S)
        if not (confirm_due or sent_due):
            return
        # SENT marks old enough (all of them when forced), except for events central has
        # confirmed meanwhile: those need no SENT mark at all.
        taken: list[tuple[float, int]] = []
        while queued and (force or now >= queued[0][0] + SENT_MARK_AFTER_S):
            taken.append(queued.popleft())
        done = self._confirmed_recently
        sent = [seq for _, seq in taken if seq not in done]
        if self.marks is not None:
            self.marks.submit(sent, self._to_confirm)
            self._to_confirm, self._confirm_since = [], None
            return
        if sent:
            try:
                self.outbox.mark_sent(self.device_id, sent)
            except OutboxError as exc:
                queued.extendleft(reversed(taken))  # kept, in order, for the next pass
                self._storage_failed("mark sent", exc)
                return
        if self._to_confirm:
            try:
                self.counters.confirmed += self.outbox.mark_confirmed(
                    self.device_id, self._to_confirm
                )
            except OutboxError as exc:
                self._storage_failed("mark confirmed", exc)
                return
            self._to_confirm, self._confirm_since = [], None

    def sync(self, timeout: float = 10.0) -> bool:
        """Commit every mark learned so far and wait for it (at stop); False on timeout."""
        self.flush(force=True)
        return self.marks.wait_idle(timeout) if self.marks is not None else True

    def _storage_failed(self, what: str, exc: OutboxError) -> None:
        # Keep what was learned; the next pass tries again. Nothing is lost by waiting:
        # an unmarked event is at worst published once more.
        self.counters.storage_errors += 1
        log.warning("cannot %s in the outbox (will retry): %s", what, exc)

    # ------------------------------------------------------------ publishing

    def _expire(self, now: float) -> None:
        while self._awaiting:
            seq, deadline = next(iter(self._awaiting.items()))
            if deadline > now:
                break
            del self._awaiting[seq]  # its row is SENT with an old sent_at: due() returns it
            self._reread()
        for seq in [s for s, t in self._held.items() if t <= now]:
            del self._held[seq]
            self._reread()

    def capacity(self) -> int:
        """How many more events may be published now."""
        if self._generation is None:
            return 0
        room = min(
            self.queue_factor * self.window - len(self._inflight),
            self.receipt_window - len(self._inflight) - len(self._awaiting),
        )
        if self.suspect:
            room = min(room, 1 - len(self._inflight))
        return max(room, 0)

    def _topic(self, row: OutboxEvent) -> str:
        key = (row.device_id, row.kind)
        topic = self._topics.get(key)
        if topic is None:
            topic = event_topic(self.library_id, row.device_id, row.kind)
            parse_topic(topic)  # checks the kind too: it must be one topic segment
            if len(self._topics) < 1000:
                self._topics[key] = topic
        return topic

    def _skip(self) -> set[int]:
        """Events that must not be published now even if the outbox says they are due."""
        return (
            self._inflight_seqs
            | self._held.keys()
            | self._awaiting.keys()
            | self._to_dead.keys()
            | self._confirmed_recently.keys()
        )

    def _read_ahead(self) -> None:
        """Read the next block of due events into memory (after committing the marks).

        Events at or below the cursor that are due again (a re-send, a released hold, a
        retried dead letter, a new connection) reset the cursor first, so a read after
        the cursor misses nothing: everything below it is in flight, awaiting its
        receipt, or being marked. It need not wait for those marks, nor read past them.
        """
        cursor = self._cursor
        # A full read must not return events whose marks are still in memory: commit them
        # all first. A read after the cursor never meets them, so the marks keep their pace.
        self.flush(force=not cursor)
        if cursor:
            skip: set[int] | frozenset[int] = self._to_dead.keys() | self._held.keys()
            limit = self.read_ahead
        else:
            if self.marks is not None:
                # Let the marks land first, or the read returns (and decodes) every event
                # acknowledged since the last commit only for this thread to skip it. Paho
                # holds a few windows of events meanwhile, so the wire does not go idle.
                self.marks.wait_idle(1.0)
            skip = self._skip()
            # Acknowledged events whose marks are not committed yet still look due: read
            # past them.
            unflushed = len(self._to_mark_sent) + len(self._to_dead)
            if self.marks is not None:
                unflushed += self.marks.outstanding
            limit = self.read_ahead + len(self._inflight_seqs) + len(self._held) + unflushed
        # Right after a restart, every event sent before it is re-sent at once: SENT rows
        # whose sent_at is older than our start (by a millisecond, so that rows marked
        # since the start are not) are due. Later, the usual resend_after applies.
        since_start = self._wall() - self._started_wall
        resend_after = min(self.resend_after_s, max(since_start, 0.0) + 1e-3)
        try:
            rows = self.outbox.due(
                self.device_id, limit, resend_after=resend_after, after_seq=cursor
            )
        except OutboxError as exc:
            self._storage_failed("read due events from", exc)
            return
        self._ahead.extend(row for row in rows if row.seq not in skip)
        if rows:
            self._cursor = max(cursor, rows[-1].seq)
        # A short answer means nothing else is due; otherwise read again when this is used.
        self._dirty = len(rows) >= limit

    def pump(self, publish: PublishFn) -> int:
        """Publish as many due events as the windows allow; return how many went out."""
        self._expire(self._mono())
        room = self.capacity()
        sent = 0
        read = False
        while sent < room:
            if not self._ahead:
                if read or not self._dirty:
                    break
                self._read_ahead()
                read = True
                continue
            row = self._ahead.popleft()
            if row.seq in self._inflight_seqs or row.seq in self._to_dead:
                continue
            try:
                topic = self._topic(row)
            except ContractError as exc:
                self._dead(row.seq, f"cannot be published: {exc}")
                continue
            payload = envelope_bytes(row, library_id=self.library_id, device_kind=self.device_kind)
            mid = publish(topic, payload)
            if mid is None:
                self._ahead.appendleft(row)
                break  # the connection is going down; the Disconnected event follows
            probe = self.suspect
            self._inflight[mid] = _InFlight(row.seq, topic, probe)
            self._inflight_seqs.add(row.seq)
            self.counters.published += 1
            if row.attempts > 0:
                self.counters.resent += 1
            if probe:
                self.counters.probes += 1
                room = 0  # a probe goes alone
            sent += 1
            if sent % YIELD_EVERY == 0:
                # Let the network thread run: it needs the GIL after every socket call,
                # and a PUBACK it cannot read is a window slot left empty.
                time.sleep(0)
        return sent

    def next_deadline(self) -> float | None:
        """When something held in memory becomes due again (monotonic), if anything is."""
        deadlines = list(self._held.values())
        if self._awaiting:
            deadlines.append(next(iter(self._awaiting.values())))
        if self._confirm_since is not None:
            deadlines.append(self._confirm_since + FLUSH_AGE_S)
        if self._to_mark_sent:
            deadlines.append(self._to_mark_sent[0][0] + SENT_MARK_AFTER_S)
        return min(deadlines) if deadlines else None
