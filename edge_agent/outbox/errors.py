"""The outbox's exception tree: the few kinds of failure a caller of the outbox acts on.

Every error the outbox raises is an :class:`OutboxError`; SQLite's own exceptions never
leak out of it (they are translated here, at the boundary, and chained as ``__cause__``)::

    OutboxError
    ├── InvalidArgument      (also a ValueError) a malformed argument: empty device id,
    │                        payload that is not JSON text, bad seq; nothing was written
    ├── OutboxFull           the unconfirmed backlog reached its cap; the event was NOT
    │                        stored. Tell the patron/staff; it clears as the link drains
    ├── EventIdConflict      append reused an event_id that belongs to a different event
    ├── EventNotFound        dead_letter named a (device, seq) the outbox does not hold
    ├── OutboxClosed         the outbox was used after close()
    └── OutboxStorageError   the disk or SQLite failed (disk full, I/O error, locked, the
        │                    writer stopped or did not answer in time). The message names
        │                    the cause and says whether the event was written; everything
        │                    committed before is intact, and the call may be retried
        └── OutboxSchemaError  the file is not an outbox this version can use (newer
                               schema, not a database, foreign tables); it is refused,
                               never recreated or emptied

A retry after ``OutboxStorageError`` is safe when the caller passes its own ``event_id``:
append is idempotent on ``event_id``, so an event whose outcome was unknown is never
stored twice.
"""

from __future__ import annotations

import sqlite3

__all__ = [
    "EventIdConflict",
    "EventNotFound",
    "InvalidArgument",
    "OutboxClosed",
    "OutboxError",
    "OutboxFull",
    "OutboxSchemaError",
    "OutboxStorageError",
    "storage_error",
]


class OutboxError(Exception):
    """Base class of every error the outbox raises."""


class InvalidArgument(OutboxError, ValueError):  # noqa: N818 - named for the condition
    """An argument is malformed; the message names the argument and what is wrong."""


class OutboxFull(OutboxError):  # noqa: N818 - named for the condition
    """The unconfirmed backlog is at its cap, so a new event was refused, not stored.

    Old unconfirmed events are never dropped to make room: losing a loan the patron was
    told about is worse than refusing the next one.
    """

    def __init__(
        self,
        *,
        depth_rows: int,
        depth_bytes: int,
        max_rows: int | None,
        max_bytes: int | None,
    ) -> None:
        self.depth_rows = depth_rows
        self.depth_bytes = depth_bytes
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        caps = []
        if max_rows is not None:
            caps.append(f"{depth_rows} of {max_rows} events")
        if max_bytes is not None:
            caps.append(f"{depth_bytes} of {max_bytes} payload bytes")
        super().__init__(
            "outbox full: the unconfirmed backlog holds "
            + " and ".join(caps)
            + "; the new event was refused (not stored) until the link drains the backlog"
        )


class EventIdConflict(OutboxError):  # noqa: N818 - named for the condition
    """An append reused an event_id already stored for a different event."""


class EventNotFound(OutboxError, LookupError):  # noqa: N818 - named for the condition
    """No event with the given (device_id, seq) is in the outbox."""


class OutboxClosed(OutboxError):  # noqa: N818 - named for the condition
    """The outbox was used after :meth:`close`."""


class OutboxStorageError(OutboxError):
    """The storage failed; the message names the cause and whether the change was written."""


class OutboxSchemaError(OutboxStorageError):
    """The file is not an outbox store this version can open; it was left untouched."""


def storage_error(what: str, exc: BaseException) -> OutboxStorageError:
    """Translate a SQLite (or OS) exception into an :class:`OutboxStorageError` naming it.

    ``what`` says what was being done and what it means for the caller's data, e.g.
    ``"cannot commit the event (not stored)"``. The SQLite error name (``SQLITE_FULL``,
    ``SQLITE_IOERR_FSYNC`` …) is added when Python exposes it, because support staff search
    for it.
    """
    name = getattr(exc, "sqlite_errorname", None) if isinstance(exc, sqlite3.Error) else None
    cause = f"{exc} ({name})" if name else str(exc) or type(exc).__name__
    # A file that is not a database at all is a schema problem: retrying will not help.
    kind = OutboxSchemaError if name == "SQLITE_NOTADB" else OutboxStorageError
    error = kind(f"{what}: {cause}")
    error.__cause__ = exc
    return error
