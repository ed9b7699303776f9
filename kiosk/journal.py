"""The intent journal: security switches the kiosk has started but not yet seen recorded.

Committing an event before confirming it to the patron is not enough on its own: between
switching an item's security and the agent's commit of the event, a crash would leave an
unsecured item with no loan recorded. So, for every tag it is about to switch, the kiosk
first writes an :class:`Intent` here — the tag, the state wanted, and the event it plans to
commit (with that event's id) — and deletes the intent only after the event (or a recorded
failure) is committed. On start-up, whatever intents are still here are resolved by
:mod:`kiosk.recovery`.

The journal is a small SQLite file in the kiosk's data directory, in WAL mode with
``synchronous=FULL``: an intent whose write returned survives a crash or a power cut. Plain
:mod:`sqlite3` is used because each call is one explicit transaction of one or two
statements. A file that is not a journal raises :class:`JournalError` naming it; it is
never emptied or recreated behind the operator's back.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["Intent", "IntentJournal", "JournalError", "Wanted"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS intents (
    intent_id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    tag_uid TEXT NOT NULL CHECK (length(tag_uid) = 16),
    item_id TEXT,
    wanted TEXT NOT NULL CHECK (wanted IN ('secured', 'unsecured')),
    event_id TEXT NOT NULL,
    event_kind TEXT NOT NULL,
    event_json TEXT NOT NULL,
    offline INTEGER NOT NULL DEFAULT 0
);
"""

Wanted = Literal["secured", "unsecured"]


class JournalError(RuntimeError):
    """The journal file cannot be used; the message names the file and the reason."""


@dataclass(frozen=True, slots=True)
class Intent:
    """One tag about to be switched, and the event that will record the switch."""

    intent_id: uuid.UUID
    tag_uid: str  # 16 hex digits
    item_id: str | None
    wanted: Wanted
    event_id: uuid.UUID  # the planned event's id: re-appending it is a safe retry
    event_kind: str
    event_json: str  # the planned event's payload, as JSON
    offline: bool = False
    created: float = 0.0


class IntentJournal:
    """The journal file; thread-safe (one connection, one lock)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=5.0
            )
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(f"{self.path}: cannot open the intent journal: {exc}") from exc
        self._conn = conn
        self._lock = threading.Lock()
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: an intent that was written must survive a power cut, or the very crash
            # it exists for could lose it.
            conn.execute("PRAGMA synchronous=FULL")
            # A resolved intent named a patron: overwrite it on disk, do not just unlink it.
            conn.execute("PRAGMA secure_delete=ON")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise JournalError(
                    f"{self.path}: journal schema version {version}; this software knows "
                    f"{SCHEMA_VERSION}"
                )
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            columns = {row[1] for row in conn.execute("PRAGMA table_info(intents)")}
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise JournalError(f"{self.path}: not an intent journal: {exc}") from exc
        except JournalError:
            conn.close()
            raise
        expected = {"intent_id", "tag_uid", "wanted", "event_id", "event_json", "offline"}
        if not expected <= columns:
            conn.close()
            raise JournalError(f"{self.path}: the intents table lacks {sorted(expected - columns)}")

    def record(self, intents: Sequence[Intent]) -> None:
        """Write intents in one synced transaction (before any of their tags is switched)."""
        if not intents:
            return
        now = time.time()
        rows = [
            (
                str(i.intent_id),
                i.created or now,
                i.tag_uid,
                i.item_id,
                i.wanted,
                str(i.event_id),
                i.event_kind,
                i.event_json,
                int(i.offline),
            )
            for i in intents
        ]
        with self._lock:
            self._write(
                "INSERT INTO intents (intent_id, created, tag_uid, item_id, wanted, event_id,"
                " event_kind, event_json, offline) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def resolve(self, intent_ids: Iterable[uuid.UUID]) -> None:
        """Delete intents whose outcome is committed (unknown ids are ignored)."""
        rows = [(str(i),) for i in intent_ids]
        if not rows:
            return
        with self._lock:
            self._write("DELETE FROM intents WHERE intent_id = ?", rows)

    def _write(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(sql, rows)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: cannot write the intent journal: {exc}") from exc

    def pending(self) -> list[Intent]:
        """Every intent not yet resolved, oldest first."""
        with self._lock:
            try:
                rows = self._conn.execute(
                    "SELECT intent_id, tag_uid, item_id, wanted, event_id, event_kind,"
                    " event_json, offline, created FROM intents ORDER BY created, rowid"
                ).fetchall()
            except sqlite3.Error as exc:
                raise JournalError(f"{self.path}: cannot read the intent journal: {exc}") from exc
        intents = []
        for row in rows:
            try:
                intents.append(
                    Intent(
                        intent_id=uuid.UUID(row[0]),
                        tag_uid=str(row[1]),
                        item_id=row[2],
                        wanted=row[3],
                        event_id=uuid.UUID(row[4]),
                        event_kind=str(row[5]),
                        event_json=str(row[6]),
                        offline=bool(row[7]),
                        created=float(row[8]),
                    )
                )
            except (ValueError, TypeError) as exc:
                raise JournalError(f"{self.path}: intent {row[0]!r} is malformed: {exc}") from exc
        return intents

    def count(self) -> int:
        """How many intents are unresolved."""
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM intents").fetchone()[0])

    def close(self) -> None:
        """Close the file; idempotent."""
        with self._lock:
            self._conn.close()
