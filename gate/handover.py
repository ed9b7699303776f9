"""The gate's own durable queue of events the edge agent has not accepted yet.

The gate must go on alarming and counting when the agent (or central behind it) is down, and
what it could not hand over must survive a power cut. So every event is first committed
here — an :class:`~edge_agent.outbox.SqliteOutbox` in the gate's data directory, WAL with
``synchronous=FULL``, the same store the agent trusts — and only then handed to the agent
by a sender thread, oldest first, one at a time so the order is kept:

* accepted by the agent (after its own commit): marked confirmed here and pruned;
* agent unreachable: kept, retried with backoff (0.2 s doubling to 30 s, woken at once by a
  new event only when the agent looked healthy);
* refused for good (it breaks the contract, a bug): dead-lettered here with the reason,
  never dropped, and counted in the health snapshot for staff.

The agent's append is idempotent on ``event_id``, so an event handed over twice (the gate
died between the agent's answer and its own mark) is stored once. At the cap
(``max_events``) :meth:`Handover.put` keeps the event in memory, flags the queue as full and
logs an error; the sender moves held events to disk as soon as there is room.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from edge_agent.outbox import (
    EventState,
    InvalidArgument,
    OutboxError,
    OutboxEvent,
    OutboxFull,
    OutboxLimits,
    SqliteOutbox,
)
from gate.agent import AgentPort, HandoverEvent
from gate.errors import AgentRejected, AgentUnavailable

__all__ = ["Handover", "HandoverStatus"]

log = logging.getLogger(__name__)

#: ``due()`` also returns events marked SENT longer ago than this; the gate never marks SENT.
_NEVER = 10.0 * 365 * 24 * 3600
_BATCH = 64
_BACKOFF_MIN_S = 0.2
_BACKOFF_MAX_S = 30.0
_PRUNE_EVERY_S = 60.0


@dataclass(frozen=True, slots=True)
class HandoverStatus:
    """The queue as the health snapshot shows it."""

    pending: int
    held_in_memory: int
    dead: int
    full: bool
    agent_ok: bool | None
    last_error: str | None
    handed_over: int
    oldest_pending_age_s: float | None


class Handover:
    """Commit events to the gate's queue; hand them to the agent from a thread of its own."""

    def __init__(
        self,
        path: Path,
        device_id: str,
        agent: AgentPort,
        *,
        max_events: int = 100_000,
        backoff_max_s: float = _BACKOFF_MAX_S,
    ) -> None:
        self.path = Path(path)
        self.device_id = device_id
        self.agent = agent
        self.backoff_max_s = backoff_max_s
        self._store = SqliteOutbox(
            self.path, limits=OutboxLimits(max_rows=max_events, max_bytes=None)
        )
        self._held: collections.deque[HandoverEvent] = collections.deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None
        self._full = False
        self._agent_ok: bool | None = None
        self._last_error: str | None = None
        self._handed_over = 0
        self._last_status: HandoverStatus | None = None

    # ------------------------------------------------------------ producers

    def put(self, kind: str, payload: str, *, event_time: float, clock_trusted: bool) -> bool:
        """Commit one event (JSON payload); True when it is on disk, False when held in memory.

        Returns only after the commit. Never raises for a full queue or a disk error: the
        event is then held in memory (see the module docstring) and the health says so.
        A payload that is not JSON text raises :class:`~edge_agent.outbox.InvalidArgument`.
        """
        event = HandoverEvent(str(uuid.uuid4()), kind, payload, event_time, clock_trusted)
        with self._lock:
            stored = not self._held and self._store_event(event)
            if not stored:
                self._held.append(event)
        self._wake.set()
        return stored

    def _store_event(self, event: HandoverEvent) -> bool:
        try:
            self._store.append(
                self.device_id,
                event.kind,
                event.payload,
                event_time=event.event_time,
                clock_trusted=event.clock_trusted,
                event_id=event.event_id,
            )
        except OutboxFull as exc:
            if not self._full:
                log.error("gate hand-over queue is full, holding events in memory: %s", exc)
            self._full = True
            return False
        except InvalidArgument:
            raise  # a malformed event is the caller's bug: holding it would block the rest
        except OutboxError as exc:
            self._full = True
            log.error("gate hand-over queue cannot store an event, holding it: %s", exc)
            return False
        self._full = False
        return True

    # ------------------------------------------------------------ the sender

    def start(self) -> None:
        """Start handing events over."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="gate-handover", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the sender and close the store; what was not handed over stays on disk."""
        thread, self._thread = self._thread, None
        self._stop.set()
        self._wake.set()
        if thread is not None:
            thread.join(timeout)
        with self._lock:
            held = list(self._held)
        if held:
            log.error(
                "gate stopping with %d events held in memory (queue full): %s",
                len(held),
                "; ".join(e.payload for e in held[:20]),
            )
        self.status()  # the last figures stay readable after the store is closed
        self._store.close()

    def _run(self) -> None:
        backoff = _BACKOFF_MIN_S
        next_prune = time.monotonic() + _PRUNE_EVERY_S
        while not self._stop.is_set():
            self._wake.clear()
            self._move_held()
            try:
                progressed, waiting = self._send_some()
            except OutboxError as exc:
                self._last_error = f"cannot read the hand-over queue: {exc}"
                log.error("%s", self._last_error)
                progressed, waiting = False, True
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + _PRUNE_EVERY_S
                self._prune()
            if progressed:
                backoff = _BACKOFF_MIN_S
                continue
            if not waiting:
                with self._idle:
                    self._idle.notify_all()
                self._wake.wait()
                continue
            # The agent is down: wait, but let a stop (not a new event) cut the wait short.
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self.backoff_max_s)

    def _move_held(self) -> None:
        with self._lock:
            while self._held and self._store_event(self._held[0]):
                self._held.popleft()

    def _send_some(self) -> tuple[bool, bool]:
        """Hand over a batch; return (something handed over, something still waiting)."""
        due = self._store.due(self.device_id, _BATCH, resend_after=_NEVER)
        if not due:
            with self._lock:
                return False, bool(self._held)
        for event in due:
            if self._stop.is_set():
                return True, True
            if not self._hand_over(event):
                return False, True
        return True, True

    def _hand_over(self, stored: OutboxEvent) -> bool:
        event = HandoverEvent(
            stored.event_id,
            stored.kind,
            stored.payload,
            stored.event_time,
            stored.clock_trusted,
        )
        try:
            self.agent.append_event(event)
        except AgentRejected as exc:
            reason = f"refused by the edge agent: {exc}"[:1000]
            log.error("event %s (%s) dead-lettered: %s", stored.event_id, stored.kind, reason)
            self._store.dead_letter(self.device_id, stored.seq, reason)
            return True
        except AgentUnavailable as exc:
            if self._agent_ok is not False:
                log.warning("edge agent unavailable, keeping events: %s", exc)
            self._agent_ok = False
            self._last_error = str(exc)
            return False
        if self._agent_ok is False:
            log.info("edge agent is back; handing over what was kept")
        self._agent_ok = True
        self._handed_over += 1
        self._store.mark_confirmed(self.device_id, [stored.seq])
        return True

    def _prune(self) -> None:
        try:
            self._store.prune_confirmed(0.0)
        except OutboxError as exc:
            log.warning("cannot prune the hand-over queue: %s", exc)

    # ------------------------------------------------------------ views

    def status(self) -> HandoverStatus:
        """The queue's depth and the agent's reachability (the last known, once stopped)."""
        try:
            stats = self._store.stats()
        except OutboxError as exc:
            if self._last_status is not None:
                return self._last_status
            raise AgentUnavailable(f"the hand-over queue cannot be read: {exc}") from exc
        with self._lock:
            held = len(self._held)
        self._last_status = HandoverStatus(
            pending=stats.counts[EventState.PENDING],
            held_in_memory=held,
            dead=stats.counts[EventState.DEAD],
            full=self._full,
            agent_ok=self._agent_ok,
            last_error=self._last_error,
            handed_over=self._handed_over,
            oldest_pending_age_s=stats.oldest_unconfirmed_age_s,
        )
        return self._last_status

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is waiting to be handed over (for tests and a clean stop)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while True:
                status = self.status()
                if status.pending == 0 and status.held_in_memory == 0:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._wake.set()
                self._idle.wait(min(remaining, 0.2))

    @property
    def agent_ok(self) -> bool | None:
        """Whether the last hand-over succeeded (None before any)."""
        return self._agent_ok
