"""``MemoryOutbox``: the outbox contract in memory, for unit tests of the outbox's callers.

It follows the same rules as ``SqliteOutbox`` (the same test scenario runs against both)
but keeps nothing across a restart, so production code never uses it: a memory buffer by
default is how edge gateways lose what was waiting when they restart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace

from edge_agent.outbox.contract import (
    CONFIRMABLE,
    DEAD_LETTERABLE,
    HELD,
    OPEN,
    EventState,
    OutboxEvent,
    OutboxLimits,
    OutboxStats,
    check_append,
    check_cursor,
    check_limit,
    check_name,
    check_reason,
    check_seq,
    check_seqs,
    check_time,
)
from edge_agent.outbox.errors import (
    EventIdConflict,
    EventNotFound,
    InvalidArgument,
    OutboxClosed,
    OutboxFull,
)

__all__ = ["MemoryOutbox"]

_Key = tuple[str, int]
_DEAD = frozenset({EventState.DEAD})


class MemoryOutbox:
    """A thread-safe, non-durable :class:`~edge_agent.outbox.contract.Outbox`."""

    def __init__(
        self, *, limits: OutboxLimits | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self._limits = limits or OutboxLimits()
        self._clock = clock
        self._lock = threading.Lock()
        # Insertion order is append order; replacing a value keeps its place.
        self._events: dict[_Key, OutboxEvent] = {}
        self._by_event_id: dict[str, _Key] = {}
        self._last_seq: dict[str, int] = {}
        self._rows = dict.fromkeys(EventState, 0)
        self._bytes = dict.fromkeys(EventState, 0)
        self._closed = False

    @property
    def limits(self) -> OutboxLimits:
        """The caps append enforces."""
        return self._limits

    def _check_open(self) -> None:
        if self._closed:
            raise OutboxClosed("the outbox is closed")

    def _now(self, now: float | None) -> float:
        return self._clock() if now is None else check_time("now", now)

    def _count(self, event: OutboxEvent, sign: int) -> None:
        self._rows[event.state] += sign
        self._bytes[event.state] += sign * len(event.payload.encode("utf-8"))

    def _put(self, key: _Key, event: OutboxEvent) -> None:
        old = self._events.get(key)
        if old is not None:
            self._count(old, -1)
        self._events[key] = event
        self._count(event, +1)

    def append(
        self,
        device_id: str,
        kind: str,
        payload: str,
        *,
        event_time: float | None = None,
        clock_trusted: bool = True,
        event_id: str | None = None,
    ) -> OutboxEvent:
        """Store a new PENDING event and return it (see ``Outbox``)."""
        a = check_append(
            device_id,
            kind,
            payload,
            event_time=event_time,
            clock_trusted=clock_trusted,
            event_id=event_id,
            default_time=self._clock(),
            max_payload_bytes=self._limits.max_payload_bytes,
        )
        with self._lock:
            self._check_open()
            known = self._by_event_id.get(a.event_id)
            if known is not None:
                existing = self._events[known]
                if (existing.device_id, existing.kind, existing.payload) == (
                    a.device_id,
                    a.kind,
                    a.payload,
                ):
                    return existing
                raise EventIdConflict(
                    f"event_id {a.event_id} already belongs to device {existing.device_id!r} "
                    f"seq {existing.seq} ({existing.kind}); not stored again"
                )
            held_rows = sum(self._rows[s] for s in HELD)
            held_bytes = sum(self._bytes[s] for s in HELD)
            max_rows, max_bytes = self._limits.max_rows, self._limits.max_bytes
            if (max_rows is not None and held_rows + 1 > max_rows) or (
                max_bytes is not None and held_bytes + a.payload_bytes > max_bytes
            ):
                raise OutboxFull(
                    depth_rows=held_rows,
                    depth_bytes=held_bytes,
                    max_rows=max_rows,
                    max_bytes=max_bytes,
                )
            seq = self._last_seq.get(a.device_id, 0) + 1
            event = OutboxEvent(
                device_id=a.device_id,
                seq=seq,
                event_id=a.event_id,
                kind=a.kind,
                payload=a.payload,
                event_time=a.event_time,
                clock_trusted=a.clock_trusted,
                state=EventState.PENDING,
                attempts=0,
                created_at=self._clock(),
                sent_at=None,
                confirmed_at=None,
                dead_reason=None,
            )
            self._last_seq[a.device_id] = seq
            self._put((a.device_id, seq), event)
            self._by_event_id[a.event_id] = (a.device_id, seq)
            return event

    def due(
        self,
        device_id: str | None,
        limit: int,
        *,
        resend_after: float,
        now: float | None = None,
        after_seq: int = 0,
    ) -> list[OutboxEvent]:
        """Return up to ``limit`` PENDING and re-sendable SENT events, oldest first."""
        check_limit(limit)
        if device_id is not None:
            check_name("device_id", device_id)
        after = check_cursor(device_id, after_seq)
        cutoff = self._now(now) - check_time("resend_after", resend_after)
        found: list[OutboxEvent] = []
        with self._lock:
            self._check_open()
            for event in self._events.values():
                if len(found) >= limit:
                    break
                if device_id is not None and (event.device_id != device_id or event.seq <= after):
                    continue
                if event.state is EventState.PENDING or (
                    event.state is EventState.SENT
                    and event.sent_at is not None
                    and event.sent_at <= cutoff
                ):
                    found.append(event)
        return found

    def _change(
        self,
        device_id: str,
        seqs: Iterable[int],
        allowed: frozenset[EventState],
        update: Callable[[OutboxEvent], OutboxEvent],
    ) -> int:
        """Replace each listed event whose state is in ``allowed`` by ``update(event)``."""
        check_name("device_id", device_id)
        wanted = tuple(dict.fromkeys(check_seqs(seqs)))
        changed = 0
        with self._lock:
            self._check_open()
            for seq in wanted:
                event = self._events.get((device_id, seq))
                if event is not None and event.state in allowed:
                    self._put((device_id, seq), update(event))
                    changed += 1
        return changed

    def mark_sent(self, device_id: str, seqs: Iterable[int]) -> None:
        """Record a broker acknowledgement for these seqs (see ``Outbox``)."""
        at = self._clock()
        self._change(
            device_id,
            seqs,
            OPEN,
            lambda e: replace(e, state=EventState.SENT, sent_at=at, attempts=e.attempts + 1),
        )

    def mark_confirmed(self, device_id: str, seqs: Iterable[int]) -> int:
        """Record the central system's receipt; return how many events changed."""
        at = self._clock()
        return self._change(
            device_id,
            seqs,
            CONFIRMABLE,
            lambda e: replace(e, state=EventState.CONFIRMED, confirmed_at=at),
        )

    def dead_letter(self, device_id: str, seq: int, reason: str) -> None:
        """Move a PENDING/SENT event to DEAD (see ``Outbox``)."""
        check_seq(seq)
        why = check_reason(reason)
        changed = self._change(
            device_id,
            (seq,),
            DEAD_LETTERABLE,
            lambda e: replace(e, state=EventState.DEAD, dead_reason=why),
        )
        if not changed:
            with self._lock:
                if (device_id, seq) not in self._events:
                    raise EventNotFound(
                        f"no event {device_id!r} seq {seq} in the outbox to dead-letter"
                    )

    def retry_dead(self, device_id: str, seq: int) -> bool:
        """Move a DEAD event back to PENDING; False when it was not DEAD."""
        check_seq(seq)
        back = self._change(
            device_id, (seq,), _DEAD, lambda e: replace(e, state=EventState.PENDING, sent_at=None)
        )
        return back == 1

    def discard_dead(self, device_id: str, seq: int) -> bool:
        """Move a DEAD event to DISCARDED (kept as audit trail); False when it was not DEAD."""
        check_seq(seq)
        at = self._clock()
        gone = self._change(
            device_id,
            (seq,),
            _DEAD,
            lambda e: replace(e, state=EventState.DISCARDED, discarded_at=at),
        )
        return gone == 1

    def get(self, device_id: str, seq: int) -> OutboxEvent | None:
        """Return one event, or None when the outbox does not hold it."""
        key = (check_name("device_id", device_id), check_seq(seq))
        with self._lock:
            self._check_open()
            return self._events.get(key)

    def _in_state(self, state: EventState, limit: int) -> list[OutboxEvent]:
        check_limit(limit)
        with self._lock:
            self._check_open()
            return [e for e in self._events.values() if e.state is state][:limit]

    def dead_letters(self, limit: int = 100) -> list[OutboxEvent]:
        """Return DEAD events, oldest first."""
        return self._in_state(EventState.DEAD, limit)

    def discarded(self, limit: int = 100) -> list[OutboxEvent]:
        """Return DISCARDED events (staff decisions, kept), oldest first."""
        return self._in_state(EventState.DISCARDED, limit)

    def stats(self, now: float | None = None) -> OutboxStats:
        """Return counts and bytes per state, ages and last seqs (storage = payload bytes)."""
        at = self._now(now)
        with self._lock:
            self._check_open()
            oldest_open = next((e for e in self._events.values() if e.state in OPEN), None)
            oldest_dead = next(
                (e for e in self._events.values() if e.state is EventState.DEAD), None
            )
            return OutboxStats(
                counts=dict(self._rows),
                payload_bytes=dict(self._bytes),
                oldest_unconfirmed_age_s=None
                if oldest_open is None
                else at - oldest_open.created_at,
                oldest_dead_age_s=None if oldest_dead is None else at - oldest_dead.created_at,
                last_seq=dict(self._last_seq),
                storage_bytes=sum(self._bytes.values()),
                limits=self._limits,
            )

    def prune_confirmed(self, older_than_s: float, now: float | None = None) -> int:
        """Delete CONFIRMED events confirmed at least ``older_than_s`` ago; return how many."""
        age = check_time("older_than_s", older_than_s)
        if age < 0:
            raise InvalidArgument(f"older_than_s must be >= 0, not {older_than_s!r}")
        cutoff = self._now(now) - age
        with self._lock:
            self._check_open()
            gone = [
                key
                for key, e in self._events.items()
                if e.state is EventState.CONFIRMED
                and e.confirmed_at is not None
                and e.confirmed_at <= cutoff
            ]
            for key in gone:
                event = self._events.pop(key)
                self._count(event, -1)
                del self._by_event_id[event.event_id]
            return len(gone)

    def close(self) -> None:
        """Refuse further use; idempotent (nothing to release)."""
        with self._lock:
            self._closed = True

    def __enter__(self) -> MemoryOutbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
