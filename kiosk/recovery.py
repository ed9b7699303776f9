"""Resolving the intents a crash left in the journal, so no item stays switched and unrecorded.

An intent still in the journal means the kiosk stopped between writing it and recording the
outcome of its switch. Nobody knows which step it reached, so the tag is looked at again:

==============================  ==========================================================
checkout intent (unsecure)
tag on the pad, secured         nothing was lent (not switched yet, or rolled back): resolve
tag on the pad, not secured     record a SecurityWriteFailure, then secure the tag again
tag gone                        record a SecurityWriteFailure: state and loan unknown
check-in intent (secure)
tag on the pad, secured         the item is back: commit the planned Checkin (same id)
tag on the pad, not secured     record a SecurityWriteFailure: the return is not complete
tag gone                        record a SecurityWriteFailure: state unknown
==============================  ==========================================================

Every event recovery commits has an id derived from the intent (UUID 5), and the agent
treats a second append of an id as a retry, so a crash *during* recovery repeats nothing.
An intent is resolved only after its event is committed; when the agent or the reader is
unavailable the intent stays for the next pass. The invariant this keeps: every tag left
unsecured has either a committed ``Checkout`` or a recorded ``SecurityWriteFailure``.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError

from edge_agent.contract import Checkin, SecurityWriteFailure
from edge_agent.contract.events import EventPayload
from hardware.reader import ReaderError
from hardware.tags import SecurityState, Tag
from kiosk.journal import Intent, IntentJournal
from kiosk.ports import Agent as AgentPort
from kiosk.ports import AgentError, Clock, DuplicateEvent, ItemPad

__all__ = ["RecoveryReport", "recover", "recovery_event_id"]

log = logging.getLogger(__name__)

_NAMESPACE = uuid.UUID("6f1f3c4e-8c1b-4a8e-9a53-6b1d0e2f5a10")
_PAYLOAD: TypeAdapter[EventPayload] = TypeAdapter(EventPayload)


def recovery_event_id(intent: Intent) -> uuid.UUID:
    """The id of the failure event recovery records for one intent (the same on every run)."""
    return uuid.uuid5(_NAMESPACE, f"security-write-failure:{intent.intent_id}")


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What one recovery pass did."""

    resolved: int = 0
    failures_recorded: int = 0
    planned_committed: int = 0
    left_open: int = 0


class _Pass:
    def __init__(self, pad: ItemPad, agent: AgentPort, clock: Clock) -> None:
        self.pad = pad
        self.agent = agent
        self.clock = clock
        self.failures = 0
        self.planned = 0

    def _append(self, payload: EventPayload, event_id: uuid.UUID) -> bool:
        try:
            self.agent.append(payload, event_id=event_id, time=self.clock.now())
        except DuplicateEvent:
            # Stored by an earlier pass that did not get to resolve the intent.
            return True
        except AgentError as exc:
            log.error("recovery could not record an event: %s", exc)
            return False
        return True

    def _failure(self, intent: Intent, tag: Tag | None, what: str) -> bool:
        event = SecurityWriteFailure(
            tag_uid=intent.tag_uid,
            item_id=intent.item_id,
            wanted=intent.wanted,
            afi_seen=tag.afi if tag is not None else None,
            eas_seen=tag.eas if tag is not None else None,
            attempts=1,
            error=what[:500],
        )
        recorded = self._append(event, recovery_event_id(intent))
        if recorded:
            self.failures += 1
        return recorded

    def resolve(self, intent: Intent, tag: Tag | None) -> bool:  # noqa: PLR0911 - see table
        """Deal with one intent; True when it may be deleted from the journal."""
        doing = "checkout" if intent.wanted == "unsecured" else "return"
        if tag is None:
            return self._failure(
                intent,
                None,
                f"the kiosk stopped during a {doing} and the item was no longer on the pad "
                "afterwards: its security state is unknown; check whether the "
                f"{intent.event_kind} was recorded",
            )
        if intent.wanted == "unsecured":
            if tag.security is SecurityState.SECURED:
                log.info(
                    "intent %s: tag %s still secured; nothing was lent",
                    intent.intent_id,
                    intent.tag_uid,
                )
                return True
            if not self._failure(
                intent,
                tag,
                f"the kiosk stopped during a checkout and found the item {tag.security} on "
                "the pad; it was secured again: if a loan was recorded, cancel it",
            ):
                return False
            back = self.pad.set_security(tag.uid, secured=True)
            if not back.verified:
                log.error("tag %s could not be secured again: %s", intent.tag_uid, back.error)
            return True
        if tag.security is SecurityState.SECURED:
            try:
                planned = _PAYLOAD.validate_json(intent.event_json)
            except ValidationError as exc:
                log.error("intent %s holds an unreadable event: %s", intent.intent_id, exc)
                return self._failure(intent, tag, "a return was interrupted; its record is lost")
            if not isinstance(planned, Checkin):
                return self._failure(intent, tag, f"a {planned.type} was interrupted")
            if self._append(planned, intent.event_id):
                self.planned += 1
                return True
            return False
        return self._failure(
            intent,
            tag,
            f"the kiosk stopped during a return and found the item {tag.security} on the pad: "
            "it is not re-armed and its return may not be recorded",
        )


def recover(journal: IntentJournal, pad: ItemPad, agent: AgentPort, clock: Clock) -> RecoveryReport:
    """Resolve every intent left in the journal; safe to run again after it stopped halfway."""
    intents = journal.pending()
    if not intents:
        return RecoveryReport()
    log.warning("%d unresolved security switch(es) in the journal: resolving", len(intents))
    try:
        reading = pad.read()
    except ReaderError as exc:
        # Without the pad the tags cannot be re-checked or re-secured: try again later.
        log.error("recovery postponed, the pad cannot be read: %s", exc)
        return RecoveryReport(left_open=len(intents))
    on_pad = {tag.uid_hex: tag for tag in reading.tags}
    lost = {lost.uid_hex for lost in reading.lost}
    work = _Pass(pad, agent, clock)
    done: list[uuid.UUID] = []
    for intent in intents:
        if intent.tag_uid in lost:
            continue  # seen but not read whole: look again on the next pass
        if work.resolve(intent, on_pad.get(intent.tag_uid)):
            done.append(intent.intent_id)
    journal.resolve(done)
    report = RecoveryReport(
        resolved=len(done),
        failures_recorded=work.failures,
        planned_committed=work.planned,
        left_open=len(intents) - len(done),
    )
    log.warning("recovery: %s", report)
    return report
