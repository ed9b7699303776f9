"""The simulator's SQLite database: events, delivery bookkeeping and the circulation model.

One file may be shared by several simulator instances (processes or threads), so everything
that decides "stored once" lives in the database, not in memory:

- ``events`` has ``UNIQUE (device_id, seq)``: a second copy of an event is dropped whoever
  receives it. Device ids are MQTT usernames, unique on a broker, so the key needs no library.
- ``device_seq`` and ``gaps`` track, per device, the highest sequence number accounted for and
  the ranges still missing; a late event splits or removes its range.
- ``counters`` (duplicates, rejected messages by category, gaps filled) and ``rejected`` (the
  most recent reasons, never the payload, which could hold a PIN) are shared too.
- ``items``, ``patrons``, ``holds`` hold the circulation state that events change and requests
  read; ``exceptions`` lists conflicts for staff; ``cache_versions`` numbers cache pushes.

Every write runs in ``BEGIN IMMEDIATE`` (:func:`write_txn`), which takes the write lock at once:
instances sharing the file serialise on it, so duplicate checks and gap updates see each other's
commits. The journal is WAL with ``synchronous=FULL``: a committed batch survives a power cut,
and receipts are sent only after that commit. Plain :mod:`sqlite3` is used rather than
sqlite-utils because the ingest path needs explicit ``BEGIN IMMEDIATE`` transactions, and
sqlite-utils' write helpers commit on their own.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .seed import Seed

__all__ = [
    "SCHEMA",
    "GapChange",
    "account_seq",
    "bump",
    "connect",
    "ensure_seeded",
    "record_rejected",
    "register_device",
    "write_txn",
]

#: Keep this many recent rejection reasons; the counters keep the totals.
REJECTED_KEPT = 2000

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    library_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    seq INTEGER NOT NULL CHECK (seq >= 1),
    device_kind TEXT NOT NULL,
    kind TEXT NOT NULL,
    event_id TEXT NOT NULL,
    time TEXT NOT NULL,
    clock_trusted INTEGER NOT NULL,
    offline INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    instance TEXT NOT NULL,
    outcome TEXT NOT NULL,
    envelope TEXT NOT NULL,
    UNIQUE (device_id, seq)
);
CREATE INDEX IF NOT EXISTS events_by_kind ON events (kind);
CREATE TABLE IF NOT EXISTS device_seq (device_id TEXT PRIMARY KEY, max_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS gaps (
    device_id TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL CHECK (last_seq >= first_seq),
    detected_at TEXT NOT NULL,
    PRIMARY KEY (device_id, first_seq)
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT NOT NULL,
    device_id TEXT NOT NULL DEFAULT '',
    value INTEGER NOT NULL,
    PRIMARY KEY (name, device_id)
);
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY,
    received_at TEXT NOT NULL,
    instance TEXT NOT NULL,
    category TEXT NOT NULL,
    topic TEXT NOT NULL,
    device_id TEXT,
    seq INTEGER,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS exceptions (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    library_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    seq INTEGER,
    event_id TEXT,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    item_id TEXT,
    patron_id TEXT,
    offline INTEGER NOT NULL,
    applied INTEGER NOT NULL,
    resolved_at TEXT
);
CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY,
    library_id TEXT NOT NULL,
    kind TEXT,
    seen INTEGER NOT NULL DEFAULT 0,
    first_seen TEXT,
    last_seen TEXT,
    online INTEGER,
    status TEXT
);
CREATE TABLE IF NOT EXISTS items (
    item_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    author TEXT,
    language TEXT,
    state TEXT NOT NULL CHECK (state IN ('on_shelf', 'on_loan', 'on_hold', 'missing')),
    not_for_loan INTEGER NOT NULL,
    not_for_offline_issue INTEGER NOT NULL,
    patron_id TEXT,
    due_date TEXT,
    renewals INTEGER NOT NULL DEFAULT 0,
    last_device TEXT,
    last_seq INTEGER,
    last_time TEXT,
    last_trusted INTEGER
);
CREATE INDEX IF NOT EXISTS items_by_patron ON items (patron_id);
CREATE TABLE IF NOT EXISTS patrons (
    patron_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    language TEXT,
    blocked INTEGER NOT NULL,
    block_reason TEXT,
    fines INTEGER NOT NULL,
    max_loans INTEGER
);
CREATE TABLE IF NOT EXISTS holds (
    id INTEGER PRIMARY KEY,
    item_id TEXT NOT NULL,
    patron_id TEXT NOT NULL,
    placed_at TEXT NOT NULL,
    ready INTEGER NOT NULL DEFAULT 0,
    pickup_by TEXT,
    UNIQUE (item_id, patron_id)
);
CREATE TABLE IF NOT EXISTS cache_versions (
    library_id TEXT NOT NULL,
    cache TEXT NOT NULL,
    version INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    pushed_at TEXT NOT NULL,
    PRIMARY KEY (library_id, cache)
);
"""


def connect(path: Path) -> sqlite3.Connection:
    """Open the database in WAL mode with ``synchronous=FULL`` and create missing tables.

    The connection is in autocommit mode: callers group writes with :func:`write_txn`. It may
    be used from one thread at a time (each simulator thread opens its own).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, timeout=30.0, check_same_thread=False)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        with write_txn(conn):
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
    except sqlite3.Error:
        conn.close()
        raise
    return conn


@contextmanager
def write_txn(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction that holds the database's write lock from its first statement."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def bump(conn: sqlite3.Connection, name: str, device_id: str = "", by: int = 1) -> None:
    """Add ``by`` to a shared counter."""
    conn.execute(
        "INSERT INTO counters (name, device_id, value) VALUES (?, ?, ?)"
        " ON CONFLICT (name, device_id) DO UPDATE SET value = value + excluded.value",
        (name, device_id, by),
    )


def record_rejected(
    conn: sqlite3.Connection,
    *,
    now: str,
    instance: str,
    category: str,
    topic: str,
    reason: str,
    device_id: str | None = None,
    seq: int | None = None,
) -> None:
    """Count a rejected message and keep its reason (never its payload)."""
    bump(conn, f"rejected:{category}")
    cursor = conn.execute(
        "INSERT INTO rejected (received_at, instance, category, topic, device_id, seq, reason)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (now, instance, category, topic[:300], device_id, seq, reason[:500]),
    )
    if cursor.lastrowid is not None and cursor.lastrowid % 100 == 0:
        # Pruned now and then rather than on every insert: a flood of garbage must not cost
        # a delete per message.
        conn.execute("DELETE FROM rejected WHERE id <= ?", (cursor.lastrowid - REJECTED_KEPT,))


@dataclass(frozen=True, slots=True)
class GapChange:
    """What accounting for one sequence number did to a device's gaps."""

    opened: tuple[int, int] | None = None
    filled: int | None = None


def account_seq(conn: sqlite3.Connection, device_id: str, seq: int, now: str) -> GapChange:
    """Note that ``seq`` of ``device_id`` is accounted for (stored or rejected).

    A number beyond the highest seen opens a gap for the numbers skipped; a number inside a
    gap fills it (splitting the range). A number already accounted for changes nothing.
    """
    row = conn.execute(
        "SELECT max_seq FROM device_seq WHERE device_id = ?", (device_id,)
    ).fetchone()
    highest = int(row["max_seq"]) if row else 0
    if seq > highest:
        conn.execute(
            "INSERT INTO device_seq (device_id, max_seq) VALUES (?, ?)"
            " ON CONFLICT (device_id) DO UPDATE SET max_seq = excluded.max_seq",
            (device_id, seq),
        )
        if seq == highest + 1:
            return GapChange()
        conn.execute(
            "INSERT INTO gaps (device_id, first_seq, last_seq, detected_at) VALUES (?, ?, ?, ?)",
            (device_id, highest + 1, seq - 1, now),
        )
        return GapChange(opened=(highest + 1, seq - 1))
    gap = conn.execute(
        "SELECT first_seq, last_seq, detected_at FROM gaps"
        " WHERE device_id = ? AND first_seq <= ? AND last_seq >= ?",
        (device_id, seq, seq),
    ).fetchone()
    if gap is None:
        return GapChange()
    first, last, detected = int(gap["first_seq"]), int(gap["last_seq"]), gap["detected_at"]
    conn.execute("DELETE FROM gaps WHERE device_id = ? AND first_seq = ?", (device_id, first))
    for low, high in ((first, seq - 1), (seq + 1, last)):
        if low <= high:
            conn.execute(
                "INSERT INTO gaps (device_id, first_seq, last_seq, detected_at)"
                " VALUES (?, ?, ?, ?)",
                (device_id, low, high, detected),
            )
    bump(conn, "gap_filled", device_id)
    return GapChange(filled=seq)


def register_device(
    conn: sqlite3.Connection,
    *,
    library_id: str,
    device_id: str,
    kind: str | None,
    now: str,
) -> bool:
    """Mark a device as seen now; return True when this is the first time it was seen."""
    row = conn.execute("SELECT seen FROM devices WHERE device_id = ?", (device_id,)).fetchone()
    if row is None:
        conn.execute(
            "INSERT INTO devices (device_id, library_id, kind, seen, first_seen, last_seen)"
            " VALUES (?, ?, ?, 1, ?, ?)",
            (device_id, library_id, kind, now, now),
        )
        return True
    conn.execute(
        "UPDATE devices SET seen = 1, first_seen = coalesce(first_seen, ?), last_seen = ?,"
        " kind = coalesce(?, kind), library_id = ? WHERE device_id = ?",
        (now, now, kind, library_id, device_id),
    )
    return not row["seen"]


def ensure_seeded(
    conn: sqlite3.Connection, seed: Seed, library_id: str, today: dt.date, now: str
) -> str | None:
    """Load the seed's circulation state unless the database has one already.

    Returns the fingerprint of the seed the database was built from when that differs from
    ``seed`` (so the caller can warn), else None. The seed's devices are added either way.
    """
    with write_txn(conn):
        for device in seed.devices:
            conn.execute(
                "INSERT OR IGNORE INTO devices (device_id, library_id, kind, seen)"
                " VALUES (?, ?, ?, 0)",
                (device.device_id, library_id, device.kind.value),
            )
        row = conn.execute("SELECT value FROM meta WHERE key = 'seed'").fetchone()
        if row is not None:
            return None if row["value"] == seed.fingerprint() else str(row["value"])
        conn.execute("INSERT INTO meta (key, value) VALUES ('seed', ?)", (seed.fingerprint(),))
        conn.executemany(
            "INSERT INTO patrons (patron_id, name, language, blocked, block_reason, fines,"
            " max_loans) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (p.patron_id, p.name, p.language, p.blocked, p.block_reason, p.fines, p.max_loans)
                for p in seed.patrons
            ],
        )
        loans = {loan.item_id: loan for loan in seed.loans}
        ready = {h.item_id for h in seed.holds if h.ready}
        rows = []
        for item in seed.items:
            loan = loans.get(item.item_id)
            state = (
                "on_loan"
                if loan
                else "on_hold"
                if item.item_id in ready
                else "missing"
                if item.missing
                else "on_shelf"
            )
            due = (today + dt.timedelta(days=loan.due_in_days)).isoformat() if loan else None
            rows.append(
                (
                    item.item_id,
                    item.title,
                    item.author,
                    item.language,
                    state,
                    item.not_for_loan,
                    item.not_for_offline_issue,
                    loan.patron_id if loan else None,
                    due,
                    loan.renewals if loan else 0,
                )
            )
        conn.executemany(
            "INSERT INTO items (item_id, title, author, language, state, not_for_loan,"
            " not_for_offline_issue, patron_id, due_date, renewals)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.executemany(
            "INSERT INTO holds (item_id, patron_id, placed_at, ready, pickup_by)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                (
                    h.item_id,
                    h.patron_id,
                    now,
                    h.ready,
                    (today + dt.timedelta(days=h.pickup_in_days)).isoformat() if h.ready else None,
                )
                for h in seed.holds
            ],
        )
    return None
