"""The edge agent's durable outbox: nothing lost, nothing counted twice.

Every transaction a kiosk or gate makes is appended here *before* the patron is told
"done"; the MQTT link then publishes the events oldest first and marks them SENT on the
broker's PUBACK and CONFIRMED on the central system's receipt. Each event carries a stable
identity — device id, a per-device ``seq`` allocated in the append's own transaction and
never reused, and a UUID ``event_id`` — so the receiver can drop duplicates and spot gaps.

Modules:

``contract``
    ``Outbox`` (the protocol every back-end implements), ``OutboxEvent``, ``EventState``,
    ``OutboxStats``, ``OutboxLimits`` and the argument checks both back-ends share.
``errors``
    the exception tree, documented there.
``sqlite`` / ``sqlite_jobs`` / ``sqlite_file``
    ``SqliteOutbox``: WAL + synchronous=FULL, group commit through one writer thread
    (``groupcommit``), caps that refuse rather than drop, disk-full surfaced by name;
    the SQL of each write; opening the file (header check, PRAGMAs).
``migrations``
    the schema, versioned by ``PRAGMA user_version``.
``memory``
    ``MemoryOutbox``: the same contract in memory, for unit tests of callers.
"""

from edge_agent.outbox.contract import (
    EventState,
    Outbox,
    OutboxEvent,
    OutboxLimits,
    OutboxStats,
)
from edge_agent.outbox.errors import (
    EventIdConflict,
    EventNotFound,
    InvalidArgument,
    OutboxClosed,
    OutboxError,
    OutboxFull,
    OutboxSchemaError,
    OutboxStorageError,
)
from edge_agent.outbox.groupcommit import GroupCommitPolicy
from edge_agent.outbox.memory import MemoryOutbox
from edge_agent.outbox.migrations import SCHEMA_VERSION
from edge_agent.outbox.sqlite import SqliteOutbox

__all__ = [
    "SCHEMA_VERSION",
    "EventIdConflict",
    "EventNotFound",
    "EventState",
    "GroupCommitPolicy",
    "InvalidArgument",
    "MemoryOutbox",
    "Outbox",
    "OutboxClosed",
    "OutboxError",
    "OutboxEvent",
    "OutboxFull",
    "OutboxLimits",
    "OutboxSchemaError",
    "OutboxStats",
    "OutboxStorageError",
    "SqliteOutbox",
]
