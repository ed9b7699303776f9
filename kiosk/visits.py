"""The activities of a visit, for the controller: items, renewals, the account, receipts.

Split from :mod:`kiosk.controller` to keep each file readable; these methods run on the UI
thread like the controller's own, and hand slow work to the controller's worker.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Literal

from edge_agent.contract import AccountAnswer, RefusalReason
from hardware.printer import PrinterError, Receipt
from kiosk import messages as msg
from kiosk.flows import LineOutcome, LineStatus
from kiosk.i18n import Text
from kiosk.machine import OK, Input, Result, State
from kiosk.patrons import build_receipt, fetch_account
from kiosk.ports import AgentError, Mailer, MailError, Printer
from kiosk.session import Line, Session
from kiosk.units import Unit

if TYPE_CHECKING:
    from kiosk.controller import KioskController

__all__ = ["Visits"]

ItemAction = Literal["checkout", "checkin"]

log = logging.getLogger(__name__)


class Visits:
    """Activities of the current session (owned by one controller)."""

    def __init__(self, controller: KioskController) -> None:
        self.c = controller

    # ------------------------------------------------------------ entering an activity

    def entered(self, state: State) -> None:
        """Start what an activity needs: the pad, or the account from the central system."""
        c = self.c
        if state in (State.CHECKOUT, State.CHECKIN):
            c.scan_now()
        elif state in (State.RENEW, State.ACCOUNT):
            self._load_account(state)

    def _load_account(self, state: State) -> None:
        c = self.c
        session = c.session
        assert session is not None
        assert session.patron is not None
        patron_id = session.patron.patron_id
        session.busy += 1
        session.account_failed = False
        flows = c.flows

        def job() -> None:
            answer = fetch_account(flows, patron_id)
            c.post(lambda: self._on_account(session, state, answer))

        c.submit(job)

    def _on_account(self, session: Session, state: State, answer: AccountAnswer | None) -> None:
        session.busy -= 1
        c = self.c
        if not c.is_current(session):
            return
        session.account = answer
        session.account_failed = answer is None
        if answer is not None and state is State.RENEW:
            for loan in answer.loans:
                key = f"loan:{loan.item_id}"
                if key in session.lines:
                    continue
                session.lines[key] = Line(
                    key,
                    State.RENEW,
                    loan.item_id,
                    loan.title,
                    LineStatus.INFO,
                    msg.loan_overdue(loan.due_date)
                    if loan.overdue
                    else msg.loan_due(loan.due_date),
                    due=loan.due_date,
                    can_renew=loan.renewable,
                )
        if answer is None and state is State.RENEW:
            session.notice = msg.refusal("renew", RefusalReason.CENTRAL_UNREACHABLE)
        c.touch()
        c.changed()

    # ------------------------------------------------------------ renewals

    def renew(self, item_ids: Sequence[str]) -> Result:
        """Renew loans listed on the renew screen, one line each."""
        c = self.c
        session = c.session
        if session is None or session.patron is None or c.state.state is not State.RENEW:
            return c.refuse("renewing")
        lines = [session.lines.get(f"loan:{item_id}") for item_id in item_ids]
        chosen = [line for line in lines if line is not None and line.can_renew]
        if not chosen:
            return Result(False, "no renewable loan among those chosen")
        patron_id = session.patron.patron_id
        for line in chosen:
            line.status, line.message, line.can_renew = (
                LineStatus.CHECKING,
                msg.RENEW_CHECKING,
                False,
            )
        work = [(line.key, line.item_id or "", line.title) for line in chosen]
        session.busy += 1
        flows = c.flows

        def job() -> None:
            for key, item_id, title in work:
                try:
                    outcome = flows.renew(patron_id, item_id, title)
                except AgentError as exc:
                    log.error("renewal of %s failed: %s", item_id, exc)
                    outcome = LineOutcome(
                        LineStatus.ATTENTION, msg.refusal("renew", RefusalReason.OTHER), title
                    )
                c.post(partial(self._on_renewed, session, key, outcome))
            c.post(lambda: self._on_renew_batch(session))

        c.submit(job)
        c.touch()
        c.changed()
        return OK

    def _on_renewed(self, session: Session, key: str, outcome: LineOutcome) -> None:
        c = self.c
        if c.is_current(session) and key in session.lines:
            session.lines[key].apply(outcome)
            c.changed()

    def _on_renew_batch(self, session: Session) -> None:
        session.busy -= 1
        if self.c.is_current(session):
            self.c.touch()
            self.c.changed()

    def _delivered(self, notice: Text | None) -> None:
        self.c.notice(notice)
        self.c.changed()

    # ------------------------------------------------------------ finishing

    def refuse_waiting(self, session: Session, lines: Sequence[Line]) -> None:
        """Record refusals for sets left incomplete when the visit ends or moves on."""
        c = self.c
        patron_id = session.patron.patron_id if session.patron is not None else None
        offline = session.offline
        work: list[tuple[ItemAction, Unit]] = []
        for line in lines:
            assert line.unit is not None
            action: ItemAction = "checkout" if line.activity is State.CHECKOUT else "checkin"
            work.append((action, line.unit))
            line.apply(
                LineOutcome(
                    LineStatus.REFUSED,
                    msg.refusal(action, RefusalReason.INCOMPLETE_SET),
                    line.title,
                )
            )
        flows = c.flows

        def job() -> None:
            for action, unit in work:
                flows.refuse_incomplete(action, patron_id, unit, offline)

        c.submit(job)

    def done(self) -> Result:
        """Finish the visit: receipt screen when there is something to show, else goodbye."""
        c = self.c
        session = c.session
        state = c.state.state
        if session is None or state not in (
            State.CHOOSE,
            State.CHECKOUT,
            State.CHECKIN,
            State.RENEW,
            State.ACCOUNT,
        ):
            return c.refuse("finishing")
        if session.busy:
            return c.refuse("finishing while items are being processed")
        waiting = [
            line
            for line in session.lines.values()
            if line.status is LineStatus.WAITING and line.unit is not None
        ]
        if waiting:
            self.refuse_waiting(session, waiting)
        c.touch()
        identified = session.patron is not None
        if not session.receipt_lines():
            return c.go(Input.FINISH)
        choice = c.config.receipt_default
        can_print = c.printer is not None
        can_email = c.mailer is not None and identified
        if choice == "ask" and (can_print or can_email):
            return c.go(Input.DONE)
        if (choice == "print" and can_print) or (choice == "email" and can_email):
            self._send_receipt(session, choice)
        return c.go(Input.FINISH)

    def receipt(self, choice: str) -> Result:
        """The patron's receipt choice; the session ends at once either way."""
        c = self.c
        session = c.session
        if c.state.state is not State.RECEIPT or session is None:
            return c.refuse("a receipt choice")
        if choice not in ("print", "email", "none"):
            return Result(False, f"unknown receipt choice {choice!r}")
        if choice == "print" and c.printer is None:
            return Result(False, "no printer here")
        if choice == "email" and (c.mailer is None or session.patron is None):
            return Result(False, "no e-mail receipts here")
        if choice != "none":
            self._send_receipt(session, choice)
        return c.go(Input.RECEIPT_CHOSEN)

    def _send_receipt(self, session: Session, choice: str) -> None:
        c = self.c
        receipt = build_receipt(
            library_name=c.config.library_name,
            card_number=session.card_number,
            lines=session.receipt_lines(),
            when=c.clock.now().astimezone(c.config.timezone),
            language=c.state.language,
            catalogues=c.catalogues,
        )
        patron_id = session.patron.patron_id if session.patron is not None else None
        printer, mailer = c.printer, c.mailer

        def job() -> None:
            # Printing and mailing happen here, on the worker; only the outcome is posted.
            notice = _deliver(choice, receipt, patron_id, printer, mailer)
            c.post(lambda: self._delivered(notice))

        c.submit(job)


def _deliver(
    choice: str,
    receipt: Receipt,
    patron_id: str | None,
    printer: Printer | None,
    mailer: Mailer | None,
) -> Text | None:
    """Print or mail a receipt on the worker; return the notice to show (None: nothing)."""
    if choice == "print":
        assert printer is not None
        try:
            printer.print_receipt(receipt)
        except PrinterError as exc:
            log.error("receipt not printed: %s", exc)
            return msg.PRINTER_FAILED
        return None
    assert mailer is not None
    assert patron_id is not None
    try:
        mailer.send_receipt(patron_id, receipt)
    except MailError as exc:
        log.error("receipt not mailed: %s", exc)
        return msg.EMAIL_FAILED
    return msg.EMAIL_SENT
