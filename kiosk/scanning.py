"""Reading the pad, for the controller: every item gets its own line as soon as it is seen.

While the kiosk expects items (borrowing or returning), each :meth:`PadScanner.maybe_scan`
that is due reads the pad on the worker. What was read is grouped into units
(:func:`~kiosk.units.group_tags`: a set counts once); each new unit gets a line at once
("Checking…"), and one worker job then processes the new units one after the other, posting
each line's final state as soon as that item is done. A set with parts missing waits on its
line until the parts arrive (or is refused when the visit ends). On the attract screen the
pad is read now and then for a library card put on it, which starts a visit like a scan.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Literal

from edge_agent.contract import RefusalReason
from hardware.reader import ReaderError
from hardware.rfid_ops import FieldReading
from kiosk import messages as msg
from kiosk.flows import Batch, Flows, LineOutcome, LineStatus
from kiosk.machine import State
from kiosk.ports import AgentError
from kiosk.session import Line, Session
from kiosk.units import Unit, UnitKind, group_tags

if TYPE_CHECKING:
    from kiosk.controller import KioskController

__all__ = ["PadScanner", "process_unit"]

log = logging.getLogger(__name__)


def process_unit(
    flows: Flows, activity: State, patron_id: str | None, unit: Unit, batch: Batch
) -> LineOutcome:
    """Process one unit on the worker; any failure becomes a line, never an exception."""
    action: Literal["checkout", "checkin"] = "checkout" if activity is State.CHECKOUT else "checkin"
    try:
        if unit.kind is UnitKind.UNREADABLE:
            tag = unit.tags[0]
            flows.refuse(
                action,
                RefusalReason.ITEM_UNKNOWN,
                patron_id=patron_id,
                item_id=None,
                offline=batch.offline,
                detail=f"tag {tag.uid_hex}: {tag.model.value}, {tag.problem or 'no item data'}",
            )
            return LineOutcome(LineStatus.REFUSED, msg.UNREADABLE_TAG)
        if activity is State.CHECKOUT:
            assert patron_id is not None
            return flows.checkout(patron_id, unit, batch)
        return flows.checkin(patron_id, unit, batch)
    except AgentError as exc:
        log.error("item %s: the agent failed: %s", unit.item_id, exc)
    except Exception:
        # Whatever went wrong, the patron gets a line and the loop goes on; an intent left
        # open is resolved by recovery.
        log.exception("item %s could not be processed", unit.item_id)
    failure = msg.NOT_LENT_FAILURE if activity is State.CHECKOUT else msg.NOT_RETURNED_FAILURE
    return LineOutcome(LineStatus.ATTENTION, failure, unit.title)


class PadScanner:
    """The pad-reading part of one controller."""

    def __init__(self, controller: KioskController) -> None:
        self.c = controller
        self.in_flight = False
        self.again = False
        self.last_scan = float("-inf")
        #: A card was on the pad when a visit began or ended: ignore cards on the pad until
        #: it has been seen without one (so a card left lying there does not start visit
        #: after visit, and no card number needs remembering).
        self.wait_for_empty = False

    def maybe_scan(self, now: float) -> None:
        """Read the pad when items are expected (or cards, on the attract screen) and due."""
        if self.in_flight:
            return
        state = self.c.state.state
        if state in (State.CHECKOUT, State.CHECKIN):
            interval = self.c.config.scan_interval_s
            session = self.c.state.session
            if session is None or session.busy:
                return
        elif state is State.ATTRACT:
            interval = self.c.config.attract_scan_interval_s
        else:
            return
        if now - self.last_scan < interval:
            return
        self.scan_now()

    def scan_now(self) -> None:
        """Read the pad now (the next tick would do it too; this saves the wait)."""
        if self.in_flight:
            # A read for another screen may be on its way: read again when it is back.
            self.again = True
            return
        self.in_flight = True
        self.last_scan = self.c.clock.monotonic()
        session = self.c.state.session
        activity = self.c.state.state
        pad = self.c.flows.pad

        def job() -> None:
            try:
                reading = pad.read()
            except ReaderError as exc:
                log.error("the pad cannot be read: %s", exc)
                self.c.post(lambda: self._on_scan(session, activity, None))
                return
            self.c.post(lambda: self._on_scan(session, activity, reading))

        self.c.submit(job)

    def _on_scan(
        self, session: Session | None, activity: State, reading: FieldReading | None
    ) -> None:
        self.in_flight = False
        again, self.again = self.again, False
        self._take(session, activity, reading)
        if again:
            self.scan_now()

    def _take(self, session: Session | None, activity: State, reading: FieldReading | None) -> None:
        self.c.state.pad_problem = reading is None
        if reading is None:
            self.c.changed()
            return
        units = group_tags(reading.tags, home_isil=self.c.config.home_isil)
        cards = [u.item_id for u in units if u.kind is UnitKind.PATRON_CARD and u.item_id]
        if activity is State.ATTRACT:
            if self.wait_for_empty:
                # A card still lying there from the last visit must not start the next one.
                self.wait_for_empty = bool(cards)
            elif cards and self.c.state.state is State.ATTRACT:
                self.wait_for_empty = True
                self.c.card_presented(cards[0])
            self.c.changed()
            return
        if self.c.is_current(session) and self.c.state.state is activity:
            assert session is not None
            self._take_units(session, activity, units)
        self.c.changed()

    def _take_units(self, session: Session, activity: State, units: list[Unit]) -> None:
        todo: list[Unit] = []
        for unit in units:
            line = session.lines.get(unit.key)
            if line is not None and line.status is not LineStatus.WAITING:
                continue  # processed already in this visit
            if unit.kind is UnitKind.PATRON_CARD:
                session.lines[unit.key] = Line(
                    unit.key, activity, None, None, LineStatus.INFO, msg.PATRON_CARD_ON_TRAY
                )
                continue
            if unit.kind is UnitKind.INCOMPLETE_SET:
                if line is None:
                    line = Line(
                        unit.key,
                        activity,
                        unit.item_id,
                        unit.title,
                        LineStatus.WAITING,
                        msg.set_waiting(unit.parts, unit.found),
                    )
                    session.lines[unit.key] = line
                line.message = msg.set_waiting(unit.parts, unit.found)
                line.unit = unit
                self.c.touch()
                continue
            if line is None:
                line = Line(
                    unit.key, activity, unit.item_id, unit.title, LineStatus.CHECKING, msg.CHECKING
                )
                session.lines[unit.key] = line
            line.status, line.message, line.unit = LineStatus.CHECKING, msg.CHECKING, None
            todo.append(unit)
        if todo:
            self.c.touch()
            self._process(session, activity, todo)

    def _process(self, session: Session, activity: State, units: list[Unit]) -> None:
        patron_id = session.patron.patron_id if session.patron is not None else None
        batch = Batch(lent_offline=session.lent_offline)
        session.busy += 1
        flows = self.c.flows

        def job() -> None:
            for unit in units:
                outcome = process_unit(flows, activity, patron_id, unit, batch)
                self.c.post(partial(self._on_line, session, unit.key, outcome))
            self.c.post(lambda: self._on_batch(session, batch))

        self.c.submit(job)

    def _on_line(self, session: Session, key: str, outcome: LineOutcome) -> None:
        if not self.c.is_current(session):
            return
        line = session.lines.get(key)
        if line is not None:
            line.apply(outcome)
        if outcome.offline:
            session.offline = True
        self.c.changed()

    def _on_batch(self, session: Session, batch: Batch) -> None:
        session.busy -= 1
        if not self.c.is_current(session):
            return
        session.lent_offline = batch.lent_offline
        session.offline = session.offline or batch.offline
        self.c.touch()
        self.c.changed()
