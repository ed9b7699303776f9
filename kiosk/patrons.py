"""Patron-side requests, run on the worker: identify a card, fetch an account, build a receipt.

:func:`identify` sends ``PatronLookup`` (the PIN inside as a ``SecretStr``, straight from
the keypad: it is never stored, logged or put in a view model). When the central system is
unreachable the patron is admitted on the card alone, unless the cached block list names
them. The PIN cannot be checked offline: a library that asks for PINs chooses whether that
is acceptable (``kiosk.offline.admit_without_pin_check``; when it is not, the patron is
turned away with ``NOT_FOR_OFFLINE``). Refusals are recorded as ``Refusal(action="identify")``
events, never with the PIN.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import SecretStr

from edge_agent.contract import (
    AccountAnswer,
    AccountQuery,
    PatronAnswer,
    PatronLookup,
    Refusal,
    RefusalReason,
    Response,
)
from hardware.printer import Receipt, ReceiptItem
from kiosk import messages as msg
from kiosk.flows import Flows, ReceiptKind
from kiosk.i18n import Catalogues, Text
from kiosk.offline import OfflineRules
from kiosk.ports import AgentError, AgentUnavailable, Offline
from kiosk.session import Line

__all__ = [
    "AgentDown",
    "Identified",
    "LookupOutcome",
    "NotIdentified",
    "WrongPin",
    "build_receipt",
    "fetch_account",
    "identify",
    "mask_card",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Identified:
    """The patron is known and may use the kiosk."""

    patron_id: str
    name: str | None
    may_borrow: bool
    language: str | None
    offline: bool


@dataclass(frozen=True, slots=True)
class WrongPin:
    """The PIN did not match: the patron may try again."""


@dataclass(frozen=True, slots=True)
class NotIdentified:
    """The card was refused."""

    reason: RefusalReason


@dataclass(frozen=True, slots=True)
class AgentDown:
    """The local agent cannot be reached: the kiosk cannot work."""


LookupOutcome = Identified | WrongPin | NotIdentified | AgentDown


def mask_card(number: str) -> str:
    """A card number as a receipt or a log line may show it: only the last four characters."""
    return "*" * max(0, len(number) - 4) + number[-4:]


def identify(
    flows: Flows, rules: OfflineRules, card_number: str, pin: SecretStr | None
) -> LookupOutcome:
    """Look the patron up (online, or from the cached block list when offline)."""
    try:
        answer = flows.agent.ask(PatronLookup(patron_id=card_number, pin=pin))
    except AgentUnavailable as exc:
        log.error("patron lookup impossible: %s", exc)
        return AgentDown()
    except AgentError as exc:
        log.error("patron lookup failed: %s", exc)
        return AgentDown()
    if isinstance(answer, Offline):
        return _offline(flows, rules, card_number, with_pin=pin is not None)
    return _online(flows, card_number, answer, with_pin=pin is not None)


def _offline(
    flows: Flows, rules: OfflineRules, card_number: str, *, with_pin: bool
) -> LookupOutcome:
    try:
        blocked = flows.agent.patron_block(card_number)
    except AgentError as exc:
        log.error("the cached block list is unavailable: %s", exc)
        return AgentDown()
    if blocked is not None:
        _record(flows, card_number, blocked, offline=True, detail="cached block list")
        return NotIdentified(blocked)
    if with_pin and not rules.policy.admit_without_pin_check:
        # The patron typed a PIN nobody can check now, and the library wants it checked.
        reason = RefusalReason.NOT_FOR_OFFLINE
        _record(flows, card_number, reason, offline=True, detail="PIN cannot be checked")
        return NotIdentified(reason)
    log.info("patron %s admitted offline on the card alone", mask_card(card_number))
    return Identified(card_number, None, rules.policy.allow_checkout, None, offline=True)


def _online(flows: Flows, card_number: str, answer: Response, *, with_pin: bool) -> LookupOutcome:
    if answer.outcome == "ok" and isinstance(answer.body, PatronAnswer):
        body = answer.body
        return Identified(
            body.patron_id, body.display_name, body.may_borrow, body.language, offline=False
        )
    reason = answer.reason if answer.outcome == "refused" and answer.reason else RefusalReason.OTHER
    if reason is RefusalReason.WRONG_PIN and not with_pin:
        # "This card needs a PIN": a step of the dialogue, not a wrong PIN to record.
        return WrongPin()
    _record(flows, card_number, reason, offline=False, detail=answer.message)
    if reason is RefusalReason.WRONG_PIN:
        return WrongPin()
    return NotIdentified(reason)


def _record(
    flows: Flows, card_number: str, reason: RefusalReason, *, offline: bool, detail: str | None
) -> None:
    flows.commit(
        Refusal(
            action="identify",
            reason=reason,
            patron_id=card_number,
            detail=detail[:500] if detail else None,
            offline=offline,
        )
    )


def fetch_account(flows: Flows, patron_id: str) -> AccountAnswer | None:
    """The patron's account from the central system (None when it cannot be had)."""
    try:
        answer = flows.agent.ask(AccountQuery(patron_id=patron_id))
    except AgentError as exc:
        log.error("account query failed: %s", exc)
        return None
    if isinstance(answer, Offline):
        return None
    if answer.outcome == "ok" and isinstance(answer.body, AccountAnswer):
        return answer.body
    log.warning("account query answered %s (%s)", answer.outcome, answer.reason)
    return None


_RECEIPT_NOTES: dict[ReceiptKind, Text] = {
    ReceiptKind.BORROWED: msg.RECEIPT_BORROWED,
    ReceiptKind.RETURNED: msg.RECEIPT_RETURNED,
    ReceiptKind.RENEWED: msg.RECEIPT_RENEWED,
}


def build_receipt(
    *,
    library_name: str,
    card_number: str | None,
    lines: Sequence[Line],
    when: dt.datetime,
    language: str,
    catalogues: Catalogues,
) -> Receipt:
    """The receipt of a session, in the patron's language (the card number masked)."""

    def render(text: Text) -> str:
        return catalogues.render(text, language)

    header = [render(msg.receipt_when(when.date(), when.strftime("%H:%M")))]
    if card_number:
        header.insert(0, render(msg.receipt_card(mask_card(card_number))))
    items = []
    for line in lines:
        if line.receipt is None:
            continue
        note = render(_RECEIPT_NOTES[line.receipt])
        if line.hold:
            note = f"{note} — {render(msg.RECEIPT_HOLD_SHELF)}"
        title = line.title or (render(msg.untitled(line.item_id)) if line.item_id else "")
        items.append(ReceiptItem(title=title, due=line.due, note=note))
    return Receipt(
        library_name=library_name,
        lines=tuple(header),
        items=tuple(items),
        footer=(render(msg.RECEIPT_THANKS),),
        language=language,
    )
