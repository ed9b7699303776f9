"""Opening the outbox's SQLite file: refuse what is not a database, then set the PRAGMAs.

sqlite-utils sets neither ``journal_mode`` nor ``synchronous``, so :func:`connect` does it
for every connection and checks that SQLite really applied them: WAL (readers never wait
for the writer's fsync) and ``synchronous=FULL`` (a commit survives a power cut; in WAL
mode ``NORMAL`` may lose the last commits).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from edge_agent.outbox.errors import OutboxSchemaError, OutboxStorageError, storage_error

__all__ = ["check_header", "connect"]


def connect(path: Path, *, busy_timeout_s: float, read_only: bool = False) -> sqlite3.Connection:
    """Open ``path`` in autocommit mode with WAL and synchronous=FULL, checking both."""
    try:
        conn = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=busy_timeout_s
        )
    except sqlite3.Error as exc:
        raise storage_error(f"cannot open the outbox store {path}", exc) from exc
    try:
        mode = str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0])
        if mode.lower() != "wal":
            raise OutboxStorageError(
                f"the outbox store {path} cannot use WAL (journal_mode is {mode!r}); "
                "it needs a local filesystem that supports shared memory"
            )
        conn.execute("PRAGMA synchronous=FULL")
        if conn.execute("PRAGMA synchronous").fetchone()[0] != 2:
            raise OutboxStorageError(f"the outbox store {path} refused synchronous=FULL")
        if read_only:
            conn.execute("PRAGMA query_only=ON")
    except BaseException as exc:
        conn.close()
        if isinstance(exc, sqlite3.Error):
            raise storage_error(f"cannot open the outbox store {path}", exc) from exc
        raise
    return conn


_SQLITE_HEADER = b"SQLite format 3\x00"


def check_header(path: Path) -> None:
    """Refuse a non-empty file that is not a SQLite database, before SQLite sees it.

    SQLite treats a file shorter than one page as an empty database and would write a new
    one over it: a truncated or mistaken file must be reported, never replaced.
    """
    try:
        with path.open("rb") as file:
            head = file.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise storage_error(f"cannot read the outbox store {path}", exc) from exc
    if head and head != _SQLITE_HEADER:
        raise OutboxSchemaError(
            f"{path} is not a SQLite database (it starts with {head[:8]!r}); "
            "refusing to open it as the outbox, the file was not changed"
        )
