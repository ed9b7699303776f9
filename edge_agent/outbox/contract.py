"""The outbox contract: event types, states, limits, and the ``Outbox`` protocol.

Every back-end (``SqliteOutbox`` on disk, ``MemoryOutbox`` for callers' unit tests)
implements :class:`Outbox` and is checked by the same test scenario. The rules that both
must agree on live here as data (which states a transition starts from) and as shared
validation, so that the back-ends cannot drift apart.

Life of an event (what each call does, by the state it finds; ``-`` = left as it is)::

    state found   mark_sent       mark_confirmed  dead_letter  retry_dead  discard_dead
    PENDING       SENT            CONFIRMED       DEAD         -           -
    SENT          SENT, again     CONFIRMED       DEAD         -           -
    CONFIRMED     -               -               -            -           -
    DEAD          -               CONFIRMED       -            PENDING     DISCARDED
    DISCARDED     -               CONFIRMED       -            -           -

``append`` stores PENDING; ``due`` offers PENDING events, and SENT ones again once their
broker acknowledgement is ``resend_after`` seconds old; ``prune_confirmed`` deletes old
CONFIRMED events and nothing else.

``mark_confirmed`` is the central system's word that it committed the event, so it wins
from any state: an event confirmed after it was dead-lettered or discarded needs no staff
attention. A DISCARDED event is a staff decision and stays in the store (never pruned) as
its own audit trail: payload, dead_reason and ``discarded_at`` remain readable through
:meth:`Outbox.discarded`.
"""

from __future__ import annotations

import json
import math
import os
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from edge_agent.outbox.errors import InvalidArgument

__all__ = [
    "CONFIRMABLE",
    "DEAD_LETTERABLE",
    "HELD",
    "OPEN",
    "SECRET_KEYS",
    "CheckedAppend",
    "EventState",
    "Outbox",
    "OutboxEvent",
    "OutboxLimits",
    "OutboxStats",
    "check_append",
    "check_cursor",
    "check_limit",
    "check_name",
    "check_reason",
    "check_seq",
    "check_seqs",
    "check_time",
    "new_event_id",
]

#: Longest device id / kind accepted; they go into MQTT topics and log lines.
MAX_NAME_LENGTH = 128
#: Largest seq (SQLite's INTEGER is 64-bit signed).
MAX_SEQ = 2**63 - 1
#: Longest dead-letter reason kept; a reason is a sentence for staff, not a stack trace.
MAX_REASON_LENGTH = 1000


class EventState(StrEnum):
    """Where an event is on its way to the central system."""

    PENDING = "pending"  # committed locally, not yet acknowledged by the broker
    SENT = "sent"  # the broker acknowledged (PUBACK); the central system has not confirmed
    CONFIRMED = "confirmed"  # the central system committed it; may be pruned
    DEAD = "dead"  # refused or undeliverable; waits for staff to retry or discard
    DISCARDED = "discarded"  # staff gave up on it; kept as the audit trail of that decision


#: States the link still has to deliver (due() looks only at these).
OPEN = frozenset({EventState.PENDING, EventState.SENT})
#: States that hold the backlog: what the cap counts (dead letters wait for staff, so they
#: occupy space the same way undelivered events do).
HELD = frozenset({EventState.PENDING, EventState.SENT, EventState.DEAD})
#: States dead_letter moves from; later states are left as they are.
DEAD_LETTERABLE = OPEN
#: States mark_confirmed moves from: all but CONFIRMED (the receipt is the final truth).
CONFIRMABLE = frozenset(set(EventState) - {EventState.CONFIRMED})


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One stored event, as committed (a snapshot: later changes need a new read)."""

    device_id: str
    seq: int  # per device, allocated in the append's transaction, never reset or reused
    event_id: str  # canonical UUID string, unique across the store
    kind: str
    payload: str  # JSON text, stored byte for byte as given
    event_time: float  # unix time the event happened, by the device's clock
    clock_trusted: bool  # False when the device's clock was not synchronised (no RTC)
    state: EventState
    attempts: int  # times the broker acknowledged a send of this event
    created_at: float  # unix time of the commit that stored it
    sent_at: float | None  # last broker acknowledgement
    confirmed_at: float | None  # the central system's receipt
    dead_reason: str | None  # why it was last dead-lettered (kept after a retry, as history)
    discarded_at: float | None = None  # when staff discarded it


@dataclass(frozen=True, slots=True)
class OutboxLimits:
    """Caps that make append refuse (``OutboxFull``) instead of dropping unconfirmed events.

    ``max_rows`` / ``max_bytes`` count the held backlog (PENDING, SENT and DEAD events and
    their payload bytes); ``None`` means no cap. ``max_payload_bytes`` refuses a single
    oversized payload as an ``InvalidArgument``: it is a bug in the caller, not a backlog.
    """

    max_rows: int | None = 200_000
    max_bytes: int | None = 256 * 1024 * 1024
    max_payload_bytes: int = 256 * 1024

    def __post_init__(self) -> None:
        for name in ("max_rows", "max_bytes"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise InvalidArgument(f"OutboxLimits.{name} must be a positive int or None")
        if self.max_payload_bytes < 1:
            raise InvalidArgument("OutboxLimits.max_payload_bytes must be positive")


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """A consistent snapshot of the outbox, for health checks and the staff page."""

    counts: Mapping[EventState, int]  # every state, zeros included
    payload_bytes: Mapping[EventState, int]  # UTF-8 bytes of payloads, per state
    oldest_unconfirmed_age_s: float | None  # oldest PENDING/SENT event (the link's lag)
    oldest_dead_age_s: float | None  # oldest dead letter (waiting for staff)
    last_seq: Mapping[str, int]  # per device; survives pruning
    storage_bytes: int  # on disk (database + WAL); an estimate for the memory back-end
    limits: OutboxLimits = field(default_factory=OutboxLimits)

    @property
    def held_rows(self) -> int:
        """Events the cap counts: PENDING + SENT + DEAD."""
        return sum(self.counts[s] for s in HELD)

    @property
    def held_bytes(self) -> int:
        """Payload bytes the cap counts: PENDING + SENT + DEAD."""
        return sum(self.payload_bytes[s] for s in HELD)


@runtime_checkable
class Outbox(Protocol):
    """The durable queue between the kiosk/gate and the MQTT link.

    Thread-safe. Every method that changes state returns only after its change is
    committed; an append is never acknowledged before its commit. Timestamps are unix
    seconds; ``now`` defaults to the outbox's clock. "Oldest first" is append order, which
    within one device is ``seq`` order.
    """

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
        """Store a new PENDING event and return it after its commit.

        ``seq`` is the device's next number, allocated in the same transaction. With an
        ``event_id`` that is already stored for the same device, kind and payload, the
        stored event is returned and nothing is written (a safe retry); for a different
        event it raises ``EventIdConflict``. Raises ``OutboxFull`` at the cap.
        """
        ...

    def due(
        self,
        device_id: str | None,
        limit: int,
        *,
        resend_after: float,
        now: float | None = None,
        after_seq: int = 0,
    ) -> list[OutboxEvent]:
        """Return up to ``limit`` events to publish, oldest first.

        These are PENDING events plus SENT events whose ``sent_at`` is at least
        ``resend_after`` seconds old (acknowledged by the broker but never confirmed).
        This is a query, not a lease: the same rows come back until they are marked, so
        the caller keeps its own in-flight set. ``after_seq`` (a cursor, only with a
        ``device_id``) returns only that device's events with a greater seq, so that a
        reader draining a backlog does not read again the rows it holds already.
        """
        ...

    def mark_sent(self, device_id: str, seqs: Iterable[int]) -> None:
        """Record a broker acknowledgement: PENDING/SENT -> SENT, ``attempts`` + 1.

        Unknown seqs and events already CONFIRMED, DEAD or DISCARDED are left alone.
        """
        ...

    def mark_confirmed(self, device_id: str, seqs: Iterable[int]) -> int:
        """Record the central system's receipt; return how many events changed state."""
        ...

    def dead_letter(self, device_id: str, seq: int, reason: str) -> None:
        """Move a PENDING/SENT event to DEAD with a reason; later states are left alone.

        Raises ``EventNotFound`` when the outbox holds no such event.
        """
        ...

    def dead_letters(self, limit: int = 100) -> list[OutboxEvent]:
        """Return DEAD events, oldest first."""
        ...

    def discarded(self, limit: int = 100) -> list[OutboxEvent]:
        """Return DISCARDED events (the audit trail of staff decisions), oldest first."""
        ...

    def retry_dead(self, device_id: str, seq: int) -> bool:
        """Move a DEAD event back to PENDING; False when it was not DEAD."""
        ...

    def discard_dead(self, device_id: str, seq: int) -> bool:
        """Move a DEAD event to DISCARDED (kept, never pruned); False when it was not DEAD."""
        ...

    def get(self, device_id: str, seq: int) -> OutboxEvent | None:
        """Return one event, or None when the outbox does not hold it (any more)."""
        ...

    def stats(self, now: float | None = None) -> OutboxStats:
        """Return counts per state, bytes, ages and the last seq of every device."""
        ...

    def prune_confirmed(self, older_than_s: float, now: float | None = None) -> int:
        """Delete CONFIRMED events confirmed at least ``older_than_s`` ago; return how many."""
        ...

    def close(self) -> None:
        """Finish the writes already submitted, then release the storage; idempotent."""
        ...


def check_name(what: str, value: object) -> str:
    """Return ``value`` if it is a usable device id or kind, else raise ``InvalidArgument``."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{what} must be a str, not {type(value).__name__}")
    if not value or not value.strip():
        raise InvalidArgument(f"{what} must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidArgument(f"{what} is {len(value)} characters long; at most {MAX_NAME_LENGTH}")
    if not value.isprintable():
        raise InvalidArgument(f"{what} {value!r} contains control characters")
    return value


def check_time(what: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite number of seconds."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(f"{what} must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value):
        raise InvalidArgument(f"{what} must be finite, not {value!r}")
    return float(value)


def check_seq(value: object) -> int:
    """Return ``value`` if it is a valid sequence number (an int >= 1)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"seq must be an int, not {type(value).__name__}")
    if not 1 <= value <= MAX_SEQ:
        raise InvalidArgument(f"seq must be within 1..{MAX_SEQ}, not {value}")
    return value


def check_cursor(device_id: str | None, after_seq: object) -> int:
    """Return ``after_seq`` if it is a valid ``due`` cursor (0, or a seq with a device)."""
    if after_seq == 0 and not isinstance(after_seq, bool) and isinstance(after_seq, int):
        return 0
    if device_id is None:
        raise InvalidArgument("after_seq needs a device_id: seqs are numbered per device")
    return check_seq(after_seq)


def check_seqs(seqs: Iterable[int]) -> tuple[int, ...]:
    """Return the seqs as a tuple (duplicates kept) after checking each one."""
    if isinstance(seqs, str | bytes):
        raise InvalidArgument("seqs must be an iterable of int, not a string")
    return tuple(check_seq(s) for s in seqs)


def check_reason(value: object) -> str:
    """Return ``value`` if it is a usable dead-letter reason (non-empty text, <= 1000 chars)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument("reason must be a non-empty str")
    if len(value) > MAX_REASON_LENGTH:
        raise InvalidArgument(
            f"reason is {len(value)} characters long; at most {MAX_REASON_LENGTH}"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidArgument(f"reason is not valid Unicode text: {exc.reason}") from None
    return value


def check_limit(value: object) -> int:
    """Return ``value`` if it is a usable row limit (an int >= 0)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgument(f"limit must be an int >= 0, not {value!r}")
    return value


class _EventIds:
    """Random (version 4) UUID strings, drawing os.urandom 4 KiB at a time.

    ``uuid.uuid4()`` makes one getrandom() call per id, and CPython lets the GIL go around
    it: under load every append would hand the interpreter to another thread mid-way. One
    call per 256 ids keeps the same source of randomness without that. The buffer is
    dropped in a forked child, which must never repeat its parent's ids.
    """

    _CHUNK = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._pos = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._pos = 0

    def __call__(self) -> str:
        with self._lock:
            if self._pos + 16 > len(self._buffer):
                self._buffer = os.urandom(self._CHUNK)
                self._pos = 0
            raw = self._buffer[self._pos : self._pos + 16]
            self._pos += 16
        return str(uuid.UUID(bytes=raw, version=4))


#: A new random event id (a canonical UUID 4 string).
new_event_id = _EventIds()


#: Keys that must never reach the outbox (and thus the disk and the central system).
SECRET_KEYS = frozenset({"pin", "staff_pin", "patron_pin", "password", "passwd"})


def _secret_key(value: object) -> str | None:
    """Return the first secret-named object key anywhere in parsed JSON, if any."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            for key, inner in item.items():
                if key.lower() in SECRET_KEYS:
                    return str(key)
                pending.append(inner)
        elif isinstance(item, list):
            pending.extend(item)
    return None


@dataclass(frozen=True, slots=True)
class CheckedAppend:
    """The arguments of one append after validation (shared by every back-end)."""

    device_id: str
    kind: str
    payload: str
    payload_bytes: int
    event_time: float
    clock_trusted: bool
    event_id: str
    event_id_given: bool


def check_append(
    device_id: object,
    kind: object,
    payload: object,
    *,
    event_time: object,
    clock_trusted: object,
    event_id: object,
    default_time: float,
    max_payload_bytes: int,
) -> CheckedAppend:
    """Validate an append's arguments; raise ``InvalidArgument`` naming the first bad one."""
    check_name("device_id", device_id)
    check_name("kind", kind)
    if not isinstance(payload, str):
        raise InvalidArgument(f"payload must be JSON text (str), not {type(payload).__name__}")
    try:
        size = len(payload.encode("utf-8"))
    except UnicodeEncodeError as exc:
        # SQLite stores UTF-8; a lone surrogate cannot be stored, so refuse it here, by name.
        raise InvalidArgument(
            f"payload is not valid Unicode text: {exc.reason} at {exc.start}"
        ) from None
    if size > max_payload_bytes:
        raise InvalidArgument(f"payload is {size} bytes; at most {max_payload_bytes}")
    try:
        parsed = json.loads(payload)
    except ValueError as exc:
        raise InvalidArgument(f"payload is not JSON text: {exc}") from None
    secret = _secret_key(parsed)
    if secret is not None:
        raise InvalidArgument(
            f"payload carries a {secret!r} field; PINs and passwords are never stored"
        )
    if not isinstance(clock_trusted, bool):
        raise InvalidArgument(f"clock_trusted must be a bool, not {type(clock_trusted).__name__}")
    when = default_time if event_time is None else check_time("event_time", event_time)
    if event_id is None:
        return CheckedAppend(
            str(device_id), str(kind), payload, size, when, clock_trusted, new_event_id(), False
        )
    if not isinstance(event_id, str):
        raise InvalidArgument(f"event_id must be a UUID string, not {type(event_id).__name__}")
    try:
        canonical = str(uuid.UUID(event_id))
    except ValueError:
        raise InvalidArgument(f"event_id {event_id!r} is not a UUID") from None
    if canonical != event_id:
        raise InvalidArgument(f"event_id {event_id!r} is not in canonical form ({canonical})")
    return CheckedAppend(
        str(device_id), str(kind), payload, size, when, clock_trusted, event_id, True
    )
