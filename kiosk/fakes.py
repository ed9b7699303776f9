"""In-memory stand-ins for the kiosk's ports, shipped beside the real adapters.

Like httpx's mock transport: for tests, demos and benchmarks that need no agent process.

:class:`MemoryAgent` is a faithful fake of :class:`~kiosk.ports.Agent`: a small circulation
model answering the requests with the central simulator's rules (patron unknown, blocked,
PIN, not for loan, on loan, on hold, limit; hold alerts on return; renewal limit), a real
:class:`~edge_agent.outbox.Outbox` behind :meth:`MemoryAgent.append` (a
:class:`~edge_agent.outbox.SqliteOutbox` file when durability matters, as in the crash
tests), events applied to the model as they are committed, switches for "central
unreachable" and "agent down", and the offline caches derived from the model.

The fake devices (:class:`MemoryPad`, :class:`FakeClock`, :class:`MemoryPrinter`,
:class:`MemoryMailer`) live in :mod:`kiosk.fake_devices` and are re-exported here.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import SecretStr, TypeAdapter

from edge_agent.contract import (
    AccountAnswer,
    AccountQuery,
    Checkin,
    CheckinAnswer,
    CheckinAuth,
    Checkout,
    CheckoutAnswer,
    CheckoutAuth,
    Command,
    Hold,
    ItemState,
    Loan,
    LoanPolicy,
    PatronAnswer,
    PatronLookup,
    RefusalReason,
    Renewal,
    RenewAnswer,
    RenewAuth,
    Response,
)
from edge_agent.contract.central import CommandBody, RequestBody, ResponseBody
from edge_agent.contract.events import EventPayload
from edge_agent.link.answers import Offline
from edge_agent.outbox import EventIdConflict, MemoryOutbox, Outbox, OutboxError
from kiosk.fake_devices import FakeClock, MemoryMailer, MemoryPad, MemoryPrinter, PadTag
from kiosk.ports import (
    AgentRefused,
    AgentUnavailable,
    Committed,
    DuplicateEvent,
)

__all__ = [
    "FakeClock",
    "FakeItem",
    "FakePatron",
    "MemoryAgent",
    "MemoryMailer",
    "MemoryPad",
    "MemoryPrinter",
    "PadTag",
    "events_in",
]

_PAYLOAD: TypeAdapter[EventPayload] = TypeAdapter(EventPayload)


ItemStateName = Literal["on_shelf", "on_loan", "on_hold", "missing"]


@dataclass
class FakePatron:
    """A patron of the fake library."""

    patron_id: str
    name: str
    pin: str | None = None
    blocked: bool = False
    language: Literal["vi", "en"] | None = None
    max_loans: int | None = None
    fines: int = 0


@dataclass
class FakeItem:
    """An item of the fake library and its circulation state."""

    item_id: str
    title: str | None = None
    not_for_loan: bool = False
    not_for_offline_issue: bool = False
    state: ItemStateName = "on_shelf"
    patron_id: str | None = None
    due: dt.date | None = None
    renewals: int = 0
    holds: list[str] = field(default_factory=list)  # patron ids waiting, first first


class MemoryAgent:
    """A fake edge agent with a small circulation model; thread-safe."""

    def __init__(
        self,
        patrons: Iterable[FakePatron] = (),
        items: Iterable[FakeItem] = (),
        *,
        outbox: Outbox | None = None,
        device_id: str = "kiosk-1",
        loan_days: int = 14,
        max_loans: int = 5,
        max_renewals: int = 2,
        offline_max_items: int = 5,
        today: dt.date | None = None,
    ) -> None:
        self.patrons = {p.patron_id: p for p in patrons}
        self.items = {i.item_id: i for i in items}
        self.outbox: Outbox = outbox if outbox is not None else MemoryOutbox()
        self.device_id = device_id
        self.loan_days = loan_days
        self.max_loans = max_loans
        self.max_renewals = max_renewals
        self.offline_max_items = offline_max_items
        self.today = today or dt.date.today()
        #: False: the central system is unreachable (ask() answers Offline).
        self.central_up = True
        #: False: the agent process itself is gone (every call raises AgentUnavailable).
        self.available = True
        #: True: the outbox refuses appends (full, or its disk failed).
        self.refuse_appends = False
        self.asked: list[RequestBody] = []
        #: False: central never sent a loan policy (the configured one applies offline).
        self.has_policy = True
        self.sent_commands: list[Command] = []
        self._lock = threading.RLock()

    # ------------------------------------------------------------ the port

    def _check_available(self) -> None:
        if not self.available:
            raise AgentUnavailable("connection refused by the local agent")

    def append(self, payload: EventPayload, *, event_id: uuid.UUID, time: dt.datetime) -> Committed:
        """Commit the event to the outbox, then apply it to the model (as central would)."""
        self._check_available()
        if self.refuse_appends:
            raise AgentRefused("the outbox is full")
        with self._lock:
            try:
                stored = self.outbox.append(
                    self.device_id,
                    payload.type,
                    payload.model_dump_json(),
                    event_time=time.timestamp(),
                    event_id=str(event_id),
                )
            except EventIdConflict as exc:
                raise DuplicateEvent(str(exc)) from exc
            except OutboxError as exc:
                raise AgentRefused(str(exc)) from exc
            self._apply(payload)
        return Committed(stored.seq, uuid.UUID(stored.event_id))

    def ask(self, body: RequestBody) -> Response | Offline:
        """Answer with the central simulator's rules, or Offline while central is down."""
        self._check_available()
        with self._lock:
            # Kept for tests to inspect, without the PIN: nothing keeps a PIN.
            self.asked.append(
                body.model_copy(update={"pin": None}) if isinstance(body, PatronLookup) else body
            )
            if not self.central_up:
                return Offline(kind="link_down", reason="central unreachable (simulated)")
            return self._answer(body)

    def patron_block(self, patron_id: str) -> RefusalReason | None:
        """The block list central would push: blocked patrons and those owing too much."""
        self._check_available()
        with self._lock:
            patron = self.patrons.get(patron_id)
            if patron is not None and self._blocked(patron):
                return RefusalReason.PATRON_BLOCKED
            return None

    def item_state(self, item_id: str) -> ItemState | None:
        """The cached state central would push for one item."""
        self._check_available()
        with self._lock:
            item = self.items.get(item_id)
            if item is None:
                return None
            state: ItemStateName = (
                "on_hold" if item.holds and item.state == "on_shelf" else (item.state)
            )
            return ItemState(
                item_id=item.item_id,
                state=state,
                not_for_offline_issue=item.not_for_offline_issue,
                title=item.title,
            )

    def loan_policy(self) -> LoanPolicy | None:
        """The loan policy central would push (None: pretend it never sent one)."""
        self._check_available()
        if not self.has_policy:
            return None
        return LoanPolicy(
            loan_days=self.loan_days,
            offline_max_items=self.offline_max_items,
            max_renewals=self.max_renewals,
        )

    def commands(self) -> Sequence[Command]:
        """Staff commands queued with :meth:`send_command`, oldest first."""
        self._check_available()
        with self._lock:
            return list(self.sent_commands)

    def send_command(self, body: CommandBody) -> Command:
        """Queue a staff command as central would send it."""
        command = Command(command_id=uuid.uuid4(), time=dt.datetime.now(dt.UTC), body=body)
        with self._lock:
            self.sent_commands.append(command)
        return command

    def link_up(self) -> bool:
        """Whether central is reachable."""
        self._check_available()
        return self.central_up

    def health(self) -> Mapping[str, str]:
        """Outbox depth, as the real agent reports it."""
        self._check_available()
        stats = self.outbox.stats()
        return {"outbox held": str(stats.held_rows), "central": "up" if self.central_up else "down"}

    # ------------------------------------------------------------ for tests

    def events(self) -> list[EventPayload]:
        """Every event committed so far, oldest first."""
        with self._lock:
            return events_in(self.outbox, self.device_id)

    # ------------------------------------------------------------ the model

    def _ok(self, body: ResponseBody) -> Response:
        return Response(
            request_id=uuid.uuid4(), time=dt.datetime.now(dt.UTC), outcome="ok", body=body
        )

    @staticmethod
    def _refused(reason: RefusalReason, message: str) -> Response:
        return Response(
            request_id=uuid.uuid4(),
            time=dt.datetime.now(dt.UTC),
            outcome="refused",
            reason=reason,
            message=message,
        )

    def _loans(self, patron_id: str) -> list[FakeItem]:
        return [i for i in self.items.values() if i.state == "on_loan" and i.patron_id == patron_id]

    def _blocked(self, patron: FakePatron) -> bool:
        return patron.blocked or patron.fines >= 50_000

    def _answer(self, body: RequestBody) -> Response:  # noqa: PLR0911 - one guard per rule
        if isinstance(body, CheckinAuth):
            item = self.items.get(body.item_id)
            if item is None:
                return self._refused(RefusalReason.ITEM_UNKNOWN, f"no item {body.item_id}")
            return self._ok(
                CheckinAnswer(item_id=item.item_id, title=item.title, hold_alert=bool(item.holds))
            )
        patron = self.patrons.get(body.patron_id)
        if patron is None:
            return self._refused(RefusalReason.PATRON_UNKNOWN, f"no card {body.patron_id}")
        if isinstance(body, PatronLookup):
            return self._lookup(patron, body.pin)
        if isinstance(body, AccountQuery):
            return self._account(patron)
        if self._blocked(patron):
            return self._refused(RefusalReason.PATRON_BLOCKED, "blocked")
        item = self.items.get(body.item_id)
        if item is None:
            return self._refused(RefusalReason.ITEM_UNKNOWN, f"no item {body.item_id}")
        if isinstance(body, RenewAuth):
            return self._renew(patron, item)
        return self._checkout(patron, item, body)

    def _lookup(self, patron: FakePatron, pin: SecretStr | None) -> Response:
        if patron.pin is not None and (pin is None or pin.get_secret_value() != patron.pin):
            return self._refused(RefusalReason.WRONG_PIN, "the PIN does not match")
        return self._ok(
            PatronAnswer(
                patron_id=patron.patron_id,
                display_name=patron.name,
                may_borrow=not self._blocked(patron),
                loans_count=len(self._loans(patron.patron_id)),
                language=patron.language,
            )
        )

    def _checkout(self, patron: FakePatron, item: FakeItem, body: CheckoutAuth) -> Response:
        if item.not_for_loan:
            return self._refused(RefusalReason.ITEM_NOT_FOR_LOAN, "reference only")
        if item.state == "on_loan":
            return self._refused(RefusalReason.ITEM_ALREADY_ON_LOAN, "on loan")
        if item.holds and item.holds[0] != patron.patron_id:
            return self._refused(RefusalReason.ITEM_ON_HOLD, "on hold for another patron")
        limit = patron.max_loans if patron.max_loans is not None else self.max_loans
        if len(self._loans(body.patron_id)) >= limit:
            return self._refused(RefusalReason.LIMIT_REACHED, f"limit of {limit} loans reached")
        due = self.today + dt.timedelta(days=self.loan_days)
        return self._ok(CheckoutAnswer(item_id=item.item_id, title=item.title, due_date=due))

    def _renew(self, patron: FakePatron, item: FakeItem) -> Response:
        if item.state != "on_loan" or item.patron_id != patron.patron_id:
            return self._refused(RefusalReason.OTHER, "not on loan to this patron")
        if item.holds:
            return self._refused(RefusalReason.ITEM_ON_HOLD, "another patron is waiting")
        if item.renewals >= self.max_renewals:
            return self._refused(RefusalReason.RENEWAL_LIMIT, "renewal limit")
        due = self.today + dt.timedelta(days=self.loan_days)
        return self._ok(RenewAnswer(item_id=item.item_id, title=item.title, due_date=due))

    def _account(self, patron: FakePatron) -> Response:
        loans = [
            Loan(
                item_id=i.item_id,
                title=i.title,
                due_date=i.due or self.today,
                overdue=(i.due or self.today) < self.today,
                renewable=not self._blocked(patron)
                and i.renewals < self.max_renewals
                and not i.holds,
            )
            for i in self._loans(patron.patron_id)
        ]
        holds = [
            Hold(item_id=i.item_id, title=i.title, pickup_by=self.today + dt.timedelta(days=7))
            for i in self.items.values()
            if i.holds and i.holds[0] == patron.patron_id and i.state == "on_shelf"
        ]
        return self._ok(
            AccountAnswer(
                patron_id=patron.patron_id, loans=loans, holds_ready=holds, fines=patron.fines
            )
        )

    def _apply(self, payload: EventPayload) -> None:
        if isinstance(payload, Checkout):
            item = self.items.setdefault(payload.item_id, FakeItem(payload.item_id))
            item.state, item.patron_id, item.due = "on_loan", payload.patron_id, payload.due_date
            if item.holds and item.holds[0] == payload.patron_id:
                item.holds.pop(0)
        elif isinstance(payload, Checkin):
            item = self.items.setdefault(payload.item_id, FakeItem(payload.item_id))
            item.state, item.patron_id, item.due, item.renewals = "on_shelf", None, None, 0
        elif isinstance(payload, Renewal):
            item = self.items.setdefault(payload.item_id, FakeItem(payload.item_id))
            item.due, item.renewals = payload.due_date, item.renewals + 1


def events_in(outbox: Outbox, device_id: str) -> list[EventPayload]:
    """Decode every event an outbox holds for one device, oldest first."""
    last = outbox.stats().last_seq.get(device_id, 0)
    found = []
    for seq in range(1, last + 1):
        stored = outbox.get(device_id, seq)
        if stored is not None:
            found.append(_PAYLOAD.validate_json(stored.payload))
    return found
