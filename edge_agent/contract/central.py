"""Messages between a device and the central library system, other than events.

- :class:`DeviceStatus`: retained on the device's status topic; the same model with
  ``online=False`` is the MQTT Last Will, so a vanished device shows as offline.
- :class:`DeliveryReceipt`: central's acknowledgement, sent after *its own* commit; only a
  receipt (never a PUBACK) lets a device consider an event delivered.
- :class:`Request` / :class:`Response`: what the kiosk asks online (MQTT v5 request/response
  with a response topic and correlation data; ``request_id`` repeats the correlation).
- :class:`CacheUpdate`: what offline decisions need (patron blocks, item states, loan policy),
  versioned, retained per device.
- :class:`Command`: staff actions on a device (screen message, out of service, reload config).

A PIN travels only inside :class:`PatronLookup`, as a ``SecretStr``: it is masked in every
``repr``/``str`` and log line, revealed only when the message is serialised to JSON for the
wire, and no model here stores it anywhere.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, get_args
from uuid import UUID

from pydantic import AwareDatetime, Field, SecretStr, field_serializer

from .base import DeviceId, ItemId, LibraryId, PatronId, Versioned, WireModel
from .events import DeviceKind, RefusalReason

__all__ = [
    "AccountAnswer",
    "AccountQuery",
    "BlockedPatron",
    "CacheBody",
    "CacheUpdate",
    "CheckinAnswer",
    "CheckinAuth",
    "CheckoutAnswer",
    "CheckoutAuth",
    "Command",
    "CommandBody",
    "DeliveryReceipt",
    "DeviceStatus",
    "Hold",
    "InService",
    "ItemState",
    "ItemStates",
    "Loan",
    "LoanPolicy",
    "OutOfService",
    "PatronAnswer",
    "PatronBlocks",
    "PatronLookup",
    "RejectedEvent",
    "ReloadConfig",
    "RenewAnswer",
    "RenewAuth",
    "Request",
    "RequestBody",
    "Response",
    "ResponseBody",
    "ScreenMessage",
    "StatusDetails",
]


# ---------------------------------------------------------------- device status


class StatusDetails(WireModel):
    """What staff need to see of a device at a glance."""

    reader_connected: bool | None = None
    printer: Literal["ok", "paper_out", "cover_open", "offline"] | None = None
    outbox_pending: int = Field(0, ge=0)
    outbox_unconfirmed: int = Field(0, ge=0)
    outbox_dead: int = Field(0, ge=0)
    oldest_unconfirmed_s: float | None = Field(None, ge=0)
    last_central_contact: AwareDatetime | None = None
    cache_versions: dict[str, int] = Field(default_factory=dict)
    out_of_service: bool = False
    alarms_today: int | None = Field(None, ge=0)


class DeviceStatus(Versioned):
    """A device's health; retained, and its Last Will says ``online: false``."""

    library_id: LibraryId
    device_id: DeviceId
    device_kind: DeviceKind
    online: bool
    time: AwareDatetime
    software_version: str = Field(max_length=40)
    details: StatusDetails = Field(default_factory=StatusDetails)


# ---------------------------------------------------------------- receipts


class RejectedEvent(WireModel):
    """An event central will never accept (it failed validation): the device dead-letters it."""

    seq: int = Field(ge=1, le=2**63 - 1)
    reason: str = Field(max_length=500)


class DeliveryReceipt(Versioned):
    """Central stored these events (or had them already): the device may mark them confirmed."""

    library_id: LibraryId
    device_id: DeviceId
    confirmed: list[int] = Field(default_factory=list, description="Sequence numbers stored.")
    rejected: list[RejectedEvent] = Field(default_factory=list)
    time: AwareDatetime


# ---------------------------------------------------------------- requests


class PatronLookup(WireModel):
    """Who is this card, may they borrow, and is the PIN right (when one was typed)."""

    op: Literal["patron_lookup"] = "patron_lookup"
    patron_id: PatronId
    pin: SecretStr | None = Field(None, description="Checked by central; never stored or logged.")

    @field_serializer("pin", when_used="json")
    def _reveal_on_wire(self, pin: SecretStr | None) -> str | None:
        # Only the JSON sent to central carries the PIN; repr() and model_dump() stay masked.
        return pin.get_secret_value() if pin is not None else None


class CheckoutAuth(WireModel):
    """May this patron borrow this item now, and until when."""

    op: Literal["checkout"] = "checkout"
    patron_id: PatronId
    item_id: ItemId


class CheckinAuth(WireModel):
    """This item is being returned: where does it go next."""

    op: Literal["checkin"] = "checkin"
    item_id: ItemId


class RenewAuth(WireModel):
    """May this loan be renewed, and until when."""

    op: Literal["renew"] = "renew"
    patron_id: PatronId
    item_id: ItemId


class AccountQuery(WireModel):
    """The patron's loans, holds ready for pickup and fines."""

    op: Literal["account"] = "account"
    patron_id: PatronId


RequestBody = Annotated[
    PatronLookup | CheckoutAuth | CheckinAuth | RenewAuth | AccountQuery,
    Field(discriminator="op"),
]
RequestOp = Literal["patron_lookup", "checkout", "checkin", "renew", "account"]
REQUEST_OPS: tuple[str, ...] = get_args(RequestOp)


class Request(Versioned):
    """A question a device asks central; the answer comes on the device's response topic."""

    request_id: UUID
    library_id: LibraryId
    device_id: DeviceId
    time: AwareDatetime
    body: RequestBody


# ---------------------------------------------------------------- responses


class Loan(WireModel):
    """One item the patron has on loan."""

    item_id: ItemId
    title: str | None = None
    due_date: dt.date
    overdue: bool = False
    renewable: bool = True


class Hold(WireModel):
    """One hold of the patron's that is ready for pickup."""

    item_id: ItemId
    title: str | None = None
    pickup_by: dt.date | None = None


class PatronAnswer(WireModel):
    """The patron as the kiosk needs them: a display name and whether they may borrow."""

    op: Literal["patron_lookup"] = "patron_lookup"
    patron_id: PatronId
    display_name: str = Field(max_length=100)
    may_borrow: bool
    loans_count: int = Field(0, ge=0)
    holds_ready: int = Field(0, ge=0)
    language: Literal["vi", "en"] | None = None


class CheckoutAnswer(WireModel):
    """The item may be lent until ``due_date``."""

    op: Literal["checkout"] = "checkout"
    item_id: ItemId
    title: str | None = None
    due_date: dt.date


class CheckinAnswer(WireModel):
    """The item was returned; ``hold_alert`` says put it on the hold shelf."""

    op: Literal["checkin"] = "checkin"
    item_id: ItemId
    title: str | None = None
    hold_alert: bool = False


class RenewAnswer(WireModel):
    """The loan now runs until ``due_date``."""

    op: Literal["renew"] = "renew"
    item_id: ItemId
    title: str | None = None
    due_date: dt.date


class AccountAnswer(WireModel):
    """The patron's account."""

    op: Literal["account"] = "account"
    patron_id: PatronId
    loans: list[Loan] = Field(default_factory=list)
    holds_ready: list[Hold] = Field(default_factory=list)
    fines: int = Field(0, ge=0, description="Outstanding fines in the smallest currency unit.")
    currency: str = Field("VND", pattern=r"^[A-Z]{3}$")


ResponseBody = Annotated[
    PatronAnswer | CheckoutAnswer | CheckinAnswer | RenewAnswer | AccountAnswer,
    Field(discriminator="op"),
]


class Response(Versioned):
    """Central's answer to one :class:`Request`: ``body`` when allowed, ``reason`` when refused."""

    request_id: UUID
    time: AwareDatetime
    outcome: Literal["ok", "refused", "error"]
    reason: RefusalReason | None = None
    message: str | None = Field(None, max_length=500, description="For staff; not for patrons.")
    body: ResponseBody | None = None


# ---------------------------------------------------------------- caches


class BlockedPatron(WireModel):
    """A patron who may not borrow, even offline."""

    patron_id: PatronId
    reason: RefusalReason = RefusalReason.PATRON_BLOCKED


class PatronBlocks(WireModel):
    """Patrons the kiosk refuses when it must decide on its own."""

    cache: Literal["patron_blocks"] = "patron_blocks"
    blocked: list[BlockedPatron] = Field(default_factory=list)


class ItemState(WireModel):
    """What the central system knows of one item that matters to offline decisions or gates."""

    item_id: ItemId
    state: Literal["on_shelf", "on_loan", "on_hold", "missing"]
    not_for_offline_issue: bool = False
    title: str | None = Field(None, max_length=500)


class ItemStates(WireModel):
    """Item states for offline checkout and for the gate's corrections."""

    cache: Literal["item_states"] = "item_states"
    items: list[ItemState] = Field(default_factory=list)


class LoanPolicy(WireModel):
    """Loan rules the kiosk applies offline."""

    cache: Literal["loan_policy"] = "loan_policy"
    loan_days: int = Field(14, ge=1)
    offline_max_items: int = Field(5, ge=0)
    max_renewals: int = Field(2, ge=0)


CacheBody = Annotated[PatronBlocks | ItemStates | LoanPolicy, Field(discriminator="cache")]
CacheName = Literal["patron_blocks", "item_states", "loan_policy"]
CACHE_NAMES: tuple[str, ...] = get_args(CacheName)


class CacheUpdate(Versioned):
    """A new version of one cache; ``full`` replaces it, otherwise entries are merged in."""

    library_id: LibraryId
    version: int = Field(ge=1, description="Increases with every update of this cache.")
    full: bool = True
    time: AwareDatetime
    body: CacheBody


# ---------------------------------------------------------------- commands


class ScreenMessage(WireModel):
    """Show a message on the kiosk's screen until a time."""

    command: Literal["screen_message"] = "screen_message"
    text_vi: str = Field(max_length=300)
    text_en: str | None = Field(None, max_length=300)
    until: AwareDatetime | None = None


class OutOfService(WireModel):
    """Take the device out of service (the kiosk says so on screen)."""

    command: Literal["out_of_service"] = "out_of_service"
    reason: str | None = Field(None, max_length=300)


class InService(WireModel):
    """Put the device back in service."""

    command: Literal["in_service"] = "in_service"


class ReloadConfig(WireModel):
    """Re-read the configuration file."""

    command: Literal["reload_config"] = "reload_config"


CommandBody = Annotated[
    ScreenMessage | OutOfService | InService | ReloadConfig, Field(discriminator="command")
]


class Command(Versioned):
    """A staff action sent to one device."""

    command_id: UUID
    time: AwareDatetime
    body: CommandBody
