"""Events a device records: what happened at the kiosk or the gate, sent once each to central.

Each event travels inside an :class:`Envelope` that identifies the device and carries the
per-device sequence number allocated when the event was committed to the device's outbox.
The central system stores an event once per ``(device_id, seq)`` and acknowledges it with a
:class:`~edge_agent.contract.central.DeliveryReceipt`.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Literal, get_args
from uuid import UUID

from pydantic import AwareDatetime, Field

from .base import DeviceId, ItemId, LibraryId, PatronId, TagUid, Versioned, WireModel

__all__ = [
    "AlarmItem",
    "Checkin",
    "Checkout",
    "DeviceKind",
    "Envelope",
    "EventKind",
    "EventPayload",
    "GateAlarm",
    "Refusal",
    "RefusalReason",
    "Renewal",
    "SecurityState",
    "SecurityWriteFailure",
    "VisitorCount",
]


class DeviceKind(StrEnum):
    """What sort of device sent a message."""

    KIOSK = "kiosk"
    GATE = "gate"
    STAFF = "staff"


class SecurityState(StrEnum):
    """An item's security state as read from its tag (AFI and/or EAS)."""

    SECURED = "secured"
    UNSECURED = "unsecured"
    UNKNOWN = "unknown"


class RefusalReason(StrEnum):
    """Why an action was refused; the kiosk turns each into a plain-language message."""

    PATRON_UNKNOWN = "patron_unknown"
    PATRON_BLOCKED = "patron_blocked"
    WRONG_PIN = "wrong_pin"
    ITEM_UNKNOWN = "item_unknown"
    ITEM_ON_HOLD = "item_on_hold"
    ITEM_NOT_FOR_LOAN = "item_not_for_loan"
    ITEM_ALREADY_ON_LOAN = "item_already_on_loan"
    LIMIT_REACHED = "limit_reached"
    INCOMPLETE_SET = "incomplete_set"
    NOT_FOR_OFFLINE = "not_for_offline"
    RENEWAL_LIMIT = "renewal_limit"
    NOT_ON_LOAN_TO_PATRON = "not_on_loan_to_patron"
    SECURITY_FAILURE = "security_failure"
    FOREIGN_ITEM = "foreign_item"
    CENTRAL_UNREACHABLE = "central_unreachable"
    OTHER = "other"


class Checkout(WireModel):
    """An item was lent: its security was switched and verified before this was recorded."""

    type: Literal["checkout"] = "checkout"
    patron_id: PatronId
    item_id: ItemId
    tag_uid: TagUid | None = None
    due_date: dt.date
    offline: bool = Field(False, description="Decided by the kiosk without the central system.")


class Checkin(WireModel):
    """An item was returned and its security re-armed (or the failure recorded separately)."""

    type: Literal["checkin"] = "checkin"
    item_id: ItemId
    tag_uid: TagUid | None = None
    offline: bool = False
    hold_alert: bool = Field(False, description="The item is on hold: it goes to the hold shelf.")
    security_verified: bool = True


class Renewal(WireModel):
    """A loan was renewed."""

    type: Literal["renewal"] = "renewal"
    patron_id: PatronId
    item_id: ItemId
    due_date: dt.date
    offline: bool = False


class Refusal(WireModel):
    """An action was refused, with the reason shown to the patron."""

    type: Literal["refusal"] = "refusal"
    action: Literal["identify", "checkout", "checkin", "renew"]
    reason: RefusalReason
    patron_id: PatronId | None = None
    item_id: ItemId | None = None
    detail: str | None = Field(None, max_length=500)
    offline: bool = False


class SecurityWriteFailure(WireModel):
    """A tag's security state could not be switched and verified; staff must see to the item."""

    type: Literal["security_write_failure"] = "security_write_failure"
    tag_uid: TagUid
    item_id: ItemId | None = None
    wanted: Literal["secured", "unsecured"]
    afi_seen: int | None = Field(None, ge=0, le=255)
    eas_seen: bool | None = None
    attempts: int = Field(ge=1)
    error: str = Field(max_length=500)


class AlarmItem(WireModel):
    """One item that set off the gate."""

    tag_uid: TagUid
    item_id: ItemId | None = None
    title: str | None = Field(None, max_length=500)
    owner_institution: str | None = None
    security: SecurityState
    data_model: str = Field(description="iso28560-2, iso28560-3, blank or unknown.")
    antenna: str
    reads: int = Field(1, ge=1, description="How often the item was read during the pass.")


class GateAlarm(WireModel):
    """The gate alarmed for one pass: every unissued item seen in it."""

    type: Literal["gate_alarm"] = "gate_alarm"
    pass_id: UUID
    items: list[AlarmItem] = Field(min_length=1)


class VisitorCount(WireModel):
    """People through the gate in one interval, by direction."""

    type: Literal["visitor_count"] = "visitor_count"
    interval_start: AwareDatetime
    interval_end: AwareDatetime
    entered: int = Field(ge=0)
    exited: int = Field(ge=0)


EventPayload = Annotated[
    Checkout | Checkin | Renewal | Refusal | SecurityWriteFailure | GateAlarm | VisitorCount,
    Field(discriminator="type"),
]

#: Every event kind, as it appears in topics and in ``payload.type``.
EventKind = Literal[
    "checkout",
    "checkin",
    "renewal",
    "refusal",
    "security_write_failure",
    "gate_alarm",
    "visitor_count",
]
EVENT_KINDS: tuple[str, ...] = get_args(EventKind)


class Envelope(Versioned):
    """One event with the identity and ordering that make delivery exactly-once after dedup."""

    event_id: UUID = Field(description="Unique per event, kept across re-sends.")
    library_id: LibraryId
    device_id: DeviceId
    device_kind: DeviceKind
    seq: int = Field(
        ge=1,
        le=2**63 - 1,  # what SQLite and every consumer's integer column can hold
        description="Per-device sequence number, allocated at commit, never reset.",
    )
    time: AwareDatetime = Field(description="When the event happened, by the device's clock.")
    clock_trusted: bool = Field(
        description="False when the device's clock was not synchronised (a Pi has no RTC)."
    )
    payload: EventPayload

    @property
    def kind(self) -> str:
        """The event's kind (``payload.type``)."""
        return self.payload.type
