"""What the controller knows, as plain data: the kiosk's state and one patron's session.

Everything about a patron — card number, name, lines with titles and due dates, the account
— lives in one :class:`Session` object and nowhere else. Ending a session drops that one
reference, and nothing of the patron remains reachable from the controller (a test walks
the object graph to prove it). The PIN is never here: it goes from the keypad straight into
the lookup request.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from edge_agent.contract import AccountAnswer, ScreenMessage
from kiosk.flows import LineOutcome, LineStatus, ReceiptKind
from kiosk.i18n import Text
from kiosk.machine import State
from kiosk.units import Unit

__all__ = ["KioskState", "Line", "Patron", "Session", "StaffPanel"]


@dataclass(slots=True)
class Patron:
    """The identified patron, as much as the kiosk needs."""

    patron_id: str
    name: str | None
    may_borrow: bool
    offline: bool = False


@dataclass(slots=True)
class Line:
    """One item line on the screen (an item on the pad, or a loan to renew)."""

    key: str
    activity: State
    item_id: str | None
    title: str | None
    status: LineStatus
    message: Text
    due: dt.date | None = None
    hold: bool = False
    offline: bool = False
    receipt: ReceiptKind | None = None
    can_renew: bool = False
    #: For a set waiting for its parts: the unit as last seen, to refuse it if it stays so.
    unit: Unit | None = None

    def apply(self, outcome: LineOutcome) -> None:
        """Take a flow's outcome into the line."""
        self.status = outcome.status
        self.message = outcome.message
        self.title = outcome.title or self.title
        self.due = outcome.due
        self.hold = outcome.hold
        self.offline = outcome.offline
        self.receipt = outcome.receipt
        self.can_renew = False
        self.unit = None


@dataclass(slots=True)
class Session:
    """One patron's visit, from the card (or "return books") to goodbye."""

    card_number: str | None
    started: float
    last_activity: float
    patron: Patron | None = None
    lines: dict[str, Line] = field(default_factory=dict)
    wrong_pins: int = 0
    offline: bool = False
    lent_offline: int = 0
    busy: int = 0  # jobs in flight for this session (the inactivity clock waits for them)
    account: AccountAnswer | None = None
    account_failed: bool = False
    notice: Text | None = None

    def lines_for(self, activity: State) -> list[Line]:
        """The lines of one activity, in the order they appeared."""
        return [line for line in self.lines.values() if line.activity is activity]

    def receipt_lines(self) -> list[Line]:
        """Lines that go on a receipt (what was done)."""
        return [line for line in self.lines.values() if line.receipt is not None]


@dataclass(slots=True)
class StaffPanel:
    """What the staff screen shows: health figures and the last test's result."""

    health: tuple[tuple[str, str], ...] = ()
    result: Text | None = None
    detail: str | None = None  # technical detail for staff (not translated)


@dataclass(slots=True)
class KioskState:
    """Everything the presenter needs to draw the screen."""

    state: State
    language: str
    session: Session | None = None
    out_of_service: bool = False
    out_of_service_reason: str | None = None
    link_up: bool = True
    agent_reachable: bool = True
    pad_problem: bool = False
    screen_message: ScreenMessage | None = None
    notice: Text | None = None  # shown outside a session (attract, goodbye), not personal
    notice_until: float = 0.0
    goodbye_until: float = 0.0
    staff: StaffPanel | None = None
    staff_busy: bool = False
    now: float = 0.0  # the monotonic time of the last tick, for the countdown
