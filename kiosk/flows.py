"""The item flows, run on the worker: lend, take back or renew one item and say how it went.

Each function decides, switches security, records, and returns a :class:`LineOutcome` — the
line the patron sees — in this order, which is the whole point of the module:

Checkout of one item (all parts of a set together):
  1. authorise: ``CheckoutAuth`` through the agent, or the offline policy when the agent
     answers Offline (the event is then flagged ``offline=True``);
  2. write an intent per tag to the :class:`~kiosk.journal.IntentJournal`, naming the planned
     ``Checkout`` event and its id;
  3. unsecure each tag and verify by reading back (:func:`hardware.rfid_ops.set_security`);
  4. commit the ``Checkout`` through the agent (it returns after the outbox commit);
  5. resolve the intents; only now does the line say "borrowed, due …".

  If a tag cannot be switched, the parts already switched are secured again, a
  ``SecurityWriteFailure`` is committed for each tag that failed, and the line tells the
  patron to see staff: the item is **not** lent. If the commit itself fails, the switch is
  rolled back the same way. Intents stay open whenever an outcome could not be recorded, so
  :mod:`kiosk.recovery` finishes the job later.

Check-in mirrors it (``CheckinAuth``, secure + verify, commit ``Checkin`` with the hold
alert); a tag that cannot be secured still counts as returned — the item *is* back — but is
recorded as ``Checkin(security_verified=False)`` plus a ``SecurityWriteFailure``.

Refusals (from the central system or the offline policy, foreign items, incomplete sets)
are recorded as ``Refusal`` events with the reason; the patron sees a sentence, never a code.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from zoneinfo import ZoneInfo

from edge_agent.contract import (
    Checkin,
    CheckinAnswer,
    CheckinAuth,
    Checkout,
    CheckoutAnswer,
    CheckoutAuth,
    ItemState,
    LoanPolicy,
    Refusal,
    RefusalReason,
    Renewal,
    RenewAnswer,
    RenewAuth,
    Response,
    SecurityWriteFailure,
)
from edge_agent.contract.events import EventPayload
from kiosk import messages as msg
from kiosk.i18n import Text
from kiosk.journal import IntentJournal
from kiosk.messages import Action
from kiosk.offline import OfflineRules
from kiosk.ports import Agent, AgentError, Clock, ItemPad, Offline
from kiosk.switching import Switcher, failure_event
from kiosk.units import Unit

__all__ = ["Batch", "Flows", "LineOutcome", "LineStatus", "ReceiptKind"]

log = logging.getLogger(__name__)


class LineStatus(StrEnum):
    """Where one line on the screen stands; all but CHECKING and WAITING are final."""

    CHECKING = "checking"  # being processed
    WAITING = "waiting"  # a set with parts missing: waiting for them
    DONE = "done"  # lent, returned or renewed
    REFUSED = "refused"  # not done, with the reason in words
    ATTENTION = "attention"  # the patron must see staff (security or recording failure)
    INFO = "info"  # not an item (a library card on the pad)


FINAL = frozenset({LineStatus.DONE, LineStatus.REFUSED, LineStatus.ATTENTION, LineStatus.INFO})


class ReceiptKind(StrEnum):
    """What a done line puts on the receipt."""

    BORROWED = "borrowed"
    RETURNED = "returned"
    RENEWED = "renewed"


@dataclass(frozen=True, slots=True)
class LineOutcome:
    """How one item went, for its line on the screen and the receipt."""

    status: LineStatus
    message: Text
    title: str | None = None
    due: dt.date | None = None
    hold: bool = False
    offline: bool = False
    receipt: ReceiptKind | None = None


@dataclass
class Batch:
    """State shared by the items of one pass over the pad (owned by the worker while it runs).

    ``offline`` turns on at the first Offline answer (or when the agent reports its link
    down), so the rest of the pass does not wait for one timeout per item.
    """

    offline: bool = False
    lent_offline: int = 0
    link_checked: bool = False
    policy_read: bool = False
    policy: LoanPolicy | None = None


@dataclass(frozen=True, slots=True)
class _Grant:
    due: dt.date | None
    title: str | None
    offline: bool
    hold: bool = False


@dataclass(frozen=True, slots=True)
class _Refuse:
    reason: RefusalReason
    detail: str | None
    offline: bool


class Flows:
    """The item flows over the kiosk's ports (used from the worker thread only)."""

    def __init__(
        self,
        *,
        pad: ItemPad,
        agent: Agent,
        journal: IntentJournal,
        clock: Clock,
        rules: OfflineRules,
        timezone: ZoneInfo,
    ) -> None:
        self.pad = pad
        self.agent = agent
        self.journal = journal
        self.clock = clock
        self.rules = rules
        self.timezone = timezone
        self.switcher = Switcher(pad, journal)

    # ------------------------------------------------------------ helpers

    def today(self) -> dt.date:
        """Today in the library's time zone (due dates are calendar days there)."""
        return self.clock.now().astimezone(self.timezone).date()

    def commit(self, payload: EventPayload, event_id: uuid.UUID | None = None) -> bool:
        """Commit one event through the agent; False (logged) when it could not be stored."""
        try:
            self.agent.append(payload, event_id=event_id or uuid.uuid4(), time=self.clock.now())
        except AgentError as exc:
            log.error("could not record %s event: %s", payload.type, exc)
            return False
        return True

    def cached_policy(self, batch: Batch) -> LoanPolicy | None:
        """The cached loan policy, read once per pass (None when there is none)."""
        if not batch.policy_read:
            batch.policy_read = True
            try:
                batch.policy = self.agent.loan_policy()
            except AgentError as exc:
                log.error("cached loan policy unavailable: %s", exc)
        return batch.policy

    def cached_state(self, item_id: str) -> ItemState | None:
        """The cached state of one item (None when unknown or unavailable)."""
        try:
            return self.agent.item_state(item_id)
        except AgentError as exc:
            log.error("cached item state unavailable: %s", exc)
            return None

    def _ask(self, batch: Batch, body: CheckoutAuth | CheckinAuth) -> Response | Offline:
        if not batch.link_checked:
            batch.link_checked = True
            if not self.agent.link_up():
                batch.offline = True
        if batch.offline:
            return Offline(kind="link_down", reason="the agent reports its link down")
        answer = self.agent.ask(body)
        if isinstance(answer, Offline):
            log.warning("central system unreachable (%s): deciding offline", answer.reason)
            batch.offline = True
        return answer

    def _record_all(self, failures: Sequence[SecurityWriteFailure]) -> bool:
        """Commit every failure event (all are tried even when one fails)."""
        return all([self.commit(event) for event in failures])

    def refuse(
        self,
        action: Action,
        reason: RefusalReason,
        *,
        patron_id: str | None,
        item_id: str | None,
        detail: str | None = None,
        offline: bool = False,
        title: str | None = None,
    ) -> LineOutcome:
        """Record a refusal and return its line (the line shows even if recording failed)."""
        self.commit(
            Refusal(
                action=action,
                reason=reason,
                patron_id=patron_id,
                item_id=item_id,
                detail=detail[:500] if detail else None,
                offline=offline,
            )
        )
        return LineOutcome(LineStatus.REFUSED, msg.refusal(action, reason), title, offline=offline)

    @staticmethod
    def _refusal_of(answer: Response) -> _Refuse:
        if answer.outcome == "refused" and answer.reason is not None:
            return _Refuse(answer.reason, answer.message, offline=False)
        detail = answer.message or f"central answered {answer.outcome!r} without a usable body"
        return _Refuse(RefusalReason.OTHER, detail, offline=False)

    @staticmethod
    def _foreign(unit: Unit, batch: Batch) -> _Refuse | None:
        """Another library's item is neither lent nor taken back here."""
        if not unit.foreign:
            return None
        assert unit.item is not None
        owner = unit.item.owner_institution
        return _Refuse(RefusalReason.FOREIGN_ITEM, f"owner {owner}", offline=batch.offline)

    def _refuse_unit(
        self, action: Action, patron_id: str | None, unit: Unit, refusal: _Refuse
    ) -> LineOutcome:
        """Record and show the refusal of one unit."""
        return self.refuse(
            action,
            refusal.reason,
            patron_id=patron_id,
            item_id=unit.item_id,
            detail=refusal.detail,
            offline=refusal.offline,
            title=unit.title,
        )

    # ------------------------------------------------------------ checkout

    def checkout(self, patron_id: str, unit: Unit, batch: Batch) -> LineOutcome:
        """Lend one item (every part of a set) to the patron, or say why not."""
        assert unit.item_id is not None
        item_id = unit.item_id
        decision = self._foreign(unit, batch) or self._authorise_checkout(patron_id, unit, batch)
        if isinstance(decision, _Refuse):
            return self._refuse_unit("checkout", patron_id, unit, decision)
        title = decision.title or unit.title
        assert decision.due is not None
        event = Checkout(
            patron_id=patron_id,
            item_id=item_id,
            tag_uid=unit.tags[0].uid_hex if len(unit.tags) == 1 else None,
            due_date=decision.due,
            offline=decision.offline,
        )
        event_id = uuid.uuid4()
        switch = self.switcher.switch(
            unit, secured=False, planned=event, event_id=event_id, offline=decision.offline
        )
        if switch.journal_error is not None:
            return LineOutcome(LineStatus.ATTENTION, msg.NOT_LENT_FAILURE, title)
        if switch.ok and self.commit(event, event_id):
            self.switcher.resolve(switch)
            if decision.offline:
                batch.lent_offline += 1
            return LineOutcome(
                LineStatus.DONE,
                msg.borrowed(decision.due),
                title,
                due=decision.due,
                offline=decision.offline,
                receipt=ReceiptKind.BORROWED,
            )
        # Not lent: put back every tag that was unsecured, record each tag left wrong.
        failures = []
        if switch.failed is not None:
            failures.append(failure_event(switch.failed, item_id, "checkout"))
        context = "re-securing after a failed checkout"
        failures += [
            failure_event(r, item_id, context)
            for r in self.switcher.rollback(switch.done, secured=True)
        ]
        if self._record_all(failures):
            self.switcher.resolve(switch)
        message = msg.NOT_LENT_SECURITY if switch.failed is not None else msg.NOT_LENT_FAILURE
        return LineOutcome(LineStatus.ATTENTION, message, title, offline=decision.offline)

    def _authorise_checkout(self, patron_id: str, unit: Unit, batch: Batch) -> _Grant | _Refuse:
        assert unit.item is not None
        assert unit.item_id is not None
        answer = self._ask(batch, CheckoutAuth(patron_id=patron_id, item_id=unit.item_id))
        if isinstance(answer, Response):
            if answer.outcome == "ok" and isinstance(answer.body, CheckoutAnswer):
                return _Grant(answer.body.due_date, answer.body.title, offline=False)
            return self._refusal_of(answer)
        # The patron's block is looked up per item: one visit may straddle a cache update.
        blocked = self.agent.patron_block(patron_id)
        state = self.cached_state(unit.item_id)
        policy = self.cached_policy(batch)
        reason = self.rules.checkout_refusal(
            unit.item,
            blocked=blocked,
            state=state,
            cached=policy,
            lent_this_session=batch.lent_offline,
        )
        if reason is not None:
            return _Refuse(reason, "decided offline", offline=True)
        return _Grant(
            self.rules.due_date(self.today(), policy),
            state.title if state is not None else None,
            offline=True,
        )

    # ------------------------------------------------------------ check-in

    def checkin(self, patron_id: str | None, unit: Unit, batch: Batch) -> LineOutcome:
        """Take one item back (every part of a set), re-arm its security, or say why not."""
        assert unit.item_id is not None
        item_id = unit.item_id
        decision = self._foreign(unit, batch) or self._authorise_checkin(unit, batch)
        if isinstance(decision, _Refuse):
            return self._refuse_unit("checkin", patron_id, unit, decision)
        title = decision.title or unit.title
        event = Checkin(
            item_id=item_id,
            tag_uid=unit.tags[0].uid_hex if len(unit.tags) == 1 else None,
            offline=decision.offline,
            hold_alert=decision.hold,
        )
        event_id = uuid.uuid4()
        switch = self.switcher.switch(
            unit, secured=True, planned=event, event_id=event_id, offline=decision.offline
        )
        if switch.journal_error is not None:
            return LineOutcome(LineStatus.ATTENTION, msg.NOT_RETURNED_FAILURE, title)
        if switch.ok:
            if self.commit(event, event_id):
                self.switcher.resolve(switch)
                message = msg.RETURNED_HOLD if decision.hold else msg.RETURNED
                return LineOutcome(
                    LineStatus.DONE,
                    message,
                    title,
                    hold=decision.hold,
                    offline=decision.offline,
                    receipt=ReceiptKind.RETURNED,
                )
            # Not recorded: leave the item as it was (on loan, unsecured) for the desk.
            context = "un-securing after a check-in that could not be recorded"
            failures = [
                failure_event(r, item_id, context)
                for r in self.switcher.rollback(switch.done, secured=False)
            ]
            if not failures:
                self.switcher.resolve(switch)
            return LineOutcome(LineStatus.ATTENTION, msg.NOT_RETURNED_FAILURE, title)
        # The item is back even though a tag would not arm: record the return as unverified.
        assert switch.failed is not None
        unverified = event.model_copy(update={"security_verified": False})
        recorded = self.commit(unverified) and self._record_all(
            [failure_event(switch.failed, item_id, "check-in")]
        )
        if recorded:
            self.switcher.resolve(switch)
            return LineOutcome(
                LineStatus.ATTENTION,
                msg.RETURNED_NOT_LOCKED,
                title,
                hold=decision.hold,
                offline=decision.offline,
                receipt=ReceiptKind.RETURNED,
            )
        return LineOutcome(LineStatus.ATTENTION, msg.NOT_RETURNED_FAILURE, title)

    def _authorise_checkin(self, unit: Unit, batch: Batch) -> _Grant | _Refuse:
        assert unit.item is not None
        assert unit.item_id is not None
        answer = self._ask(batch, CheckinAuth(item_id=unit.item_id))
        if isinstance(answer, Response):
            if answer.outcome == "ok" and isinstance(answer.body, CheckinAnswer):
                return _Grant(None, answer.body.title, offline=False, hold=answer.body.hold_alert)
            return self._refusal_of(answer)
        reason = self.rules.checkin_refusal(unit.item)
        if reason is not None:
            return _Refuse(reason, "decided offline", offline=True)
        state = self.cached_state(unit.item_id)
        return _Grant(
            None,
            state.title if state is not None else None,
            offline=True,
            hold=self.rules.hold_alert(state),
        )

    # ------------------------------------------------------------ sets and renewals

    def refuse_incomplete(
        self, action: Action, patron_id: str | None, unit: Unit, offline: bool
    ) -> LineOutcome:
        """Record that a set was left incomplete on the pad."""
        return self.refuse(
            action,
            RefusalReason.INCOMPLETE_SET,
            patron_id=patron_id,
            item_id=unit.item_id,
            offline=offline,
            title=unit.title,
            detail=f"{unit.found} of {unit.parts} parts on the pad",
        )

    def renew(self, patron_id: str, item_id: str, title: str | None) -> LineOutcome:
        """Renew one loan through the central system (renewal needs it: never offline)."""
        answer = self.agent.ask(RenewAuth(patron_id=patron_id, item_id=item_id))
        if isinstance(answer, Offline):
            return self.refuse(
                "renew",
                RefusalReason.CENTRAL_UNREACHABLE,
                patron_id=patron_id,
                item_id=item_id,
                offline=True,
                title=title,
                detail=answer.reason,
            )
        if answer.outcome == "ok" and isinstance(answer.body, RenewAnswer):
            due = answer.body.due_date
            title = answer.body.title or title
            if self.commit(Renewal(patron_id=patron_id, item_id=item_id, due_date=due)):
                return LineOutcome(
                    LineStatus.DONE, msg.renewed(due), title, due=due, receipt=ReceiptKind.RENEWED
                )
            return LineOutcome(
                LineStatus.ATTENTION, msg.refusal("renew", RefusalReason.OTHER), title
            )
        refused = self._refusal_of(answer)
        return self.refuse(
            "renew",
            refused.reason,
            patron_id=patron_id,
            item_id=item_id,
            detail=refused.detail,
            title=title,
        )
