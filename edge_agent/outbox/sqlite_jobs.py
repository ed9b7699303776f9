"""The SQLite outbox's writes: one :class:`Job` class per write, and the SQL each runs.

The writer thread runs a batch of jobs inside one transaction (:class:`Tx`); this module
knows nothing of threads. Appends are the hot path and are applied a run at a time
(:meth:`Tx.append_all`): one ``executemany`` of the rows through the raw ``sqlite3``
connection, because per-row calls through a higher-level API would cost more than the
commit they share. A job that is refused for a reason of its own (``OutboxFull``,
``EventIdConflict``, ``EventNotFound``) records its error and writes nothing, so it never
spoils the rest of its batch.

Seqs are allocated inside the inserting transaction: the writer holds the write lock
(``BEGIN IMMEDIATE``) while it numbers the rows, from its :class:`WriterCache` of each
device's last seq, and the ``(device_id, seq)`` unique key is the final judge. If the
transaction does not commit, the cache is dropped and the numbers are given out again
from what the store holds, so a seq is never skipped, reused or acknowledged uncommitted.

Every ``apply`` resets the job's results first: when a batch fails the writer runs each of
its jobs again in a transaction of its own, and nothing from the failed attempt may leak.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from edge_agent.outbox.contract import (
    CheckedAppend,
    EventState,
    OutboxEvent,
    OutboxLimits,
)
from edge_agent.outbox.errors import (
    EventIdConflict,
    EventNotFound,
    OutboxFull,
    OutboxStorageError,
)
from edge_agent.outbox.groupcommit import Job

__all__ = [
    "COLUMNS",
    "TAIL",
    "Append",
    "DeadLetter",
    "DiscardDead",
    "MarkConfirmed",
    "MarkSent",
    "Prune",
    "RetryDead",
    "Tx",
    "WriteJob",
    "WriterCache",
    "decode",
    "seq_runs",
]

#: Columns of an event, in OutboxEvent's field order.
COLUMNS = (
    "device_id",
    "seq",
    "event_id",
    "kind",
    "payload",
    "event_time",
    "clock_trusted",
    "state",
    "attempts",
    "created_at",
    "sent_at",
    "confirmed_at",
    "dead_reason",
    "discarded_at",
)
# The SQL is written out literally (table names and state lists included) so that it can
# be read and searched as it runs; the contract tests check it against the state rules.
SELECT_EVENT = (
    "SELECT device_id, seq, event_id, kind, payload, event_time, clock_trusted, state,"
    " attempts, created_at, sent_at, confirmed_at, dead_reason, discarded_at FROM outbox_events"
)
_INSERT = (
    "INSERT INTO outbox_events(device_id, seq, event_id, kind, payload, event_time,"
    " clock_trusted, state, attempts, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?)"
)
# The tail: events above the totals' watermark, per state (see migrations). The scalar
# subquery is evaluated once, so this walks the rowid range of the newest appends only.
TAIL = (
    "SELECT state, count(*), coalesce(sum(length(CAST(payload AS BLOB))), 0)"
    " FROM outbox_events WHERE id > (SELECT through FROM outbox_counted) GROUP BY state"
)
_HELD = (  # the backlog the cap counts (HELD: pending, sent, dead): totals plus tail
    "SELECT coalesce(sum(rows), 0), coalesce(sum(bytes), 0) FROM ("
    "SELECT rows, bytes FROM outbox_state_totals WHERE state IN ('pending', 'sent', 'dead')"
    " UNION ALL SELECT 1, length(CAST(payload AS BLOB)) FROM outbox_events"
    " WHERE id > (SELECT through FROM outbox_counted) AND state IN ('pending', 'sent', 'dead'))"
)
_ADD_TO_TOTALS = (
    "INSERT INTO outbox_state_totals(state, rows, bytes) VALUES (?, ?, ?)"
    " ON CONFLICT(state) DO UPDATE SET rows = rows + excluded.rows,"
    " bytes = bytes + excluded.bytes"
)
# Every event stored is counted now: the watermark moves to the highest id. It moves down
# after a prune deleted the newest ids, which SQLite hands out again.
_SETTLE = (
    "UPDATE outbox_counted SET through = (SELECT coalesce(max(id), 0) FROM outbox_events)"
    " WHERE through IS NOT (SELECT coalesce(max(id), 0) FROM outbox_events)"
)
# A device's last seq is the larger of its seq_floor (raised by pruning) and its stored seqs.
_LAST_SEQ = (
    "SELECT (SELECT seq_floor FROM outbox_devices WHERE device_id = ?1),"
    " coalesce((SELECT max(seq) FROM outbox_events WHERE device_id = ?1), 0)"
)
_REGISTER_DEVICE = "INSERT INTO outbox_devices(device_id, seq_floor) VALUES (?, 0)"
_BY_EVENT_ID = SELECT_EVENT + " WHERE event_id = ?"
_EXISTS = "SELECT 1 FROM outbox_events WHERE device_id = ? AND seq = ?"
# The targeted updates take a range of seqs (first, last): the link marks runs of
# consecutive seqs, so one statement per run instead of one per event.
_MARK_SENT = (  # from OPEN
    "UPDATE outbox_events SET state = 'sent', sent_at = ?, attempts = attempts + 1"
    " WHERE device_id = ? AND seq BETWEEN ? AND ? AND state IN ('pending', 'sent')"
)
_MARK_CONFIRMED = (  # from CONFIRMABLE
    "UPDATE outbox_events SET state = 'confirmed', confirmed_at = ?"
    " WHERE device_id = ? AND seq BETWEEN ? AND ? AND state <> 'confirmed'"
)
_DEAD_LETTER = (  # from DEAD_LETTERABLE
    "UPDATE outbox_events SET state = 'dead', dead_reason = ?"
    " WHERE device_id = ? AND seq BETWEEN ? AND ? AND state IN ('pending', 'sent')"
)
_RETRY_DEAD = (
    "UPDATE outbox_events SET state = 'pending', sent_at = NULL"
    " WHERE device_id = ? AND seq BETWEEN ? AND ? AND state = 'dead'"
)
_DISCARD_DEAD = (
    "UPDATE outbox_events SET state = 'discarded', discarded_at = ?"
    " WHERE device_id = ? AND seq BETWEEN ? AND ? AND state = 'dead'"
)
# Before pruning, each device's seq_floor rises to its highest seq, so that deleting a
# device's newest events cannot make a seq come round again.
_RAISE_FLOORS = (
    "UPDATE outbox_devices SET seq_floor = max(seq_floor, coalesce("
    "(SELECT max(seq) FROM outbox_events e WHERE e.device_id = outbox_devices.device_id), 0))"
)
_PRUNE = "DELETE FROM outbox_events WHERE state = 'confirmed' AND confirmed_at <= ?"


#: State names as stored, to the enum (a dict lookup is several times cheaper than the
#: enum's own constructor, and decode runs for every row the link reads).
_STATES: dict[object, EventState] = {state.value: state for state in EventState}


def decode(row: Mapping[str, Any] | tuple[Any, ...]) -> OutboxEvent:
    """Turn a stored row (a mapping, or a tuple in ``COLUMNS`` order) into an event."""
    # The tuple test first: it is the link's hot path, and an ABC check costs more.
    values = row if isinstance(row, tuple) else tuple(row[c] for c in COLUMNS)
    if len(values) != len(COLUMNS):
        raise OutboxStorageError(f"an outbox row has {len(values)} columns, not {len(COLUMNS)}")
    (device_id, seq, event_id, kind, payload, event_time, trusted, state, *rest) = values
    known = _STATES.get(state)
    if known is None:
        raise OutboxStorageError(
            f"event {device_id!r} seq {seq!r} in the store has the unknown state {state!r} "
            "(written by a newer libedge, or edited by hand)"
        )
    # Positional arguments: keywords would cost a third more on the link's hot path.
    return OutboxEvent(
        device_id, seq, event_id, kind, payload, event_time, bool(trusted), known, *rest
    )


def seq_runs(seqs: tuple[int, ...]) -> list[tuple[int, int]]:
    """The distinct ``seqs`` as runs of consecutive numbers, ``(first, last)``, ascending."""
    runs: list[tuple[int, int]] = []
    ordered = sorted(set(seqs))
    if not ordered:
        return runs
    lo = hi = ordered[0]
    for seq in ordered[1:]:
        if seq != hi + 1:
            runs.append((lo, hi))
            lo = seq
        hi = seq
    runs.append((lo, hi))
    return runs


class WriterCache:
    """What the writer knows between batches: the backlog size and each device's last seq.

    Reading them costs a statement per batch, and each statement lets the GIL go to a
    waking caller, so the writer keeps them. This is safe because the database stays the
    judge: a seq handed out twice (another process appended meanwhile) breaks the unique
    key, the batch fails, the cache is dropped and every job is retried with fresh figures.
    The backlog size, which only enforces the cap, is re-read at least every
    ``max_age_s`` seconds and after any job other than an append.
    """

    __slots__ = ("expires", "held", "last_seq", "max_age_s")

    def __init__(self, max_age_s: float = 1.0) -> None:
        self.max_age_s = max_age_s
        self.held: tuple[int, int] | None = None  # rows, payload bytes
        self.last_seq: dict[str, int] = {}
        self.expires = 0.0

    def clear(self) -> None:
        """Forget everything (after a failed batch, or when it is too old)."""
        self.held = None
        self.last_seq.clear()


class Tx:
    """What the jobs of one batch share inside its transaction."""

    __slots__ = ("cache", "conn", "limits", "now", "unfolded")

    def __init__(
        self, conn: sqlite3.Connection, now: float, limits: OutboxLimits, cache: WriterCache
    ) -> None:
        self.conn = conn
        self.now = now
        self.limits = limits
        self.cache = cache
        # The tail may hold events (appended by an earlier transaction, or by another
        # process): fold it before the first change that is not an append.
        self.unfolded = True

    def fold(self) -> None:
        """Add the tail to the per-state totals and raise the watermark over it.

        Runs before every change other than an append, so that the totals' triggers only
        ever meet counted rows, and about once a second among appends, so that the tail a
        reader adds up stays short.
        """
        conn = self.conn
        tail = conn.execute(TAIL).fetchall()
        if tail:
            conn.executemany(_ADD_TO_TOTALS, tail)
        conn.execute(_SETTLE)
        self.unfolded = False

    def backlog_changed(self) -> None:
        """Forget the backlog size (a job other than an append may have changed it)."""
        self.cache.held = None

    def append_all(self, jobs: list[Append]) -> None:
        """Store a run of appends: check the cap, allocate seqs, insert in one statement."""
        cache = self.cache
        held = cache.held
        if held is None:
            held = self.conn.execute(_HELD).fetchone()
        rows_held, bytes_held = held
        max_rows, max_bytes = self.limits.max_rows, self.limits.max_bytes
        last_seq = cache.last_seq
        now = self.now
        inserts: list[tuple[object, ...]] = []
        stored: dict[str, Append] = {}
        for job in jobs:
            job.reset()
            a = job.args
            if a.event_id_given and self._known_event_id(job, stored):
                continue
            if (max_rows is not None and rows_held + 1 > max_rows) or (
                max_bytes is not None and bytes_held + a.payload_bytes > max_bytes
            ):
                job.error = OutboxFull(
                    depth_rows=rows_held,
                    depth_bytes=bytes_held,
                    max_rows=max_rows,
                    max_bytes=max_bytes,
                )
                continue
            rows_held += 1
            bytes_held += a.payload_bytes
            device = a.device_id
            seq = last_seq.get(device)
            seq = (self._first_seq(device) if seq is None else seq) + 1
            last_seq[device] = seq
            job.seq, job.created_at = seq, now
            stored[a.event_id] = job
            inserts.append(
                (device, seq, a.event_id, a.kind, a.payload, a.event_time, a.clock_trusted, now)
            )
        if inserts:
            self.conn.executemany(_INSERT, inserts)
            self.unfolded = True
        cache.held = (rows_held, bytes_held)

    def _first_seq(self, device_id: str) -> int:
        """The device's last seq, read from the store; registers a device seen first."""
        floor, stored = self.conn.execute(_LAST_SEQ, (device_id,)).fetchone()
        if floor is None:
            self.conn.execute(_REGISTER_DEVICE, (device_id,))
        return max(int(floor or 0), int(stored))

    def _known_event_id(self, job: Append, stored: Mapping[str, Append]) -> bool:
        """Resolve an append whose event_id exists already; False if the id is new."""
        a = job.args
        earlier = stored.get(a.event_id)
        if earlier is not None:  # the same id twice in one batch
            existing: OutboxEvent | None = earlier.event()
        else:
            row = self.conn.execute(_BY_EVENT_ID, (a.event_id,)).fetchone()
            existing = None if row is None else decode(row)
        if existing is None:
            return False
        if (existing.device_id, existing.kind, existing.payload) == (
            a.device_id,
            a.kind,
            a.payload,
        ):
            job.existing = existing
        else:
            job.error = EventIdConflict(
                f"event_id {a.event_id} already belongs to device {existing.device_id!r} "
                f"seq {existing.seq} ({existing.kind}); not stored again"
            )
        return True


class WriteJob(Job):
    """A write the writer thread applies inside a batch's transaction."""

    __slots__ = ()
    #: What the job does, for error messages ("cannot <what>; nothing was written").
    what = "write to the outbox"

    def apply(self, tx: Tx) -> None:
        """Run this job's SQL in ``tx`` (appends are applied by :meth:`Tx.append_all`)."""
        raise NotImplementedError


class Append(WriteJob):
    """Store one event."""

    __slots__ = ("args", "created_at", "existing", "seq")
    what = "store the event"
    seq: int
    created_at: float
    existing: OutboxEvent | None

    def __init__(self, args: CheckedAppend) -> None:
        super().__init__()
        self.args = args
        self.reset()

    def reset(self) -> None:
        """Clear the results of an earlier attempt."""
        self.error = None
        self.seq = 0
        self.created_at = 0.0
        self.existing = None

    def event(self) -> OutboxEvent:
        """The event as committed (the stored one for a repeated event_id)."""
        if self.existing is not None:
            return self.existing
        a = self.args
        return OutboxEvent(
            device_id=a.device_id,
            seq=self.seq,
            event_id=a.event_id,
            kind=a.kind,
            payload=a.payload,
            event_time=a.event_time,
            clock_trusted=a.clock_trusted,
            state=EventState.PENDING,
            attempts=0,
            created_at=self.created_at,
            sent_at=None,
            confirmed_at=None,
            dead_reason=None,
        )


class _Targeted(WriteJob):
    """A job about some seqs of one device, with an int result."""

    __slots__ = ("device_id", "result", "seqs")

    def __init__(self, device_id: str, seqs: tuple[int, ...]) -> None:
        super().__init__()
        self.device_id = device_id
        self.seqs = seqs
        self.result = 0

    def _each(self, tx: Tx, sql: str, first: object | None = None) -> int:
        """Execute ``sql`` for every run of seqs (``first`` leading the parameters).

        Returns the rows changed. ``seqs`` holds no repeats (the outbox drops them), so
        the runs do not overlap and no row is counted twice.
        """
        self.error = None
        head = () if first is None else (first,)
        device = self.device_id
        return tx.conn.executemany(
            sql, [(*head, device, lo, hi) for lo, hi in seq_runs(self.seqs)]
        ).rowcount


class MarkSent(_Targeted):
    """PENDING/SENT -> SENT for some seqs of one device."""

    __slots__ = ()
    what = "record the broker's acknowledgement"

    def apply(self, tx: Tx) -> None:
        """Mark the seqs sent now."""
        self.result = self._each(tx, _MARK_SENT, tx.now)
        tx.backlog_changed()


class MarkConfirmed(_Targeted):
    """Any state but CONFIRMED -> CONFIRMED for some seqs of one device."""

    __slots__ = ()
    what = "record the central system's receipt"

    def apply(self, tx: Tx) -> None:
        """Mark the seqs confirmed now; ``result`` is how many changed."""
        self.result = self._each(tx, _MARK_CONFIRMED, tx.now)
        tx.backlog_changed()


class DeadLetter(_Targeted):
    """PENDING/SENT -> DEAD for one event."""

    __slots__ = ("reason",)
    what = "dead-letter the event"

    def __init__(self, device_id: str, seq: int, reason: str) -> None:
        super().__init__(device_id, (seq,))
        self.reason = reason

    def apply(self, tx: Tx) -> None:
        """Dead-letter it, or record EventNotFound when there is no such event."""
        self.result = self._each(tx, _DEAD_LETTER, self.reason)
        key = (self.device_id, self.seqs[0])
        if not self.result and tx.conn.execute(_EXISTS, key).fetchone() is None:
            self.error = EventNotFound(
                f"no event {self.device_id!r} seq {self.seqs[0]} in the outbox to dead-letter"
            )
        tx.backlog_changed()


class RetryDead(_Targeted):
    """DEAD -> PENDING for one event."""

    __slots__ = ()
    what = "retry the dead letter"

    def apply(self, tx: Tx) -> None:
        """Put it back in the queue; ``result`` is 1 if it was DEAD."""
        self.result = self._each(tx, _RETRY_DEAD)
        tx.backlog_changed()


class DiscardDead(_Targeted):
    """DEAD -> DISCARDED for one event (kept as the audit trail)."""

    __slots__ = ()
    what = "discard the dead letter"

    def apply(self, tx: Tx) -> None:
        """Discard it now; ``result`` is 1 if it was DEAD."""
        self.result = self._each(tx, _DISCARD_DEAD, tx.now)
        tx.backlog_changed()


class Prune(WriteJob):
    """Delete CONFIRMED events confirmed at or before a cut-off time."""

    __slots__ = ("cutoff", "result")
    what = "prune confirmed events"

    def __init__(self, cutoff: float) -> None:
        super().__init__()
        self.cutoff = cutoff
        self.result = 0

    def apply(self, tx: Tx) -> None:
        """Delete them; ``result`` is how many."""
        self.error = None
        tx.conn.execute(_RAISE_FLOORS)
        self.result = tx.conn.execute(_PRUNE, (self.cutoff,)).rowcount
        tx.fold()  # the newest ids may be gone: lower the watermark before they come back
        tx.backlog_changed()
