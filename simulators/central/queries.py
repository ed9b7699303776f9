"""Read-only views of the simulator's database, as plain typed records.

These are what tests and the staff dashboard read: stored events, open gaps, exceptions for
staff, recent rejections, devices, items and the overall :class:`CentralStats`. Each function
takes a connection and reads in one snapshot; none writes.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from edge_agent.contract import DeviceStatus, Envelope

from .circulation import item_row

__all__ = [
    "CentralStats",
    "DeviceInfo",
    "Gap",
    "ItemRecord",
    "RejectedMessage",
    "StaffException",
    "StoredEvent",
    "devices",
    "events",
    "exceptions",
    "gaps",
    "item",
    "loans",
    "rejected",
    "stats",
]


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One event as central stored it."""

    device_id: str
    seq: int
    kind: str
    outcome: str
    instance: str
    received_at: str
    envelope: Envelope


@dataclass(frozen=True, slots=True)
class Gap:
    """Sequence numbers of a device that central has not seen (``first``..``last``)."""

    device_id: str
    first: int
    last: int
    detected_at: str

    @property
    def size(self) -> int:
        """How many sequence numbers are missing."""
        return self.last - self.first + 1


@dataclass(frozen=True, slots=True)
class StaffException:
    """A transaction that conflicted with the circulation model, for staff to resolve."""

    id: int
    created_at: str
    device_id: str
    seq: int | None
    kind: str
    reason: str
    detail: str
    item_id: str | None
    patron_id: str | None
    offline: bool
    applied: bool
    resolved_at: str | None


@dataclass(frozen=True, slots=True)
class RejectedMessage:
    """A message central would not accept, with why (the payload is not kept)."""

    received_at: str
    instance: str
    category: str
    topic: str
    device_id: str | None
    seq: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """A device central knows: from the seed, or seen on the broker."""

    device_id: str
    library_id: str
    kind: str | None
    seen: bool
    last_seen: str | None
    online: bool | None
    status: DeviceStatus | None


@dataclass(frozen=True, slots=True)
class ItemRecord:
    """One item of the circulation model."""

    item_id: str
    title: str
    state: str
    patron_id: str | None
    due_date: dt.date | None
    renewals: int
    not_for_loan: bool
    not_for_offline_issue: bool
    holds: tuple[str, ...] = ()


@dataclass(frozen=True)
class CentralStats:
    """Counts over the whole database (all instances), plus this instance's own traffic."""

    events: int
    by_device: dict[str, dict[str, int]]
    by_kind: dict[str, int]
    duplicates: dict[str, int]
    rejected: dict[str, int]
    open_gaps: int
    missing: int
    gaps_filled: int
    exceptions_open: int
    devices_seen: int
    instance: dict[str, int] = field(default_factory=dict)

    @property
    def duplicates_total(self) -> int:
        """Duplicates dropped, all devices."""
        return sum(self.duplicates.values())

    @property
    def rejected_total(self) -> int:
        """Rejected messages, all categories."""
        return sum(self.rejected.values())


def stats(conn: sqlite3.Connection, instance_counts: dict[str, int]) -> CentralStats:
    """Everything at once, in one read snapshot."""
    conn.execute("BEGIN")
    try:
        by_device: dict[str, dict[str, int]] = {}
        by_kind: dict[str, int] = {}
        total = 0
        for row in conn.execute(
            "SELECT device_id, kind, count(*) AS n FROM events GROUP BY device_id, kind"
        ):
            by_device.setdefault(row["device_id"], {})[row["kind"]] = row["n"]
            by_kind[row["kind"]] = by_kind.get(row["kind"], 0) + row["n"]
            total += row["n"]
        counters: dict[str, dict[str, int]] = {}
        for row in conn.execute("SELECT name, device_id, value FROM counters"):
            counters.setdefault(row["name"], {})[row["device_id"]] = row["value"]
        rejected = {
            name.split(":", 1)[1]: sum(values.values())
            for name, values in counters.items()
            if name.startswith("rejected:")
        }
        gap_row = conn.execute(
            "SELECT count(*), coalesce(sum(last_seq - first_seq + 1), 0) FROM gaps"
        ).fetchone()
        open_exceptions = conn.execute(
            "SELECT count(*) FROM exceptions WHERE resolved_at IS NULL"
        ).fetchone()[0]
        seen = conn.execute("SELECT count(*) FROM devices WHERE seen = 1").fetchone()[0]
    finally:
        conn.execute("COMMIT")
    return CentralStats(
        events=total,
        by_device=by_device,
        by_kind=by_kind,
        duplicates=dict(counters.get("duplicates", {})),
        rejected=rejected,
        open_gaps=int(gap_row[0]),
        missing=int(gap_row[1]),
        gaps_filled=sum(counters.get("gap_filled", {}).values()),
        exceptions_open=int(open_exceptions),
        devices_seen=int(seen),
        instance=dict(instance_counts),
    )


def events(
    conn: sqlite3.Connection, device_id: str | None = None, kind: str | None = None
) -> list[StoredEvent]:
    """Stored events, by device and sequence number, optionally of one device and kind."""
    rows = conn.execute(
        "SELECT * FROM events WHERE (? IS NULL OR device_id = ?) AND (? IS NULL OR kind = ?)"
        " ORDER BY device_id, seq",
        (device_id, device_id, kind, kind),
    ).fetchall()
    return [
        StoredEvent(
            device_id=row["device_id"],
            seq=row["seq"],
            kind=row["kind"],
            outcome=row["outcome"],
            instance=row["instance"],
            received_at=row["received_at"],
            envelope=Envelope.model_validate_json(row["envelope"]),
        )
        for row in rows
    ]


def gaps(conn: sqlite3.Connection, device_id: str | None = None) -> list[Gap]:
    """Open gaps, by device and first missing number."""
    rows = conn.execute(
        "SELECT * FROM gaps WHERE ? IS NULL OR device_id = ? ORDER BY device_id, first_seq",
        (device_id, device_id),
    ).fetchall()
    return [Gap(r["device_id"], r["first_seq"], r["last_seq"], r["detected_at"]) for r in rows]


def exceptions(conn: sqlite3.Connection, include_resolved: bool = False) -> list[StaffException]:
    """Exceptions for staff, oldest first."""
    rows = conn.execute(
        "SELECT * FROM exceptions WHERE ? OR resolved_at IS NULL ORDER BY id", (include_resolved,)
    ).fetchall()
    return [
        StaffException(
            id=r["id"],
            created_at=r["created_at"],
            device_id=r["device_id"],
            seq=r["seq"],
            kind=r["kind"],
            reason=r["reason"],
            detail=r["detail"],
            item_id=r["item_id"],
            patron_id=r["patron_id"],
            offline=bool(r["offline"]),
            applied=bool(r["applied"]),
            resolved_at=r["resolved_at"],
        )
        for r in rows
    ]


def rejected(conn: sqlite3.Connection, limit: int = 100) -> list[RejectedMessage]:
    """The most recent rejections, newest first."""
    rows = conn.execute("SELECT * FROM rejected ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    return [
        RejectedMessage(
            received_at=r["received_at"],
            instance=r["instance"],
            category=r["category"],
            topic=r["topic"],
            device_id=r["device_id"],
            seq=r["seq"],
            reason=r["reason"],
        )
        for r in rows
    ]


def _status(text: str | None) -> DeviceStatus | None:
    return DeviceStatus.model_validate_json(text) if text else None


def devices(conn: sqlite3.Connection) -> list[DeviceInfo]:
    """Every known device, by id."""
    return [
        DeviceInfo(
            device_id=r["device_id"],
            library_id=r["library_id"],
            kind=r["kind"],
            seen=bool(r["seen"]),
            last_seen=r["last_seen"],
            online=None if r["online"] is None else bool(r["online"]),
            status=_status(r["status"]),
        )
        for r in conn.execute("SELECT * FROM devices ORDER BY device_id").fetchall()
    ]


def _item(conn: sqlite3.Connection, row: Any) -> ItemRecord:
    holds = tuple(
        h["patron_id"]
        for h in conn.execute(
            "SELECT patron_id FROM holds WHERE item_id = ? ORDER BY id", (row["item_id"],)
        )
    )
    return ItemRecord(
        item_id=row["item_id"],
        title=row["title"],
        state=row["state"],
        patron_id=row["patron_id"],
        due_date=dt.date.fromisoformat(row["due_date"]) if row["due_date"] else None,
        renewals=row["renewals"],
        not_for_loan=bool(row["not_for_loan"]),
        not_for_offline_issue=bool(row["not_for_offline_issue"]),
        holds=holds,
    )


def item(conn: sqlite3.Connection, item_id: str) -> ItemRecord | None:
    """One item, or None when it is not in the catalogue."""
    row = item_row(conn, item_id)
    return _item(conn, row) if row is not None else None


def loans(conn: sqlite3.Connection, patron_id: str) -> list[ItemRecord]:
    """The items a patron has on loan."""
    rows = conn.execute(
        "SELECT * FROM items WHERE state = 'on_loan' AND patron_id = ? ORDER BY item_id",
        (patron_id,),
    ).fetchall()
    return [_item(conn, row) for row in rows]
