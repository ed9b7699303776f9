"""Adapters from the kiosk's ports to the real implementations in ``hardware`` and the OS.

- :class:`ReaderPad`: an :class:`~kiosk.ports.ItemPad` over any
  :class:`~hardware.reader.ItemReader` (a :class:`~hardware.feig.FeigReader` on the pad —
  real or the simulator's pty, the driver cannot tell), using
  :func:`hardware.rfid_ops.read_field` and :func:`hardware.rfid_ops.set_security`.
- :class:`EscposPrinter`: a :class:`~kiosk.ports.Printer` over
  :class:`hardware.printer.ReceiptPrinter`.
- :class:`SystemClock`: the wall clock (UTC) and :func:`time.monotonic`.

- :class:`ClientAgent`: the :class:`~kiosk.ports.Agent` over the edge agent's local API
  (:class:`edge_agent.client.AgentClient`), translating the client's errors into the port's
  few kinds: unreachable (nothing can be recorded), refused (not stored), duplicate.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Mapping, Sequence

from pydantic import TypeAdapter, ValidationError

from edge_agent import client as agent_client
from edge_agent.contract import Command, ItemState, LoanPolicy, RefusalReason, Response
from edge_agent.contract.central import RequestBody
from edge_agent.contract.events import EventPayload
from edge_agent.link.answers import Offline
from hardware.feig import FeigReader
from hardware.printer import Receipt, ReceiptPrinter, open_printer
from hardware.reader import ItemReader, ReaderError
from hardware.rfid_ops import FieldReading, SecurityResult, read_field, set_security
from hardware.tags import SecurityConfig
from kiosk.ports import AgentRefused, AgentUnavailable, Committed, DuplicateEvent

__all__ = ["ClientAgent", "EscposPrinter", "ReaderPad", "SystemClock", "open_pad"]


class ReaderPad:
    """The RFID pad: an ItemReader plus the library's security configuration."""

    def __init__(
        self,
        reader: ItemReader,
        security: SecurityConfig,
        *,
        retries: int = 3,
        attempts: int = 2,
        name: str = "item reader",
    ) -> None:
        self.reader = reader
        self.security = security
        self.retries = retries
        self.attempts = attempts
        self.name = name

    def read(self) -> FieldReading:
        """Every tag on the pad, decoded (ReaderError when the reader itself fails)."""
        return read_field(self.reader, self.security, attempts=self.attempts)

    def set_security(self, uid: bytes, *, secured: bool) -> SecurityResult:
        """Switch one tag's security and read it back (never raises for device faults)."""
        return set_security(
            self.reader, uid, secured=secured, security=self.security, retries=self.retries
        )

    def describe(self) -> str:
        """Which reader, and its firmware when it answers."""
        try:
            info = self.reader.reader_info()
        except ReaderError as exc:
            return f"{self.name}: not answering ({exc})"
        return f"{self.name}: firmware {info.software_version}"

    def close(self) -> None:
        """Release the reader's port."""
        self.reader.close()


def open_pad(
    url: str,
    security: SecurityConfig,
    *,
    address: int = 0xFF,
    timeout: float = 0.5,
) -> ReaderPad:
    """Open the FEIG reader at ``url`` (``serial://…``, a pty path, ``socket://…``) as a pad."""
    reader = FeigReader(url, address=address, timeout=timeout)
    return ReaderPad(reader, security, name=f"FEIG reader at {url}")


class EscposPrinter:
    """The receipt printer (ESC/POS) reached by URL."""

    def __init__(self, url: str, printer: ReceiptPrinter | None = None) -> None:
        self.url = url
        self.printer = printer or open_printer(url)

    def print_receipt(self, receipt: Receipt) -> None:
        """Print one receipt; raises hardware.printer.PrinterError when it cannot."""
        self.printer.print_receipt(receipt)

    def describe(self) -> str:
        """The printer's state in plain words."""
        return f"{self.url}: {self.printer.status().describe()}"


class SystemClock:
    """Wall time in UTC, and the monotonic clock."""

    def now(self) -> dt.datetime:
        """The current time, timezone-aware (UTC)."""
        return dt.datetime.now(dt.UTC)

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        return time.monotonic()


_COMMANDS: TypeAdapter[list[Command]] = TypeAdapter(list[Command])


class ClientAgent:
    """The kiosk's Agent port over the edge agent's local API."""

    def __init__(
        self, client: agent_client.AgentClient, *, ask_timeout_s: float | None = None
    ) -> None:
        self.client = client
        self.ask_timeout_s = ask_timeout_s

    @staticmethod
    def _translate(exc: agent_client.AgentError) -> Exception:
        if isinstance(exc, agent_client.AgentUnavailable | agent_client.AgentUnauthorized):
            # A wrong token is a configuration fault, but its effect is the same: nothing
            # can be recorded, so the kiosk must not serve.
            return AgentUnavailable(str(exc))
        if isinstance(exc, agent_client.AgentHttpError) and exc.status == 409:
            return DuplicateEvent(str(exc))
        return AgentRefused(str(exc))

    def append(self, payload: EventPayload, *, event_id: uuid.UUID, time: dt.datetime) -> Committed:
        """Commit through ``POST /events`` (201 only after the outbox commit)."""
        try:
            stored = self.client.append(payload, time=time, event_id=event_id)
        except agent_client.AgentError as exc:
            raise self._translate(exc) from exc
        return Committed(stored.seq, stored.event_id)

    def ask(self, body: RequestBody) -> Response | Offline:
        """Ask central through ``POST /ask``; an unreachable agent raises AgentUnavailable."""
        try:
            answer = self.client.ask(body, timeout=self.ask_timeout_s)
        except agent_client.AgentError as exc:
            raise self._translate(exc) from exc
        if isinstance(answer, Offline) and answer.kind == "agent_unreachable":
            raise AgentUnavailable(answer.reason)
        return answer

    def patron_block(self, patron_id: str) -> RefusalReason | None:
        """The cached block list's answer for one patron."""
        try:
            view = self.client.patron_block(patron_id)
        except agent_client.AgentError as exc:
            raise self._translate(exc) from exc
        if not view.blocked:
            return None
        try:
            return RefusalReason(view.reason) if view.reason else RefusalReason.PATRON_BLOCKED
        except ValueError:
            return RefusalReason.PATRON_BLOCKED

    def item_state(self, item_id: str) -> ItemState | None:
        """The cached state of one item."""
        try:
            return self.client.item_state(item_id)
        except agent_client.AgentError as exc:
            raise self._translate(exc) from exc

    def loan_policy(self) -> LoanPolicy | None:
        """The cached loan policy."""
        try:
            return self.client.loan_policy()
        except agent_client.AgentError as exc:
            raise self._translate(exc) from exc

    def link_up(self) -> bool:
        """Whether the agent's link to the broker is connected."""
        try:
            return self.client.health().link.connected
        except agent_client.AgentError as exc:
            raise self._translate(exc) from exc

    def health(self) -> Mapping[str, str]:
        """The agent's health and outbox figures, for the staff screen."""
        try:
            health = self.client.health()
            outbox = self.client.outbox()
        except agent_client.AgentError as exc:
            raise self._translate(exc) from exc
        oldest = outbox.oldest_unconfirmed_age_s
        contact = health.link.last_central_contact
        return {
            "status": health.status,
            "link": health.link.phase,
            "last central contact": contact.isoformat() if contact else "never",
            "events waiting": str(outbox.unconfirmed),
            "oldest waiting": f"{oldest:.0f} s" if oldest is not None else "-",
            "dead letters": str(outbox.counts.get("dead", 0)),
        }

    def commands(self) -> Sequence[Command]:
        """Recent staff commands (``GET /commands``), when the client offers them."""
        fetch = getattr(self.client, "commands", None)
        if fetch is None:
            return []
        try:
            return _COMMANDS.validate_python(fetch())
        except agent_client.AgentError as exc:
            raise self._translate(exc) from exc
        except ValidationError as exc:
            raise AgentRefused(f"unreadable staff commands from the agent: {exc}") from exc
