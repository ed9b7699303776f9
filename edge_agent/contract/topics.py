"""The MQTT topic scheme: every device owns one subtree, split by direction.

::

    libedge/v1/{library}/{device}/up/event/{kind}     device -> central, QoS 1, Envelope
    libedge/v1/{library}/{device}/up/status           device -> central, retained, DeviceStatus
    libedge/v1/{library}/{device}/up/request/{op}     device -> central, Request (MQTT v5)
    libedge/v1/{library}/{device}/down/response       central -> device, Response
    libedge/v1/{library}/{device}/down/receipt        central -> device, DeliveryReceipt
    libedge/v1/{library}/{device}/down/cache/{name}   central -> device, retained, CacheUpdate
    libedge/v1/{library}/{device}/down/command        central -> device, Command

For example, kiosk ``kiosk-1`` of library ``hn-pl`` records a checkout on
``libedge/v1/hn-pl/kiosk-1/up/event/checkout`` and reads its receipts on
``libedge/v1/hn-pl/kiosk-1/down/receipt``.

With the MQTT username set to the device id, two Mosquitto ACL patterns confine a device to
its own subtree, writing only ``up`` and reading only ``down``::

    pattern write libedge/v1/+/%u/up/#
    pattern read  libedge/v1/+/%u/down/#

Central consumes with an MQTT v5 shared subscription so that several instances share the
load: ``$share/central/libedge/v1/+/+/up/#``. It also rejects any payload whose device id
differs from the one in its topic, since a client id (or a payload) proves nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from .base import ContractError

__all__ = [
    "CENTRAL_SHARE_GROUP",
    "ROOT",
    "TopicInfo",
    "cache_topic",
    "central_subscription",
    "command_topic",
    "device_downlink",
    "event_topic",
    "parse_topic",
    "receipt_topic",
    "request_topic",
    "response_topic",
    "status_topic",
]

ROOT = "libedge/v1"
CENTRAL_SHARE_GROUP = "central"
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _device_root(library_id: str, device_id: str) -> str:
    for what, value in (("library id", library_id), ("device id", device_id)):
        if not _SEGMENT.match(value):
            raise ContractError(f"{what} {value!r} cannot be a topic segment")
    return f"{ROOT}/{library_id}/{device_id}"


def event_topic(library_id: str, device_id: str, kind: str) -> str:
    """Where a device publishes events of one kind."""
    return f"{_device_root(library_id, device_id)}/up/event/{kind}"


def status_topic(library_id: str, device_id: str) -> str:
    """Where a device's retained status (and Last Will) lives."""
    return f"{_device_root(library_id, device_id)}/up/status"


def request_topic(library_id: str, device_id: str, op: str) -> str:
    """Where a device asks central a question."""
    return f"{_device_root(library_id, device_id)}/up/request/{op}"


def response_topic(library_id: str, device_id: str) -> str:
    """Where central answers a device's questions (the MQTT v5 response topic)."""
    return f"{_device_root(library_id, device_id)}/down/response"


def receipt_topic(library_id: str, device_id: str) -> str:
    """Where central acknowledges a device's events after its own commit."""
    return f"{_device_root(library_id, device_id)}/down/receipt"


def cache_topic(library_id: str, device_id: str, name: str) -> str:
    """Where central keeps one cache for a device (retained)."""
    return f"{_device_root(library_id, device_id)}/down/cache/{name}"


def command_topic(library_id: str, device_id: str) -> str:
    """Where staff commands for a device arrive."""
    return f"{_device_root(library_id, device_id)}/down/command"


def device_downlink(library_id: str, device_id: str) -> str:
    """The one subscription a device needs: everything central sends it."""
    return f"{_device_root(library_id, device_id)}/down/#"


def central_subscription(shared: bool = True) -> str:
    """Central's subscription to every device's uplink, shared among its instances by default."""
    topic = f"{ROOT}/+/+/up/#"
    return f"$share/{CENTRAL_SHARE_GROUP}/{topic}" if shared else topic


Channel = Literal["event", "status", "request", "response", "receipt", "cache", "command"]
_SHAPES: dict[tuple[str, str], tuple[Channel, bool]] = {
    # (direction, channel) -> (channel, has a name segment)
    ("up", "event"): ("event", True),
    ("up", "status"): ("status", False),
    ("up", "request"): ("request", True),
    ("down", "response"): ("response", False),
    ("down", "receipt"): ("receipt", False),
    ("down", "cache"): ("cache", True),
    ("down", "command"): ("command", False),
}


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """A topic taken apart."""

    library_id: str
    device_id: str
    direction: Literal["up", "down"]
    channel: Channel
    name: str | None


def parse_topic(topic: str) -> TopicInfo:
    """Take a libedge topic apart, or raise ContractError saying what does not fit."""
    parts = topic.split("/")
    if len(parts) < 5 or "/".join(parts[:2]) != ROOT:
        raise ContractError(f"topic {topic!r} is not under {ROOT}/")
    library_id, device_id, direction, channel = parts[2:6] if len(parts) >= 6 else (*parts[2:5], "")
    if not (_SEGMENT.match(library_id) and _SEGMENT.match(device_id)):
        raise ContractError(f"topic {topic!r}: bad library or device segment")
    shape = _SHAPES.get((direction, channel))
    if shape is None:
        raise ContractError(f"topic {topic!r}: unknown channel {direction}/{channel}")
    kind, named = shape
    rest = parts[6:]
    if named != (len(rest) == 1) or (named and not _SEGMENT.match(rest[0])):
        raise ContractError(f"topic {topic!r}: wrong number of segments for {direction}/{channel}")
    return TopicInfo(
        library_id=library_id,
        device_id=device_id,
        direction="up" if direction == "up" else "down",
        channel=kind,
        name=rest[0] if named else None,
    )
