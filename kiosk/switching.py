"""Switching the security of an item's tags, journalled first, and undoing it.

:class:`Switcher` is the one place that touches tags for checkout and return: it writes an
:class:`~kiosk.journal.Intent` per tag *before* any tag is switched (no journal, no switch),
switches the tags one by one with read-back verification, and stops at the first tag that
does not verify. The caller decides what the outcome means (commit, roll back, record the
failure) and then calls :meth:`Switcher.resolve`; see :mod:`kiosk.flows`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from edge_agent.contract import SecurityWriteFailure
from edge_agent.contract.events import EventPayload
from hardware.rfid_ops import SecurityResult
from kiosk.journal import Intent, IntentJournal, JournalError, Wanted
from kiosk.ports import ItemPad
from kiosk.units import Unit

__all__ = ["Switch", "Switcher", "failure_event"]

log = logging.getLogger(__name__)


@dataclass
class Switch:
    """What happened to one unit's tags: the intents written, the tags switched, a failure."""

    intents: list[Intent] = field(default_factory=list)
    done: list[SecurityResult] = field(default_factory=list)
    failed: SecurityResult | None = None
    journal_error: str | None = None

    @property
    def ok(self) -> bool:
        """Every tag switched and verified."""
        return self.failed is None and self.journal_error is None


def failure_event(
    result: SecurityResult, item_id: str | None, context: str
) -> SecurityWriteFailure:
    """The event that records one tag left in the wrong state."""
    return SecurityWriteFailure(
        tag_uid=result.uid_hex,
        item_id=item_id,
        wanted="secured" if result.secured else "unsecured",
        afi_seen=result.afi_after,
        eas_seen=result.eas_after,
        attempts=max(1, result.attempts),
        error=f"{context}: {result.error or 'not verified'}"[:500],
    )


class Switcher:
    """Journalled security switches on the pad (used from the worker thread only)."""

    def __init__(self, pad: ItemPad, journal: IntentJournal) -> None:
        self.pad = pad
        self.journal = journal

    def switch(
        self,
        unit: Unit,
        *,
        secured: bool,
        planned: EventPayload,
        event_id: uuid.UUID,
        offline: bool,
    ) -> Switch:
        """Journal an intent per tag, then switch each tag in turn until one fails."""
        wanted: Wanted = "secured" if secured else "unsecured"
        outcome = Switch(
            intents=[
                Intent(
                    intent_id=uuid.uuid4(),
                    tag_uid=tag.uid_hex,
                    item_id=unit.item_id,
                    wanted=wanted,
                    event_id=event_id,
                    event_kind=planned.type,
                    event_json=planned.model_dump_json(),
                    offline=offline,
                )
                for tag in unit.tags
            ]
        )
        try:
            self.journal.record(outcome.intents)
        except JournalError as exc:
            # Without a journal entry a crash could leave the tag switched and unrecorded:
            # do not switch at all.
            log.error("not switching %s: %s", unit.item_id, exc)
            outcome.intents = []
            outcome.journal_error = str(exc)
            return outcome
        for tag in unit.tags:
            result = self.pad.set_security(tag.uid, secured=secured)
            if not result.verified:
                log.warning(
                    "tag %s (%s): %s not verified: %s",
                    tag.uid_hex,
                    unit.item_id,
                    wanted,
                    result.error,
                )
                outcome.failed = result
                break
            outcome.done.append(result)
        return outcome

    def rollback(self, results: Sequence[SecurityResult], *, secured: bool) -> list[SecurityResult]:
        """Switch tags back; return the results of those that could not be switched back."""
        failed = []
        for done in results:
            back = self.pad.set_security(done.uid, secured=secured)
            if not back.verified:
                log.error("tag %s could not be switched back: %s", done.uid_hex, back.error)
                failed.append(back)
        return failed

    def resolve(self, switch: Switch) -> None:
        """Delete the switch's intents: its outcome is recorded."""
        try:
            self.journal.resolve(i.intent_id for i in switch.intents)
        except JournalError as exc:
            # The outcome is recorded; an intent left behind is only resolved twice later.
            log.error("could not resolve intents: %s", exc)
