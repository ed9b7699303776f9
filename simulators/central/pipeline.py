"""What central does with a batch of received messages, apart from MQTT itself.

:class:`Ingestor` turns one worker pass (events, statuses, garbage) into one database
transaction and says which receipts to send *after* that commit; :class:`Responder` turns one
request into the response to publish. Both take a real SQLite connection and nothing of paho,
so the simulator's threads own the network and these own the decisions.

One pass of the ingestor, in order:

1. classify every message (:mod:`simulators.central.ingest`); foreign and invalid messages are
   counted with their reason, and an invalid event with a readable ``seq`` is rejected in the
   device's receipt (and counts as accounted for, so it leaves no gap);
2. store the valid events sorted by device and ``seq``; one already stored with the same
   event id is a duplicate (counted, confirmed again: the device missed the first receipt);
   one stored under the same ``seq`` with another event id is a conflict (rejected, and an
   exception for staff: the device's sequence was reset);
3. apply each new event to the circulation model and account for its ``seq`` (gaps);
4. commit; the caller then publishes one receipt per device with everything of that device
   the pass confirmed or rejected.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from edge_agent.contract import DeliveryReceipt, RejectedEvent, Response
from edge_agent.contract.topics import response_topic

from . import store
from .answers import Answerer, error_response
from .circulation import apply_event, record_exception
from .ingest import (
    EventMessage,
    Foreign,
    Invalid,
    RequestMessage,
    StatusCleared,
    StatusMessage,
    classify,
)
from .seed import SeedPolicy

__all__ = [
    "DeviceKey",
    "Inbound",
    "Ingestor",
    "MarkCaches",
    "PassResult",
    "ReceiptDraft",
    "Reply",
    "Responder",
    "SeenDevice",
]

log = logging.getLogger(__name__)

DeviceKey = tuple[str, str]
"""(library_id, device_id)."""


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message as the network thread handed it over (no I/O was done on it yet)."""

    topic: str
    payload: bytes
    qos: int = 1
    mid: int = 0
    generation: int = 0
    response_topic: str | None = None
    correlation: bytes | None = None


@dataclass(frozen=True, slots=True)
class SeenDevice:
    """A device made itself known outside the ingest path (by asking a question)."""

    library_id: str
    device_id: str


@dataclass(frozen=True, slots=True)
class MarkCaches:
    """Some caches may have changed outside the ingest path (a staff action)."""

    names: tuple[str, ...]


@dataclass
class ReceiptDraft:
    """What one pass has to tell one device."""

    confirmed: set[int] = field(default_factory=set)
    rejected: dict[int, str] = field(default_factory=dict)

    def build(self, key: DeviceKey, now: dt.datetime) -> DeliveryReceipt:
        """The receipt; a number both stored and rejected in one pass counts as stored."""
        return DeliveryReceipt(
            library_id=key[0],
            device_id=key[1],
            confirmed=sorted(self.confirmed),
            rejected=[
                RejectedEvent(seq=seq, reason=reason)
                for seq, reason in sorted(self.rejected.items())
                if seq not in self.confirmed
            ],
            time=now,
        )


@dataclass
class PassResult:
    """What to do after the pass's commit."""

    now: dt.datetime
    receipts: dict[DeviceKey, ReceiptDraft] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)
    new_devices: list[DeviceKey] = field(default_factory=list)
    stored: int = 0
    misrouted: list[Inbound] = field(default_factory=list)

    def draft(self, key: DeviceKey) -> ReceiptDraft:
        """The receipt being built for one device."""
        return self.receipts.setdefault(key, ReceiptDraft())


def _short_topic(topic: str) -> str:
    return repr(topic if len(topic) <= 120 else topic[:119] + "…")


class Ingestor:
    """Stores a batch of uplink messages in one transaction (see the module docstring)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        instance: str,
        library_id: str,
        policy: SeedPolicy,
        clock: Callable[[], dt.datetime],
        tz: ZoneInfo,
    ) -> None:
        self.conn, self.instance, self.library_id = conn, instance, library_id
        self.policy, self.clock, self.tz = policy, clock, tz

    def run(self, batch: Sequence[Inbound | SeenDevice | MarkCaches]) -> PassResult:
        """Process one batch; raises sqlite3.Error (nothing committed) if the database fails."""
        now_dt = self.clock()
        result = PassResult(now_dt)
        now = now_dt.isoformat()
        events: list[EventMessage] = []
        conn = self.conn
        with store.write_txn(conn):
            for message in batch:
                if isinstance(message, MarkCaches):
                    result.changed.update(message.names)
                elif isinstance(message, SeenDevice):
                    self._seen(result, message.library_id, message.device_id, None, now)
                else:
                    verdict = classify(message.topic, message.payload, self.library_id)
                    if isinstance(verdict, EventMessage):
                        events.append(verdict)
                    elif isinstance(verdict, RequestMessage):
                        result.misrouted.append(message)
                    else:
                        self._other(result, verdict, now)
            events.sort(key=lambda e: (e.envelope.device_id, e.envelope.seq))
            today = now_dt.astimezone(self.tz).date()
            for event in events:
                self._event(result, event, now, today)
        return result

    def _seen(
        self, result: PassResult, library_id: str, device_id: str, kind: str | None, now: str
    ) -> None:
        first = store.register_device(
            self.conn, library_id=library_id, device_id=device_id, kind=kind, now=now
        )
        if first:
            log.info("new device %s of library %s", device_id, library_id)
            result.new_devices.append((library_id, device_id))

    def _other(
        self,
        result: PassResult,
        verdict: Foreign | Invalid | StatusMessage | StatusCleared,
        now: str,
    ) -> None:
        conn = self.conn
        if isinstance(verdict, StatusCleared):
            log.info("status of %s cleared", verdict.info.device_id)
            conn.execute(
                "UPDATE devices SET online = NULL, status = NULL WHERE device_id = ?",
                (verdict.info.device_id,),
            )
        elif isinstance(verdict, Foreign):
            log.warning(
                "ignored foreign message on %s: %s", _short_topic(verdict.topic), verdict.reason
            )
            store.record_rejected(
                conn,
                now=now,
                instance=self.instance,
                category="foreign",
                topic=verdict.topic,
                reason=verdict.reason,
            )
        elif isinstance(verdict, Invalid):
            info = verdict.info
            log.warning(
                "rejected %s message from %s (%s): %s",
                info.channel,
                info.device_id,
                verdict.category,
                verdict.reason,
            )
            store.record_rejected(
                conn,
                now=now,
                instance=self.instance,
                category=verdict.category,
                topic=verdict.topic,
                reason=verdict.reason,
                device_id=info.device_id,
                seq=verdict.seq,
            )
            if info.channel == "event" and verdict.seq is not None:
                key = (info.library_id, info.device_id)
                result.draft(key).rejected[verdict.seq] = verdict.reason
                # The device will dead-letter it: it is accounted for, not a gap.
                store.account_seq(conn, info.device_id, verdict.seq, now)
        else:
            status = verdict.status
            self._seen(result, status.library_id, status.device_id, status.device_kind.value, now)
            conn.execute(
                "UPDATE devices SET online = ?, status = ? WHERE device_id = ?",
                (status.online, status.model_dump_json(), status.device_id),
            )

    def _event(self, result: PassResult, event: EventMessage, now: str, today: dt.date) -> None:
        conn, env = self.conn, event.envelope
        key = (env.library_id, env.device_id)
        existing = conn.execute(
            "SELECT event_id FROM events WHERE device_id = ? AND seq = ?", (env.device_id, env.seq)
        ).fetchone()
        if existing is not None:
            if existing["event_id"] == str(env.event_id):
                store.bump(conn, "duplicates", env.device_id)
                result.draft(key).confirmed.add(env.seq)
                log.debug("duplicate %s seq %d dropped", env.device_id, env.seq)
                return
            reason = (
                f"seq {env.seq} already holds event {existing['event_id']}, not {env.event_id}:"
                " was the device's sequence reset?"
            )
            log.error("conflict from %s: %s", env.device_id, reason)
            store.record_rejected(
                conn,
                now=now,
                instance=self.instance,
                category="conflict",
                topic=event_topic_of(event),
                reason=reason,
                device_id=env.device_id,
                seq=env.seq,
            )
            record_exception(conn, env, now, "seq_conflict", reason)
            result.draft(key).rejected[env.seq] = reason
            return
        applied = apply_event(conn, env, self.policy, today, now)
        conn.execute(
            "INSERT INTO events (library_id, device_id, seq, device_kind, kind, event_id, time,"
            " clock_trusted, offline, received_at, instance, outcome, envelope)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                env.library_id,
                env.device_id,
                env.seq,
                env.device_kind.value,
                env.kind,
                str(env.event_id),
                env.time.isoformat(),
                env.clock_trusted,
                getattr(env.payload, "offline", False),
                now,
                self.instance,
                applied.outcome,
                env.model_dump_json(),
            ),
        )
        change = store.account_seq(conn, env.device_id, env.seq, now)
        if change.opened:
            log.warning("gap: %s seq %d..%d not received", env.device_id, *change.opened)
        if change.filled:
            log.info("gap filled: %s seq %d arrived late", env.device_id, change.filled)
        self._seen(result, env.library_id, env.device_id, env.device_kind.value, now)
        result.draft(key).confirmed.add(env.seq)
        result.changed |= applied.changed
        result.stored += 1


def event_topic_of(event: EventMessage) -> str:
    """The topic an event came on, rebuilt from its parsed parts."""
    info = event.info
    return f"libedge/v1/{info.library_id}/{info.device_id}/up/event/{info.name}"


# ---------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class Reply:
    """A response to publish, with the correlation data the request carried."""

    topic: str
    response: Response
    correlation: bytes | None
    device: DeviceKey
    op: str


class Responder:
    """Answers requests; writes to the database only to count rejected ones."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        instance: str,
        library_id: str,
        answerer: Answerer,
        clock: Callable[[], dt.datetime],
        tz: ZoneInfo,
    ) -> None:
        self.conn, self.instance, self.library_id = conn, instance, library_id
        self.answerer, self.clock, self.tz = answerer, clock, tz

    def _reject(self, category: str, topic: str, reason: str, device_id: str | None) -> None:
        log.warning("rejected request on %s (%s): %s", _short_topic(topic), category, reason)
        with store.write_txn(self.conn):
            store.record_rejected(
                self.conn,
                now=self.clock().isoformat(),
                instance=self.instance,
                category=category,
                topic=topic,
                reason=reason,
                device_id=device_id,
            )

    def handle(self, message: Inbound) -> Reply | None:
        """The reply to one request message, or None when nobody can be answered."""
        verdict = classify(message.topic, message.payload, self.library_id)
        if isinstance(verdict, Foreign):
            self._reject("foreign", verdict.topic, verdict.reason, None)
            return None
        if not isinstance(verdict, RequestMessage | Invalid):
            # Only request topics are routed here; anything else is a routing slip.
            self._reject("foreign", message.topic, "not a request topic", None)
            return None
        info = verdict.info
        own = response_topic(info.library_id, info.device_id)
        now = self.clock()
        request_id: uuid.UUID | None
        if isinstance(verdict, Invalid):
            self._reject(verdict.category, verdict.topic, verdict.reason, info.device_id)
            request_id = verdict.request_id
            response = error_response(request_id, now, verdict.reason) if request_id else None
            op = info.name or "?"
        elif message.response_topic not in (None, own):
            reason = "the response topic must be the device's own down/response topic"
            self._reject("misdirected", message.topic, reason, info.device_id)
            response = error_response(verdict.request.request_id, now, reason)
            op = verdict.request.body.op
        else:
            request = verdict.request
            response = self.answerer.answer(self.conn, request, now, now.astimezone(self.tz).date())
            op = request.body.op
            log.info(
                "request %s %s from %s: %s%s",
                op,
                request.request_id,
                info.device_id,
                response.outcome,
                f" ({response.reason.value})" if response.reason else "",
            )
        if response is None:
            return None
        return Reply(own, response, message.correlation, (info.library_id, info.device_id), op)
