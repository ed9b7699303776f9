"""The offline caches: what the kiosk needs to decide alone while central is unreachable.

Central keeps three caches per device, each as a retained, versioned
:class:`~edge_agent.contract.CacheUpdate` on the device's ``down/cache/{name}`` topic:

``patron_blocks``  patrons who may not borrow, even offline;
``item_states``    items on loan / on hold / not for offline issue, with titles for the gate;
``loan_policy``    the loan period and offline limits.

:class:`CacheStore` keeps them in the agent's SQLite file (tables prefixed ``cache_``,
beside the outbox's ``outbox_`` tables, on a connection of their own). The rules:

* versions only go up: an update whose version is not newer than the stored one is ignored
  (a retained message re-delivered on reconnect, or an old one arriving late);
* ``full=True`` replaces the cache, ``full=False`` merges its entries in (insert or
  replace by id). A delta cannot remove an entry: central sends a full update for that;
* ``loan_policy`` is a single value: every update replaces it.

The device reports the versions it holds (``DeviceStatus.details.cache_versions``) so that
central can see which kiosks are behind. Errors are :class:`CacheError` naming the cause.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import sqlite_utils

from edge_agent.contract import (
    BlockedPatron,
    CacheUpdate,
    ItemState,
    ItemStates,
    LoanPolicy,
    PatronBlocks,
)
from edge_agent.contract.central import CACHE_NAMES

__all__ = ["CACHE_NAMES", "CacheError", "CacheStore"]

META = "cache_meta"
BLOCKS = "cache_patron_blocks"
ITEMS = "cache_item_states"
POLICY = "cache_loan_policy"
SCHEMA = "cache_schema"
#: Version of the cache tables' layout (independent of the outbox's user_version).
SCHEMA_VERSION = 1


class CacheError(RuntimeError):
    """The cache store cannot be read or written; the message names the file and cause."""


def _create_schema(db: sqlite_utils.Database) -> None:
    db[META].create(  # type: ignore[union-attr]
        {"name": str, "version": int, "full_at": int, "updated_at": float, "central_time": str},
        pk="name",
        if_not_exists=True,
    )
    db[BLOCKS].create(  # type: ignore[union-attr]
        {"patron_id": str, "reason": str}, pk="patron_id", if_not_exists=True
    )
    db[ITEMS].create(  # type: ignore[union-attr]
        {"item_id": str, "state": str, "not_for_offline_issue": int, "title": str},
        pk="item_id",
        if_not_exists=True,
    )
    db[POLICY].create(  # type: ignore[union-attr]
        {"id": int, "body": str}, pk="id", if_not_exists=True
    )


class CacheStore:
    """The three offline caches in SQLite; thread-safe (one connection behind a lock)."""

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path,
                timeout=busy_timeout_s,
                isolation_level=None,
                check_same_thread=False,  # used from the link's worker and API threads
            )
        except (OSError, sqlite3.Error) as exc:
            raise CacheError(f"cannot open the cache store {self.path}: {exc}") from exc
        self._conn = conn
        self._lock = threading.Lock()
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except (sqlite3.Error, CacheError) as exc:
            conn.close()
            if isinstance(exc, CacheError):
                raise
            raise CacheError(f"cannot prepare the cache store {self.path}: {exc}") from exc
        self._db = sqlite_utils.Database(conn, execute_plugins=False)

    def _migrate(self) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS cache_schema (version INTEGER NOT NULL)")
            row = conn.execute("SELECT max(version) FROM cache_schema").fetchone()
            found = row[0] or 0
            if found > SCHEMA_VERSION:
                raise CacheError(
                    f"cache tables in {self.path} have layout {found}, newer than this libedge "
                    f"knows ({SCHEMA_VERSION}); refusing to use them"
                )
            if found < SCHEMA_VERSION:
                _create_schema(sqlite_utils.Database(conn, execute_plugins=False))
                conn.execute("INSERT INTO cache_schema(version) VALUES (?)", (SCHEMA_VERSION,))
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------ writes

    def apply(self, update: CacheUpdate) -> bool:
        """Store a newer version of a cache; False (and nothing written) when it is not newer."""
        body = update.body
        name = body.cache
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    row = conn.execute(
                        "SELECT version FROM cache_meta WHERE name = ?", (name,)
                    ).fetchone()
                    if row is not None and row[0] >= update.version:
                        conn.execute("ROLLBACK")
                        return False
                    self._write_body(conn, update)
                    conn.execute(
                        "INSERT OR REPLACE INTO cache_meta(name, version, full_at, updated_at,"
                        " central_time) VALUES (?, ?, ?, ?, ?)",
                        (
                            name,
                            update.version,
                            int(update.full),
                            time.time(),
                            update.time.isoformat(),
                        ),
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise CacheError(
                    f"cannot store {name} version {update.version} in {self.path}: {exc}"
                ) from exc
        return True

    @staticmethod
    def _write_body(conn: sqlite3.Connection, update: CacheUpdate) -> None:
        body = update.body
        if isinstance(body, PatronBlocks):
            if update.full:
                conn.execute("DELETE FROM cache_patron_blocks")
            conn.executemany(
                "INSERT OR REPLACE INTO cache_patron_blocks(patron_id, reason) VALUES (?, ?)",
                [(b.patron_id, b.reason.value) for b in body.blocked],
            )
        elif isinstance(body, ItemStates):
            if update.full:
                conn.execute("DELETE FROM cache_item_states")
            conn.executemany(
                "INSERT OR REPLACE INTO cache_item_states"
                "(item_id, state, not_for_offline_issue, title) VALUES (?, ?, ?, ?)",
                [(i.item_id, i.state, int(i.not_for_offline_issue), i.title) for i in body.items],
            )
        else:
            conn.execute(
                "INSERT OR REPLACE INTO cache_loan_policy(id, body) VALUES (1, ?)",
                (body.model_dump_json(),),
            )

    # ------------------------------------------------------------ reads

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise CacheError(f"cannot read the cache store {self.path}: {exc}") from exc

    def versions(self) -> dict[str, int]:
        """The version held of each cache (a cache never received is absent)."""
        return {
            name: version for name, version in self._rows("SELECT name, version FROM cache_meta")
        }

    def info(self) -> dict[str, dict[str, Any]]:
        """Per cache: version, whether the last update was full, when it was stored, entries."""
        counts = {
            "patron_blocks": self._rows("SELECT count(*) FROM cache_patron_blocks")[0][0],
            "item_states": self._rows("SELECT count(*) FROM cache_item_states")[0][0],
            "loan_policy": self._rows("SELECT count(*) FROM cache_loan_policy")[0][0],
        }
        out: dict[str, dict[str, Any]] = {}
        for name, version, full, updated_at, central_time in self._rows(
            "SELECT name, version, full_at, updated_at, central_time FROM cache_meta"
        ):
            out[name] = {
                "version": version,
                "full": bool(full),
                "stored_at": updated_at,
                "central_time": central_time,
                "entries": counts.get(name, 0),
            }
        return out

    def patron_block(self, patron_id: str) -> BlockedPatron | None:
        """The block on one patron, or None when the cache does not list them."""
        rows = self._rows(
            "SELECT patron_id, reason FROM cache_patron_blocks WHERE patron_id = ?", (patron_id,)
        )
        return BlockedPatron(patron_id=rows[0][0], reason=rows[0][1]) if rows else None

    def patron_blocks(self, limit: int = 1000, offset: int = 0) -> list[BlockedPatron]:
        """Blocked patrons, by id."""
        rows = self._rows(
            "SELECT patron_id, reason FROM cache_patron_blocks ORDER BY patron_id LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return [BlockedPatron(patron_id=p, reason=r) for p, r in rows]

    def item_state(self, item_id: str) -> ItemState | None:
        """What the cache knows of one item, or None."""
        rows = self._rows(
            "SELECT item_id, state, not_for_offline_issue, title FROM cache_item_states"
            " WHERE item_id = ?",
            (item_id,),
        )
        return _item(rows[0]) if rows else None

    def item_states(self, limit: int = 1000, offset: int = 0) -> list[ItemState]:
        """Items in the cache, by id."""
        rows = self._rows(
            "SELECT item_id, state, not_for_offline_issue, title FROM cache_item_states"
            " ORDER BY item_id LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return [_item(row) for row in rows]

    def loan_policy(self) -> LoanPolicy | None:
        """The loan policy, or None before central sent one."""
        rows = self._rows("SELECT body FROM cache_loan_policy WHERE id = 1")
        return LoanPolicy.model_validate_json(rows[0][0]) if rows else None

    def close(self) -> None:
        """Close the connection; idempotent."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> CacheStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _item(row: tuple[Any, ...]) -> ItemState:
    item_id, state, not_for_offline, title = row
    return ItemState(
        item_id=item_id, state=state, not_for_offline_issue=bool(not_for_offline), title=title
    )
