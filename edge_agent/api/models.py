"""The local API's request and response bodies (pydantic), shared by the app and the client.

This module imports no web framework, so that :mod:`edge_agent.client` (used by the kiosk
and the gate) can parse the agent's answers with the same models the agent writes them
with.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from edge_agent.contract.central import StatusDetails
from edge_agent.contract.events import EventPayload

__all__ = [
    "AppendEvent",
    "Appended",
    "CacheInfo",
    "DeadLetter",
    "DeadLetterAction",
    "DeviceDetails",
    "ErrorBody",
    "FieldProblem",
    "Health",
    "LinkView",
    "OutboxView",
    "PatronBlockView",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AppendEvent(_Body):
    """``POST /events``: one event to record and deliver."""

    payload: EventPayload = Field(description="The event, one of the contract's event types.")
    time: AwareDatetime | None = Field(
        None, description="When it happened (default: when the agent received it)."
    )
    clock_trusted: bool = Field(
        True, description="False when the device's clock was not synchronised."
    )
    event_id: UUID | None = Field(
        None,
        description="The caller's id for the event: a retry with the same id and event is "
        "answered with the stored event instead of storing it twice.",
    )


class Appended(_Body):
    """The event is committed to the outbox (the answer to ``POST /events``)."""

    device_id: str
    seq: int
    event_id: UUID


class FieldProblem(_Body):
    """One wrong field of a request."""

    field: str
    problem: str


class ErrorBody(_Body):
    """Every error answer: a stable code, a sentence, and the wrong fields (422 only)."""

    error: str
    message: str
    fields: list[FieldProblem] = Field(default_factory=list)


class LinkView(_Body):
    """The MQTT link, as staff see it."""

    phase: str
    connected: bool
    broker: str
    problem: str | None = None
    problem_kind: str | None = None
    problem_at: AwareDatetime | None = None
    connected_since: AwareDatetime | None = None
    last_central_contact: AwareDatetime | None = None
    inflight: int = 0
    awaiting_receipt: int = 0
    probing: bool = False
    reconnects: int = 0
    last_refusal: str | None = None
    out_of_service: bool = False


class OutboxView(_Body):
    """``GET /outbox``: what is still waiting to reach central, and how the link is."""

    device_id: str
    counts: dict[str, int]
    unconfirmed: int
    held: int
    max_events: int | None
    payload_bytes: int
    storage_bytes: int
    oldest_unconfirmed_age_s: float | None
    oldest_dead_age_s: float | None
    last_seq: dict[str, int]
    link: LinkView


class Health(_Body):
    """``GET /health``: ok, degraded (no link: events are kept) or failing (outbox broken)."""

    status: Literal["ok", "degraded", "failing"]
    version: str
    device_id: str
    outbox_ok: bool
    outbox_error: str | None = None
    link: LinkView


class DeadLetter(_Body):
    """One event that central will not get unless staff retry it."""

    device_id: str
    seq: int
    event_id: str
    kind: str
    payload: Any = Field(description="The event as stored (JSON).")
    event_time: AwareDatetime
    created_at: AwareDatetime
    attempts: int
    dead_reason: str | None


class DeadLetterAction(_Body):
    """The answer to a staff retry or discard."""

    device_id: str
    seq: int
    action: Literal["retry", "discard"]
    done: bool


class CacheInfo(_Body):
    """One offline cache's version and size."""

    version: int
    full: bool
    stored_at: AwareDatetime
    central_time: str
    entries: int


class PatronBlockView(_Body):
    """Whether the offline cache lists a patron as blocked."""

    patron_id: str
    blocked: bool
    reason: str | None = None


class DeviceDetails(_Body):
    """``PUT /device/details``: what a device process knows of its own status.

    The agent merges these into the ``details`` of the retained DeviceStatus it publishes.
    Only fields the agent cannot know itself are here (the outbox figures and cache versions
    are the agent's own). A field left out keeps its last reported value; ``null`` clears it.
    Strict types: a device sending ``"true"`` for a boolean has a bug worth a 422.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    reader_connected: bool | None = Field(
        None, description="Whether the device's RFID reader(s) are connected and answering."
    )
    printer: Literal["ok", "paper_out", "cover_open", "offline"] | None = Field(
        None, description="The receipt printer's state (kiosks)."
    )
    alarms_today: int | None = Field(None, ge=0, description="Security gate alarms today.")

    @classmethod
    def from_status(cls, details: StatusDetails) -> DeviceDetails:
        """Take the device-known fields a StatusDetails sets (e.g. ``GateHealth``'s)."""
        known = details.model_fields_set & cls.model_fields.keys()
        return cls.model_validate({name: getattr(details, name) for name in known})
