"""Sorting what arrives on central's subscription: pure functions from (topic, bytes) to a verdict.

:func:`classify` never raises. Every message becomes one of:

- :class:`Foreign`: not a libedge uplink of the library this central serves (unknown topic shape,
  a downlink, another library). Counted and logged, never answered: whoever sent it is not a
  device of ours, so there is nobody to tell.
- :class:`Invalid`: a device's topic, but the payload breaks the contract (``malformed``) or
  names another device or library than its topic (``mismatch``; the broker's ACL authenticates
  the topic, nothing authenticates a payload). When the device's sequence number can still be
  read, the receipt rejects it so the device dead-letters the event instead of resending it
  forever; a bad request gets an ``error`` response when its request id can be read.
- :class:`EventMessage`, :class:`StatusMessage`, :class:`RequestMessage`: valid and consistent.
- :class:`StatusCleared`: an empty payload on a status topic, which is how MQTT clears a
  retained message (a device taken out of use); not an error.

Reasons name the field or id that is wrong, never a value from the payload, which could be a PIN.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Literal

from edge_agent.contract import ContractError, DeviceStatus, Envelope, Request, decode
from edge_agent.contract.events import EVENT_KINDS
from edge_agent.contract.topics import TopicInfo, parse_topic

__all__ = [
    "SQLITE_MAX_INT",
    "Classified",
    "EventMessage",
    "Foreign",
    "Invalid",
    "RequestMessage",
    "StatusCleared",
    "StatusMessage",
    "classify",
    "peek_request_id",
    "peek_seq",
]

#: Sequence numbers beyond this cannot be stored (SQLite integers are 64-bit signed).
SQLITE_MAX_INT = 2**63 - 1
_REASON_MAX = 500


@dataclass(frozen=True, slots=True)
class Foreign:
    """Not a libedge uplink of this library."""

    topic: str
    reason: str


@dataclass(frozen=True, slots=True)
class Invalid:
    """A device's message that breaks the contract or claims another identity."""

    info: TopicInfo
    topic: str
    category: Literal["malformed", "mismatch"]
    reason: str
    seq: int | None = None
    request_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class EventMessage:
    """A valid event from the device its topic names."""

    info: TopicInfo
    envelope: Envelope


@dataclass(frozen=True, slots=True)
class StatusMessage:
    """A valid status (or Last Will) of the device its topic names."""

    info: TopicInfo
    status: DeviceStatus


@dataclass(frozen=True, slots=True)
class StatusCleared:
    """The device's retained status was cleared (an empty retained message)."""

    info: TopicInfo


@dataclass(frozen=True, slots=True)
class RequestMessage:
    """A valid request from the device its topic names."""

    info: TopicInfo
    request: Request


Classified = Foreign | Invalid | EventMessage | StatusMessage | StatusCleared | RequestMessage


def _json_object(payload: bytes) -> dict[str, object] | None:
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        # ValueError covers bad UTF-8 and bad JSON; RecursionError deeply nested arrays.
        return None
    return data if isinstance(data, dict) else None


def peek_seq(payload: bytes) -> int | None:
    """The ``seq`` of a payload that fails validation, when it is a storable positive integer."""
    data = _json_object(payload)
    seq = data.get("seq") if data is not None else None
    if isinstance(seq, int) and not isinstance(seq, bool) and 1 <= seq <= SQLITE_MAX_INT:
        return seq
    return None


def peek_request_id(payload: bytes) -> uuid.UUID | None:
    """The ``request_id`` of a request that fails validation, when it is a UUID."""
    data = _json_object(payload)
    value = data.get("request_id") if data is not None else None
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            return None
    return None


def _short(text: str) -> str:
    return text if len(text) <= _REASON_MAX else text[: _REASON_MAX - 1] + "…"


def _mismatch(info: TopicInfo, library_id: str, device_id: str) -> str | None:
    if device_id != info.device_id:
        return f"payload device_id {device_id!r} differs from the topic's {info.device_id!r}"
    if library_id != info.library_id:
        return f"payload library_id {library_id!r} differs from the topic's {info.library_id!r}"
    return None


def classify(topic: str, payload: bytes, library_id: str | None) -> Classified:  # noqa: PLR0911 - one return per verdict
    """Validate one message against the topic scheme and the contract.

    ``library_id`` is the library this central serves (None: any library).
    """
    try:
        info = parse_topic(topic)
    except ContractError as exc:
        return Foreign(topic, _short(str(exc)))
    if info.direction != "up":
        return Foreign(topic, "not an uplink: central only consumes libedge/v1/+/+/up/#")
    if library_id is not None and info.library_id != library_id:
        return Foreign(topic, f"library {info.library_id!r} is not served here ({library_id!r})")
    if info.channel == "event":
        return _classify_event(info, topic, payload)
    if info.channel == "status":
        if not payload:
            return StatusCleared(info)
        try:
            status = decode(DeviceStatus, payload)
        except ContractError as exc:
            return Invalid(info, topic, "malformed", _short(str(exc)))
        wrong = _mismatch(info, status.library_id, status.device_id)
        if wrong:
            return Invalid(info, topic, "mismatch", wrong)
        return StatusMessage(info, status)
    return _classify_request(info, topic, payload)


def _classify_event(info: TopicInfo, topic: str, payload: bytes) -> Classified:
    if info.name not in EVENT_KINDS:
        reason = f"unknown event kind {info.name!r} in the topic"
        return Invalid(info, topic, "malformed", reason, seq=peek_seq(payload))
    try:
        envelope = decode(Envelope, payload)
    except ContractError as exc:
        return Invalid(info, topic, "malformed", _short(str(exc)), seq=peek_seq(payload))
    if envelope.seq > SQLITE_MAX_INT:
        return Invalid(info, topic, "malformed", f"seq beyond {SQLITE_MAX_INT} cannot be stored")
    wrong = _mismatch(info, envelope.library_id, envelope.device_id)
    if wrong is None and envelope.kind != info.name:
        wrong = f"payload type {envelope.kind!r} published on the {info.name!r} event topic"
    if wrong:
        return Invalid(info, topic, "mismatch", wrong, seq=envelope.seq)
    return EventMessage(info, envelope)


def _classify_request(info: TopicInfo, topic: str, payload: bytes) -> Classified:
    try:
        request = decode(Request, payload)
    except ContractError as exc:
        reason = _short(str(exc))
        return Invalid(info, topic, "malformed", reason, request_id=peek_request_id(payload))
    wrong = _mismatch(info, request.library_id, request.device_id)
    if wrong is None and request.body.op != info.name:
        wrong = f"request op {request.body.op!r} published on the {info.name!r} request topic"
    if wrong:
        return Invalid(info, topic, "mismatch", wrong, request_id=request.request_id)
    return RequestMessage(info, request)
