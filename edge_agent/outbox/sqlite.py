"""``SqliteOutbox``: the durable outbox, one SQLite file in WAL mode with synchronous=FULL.

Two connections to the file:

* the **writer**, owned by a :class:`~edge_agent.outbox.groupcommit.GroupCommitWriter`
  thread. Every change (append, mark_sent, …) is a job; the thread runs the jobs that are
  waiting in one ``BEGIN IMMEDIATE … COMMIT`` and releases their callers only after the
  commit. If a shared transaction fails, each of its jobs is run again in a transaction of
  its own, so one bad write (or a disk that filled up half-way) costs only its own caller
  an error, named by :class:`OutboxStorageError`, and nothing committed before is touched.
* a **reader** for ``due``, ``get``, ``stats`` and the staff lists. WAL lets it read the
  last committed state without waiting for the writer's fsync.

``PRAGMA synchronous=FULL`` makes a commit survive a power cut (``NORMAL`` may lose the
last ones in WAL mode); ``sqlite_file.connect`` sets it and checks that WAL really is in
use. The optional ``max_db_bytes`` caps the file through
``PRAGMA max_page_count`` so that the outbox cannot fill an SD card that the OS also needs:
at the cap SQLite reports SQLITE_FULL ("database or disk is full"), appends fail with
:class:`OutboxStorageError` saying so, and they work again as soon as pruning frees pages.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from edge_agent.outbox.contract import (
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
    InvalidArgument,
    OutboxClosed,
    storage_error,
)
from edge_agent.outbox.groupcommit import GroupCommitPolicy, GroupCommitWriter
from edge_agent.outbox.migrations import EVENTS, migrate
from edge_agent.outbox.sqlite_file import check_header, connect
from edge_agent.outbox.sqlite_jobs import (
    COLUMNS,
    SELECT_EVENT,
    TAIL,
    Append,
    DeadLetter,
    DiscardDead,
    MarkConfirmed,
    MarkSent,
    Prune,
    RetryDead,
    Tx,
    WriteJob,
    WriterCache,
    decode,
)

__all__ = ["SqliteOutbox"]

log = logging.getLogger(__name__)

_J = TypeVar("_J", bound=WriteJob)

# The first term repeats the partial index's WHERE word for word, so SQLite uses that
# index and walks the open rows in append order, stopping at the limit.
_DUE = SELECT_EVENT + (
    " WHERE state IN ('pending', 'sent') AND (state = 'pending' OR sent_at <= ?)"
)
_GET = SELECT_EVENT + " WHERE device_id = ? AND seq = ?"
_TOTALS = "SELECT state, rows, bytes FROM outbox_state_totals"
_LAST_SEQS = (
    "SELECT device_id, max(seq_floor, coalesce("
    "(SELECT max(seq) FROM outbox_events e WHERE e.device_id = d.device_id), 0))"
    " FROM outbox_devices d"
)
_OLDEST_OPEN = (
    "SELECT created_at FROM outbox_events WHERE state IN ('pending', 'sent') ORDER BY id LIMIT 1"
)
_OLDEST_DEAD = "SELECT created_at FROM outbox_events WHERE state = 'dead' ORDER BY id LIMIT 1"


class SqliteOutbox:
    """The durable :class:`~edge_agent.outbox.contract.Outbox` in one SQLite file.

    ``path``'s parent directory is created if missing. An existing file is migrated to the
    current schema; a newer or foreign one is refused (``OutboxSchemaError``), never
    recreated. ``on_commit(n)`` is called on the writer thread after each commit of ``n``
    writes (for metrics; it must be quick and must not call the outbox).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        limits: OutboxLimits | None = None,
        group_commit: GroupCommitPolicy | None = None,
        clock: Callable[[], float] = time.time,
        max_db_bytes: int | None = None,
        busy_timeout_s: float = 5.0,
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        self._path = Path(path)
        self._limits = limits or OutboxLimits()
        self._clock = clock
        self._on_commit = on_commit
        self._cache = WriterCache()  # writer thread only
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(f"cannot create the directory of {self._path}", exc) from exc
        check_header(self._path)
        opened: list[sqlite3.Connection] = []
        try:
            self._conn = connect(self._path, busy_timeout_s=busy_timeout_s)
            opened.append(self._conn)
            migrate(self._conn, name=str(self._path))
            if max_db_bytes is not None:
                self._cap_file(max_db_bytes)
            self._reader = connect(self._path, busy_timeout_s=busy_timeout_s, read_only=True)
            opened.append(self._reader)
        except BaseException:
            for conn in opened:
                conn.close()
            raise

        self._db = sqlite_utils.Database(
            self._reader, recursive_triggers=False, execute_plugins=False
        )
        self._read_lock = threading.Lock()
        self._closed = False
        self._policy = group_commit or GroupCommitPolicy()
        self._writer: GroupCommitWriter[WriteJob] = GroupCommitWriter(
            self._execute,
            self._policy,
            name=f"outbox-writer:{self._path.name}",
            on_exit=self._conn.close,
        )

    def _cap_file(self, max_db_bytes: int) -> None:
        if isinstance(max_db_bytes, bool) or not isinstance(max_db_bytes, int) or max_db_bytes < 1:
            raise InvalidArgument(f"max_db_bytes must be a positive int, not {max_db_bytes!r}")
        page_size = int(self._conn.execute("PRAGMA page_size").fetchone()[0])
        pages = max(1, max_db_bytes // page_size)
        # SQLite never lowers the cap below the file's current size; it reports what it set.
        got = int(self._conn.execute(f"PRAGMA max_page_count = {pages:d}").fetchone()[0])
        if got > pages:
            log.warning(
                "outbox store %s is already %d bytes, above max_db_bytes=%d",
                self._path,
                got * page_size,
                max_db_bytes,
            )

    @property
    def path(self) -> Path:
        """The store's file."""
        return self._path

    @property
    def limits(self) -> OutboxLimits:
        """The caps append enforces."""
        return self._limits

    # ------------------------------------------------------------------ writes

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
        """Store a new PENDING event and return it after its commit (see ``Outbox``)."""
        writer = self._writer
        writer.enter()
        try:
            job = Append(
                check_append(
                    device_id,
                    kind,
                    payload,
                    event_time=event_time,
                    clock_trusted=clock_trusted,
                    event_id=event_id,
                    default_time=self._clock(),
                    max_payload_bytes=self._limits.max_payload_bytes,
                )
            )
        except BaseException:
            writer.leave()
            raise
        writer.submit(job)
        return job.event()

    def _targeted(self, job_of: Callable[[], _J]) -> _J:
        """Build a job (checking arguments inside the writer's count) and run it."""
        writer = self._writer
        writer.enter()
        try:
            job = job_of()
        except BaseException:
            writer.leave()
            raise
        writer.submit(job)
        return job

    def mark_sent(self, device_id: str, seqs: Iterable[int]) -> None:
        """Record a broker acknowledgement for these seqs (see ``Outbox``)."""
        self._targeted(lambda: MarkSent(check_name("device_id", device_id), _unique(seqs)))

    def mark_confirmed(self, device_id: str, seqs: Iterable[int]) -> int:
        """Record the central system's receipt; return how many events changed."""
        job = self._targeted(
            lambda: MarkConfirmed(check_name("device_id", device_id), _unique(seqs))
        )
        return job.result

    def dead_letter(self, device_id: str, seq: int, reason: str) -> None:
        """Move a PENDING/SENT event to DEAD (see ``Outbox``)."""
        self._targeted(
            lambda: DeadLetter(
                check_name("device_id", device_id), check_seq(seq), check_reason(reason)
            )
        )

    def retry_dead(self, device_id: str, seq: int) -> bool:
        """Move a DEAD event back to PENDING; False when it was not DEAD."""
        job = self._targeted(
            lambda: RetryDead(check_name("device_id", device_id), (check_seq(seq),))
        )
        return job.result == 1

    def discard_dead(self, device_id: str, seq: int) -> bool:
        """Move a DEAD event to DISCARDED (kept as audit trail); False when it was not DEAD."""
        job = self._targeted(
            lambda: DiscardDead(check_name("device_id", device_id), (check_seq(seq),))
        )
        return job.result == 1

    def prune_confirmed(self, older_than_s: float, now: float | None = None) -> int:
        """Delete CONFIRMED events confirmed at least ``older_than_s`` ago; return how many."""

        def build() -> Prune:
            age = check_time("older_than_s", older_than_s)
            if age < 0:
                raise InvalidArgument(f"older_than_s must be >= 0, not {older_than_s!r}")
            return Prune(self._now(now) - age)

        job = self._targeted(build)
        return job.result

    def _execute(
        self, jobs: list[WriteJob], wake_previous: Callable[[], None], *, again: bool = False
    ) -> None:
        """Writer thread: commit ``jobs`` together, or each alone if together fails.

        ``wake_previous`` (idempotent) wakes the callers of the previous batch; it is called
        just before COMMIT so that they run while this commit waits for the disk.
        """
        try:
            self._transact(jobs, wake_previous)
        except Exception as exc:
            if len(jobs) > 1:
                log.warning("outbox batch of %d failed (%s); committing each alone", len(jobs), exc)
                for job in jobs:
                    self._execute([job], wake_previous)
            elif isinstance(exc, sqlite3.IntegrityError) and not again:
                # A seq the cache handed out was taken by another writer of this file; the
                # cache is gone now (see _transact), so one more try uses the store's figures.
                self._execute(jobs, wake_previous, again=True)
            else:
                jobs[0].error = storage_error(f"cannot {jobs[0].what}; nothing was written", exc)

    def _transact(self, jobs: list[WriteJob], wake_previous: Callable[[], None]) -> None:
        conn = self._conn
        cache = self._cache
        refresh = time.monotonic() >= cache.expires
        if refresh:
            cache.held = None
            cache.expires = time.monotonic() + cache.max_age_s
        now = self._clock()
        conn.execute("BEGIN IMMEDIATE")
        try:
            tx = Tx(conn, now, self._limits, cache)
            if refresh:
                tx.fold()  # keeps the tail that readers add up about a second long
            run: list[Append] = []
            for job in jobs:
                if isinstance(job, Append):
                    run.append(job)
                    continue
                if run:
                    tx.append_all(run)
                    run = []
                if tx.unfolded:
                    tx.fold()
                job.apply(tx)
            if run:
                tx.append_all(run)
            wake_previous()
            conn.execute("COMMIT")
        except BaseException:
            cache.clear()  # it may hold figures of the transaction that is rolled back
            # After SQLITE_FULL or an I/O error SQLite may have rolled back already.
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    log.exception("outbox rollback failed")
            raise
        if self._on_commit is not None:
            try:
                self._on_commit(len(jobs))
            except Exception:
                log.exception("outbox on_commit callback failed")

    # ------------------------------------------------------------------ reads

    def _now(self, now: float | None) -> float:
        return self._clock() if now is None else check_time("now", now)

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[OutboxEvent]:
        # due() and get() run for every publish cycle of the link: raw sqlite3 and tuples,
        # not sqlite-utils' dict rows (which the rarer staff lists below use).
        with self._read_lock:
            self._check_open()
            try:
                rows = self._reader.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise storage_error("cannot read the outbox", exc) from exc
        return [decode(row) for row in rows]

    def _check_open(self) -> None:
        if self._closed:
            raise OutboxClosed("the outbox is closed")

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
        cursor = check_cursor(device_id, after_seq)
        cutoff = self._now(now) - check_time("resend_after", resend_after)
        if device_id is None:
            return self._query(_DUE + " ORDER BY id LIMIT ?", (cutoff, limit))
        check_name("device_id", device_id)
        # "+device_id" and "+seq" keep SQLite off the (device_id, seq) index, which would
        # visit the device's whole confirmed history; the open index holds only what may
        # be due. Open rows below the cursor are skipped there, without being decoded.
        return self._query(
            _DUE + " AND +device_id = ? AND +seq > ? ORDER BY id LIMIT ?",
            (cutoff, device_id, cursor, limit),
        )

    def get(self, device_id: str, seq: int) -> OutboxEvent | None:
        """Return one event, or None when the outbox does not hold it."""
        found = self._query(
            _GET,
            (check_name("device_id", device_id), check_seq(seq)),
        )
        return found[0] if found else None

    def _in_state(self, state: str, limit: int) -> list[OutboxEvent]:
        check_limit(limit)
        with self._read_lock:
            self._check_open()
            try:
                rows = list(
                    self._db.table(EVENTS).rows_where(
                        "state = ?", [state], order_by="id", limit=limit, select=", ".join(COLUMNS)
                    )
                )
            except sqlite3.Error as exc:
                raise storage_error("cannot read the outbox", exc) from exc
        return [decode(row) for row in rows]

    def dead_letters(self, limit: int = 100) -> list[OutboxEvent]:
        """Return DEAD events, oldest first."""
        return self._in_state("dead", limit)

    def discarded(self, limit: int = 100) -> list[OutboxEvent]:
        """Return DISCARDED events (staff decisions, kept), oldest first."""
        return self._in_state("discarded", limit)

    def stats(self, now: float | None = None) -> OutboxStats:
        """Return counts and bytes per state, ages, last seqs and the size on disk."""
        at = self._now(now)
        with self._read_lock:
            self._check_open()
            conn = self._reader
            try:
                conn.execute("BEGIN")  # one snapshot for every figure
                try:
                    totals = conn.execute(_TOTALS).fetchall() + conn.execute(TAIL).fetchall()
                    last = conn.execute(_LAST_SEQS).fetchall()
                    oldest_open = conn.execute(_OLDEST_OPEN).fetchone()
                    oldest_dead = conn.execute(_OLDEST_DEAD).fetchone()
                finally:
                    conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise storage_error("cannot read the outbox statistics", exc) from exc
        counts = dict.fromkeys(EventState, 0)
        sizes = dict.fromkeys(EventState, 0)
        for state, rows, size in totals:  # the totals, then the tail above their watermark
            if state in counts:
                counts[EventState(state)] += rows
                sizes[EventState(state)] += size
        return OutboxStats(
            counts=counts,
            payload_bytes=sizes,
            oldest_unconfirmed_age_s=None if oldest_open is None else at - oldest_open[0],
            oldest_dead_age_s=None if oldest_dead is None else at - oldest_dead[0],
            last_seq=dict(last),
            storage_bytes=self._storage_bytes(),
            limits=self._limits,
        )

    def _storage_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            # There is no WAL file right after a clean checkpoint.
            with contextlib.suppress(OSError):
                total += os.path.getsize(f"{self._path}{suffix}")
        return total

    # ------------------------------------------------------------------ lifecycle

    def close(self, timeout_s: float | None = None) -> None:
        """Finish the writes already submitted, stop the writer, close the file; idempotent.

        ``timeout_s`` bounds the wait for a writer stuck on a stalled disk (default: the
        commit timeout); it then releases the file as soon as its batch returns.
        """
        with self._read_lock:
            if self._closed:
                return
            self._closed = True
        stopped = self._writer.close(
            self._policy.commit_timeout_s if timeout_s is None else timeout_s
        )
        if not stopped:
            log.error(
                "outbox writer for %s did not stop in time; it will close the file", self._path
            )
        with self._read_lock:
            self._reader.close()

    def __enter__(self) -> SqliteOutbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqliteOutbox({str(self._path)!r})"


def _unique(seqs: Iterable[int]) -> tuple[int, ...]:
    """Check the seqs and drop repeats (a seq marked twice in one call counts once)."""
    return tuple(dict.fromkeys(check_seqs(seqs)))
