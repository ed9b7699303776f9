"""Schema of the SQLite outbox and its migrations, keyed on ``PRAGMA user_version``.

``STEPS[n - 1]`` turns a version ``n - 1`` file into version ``n``; the file's
``user_version`` says how many steps it has had. :func:`migrate` applies the missing steps,
each in its own ``BEGIN IMMEDIATE`` transaction together with the version bump, so a step
either happens completely or not at all (and two processes opening the same old file do
not both run it). A file from a newer libedge (a version beyond ``STEPS``) is refused with
:class:`OutboxSchemaError`; so is one that already holds outbox tables but claims version 0.
Nothing here ever drops, recreates or empties a store.

New steps go at the end of ``STEPS``; released steps are never edited.

Tables (prefixed ``outbox_`` so that the file may also hold other components' tables):

``outbox_events``
    one row per event; ``id`` (the rowid) is the append order, unique keys on
    ``(device_id, seq)`` and on ``event_id``; partial indexes serve ``due`` (open rows in
    append order), dead letters, discarded events and pruning.
``outbox_devices``
    every device that appended, with a ``seq_floor`` raised to its highest seq before each
    prune. A device's last seq is the larger of its floor and its stored seqs, so a seq is
    never reused even when all of a device's events have been pruned; appends do not write
    this table (one page less per commit).
``outbox_state_totals``
    rows and payload bytes per state for every event up to the watermark in
    ``outbox_counted``, kept exact by triggers on updates and deletes in the same
    transaction as each change, so the cap check and ``stats`` cost O(1) instead of a scan
    of the backlog.
``outbox_counted``
    one row: ``through``, the highest event id the totals include. Events above it (the
    *tail*: the newest appends, a second's worth at most) are added up from the rowid range
    when read, and folded into the totals by the writer before any other change and about
    once a second. So an append commit writes neither a counter row nor runs a trigger per
    event (version 2 did both: about a tenth of the commit), and a state change only ever
    meets counted rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

import sqlite_utils

from edge_agent.outbox.contract import EventState
from edge_agent.outbox.errors import OutboxError, OutboxSchemaError, storage_error

__all__ = ["SCHEMA_VERSION", "STEPS", "TABLES", "migrate", "schema_version"]

EVENTS = "outbox_events"
DEVICES = "outbox_devices"
TOTALS = "outbox_state_totals"
COUNTED = "outbox_counted"
TABLES = (EVENTS, DEVICES, TOTALS, COUNTED)

Step = Callable[[sqlite_utils.Database], None]


def _v1_events_and_devices(db: sqlite_utils.Database) -> None:
    """Version 1: the events table with its keys and indexes, and the per-device seq."""
    events = db.create_table(
        EVENTS,
        {
            "id": int,
            "device_id": str,
            "seq": int,
            "event_id": str,
            "kind": str,
            "payload": str,
            "event_time": float,
            "clock_trusted": int,
            "state": str,
            "attempts": int,
            "created_at": float,
            "sent_at": float,
            "confirmed_at": float,
            "dead_reason": str,
            "discarded_at": float,
        },
        pk="id",
        not_null=[
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
        ],
        defaults={"attempts": 0},
        strict=True,
    )
    events.create_index(["device_id", "seq"], index_name=f"{EVENTS}_device_seq", unique=True)
    events.create_index(["event_id"], index_name=f"{EVENTS}_event_id", unique=True)
    # Partial indexes (sqlite-utils cannot express WHERE on an index). Each holds only the
    # rows one query needs, so due() and the staff lists stay fast however much confirmed
    # history is kept, and an insert pays for one of them only (the open one).
    db.execute(f"CREATE INDEX {EVENTS}_open ON {EVENTS}(id) WHERE state IN ('pending', 'sent')")
    db.execute(f"CREATE INDEX {EVENTS}_dead ON {EVENTS}(id) WHERE state = 'dead'")
    db.execute(f"CREATE INDEX {EVENTS}_discarded ON {EVENTS}(id) WHERE state = 'discarded'")
    db.execute(
        f"CREATE INDEX {EVENTS}_confirmed ON {EVENTS}(confirmed_at) WHERE state = 'confirmed'"
    )
    db.create_table(
        DEVICES,
        {"device_id": str, "seq_floor": int},
        pk="device_id",
        not_null=["seq_floor"],
        strict=True,
    )


def _v2_state_totals(db: sqlite_utils.Database) -> None:
    """Version 2: per-state counters kept by triggers, back-filled from existing events."""
    db.create_table(
        TOTALS,
        {"state": str, "rows": int, "bytes": int},
        pk="state",
        not_null=["rows", "bytes"],
        strict=True,
    )
    db.execute(
        "INSERT INTO outbox_state_totals(state, rows, bytes)"
        " SELECT state, count(*), coalesce(sum(length(CAST(payload AS BLOB))), 0)"
        " FROM outbox_events GROUP BY state"
    )
    db.table(TOTALS).insert_all(
        [{"state": str(s), "rows": 0, "bytes": 0} for s in EventState], ignore=True
    )
    # CAST(... AS BLOB) makes length() count UTF-8 bytes, like the cap check in Python.
    db.execute(
        "CREATE TRIGGER outbox_state_totals_insert AFTER INSERT ON outbox_events BEGIN"
        " UPDATE outbox_state_totals"
        " SET rows = rows + 1, bytes = bytes + length(CAST(NEW.payload AS BLOB))"
        " WHERE state = NEW.state; END"
    )
    db.execute(
        "CREATE TRIGGER outbox_state_totals_update AFTER UPDATE OF state ON outbox_events"
        " WHEN OLD.state IS NOT NEW.state BEGIN"
        " UPDATE outbox_state_totals"
        " SET rows = rows - 1, bytes = bytes - length(CAST(OLD.payload AS BLOB))"
        " WHERE state = OLD.state;"
        " UPDATE outbox_state_totals"
        " SET rows = rows + 1, bytes = bytes + length(CAST(NEW.payload AS BLOB))"
        " WHERE state = NEW.state; END"
    )
    db.execute(
        "CREATE TRIGGER outbox_state_totals_delete AFTER DELETE ON outbox_events BEGIN"
        " UPDATE outbox_state_totals"
        " SET rows = rows - 1, bytes = bytes - length(CAST(OLD.payload AS BLOB))"
        " WHERE state = OLD.state; END"
    )


def _v3_counted_watermark(db: sqlite_utils.Database) -> None:
    """Version 3: appends are counted from a watermark instead of by a trigger per row.

    The insert trigger of version 2 has counted every event stored so far, so the
    watermark starts at the highest id.
    """
    # sqlite-utils cannot express the CHECK that keeps this table to its one row.
    db.execute(
        "CREATE TABLE outbox_counted ("
        " id INTEGER PRIMARY KEY CHECK (id = 1), through INTEGER NOT NULL) STRICT"
    )
    db.execute(
        "INSERT INTO outbox_counted(id, through) SELECT 1, coalesce(max(id), 0) FROM outbox_events"
    )
    db.execute("DROP TRIGGER outbox_state_totals_insert")


#: Every migration step, oldest first; the file's user_version counts the steps applied.
STEPS: tuple[Step, ...] = (_v1_events_and_devices, _v2_state_totals, _v3_counted_watermark)
SCHEMA_VERSION = len(STEPS)


def schema_version(conn: sqlite3.Connection) -> int:
    """Return the file's ``PRAGMA user_version``."""
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection, steps: Sequence[Step] = STEPS, *, name: str = "") -> int:
    """Bring the file behind ``conn`` up to ``len(steps)``; return the version it had.

    ``conn`` must be in autocommit mode (``isolation_level=None``). Raises
    :class:`OutboxSchemaError` for a newer or inconsistent file and
    :class:`OutboxStorageError` when a step cannot be written; in both cases the file keeps
    the version it had.
    """
    where = f" {name}" if name else ""
    db = sqlite_utils.Database(conn, recursive_triggers=False, execute_plugins=False)
    try:
        found = schema_version(conn)
        if found == 0:
            ours = sorted(set(TABLES) & set(db.table_names()))
            if ours:
                raise OutboxSchemaError(
                    f"outbox store{where} has user_version 0 but already holds the tables "
                    f"{', '.join(ours)}; refusing to touch it (was user_version reset by hand?)"
                )
        for number in range(found + 1, len(steps) + 1):
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Re-read inside the write lock: another process may have migrated meanwhile.
                if schema_version(conn) < number:
                    steps[number - 1](db)
                    conn.execute(f"PRAGMA user_version = {number:d}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        now = schema_version(conn)
    except OutboxError:
        raise
    except Exception as exc:  # sqlite3.Error, or a step's own error: the file is unchanged
        raise storage_error(f"cannot open or migrate the outbox store{where}", exc) from exc
    if now > len(steps):
        raise OutboxSchemaError(
            f"outbox store{where} has schema version {now}, newer than this libedge knows "
            f"({len(steps)}); refusing to open it (upgrade libedge; the file was not changed)"
        )
    return found
