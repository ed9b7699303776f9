"""Answers to the questions a kiosk asks online, decided from the circulation model.

:func:`answer` reads the database (it never writes: the event that follows an authorisation
changes the state) and returns a :class:`~edge_agent.contract.Response`. A refusal carries the
:class:`~edge_agent.contract.RefusalReason` the kiosk turns into words for the patron, and a
``message`` for staff. The checks come in the order a librarian would make them: who is the
patron, may they borrow, what is the item, may it go out, is the patron at their limit.

A PIN is compared through :class:`~simulators.central.seed.PinBook` and goes nowhere else:
not into the response, the message, the database or a log line.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid

from edge_agent.contract import (
    AccountAnswer,
    AccountQuery,
    CheckinAnswer,
    CheckinAuth,
    CheckoutAnswer,
    CheckoutAuth,
    Hold,
    Loan,
    PatronAnswer,
    PatronLookup,
    RefusalReason,
    RenewAnswer,
    RenewAuth,
    Request,
    Response,
)
from edge_agent.contract.central import ResponseBody

from .circulation import block_reason, first_hold, item_row, loan_count, patron_row
from .seed import PinBook, PinCheck, Seed

__all__ = ["Answerer", "error_response"]


def error_response(request_id: uuid.UUID, now: dt.datetime, message: str) -> Response:
    """An ``error`` answer: the request could not be understood or served."""
    return Response(request_id=request_id, time=now, outcome="error", message=message[:500])


class Answerer:
    """Decides answers for one library from its seed's rules and PINs and the database."""

    def __init__(self, seed: Seed, pins: PinBook) -> None:
        self.policy = seed.policy
        self.currency = seed.currency
        self.pins = pins

    def answer(
        self, conn: sqlite3.Connection, request: Request, now: dt.datetime, today: dt.date
    ) -> Response:
        """Answer one request; every read happens in one snapshot of the database."""
        turn = _Turn(self, conn, request, now, today)
        conn.execute("BEGIN")
        try:
            body = request.body
            if isinstance(body, PatronLookup):
                return turn.patron(body)
            if isinstance(body, CheckoutAuth):
                return turn.checkout(body)
            if isinstance(body, CheckinAuth):
                return turn.checkin(body)
            if isinstance(body, RenewAuth):
                return turn.renew(body)
            return turn.account(body)
        finally:
            conn.execute("COMMIT")


class _Turn:
    """One request being answered: the state the checks share."""

    def __init__(
        self,
        answerer: Answerer,
        conn: sqlite3.Connection,
        request: Request,
        now: dt.datetime,
        today: dt.date,
    ) -> None:
        self.policy, self.currency, self.pins = answerer.policy, answerer.currency, answerer.pins
        self._conn, self._request, self._now, self._today = conn, request, now, today

    # ------------------------------------------------------------ helpers

    def _ok(self, body: ResponseBody) -> Response:
        return Response(
            request_id=self._request.request_id, time=self._now, outcome="ok", body=body
        )

    def _refused(self, reason: RefusalReason, message: str) -> Response:
        return Response(
            request_id=self._request.request_id,
            time=self._now,
            outcome="refused",
            reason=reason,
            message=message[:500],
        )

    def _limit(self, patron: sqlite3.Row) -> int:
        return (
            int(patron["max_loans"]) if patron["max_loans"] is not None else self.policy.max_loans
        )

    def _holds_ready(self, patron_id: str) -> list[sqlite3.Row]:
        conn = self._conn
        # A hold is ready for a patron when the item waits on the hold shelf and the patron
        # is first in its queue.
        return conn.execute(
            "SELECT h.item_id, i.title, h.pickup_by FROM holds h JOIN items i USING (item_id)"
            " WHERE h.patron_id = ? AND h.ready = 1 AND i.state = 'on_hold'"
            " AND h.id = (SELECT min(id) FROM holds WHERE item_id = h.item_id)"
            " ORDER BY h.item_id",
            (patron_id,),
        ).fetchall()

    # ------------------------------------------------------------ operations

    def patron(self, body: PatronLookup) -> Response:
        conn = self._conn
        patron = patron_row(conn, body.patron_id)
        if patron is None:
            return self._refused(RefusalReason.PATRON_UNKNOWN, f"no card {body.patron_id}")
        check = self.pins.check(body.patron_id, body.pin)
        if check is PinCheck.WRONG:
            return self._refused(RefusalReason.WRONG_PIN, "the PIN does not match")
        if check is PinCheck.MISSING:
            return self._refused(RefusalReason.WRONG_PIN, "this card needs a PIN")
        return self._ok(
            PatronAnswer(
                patron_id=body.patron_id,
                display_name=patron["name"],
                may_borrow=block_reason(patron, self.policy) is None,
                loans_count=loan_count(conn, body.patron_id),
                holds_ready=len(self._holds_ready(body.patron_id)),
                language=patron["language"],
            )
        )

    def _borrower_and_item(
        self, patron_id: str, item_id: str
    ) -> tuple[sqlite3.Row, sqlite3.Row] | Response:
        """The patron (known, not blocked) and the item (known), or the refusal saying why not."""
        patron = patron_row(self._conn, patron_id)
        if patron is None:
            return self._refused(RefusalReason.PATRON_UNKNOWN, f"no card {patron_id}")
        blocked = block_reason(patron, self.policy)
        if blocked is not None:
            return self._refused(RefusalReason.PATRON_BLOCKED, blocked)
        item = item_row(self._conn, item_id)
        if item is None:
            return self._refused(RefusalReason.ITEM_UNKNOWN, f"no item {item_id}")
        return patron, item

    def checkout(self, body: CheckoutAuth) -> Response:
        conn = self._conn
        found = self._borrower_and_item(body.patron_id, body.item_id)
        if isinstance(found, Response):
            return found
        patron, item = found
        if item["not_for_loan"]:
            return self._refused(RefusalReason.ITEM_NOT_FOR_LOAN, "reference only")
        if item["state"] == "on_loan":
            whose = "this patron" if item["patron_id"] == body.patron_id else "another patron"
            return self._refused(RefusalReason.ITEM_ALREADY_ON_LOAN, f"on loan to {whose}")
        hold = first_hold(conn, body.item_id)
        if hold is not None and hold["patron_id"] != body.patron_id:
            return self._refused(
                RefusalReason.ITEM_ON_HOLD, f"on hold for patron {hold['patron_id']}"
            )
        limit = self._limit(patron)
        if loan_count(conn, body.patron_id) >= limit:
            return self._refused(RefusalReason.LIMIT_REACHED, f"limit of {limit} loans reached")
        due = self._today + dt.timedelta(days=self.policy.loan_days)
        return self._ok(CheckoutAnswer(item_id=body.item_id, title=item["title"], due_date=due))

    def checkin(self, body: CheckinAuth) -> Response:
        conn = self._conn
        item = item_row(conn, body.item_id)
        if item is None:
            return self._refused(RefusalReason.ITEM_UNKNOWN, f"no item {body.item_id}")
        hold = first_hold(conn, body.item_id)
        return self._ok(
            CheckinAnswer(item_id=body.item_id, title=item["title"], hold_alert=hold is not None)
        )

    def renew(self, body: RenewAuth) -> Response:
        conn = self._conn
        found = self._borrower_and_item(body.patron_id, body.item_id)
        if isinstance(found, Response):
            return found
        _patron, item = found
        if item["state"] != "on_loan" or item["patron_id"] != body.patron_id:
            return self._refused(RefusalReason.OTHER, "the item is not on loan to this patron")
        hold = first_hold(conn, body.item_id)
        if hold is not None:
            return self._refused(RefusalReason.ITEM_ON_HOLD, "another patron is waiting for it")
        if item["renewals"] >= self.policy.max_renewals:
            return self._refused(
                RefusalReason.RENEWAL_LIMIT, f"renewed {item['renewals']} times already"
            )
        due = self._today + dt.timedelta(days=self.policy.loan_days)
        return self._ok(RenewAnswer(item_id=body.item_id, title=item["title"], due_date=due))

    def account(self, body: AccountQuery) -> Response:
        conn = self._conn
        patron = patron_row(conn, body.patron_id)
        if patron is None:
            return self._refused(RefusalReason.PATRON_UNKNOWN, f"no card {body.patron_id}")
        may_renew = block_reason(patron, self.policy) is None
        loans = []
        for row in conn.execute(
            "SELECT item_id, title, due_date, renewals FROM items"
            " WHERE state = 'on_loan' AND patron_id = ? ORDER BY due_date, item_id",
            (body.patron_id,),
        ).fetchall():
            due = dt.date.fromisoformat(row["due_date"])
            loans.append(
                Loan(
                    item_id=row["item_id"],
                    title=row["title"],
                    due_date=due,
                    overdue=due < self._today,
                    renewable=may_renew
                    and row["renewals"] < self.policy.max_renewals
                    and first_hold(conn, row["item_id"]) is None,
                )
            )
        holds = [
            Hold(
                item_id=row["item_id"],
                title=row["title"],
                pickup_by=dt.date.fromisoformat(row["pickup_by"]) if row["pickup_by"] else None,
            )
            for row in self._holds_ready(body.patron_id)
        ]
        return self._ok(
            AccountAnswer(
                patron_id=body.patron_id,
                loans=loans,
                holds_ready=holds,
                fines=patron["fines"],
                currency=self.currency,
            )
        )
