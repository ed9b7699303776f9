"""The ports: what the kiosk controller needs from the world, as small Protocols.

The controller never talks to a device, a socket or a file directly; it is handed one object
per port and is therefore tested with plain pytest (the simulated reader over a real pty, a
fake agent, a fake clock). :mod:`kiosk.adapters` joins the ports to the real implementations;
:mod:`kiosk.fakes` holds faithful in-memory stand-ins for tests and demos.

=============  ============================================================================
``ItemPad``    the RFID pad: read what lies on it, switch one tag's security and verify it
``Agent``      the local edge agent: commit an event, ask the central system, offline caches,
               staff commands from the central system
``Printer``    the receipt printer
``Mailer``     e-mail receipts (optional: without one the kiosk offers no e-mail button)
``Clock``      wall time (for events and due dates) and a monotonic clock (for timeouts)
``Reloader``   load the configuration again (optional: without one, reloads are refused)
=============  ============================================================================

Exceptions an adapter may raise (everything else is a bug and is logged as one)::

    AgentError               the local agent could not do what was asked
    ├── AgentUnavailable     the agent process cannot be reached (not running, socket gone)
    ├── AgentRefused         it refused to store the event (outbox full, disk error)
    └── DuplicateEvent       an event with this id is already stored, with other content
    PrinterError             (from :mod:`hardware.printer`) a receipt could not be printed
    MailError                an e-mail receipt could not be sent
    ReaderError              (from :mod:`hardware.reader`) only from ``ItemPad.read``

"The central system is unreachable" is not an exception: :meth:`Agent.ask` returns the
agent's :class:`~edge_agent.link.answers.Offline`, and the kiosk applies the library's
offline policy with the cached patron blocks, item states and loan policy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from edge_agent.contract import Command, ItemState, LoanPolicy, RefusalReason, Response
from edge_agent.contract.central import RequestBody
from edge_agent.contract.events import EventPayload
from edge_agent.link.answers import Offline
from hardware.printer import Receipt
from hardware.rfid_ops import FieldReading, SecurityResult

__all__ = [
    "Agent",
    "AgentError",
    "AgentRefused",
    "AgentUnavailable",
    "Clock",
    "Committed",
    "DuplicateEvent",
    "ItemPad",
    "MailError",
    "Mailer",
    "Offline",
    "Printer",
    "Reloader",
]


class AgentError(Exception):
    """The local edge agent could not do what was asked."""


class AgentUnavailable(AgentError):  # noqa: N818 - reads as a state, like ReaderDisconnected
    """The agent process cannot be reached: nothing can be committed until it is back."""


class AgentRefused(AgentError):  # noqa: N818
    """The agent refused to store the event (its outbox is full, or its disk failed)."""


class DuplicateEvent(AgentError):  # noqa: N818
    """An event with this id is already stored with other content (a retried recovery)."""


class MailError(Exception):
    """An e-mail receipt could not be sent."""


@dataclass(frozen=True, slots=True)
class Committed:
    """An event stored in the agent's outbox: its per-device sequence number and its id."""

    seq: int
    event_id: UUID


class ItemPad(Protocol):
    """The RFID pad the patron puts items on."""

    def read(self) -> FieldReading:
        """Read and decode every tag on the pad (raises ReaderError when the reader fails)."""
        ...

    def set_security(self, uid: bytes, *, secured: bool) -> SecurityResult:
        """Secure or unsecure one tag and read it back; never raises for tag or reader faults."""
        ...

    def describe(self) -> str:
        """One line for staff: which reader, where (no patron data)."""
        ...


class Agent(Protocol):
    """The local edge agent, as the kiosk uses it."""

    def append(self, payload: EventPayload, *, event_id: UUID, time: dt.datetime) -> Committed:
        """Commit one event to the outbox and return only after the commit.

        Appending the same ``event_id`` with the same payload again returns the stored event
        (a safe retry). Raises AgentUnavailable, AgentRefused or DuplicateEvent.
        """
        ...

    def ask(self, body: RequestBody) -> Response | Offline:
        """Ask the central system; Offline when it cannot answer.

        Raises AgentUnavailable when the agent itself cannot be reached: then nothing could
        be recorded either, which is not the same as deciding offline.
        """
        ...

    def patron_block(self, patron_id: str) -> RefusalReason | None:
        """Why the cached block list refuses this patron (None: not on it)."""
        ...

    def item_state(self, item_id: str) -> ItemState | None:
        """What the offline cache knows of one item (None: nothing)."""
        ...

    def loan_policy(self) -> LoanPolicy | None:
        """The cached loan policy (None before the central system sent one)."""
        ...

    def commands(self) -> Sequence[Command]:
        """The latest staff commands from the central system, oldest first."""
        ...

    def link_up(self) -> bool:
        """Whether the agent currently has its link to the central system."""
        ...

    def health(self) -> Mapping[str, str]:
        """Staff-facing health figures (outbox depth, last contact, ...), as text."""
        ...


class Printer(Protocol):
    """The receipt printer."""

    def print_receipt(self, receipt: Receipt) -> None:
        """Print one receipt; raise hardware.printer.PrinterError when it cannot."""
        ...

    def describe(self) -> str:
        """One line for staff: the printer's state (paper, cover, reachable)."""
        ...


class Mailer(Protocol):
    """Sends e-mail receipts to the patron's address on record."""

    def send_receipt(self, patron_id: str, receipt: Receipt) -> None:
        """Send one receipt; raise MailError when it cannot."""
        ...


class Clock(Protocol):
    """Wall time for events and due dates, monotonic time for timeouts."""

    def now(self) -> dt.datetime:
        """The current time, timezone-aware."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...


class Reloader(Protocol):
    """Starts the kiosk again on the configuration file as it is now.

    The controller asks only when no patron is using the kiosk, and checks first.
    """

    def check(self) -> str | None:
        """Why the configuration on disk cannot be used, or None if it can (worker thread)."""
        ...

    def restart(self) -> None:
        """Close the kiosk and start it again on that configuration (UI thread)."""
        ...
