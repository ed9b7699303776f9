"""What central sends a device, checked before anything acts on it.

Everything that arrives on the device's subscription goes through :func:`read_downlink`,
which returns a typed message or raises :class:`IgnoredMessage` with a short ``label``
(counted in ``/metrics``) and a sentence naming what is wrong (logged). A message is
ignored when its topic is not a libedge downlink, names another library or device, its
payload does not follow the contract, or the ids inside it differ from its topic: a
retained message on a mistyped topic or a forged receipt must never confirm our events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from edge_agent.contract import (
    CacheUpdate,
    Command,
    ContractError,
    DeliveryReceipt,
    Response,
    decode,
)
from edge_agent.contract.topics import parse_topic

__all__ = [
    "CacheMessage",
    "CommandMessage",
    "DownlinkMessage",
    "IgnoredMessage",
    "ReceiptMessage",
    "ResponseMessage",
    "read_downlink",
]


class IgnoredMessage(Exception):  # noqa: N818 - it is an outcome, not an error of ours
    """A received message that is not for us or not valid; ``label`` names the kind."""

    def __init__(self, label: str, detail: str) -> None:
        super().__init__(detail)
        self.label = label
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ReceiptMessage:
    """Central's delivery receipt."""

    receipt: DeliveryReceipt


@dataclass(frozen=True, slots=True)
class ResponseMessage:
    """An answer to one of our requests; ``correlation`` pairs it with the caller."""

    response: Response
    correlation: bytes


@dataclass(frozen=True, slots=True)
class CacheMessage:
    """A new version of one offline cache."""

    update: CacheUpdate


@dataclass(frozen=True, slots=True)
class CommandMessage:
    """A staff command."""

    command: Command


DownlinkMessage = ReceiptMessage | ResponseMessage | CacheMessage | CommandMessage


M = TypeVar("M", DeliveryReceipt, Response, CacheUpdate, Command)


def _decode(model: type[M], payload: bytes, topic: str) -> M:
    try:
        return decode(model, payload)
    except ContractError as exc:
        raise IgnoredMessage("malformed", f"on {topic}: {exc}") from None


def read_downlink(
    topic: str, payload: bytes, properties: Any, *, library_id: str, device_id: str
) -> DownlinkMessage:
    """Check one received message and return it typed, or raise IgnoredMessage saying why."""
    try:
        info = parse_topic(topic)
    except ContractError as exc:
        raise IgnoredMessage("foreign_topic", str(exc)) from None
    if (info.library_id, info.device_id) != (library_id, device_id):
        raise IgnoredMessage(
            "foreign_device",
            f"on {topic}: for {info.library_id}/{info.device_id}, not {library_id}/{device_id}",
        )
    if info.direction != "down":
        raise IgnoredMessage("not_downlink", f"on {topic}: an uplink topic")
    if info.channel == "receipt":
        receipt = _decode(DeliveryReceipt, payload, topic)
        if (receipt.library_id, receipt.device_id) != (library_id, device_id):
            raise IgnoredMessage(
                "mismatched_ids",
                f"on {topic}: receipt for {receipt.library_id}/{receipt.device_id}",
            )
        return ReceiptMessage(receipt)
    if info.channel == "response":
        response = _decode(Response, payload, topic)
        correlation = getattr(properties, "CorrelationData", None)
        if correlation is not None and bytes(correlation) != response.request_id.bytes:
            raise IgnoredMessage(
                "mismatched_ids", f"on {topic}: correlation data differs from request_id"
            )
        return ResponseMessage(response, response.request_id.bytes)
    if info.channel == "cache":
        update = _decode(CacheUpdate, payload, topic)
        if update.body.cache != info.name:
            raise IgnoredMessage(
                "mismatched_ids", f"on {topic}: holds the {update.body.cache} cache"
            )
        if update.library_id != library_id:
            raise IgnoredMessage(
                "mismatched_ids", f"on {topic}: cache of library {update.library_id}"
            )
        return CacheMessage(update)
    if info.channel == "command":
        return CommandMessage(_decode(Command, payload, topic))
    raise IgnoredMessage("not_downlink", f"on {topic}: unexpected channel {info.channel}")
