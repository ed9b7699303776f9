"""The circulation model: what events do to items, loans and holds, and what staff must see.

:func:`apply_event` runs inside the ingest transaction, once per newly stored event:

- a checkout puts the item on loan to the patron (and fulfils that patron's hold);
- a checkin returns it, to the hold shelf when someone holds it;
- a renewal moves the due date;
- a security write failure is an exception for staff (the item's tag needs attention);
- refusals, gate alarms and visitor counts are recorded only.

A transaction that conflicts with the model (an item lent offline that was on hold for someone
else, a blocked patron served offline, a renewal beyond the limit, a return of an item on hold
that the kiosk did not flag…) becomes a row in ``exceptions`` for staff. It is applied when the
item physically went where the event says (the kiosk already unsecured it), and not applied when
it cannot be (an unknown item); the exception says which.

Events reach central out of order (offline queues, several kiosks, resends). Each item remembers
the event that last changed it; an older event for the same item is stored but does not undo the
newer state: ``superseded``. "Older" means a lower ``seq`` from the same device, or an earlier
time from another device when both clocks were trusted; otherwise arrival order decides.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass, field
from typing import Literal

from edge_agent.contract import Checkin, Checkout, Envelope, Renewal, SecurityWriteFailure

from .seed import SeedPolicy

__all__ = [
    "Applied",
    "Outcome",
    "apply_event",
    "block_reason",
    "first_hold",
    "item_row",
    "loan_count",
    "patron_row",
    "record_exception",
]

Outcome = Literal["applied", "superseded", "exception", "recorded"]


@dataclass
class Applied:
    """What applying one event did: its outcome and which caches it made stale."""

    outcome: Outcome
    changed: set[str] = field(default_factory=set)


def block_reason(patron: sqlite3.Row, policy: SeedPolicy) -> str | None:
    """Why this patron may not borrow (a block or fines at the threshold), or None."""
    if patron["blocked"]:
        return str(patron["block_reason"] or "blocked by the library")
    if patron["fines"] >= policy.fines_block_threshold:
        return f"fines {patron['fines']} at or above {policy.fines_block_threshold}"
    return None


def item_row(conn: sqlite3.Connection, item_id: str) -> sqlite3.Row | None:
    """The catalogue's row for an item, or None when it is not in the catalogue."""
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM items WHERE item_id = ?", (item_id,)
    ).fetchone()
    return row


def patron_row(conn: sqlite3.Connection, patron_id: str) -> sqlite3.Row | None:
    """The patron's row, or None for a card that is not known."""
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM patrons WHERE patron_id = ?", (patron_id,)
    ).fetchone()
    return row


def first_hold(conn: sqlite3.Connection, item_id: str) -> sqlite3.Row | None:
    """The oldest hold on an item (the patron it goes to next), or None."""
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM holds WHERE item_id = ? ORDER BY id LIMIT 1", (item_id,)
    ).fetchone()
    return row


def loan_count(conn: sqlite3.Connection, patron_id: str, excluding: str | None = None) -> int:
    """How many items the patron has on loan (optionally not counting one item)."""
    row = conn.execute(
        "SELECT count(*) FROM items WHERE state = 'on_loan' AND patron_id = ? AND item_id IS NOT ?",
        (patron_id, excluding),
    ).fetchone()
    return int(row[0])


def _superseded(item: sqlite3.Row, env: Envelope) -> bool:
    if item["last_device"] is None:
        return False
    if item["last_device"] == env.device_id:
        return bool(item["last_seq"] > env.seq)
    if item["last_trusted"] and env.clock_trusted:
        return dt.datetime.fromisoformat(item["last_time"]) > env.time
    return False


def _mark_changed(conn: sqlite3.Connection, item_id: str, env: Envelope) -> None:
    conn.execute(
        "UPDATE items SET last_device = ?, last_seq = ?, last_time = ?, last_trusted = ?"
        " WHERE item_id = ?",
        (env.device_id, env.seq, env.time.isoformat(), env.clock_trusted, item_id),
    )


class _Exceptions:
    """Collects the exceptions one event raises, written with the event's identity."""

    def __init__(self, conn: sqlite3.Connection, env: Envelope, now: str) -> None:
        self.conn, self.env, self.now = conn, env, now
        self.count = 0

    def add(
        self,
        reason: str,
        detail: str,
        *,
        applied: bool,
        item_id: str | None = None,
        patron_id: str | None = None,
    ) -> None:
        env = self.env
        self.conn.execute(
            "INSERT INTO exceptions (created_at, library_id, device_id, seq, event_id, kind,"
            " reason, detail, item_id, patron_id, offline, applied)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.now,
                env.library_id,
                env.device_id,
                env.seq,
                str(env.event_id),
                env.kind,
                reason,
                detail,
                item_id,
                patron_id,
                getattr(env.payload, "offline", False),
                applied,
            ),
        )
        self.count += 1


def record_exception(
    conn: sqlite3.Connection, env: Envelope, now: str, reason: str, detail: str
) -> None:
    """Put one event on the staff's exception list without applying it."""
    _Exceptions(conn, env, now).add(
        reason,
        detail,
        applied=False,
        item_id=getattr(env.payload, "item_id", None),
        patron_id=getattr(env.payload, "patron_id", None),
    )


def apply_event(
    conn: sqlite3.Connection, env: Envelope, policy: SeedPolicy, today: dt.date, now: str
) -> Applied:
    """Apply one newly stored event to the model; conflicts become exceptions for staff."""
    problems = _Exceptions(conn, env, now)
    payload = env.payload
    if isinstance(payload, Checkout):
        result = _checkout(conn, env, payload, policy, problems)
    elif isinstance(payload, Checkin):
        result = _checkin(conn, env, payload, policy, today=today, problems=problems)
    elif isinstance(payload, Renewal):
        result = _renewal(conn, env, payload, policy, problems)
    elif isinstance(payload, SecurityWriteFailure):
        problems.add(
            "security_failure",
            f"tag {payload.tag_uid} could not be made {payload.wanted} after"
            f" {payload.attempts} attempts: {payload.error}",
            applied=False,
            item_id=payload.item_id,
        )
        result = Applied("exception")
    else:
        result = Applied("recorded")
    if problems.count and result.outcome == "applied":
        result.outcome = "exception"
    return result


def _checkout(
    conn: sqlite3.Connection,
    env: Envelope,
    event: Checkout,
    policy: SeedPolicy,
    problems: _Exceptions,
) -> Applied:
    item = item_row(conn, event.item_id)
    patron_id = event.patron_id
    if item is None:
        problems.add(
            "item_unknown",
            f"item {event.item_id} is not in the catalogue; the loan was not recorded",
            applied=False,
            item_id=event.item_id,
            patron_id=patron_id,
        )
        return Applied("exception")
    if _superseded(item, env):
        return Applied("superseded")

    def conflict(reason: str, detail: str) -> None:
        problems.add(reason, detail, applied=True, item_id=event.item_id, patron_id=patron_id)

    patron = patron_row(conn, patron_id)
    if patron is None:
        conflict("patron_unknown", f"card {patron_id} is not known; item lent to it anyway")
    else:
        reason = block_reason(patron, policy)
        if reason is not None:
            conflict("patron_blocked", f"patron {patron_id} may not borrow: {reason}")
        limit = patron["max_loans"] if patron["max_loans"] is not None else policy.max_loans
        if loan_count(conn, patron_id, excluding=event.item_id) + 1 > limit:
            conflict("limit_reached", f"patron {patron_id} now has more than {limit} loans")
    if item["not_for_loan"]:
        conflict("item_not_for_loan", f"item {event.item_id} is for reference only")
    if event.offline and item["not_for_offline_issue"]:
        conflict("not_for_offline", f"item {event.item_id} must not be issued offline")
    if item["state"] == "on_loan" and item["patron_id"] != patron_id:
        conflict(
            "item_already_on_loan",
            f"item {event.item_id} was on loan to {item['patron_id']}; the loan moved",
        )
    hold = first_hold(conn, event.item_id)
    if hold is not None and hold["patron_id"] != patron_id:
        conflict(
            "item_on_hold",
            f"item {event.item_id} was on hold for {hold['patron_id']}"
            f" and was lent to {patron_id}{' offline' if event.offline else ''}",
        )
    conn.execute(
        "UPDATE items SET state = 'on_loan', patron_id = ?, due_date = ?, renewals = 0"
        " WHERE item_id = ?",
        (patron_id, event.due_date.isoformat(), event.item_id),
    )
    # The item left the building: a hold it was waiting for is no longer ready, and the
    # borrower's own hold on it is fulfilled.
    conn.execute("UPDATE holds SET ready = 0, pickup_by = NULL WHERE item_id = ?", (event.item_id,))
    conn.execute(
        "DELETE FROM holds WHERE item_id = ? AND patron_id = ?", (event.item_id, patron_id)
    )
    _mark_changed(conn, event.item_id, env)
    return Applied("applied", {"item_states"})


def _checkin(
    conn: sqlite3.Connection,
    env: Envelope,
    event: Checkin,
    policy: SeedPolicy,
    *,
    today: dt.date,
    problems: _Exceptions,
) -> Applied:
    item = item_row(conn, event.item_id)
    if item is None:
        problems.add(
            "item_unknown",
            f"item {event.item_id} returned but is not in the catalogue (another library's?)",
            applied=False,
            item_id=event.item_id,
        )
        return Applied("exception")
    if _superseded(item, env):
        return Applied("superseded")
    hold = first_hold(conn, event.item_id)
    if hold is not None:
        pickup = (today + dt.timedelta(days=policy.hold_pickup_days)).isoformat()
        conn.execute("UPDATE holds SET ready = 1, pickup_by = ? WHERE id = ?", (pickup, hold["id"]))
        if not event.hold_alert:
            problems.add(
                "hold_not_flagged",
                f"item {event.item_id} is on hold for {hold['patron_id']} but was returned"
                " without a hold alert: take it from the return shelf to the hold shelf",
                applied=True,
                item_id=event.item_id,
                patron_id=hold["patron_id"],
            )
    if not event.security_verified:
        problems.add(
            "security_failure",
            f"item {event.item_id} was returned but its security was not re-armed",
            applied=True,
            item_id=event.item_id,
        )
    conn.execute(
        "UPDATE items SET state = ?, patron_id = NULL, due_date = NULL, renewals = 0"
        " WHERE item_id = ?",
        ("on_hold" if hold is not None else "on_shelf", event.item_id),
    )
    _mark_changed(conn, event.item_id, env)
    return Applied("applied", {"item_states"})


def _renewal(
    conn: sqlite3.Connection,
    env: Envelope,
    event: Renewal,
    policy: SeedPolicy,
    problems: _Exceptions,
) -> Applied:
    item = item_row(conn, event.item_id)
    if item is None or item["state"] != "on_loan" or item["patron_id"] != event.patron_id:
        problems.add(
            "not_on_loan",
            f"renewal of item {event.item_id} for {event.patron_id}, who does not have it on loan",
            applied=False,
            item_id=event.item_id,
            patron_id=event.patron_id,
        )
        return Applied("exception")
    if _superseded(item, env):
        return Applied("superseded")
    if item["renewals"] >= policy.max_renewals:
        problems.add(
            "renewal_limit",
            f"item {event.item_id} renewed beyond the limit of {policy.max_renewals}",
            applied=True,
            item_id=event.item_id,
            patron_id=event.patron_id,
        )
    hold = first_hold(conn, event.item_id)
    if hold is not None:
        problems.add(
            "item_on_hold",
            f"item {event.item_id} renewed although {hold['patron_id']} holds it",
            applied=True,
            item_id=event.item_id,
            patron_id=event.patron_id,
        )
    conn.execute(
        "UPDATE items SET due_date = ?, renewals = renewals + 1 WHERE item_id = ?",
        (event.due_date.isoformat(), event.item_id),
    )
    _mark_changed(conn, event.item_id, env)
    return Applied("applied", {"item_states"})
