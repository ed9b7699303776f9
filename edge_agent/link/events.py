"""What the MQTT network thread hands to the link's worker thread, through one queue.

paho runs its callbacks on the network thread while it holds its own locks, so a callback
here only builds one of these small immutable records and puts it on a
:class:`queue.SimpleQueue`; every decision, every disk write and every application lock
happens later on the worker thread. ``generation`` numbers the connection an event belongs
to, so that a late PUBACK of a dropped connection is never mistaken for one of the next
(MQTT packet ids are reused across connections).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

__all__ = [
    "Connected",
    "Disconnected",
    "LinkEvent",
    "Problem",
    "ProblemKind",
    "Published",
    "PublishedBatch",
    "Received",
    "Wake",
]


class ProblemKind(StrEnum):
    """Why the link is not up (or why a message did not get through), for staff."""

    UNREACHABLE = "unreachable"  # no TCP connection: broker down, network down, DNS
    AUTH = "auth"  # the broker refused the credentials (wrong password, unknown certificate)
    TLS = "tls"  # TLS handshake failed (untrusted certificate, wrong host name)
    REFUSED = "refused"  # the broker refused a message (ACL) or the connection (other reason)
    PROTOCOL = "protocol"  # no CONNACK in time, or a protocol error


@dataclass(frozen=True, slots=True)
class Connected:
    """A CONNACK with success arrived on connection ``generation``."""

    generation: int
    session_present: bool


@dataclass(frozen=True, slots=True)
class Disconnected:
    """Connection ``generation`` ended; ``reason`` says how, for the log and the status."""

    generation: int
    reason: str
    by_server: bool


@dataclass(frozen=True, slots=True)
class Problem:
    """Something stops the link from working: a failed attempt, refused credentials, ACL."""

    kind: ProblemKind
    message: str


class Published(NamedTuple):
    """The broker answered a QoS 1 publish (PUBACK) with ``reason_code``.

    A named tuple, not a frozen dataclass: one is built per PUBACK on paho's network
    thread, and a tuple costs a fraction of a frozen dataclass's ``__init__``.
    """

    generation: int
    mid: int
    reason_code: int
    reason: str


@dataclass(frozen=True, slots=True)
class PublishedBatch:
    """The PUBACKs read in one turn of the network thread, handed over together.

    One queue hand-off per socket read instead of one per PUBACK: at thousands of events
    per second, waking the worker for each would cost more than the work itself.
    """

    items: list[Published]


@dataclass(frozen=True, slots=True)
class Received:
    """A message arrived on a subscribed topic."""

    generation: int
    topic: str
    payload: bytes
    properties: Any  # paho Properties or None; read on the worker thread only


@dataclass(frozen=True, slots=True)
class Wake:
    """Something outside the link changed (an event was appended, a staff retry): look again."""


LinkEvent = Connected | Disconnected | Problem | Published | PublishedBatch | Received | Wake
