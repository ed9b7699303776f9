"""From alarms to events: group the items of one visitor, name them, commit one GateAlarm.

The polling threads only switch the alarm on and drop a notice here. :class:`EventBuilder`
runs on a thread of its own and does the slow part:

* an **episode** collects the passes that alarmed together: a visitor with three unissued
  books in a bag sets the alarm off three times in quick succession, and staff want one
  event listing the three. An episode takes the alarms of ``episode_span_s`` seconds from
  its first (the gate uses its quiet time) and at most 50 items, and is committed when every
  pass in it has ended (its tag unseen for the quiet time). Each pass appears in exactly
  one episode, so each unissued item pass is reported once;
* every item is named: item id, owner library and data model from the tag (when it could be
  read), the title from the agent's cache (else from the tag), the security state, the
  antenna that alarmed and how often the tag was read in the pass;
* the :class:`~edge_agent.contract.GateAlarm` is committed to the hand-over queue, and only
  after that commit is the alarm counted as handled (:class:`AlarmLedger`).

When the gate stops, open episodes are closed with what is known, so none is lost.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from edge_agent.contract import AlarmItem, GateAlarm
from edge_agent.contract.events import SecurityState as WireSecurity
from gate.core import Alarmed, Notice, PassEnded
from gate.errors import AgentUnavailable
from gate.passes import PassSummary

__all__ = ["AlarmLedger", "EventBuilder", "alarm_item"]

log = logging.getLogger(__name__)

#: Commits one event durably: (kind, JSON payload, event time) -> returns after the commit.
Commit = Callable[[str, str, float], object]
#: The cached title of an item (may raise AgentUnavailable).
TitleLookup = Callable[[str], str | None]

_ITEM_ID_MAX = 64
#: An episode takes at most this many items (one visitor carries a few; the event stays
#: small even when alarms follow each other without a break).
_EPISODE_ITEMS = 50
#: Titles remembered by item id (a bounded, oldest-out dict).
_TITLES_KEPT = 2000
_TITLE_MAX = 500
_STOP = object()


class AlarmLedger:
    """Alarms handled (committed) today, in the library's time zone; thread-safe."""

    def __init__(self, timezone: str = "UTC", wall: Callable[[], float] = time.time) -> None:
        self._zone = ZoneInfo(timezone)
        self._wall = wall
        self._lock = threading.Lock()
        self._day: dt.date | None = None
        self._today = 0
        self.alarms_total = 0
        self.items_total = 0
        self.last_alarm: float | None = None

    def _date(self, when: float) -> dt.date:
        return dt.datetime.fromtimestamp(when, self._zone).date()

    def handled(self, items: int, when: float | None = None) -> None:
        """Count one committed alarm event of ``items`` items."""
        when = self._wall() if when is None else when
        with self._lock:
            day = self._date(when)
            if day != self._day:
                self._day, self._today = day, 0
            self._today += 1
            self.alarms_total += 1
            self.items_total += items
            self.last_alarm = when

    def today(self) -> int:
        """Alarm events committed since local midnight."""
        with self._lock:
            if self._day != self._date(self._wall()):
                return 0
            return self._today


def _wire_security(summary: PassSummary) -> WireSecurity:
    if summary.security is None:
        return WireSecurity.UNKNOWN
    return WireSecurity(summary.security.value)


def alarm_item(summary: PassSummary, title: str | None) -> AlarmItem:
    """Name one alarmed pass for the event (fields the contract cannot hold are left out)."""
    facts = summary.facts
    item_id = facts.item_id if facts else None
    if item_id is not None and not 1 <= len(item_id) <= _ITEM_ID_MAX:
        log.warning(
            "tag %s holds an item id of %d characters; not sent", summary.uid_hex, len(item_id)
        )
        item_id = None
    if title is None and facts is not None:
        title = facts.title
    return AlarmItem(
        tag_uid=summary.uid_hex,
        item_id=item_id,
        title=title[:_TITLE_MAX] if title else None,
        owner_institution=facts.owner_institution if facts else None,
        security=_wire_security(summary),
        data_model=facts.model.value if facts else "unknown",
        antenna=summary.first_antenna or "unknown",
        reads=max(1, summary.reads),
    )


@dataclass(eq=False)
class _Episode:
    """Passes that alarmed together; closed when all of them ended."""

    started: float
    members: dict[tuple[bytes, int], PassSummary] = field(default_factory=dict)
    ended: set[tuple[bytes, int]] = field(default_factory=set)

    @property
    def complete(self) -> bool:
        return bool(self.members) and self.ended >= set(self.members)

    def accepting(self, when: float, span_s: float) -> bool:
        """Whether an alarm at ``when`` still belongs to this visitor's episode."""
        return len(self.members) < _EPISODE_ITEMS and when - self.started < span_s


class EventBuilder:
    """Turns alarm notices into committed GateAlarm events, on a thread of its own."""

    def __init__(
        self,
        commit: Commit,
        ledger: AlarmLedger,
        *,
        titles: TitleLookup | None = None,
        titles_available: Callable[[], bool] = lambda: True,
        episode_span_s: float = 10.0,
    ) -> None:
        self._commit = commit
        #: Alarms within this many seconds of an episode's first belong to it (one visitor).
        self.episode_span_s = episode_span_s
        self.ledger = ledger
        self._titles = titles
        self._titles_available = titles_available
        self._queue: queue.SimpleQueue[Notice | object] = queue.SimpleQueue()
        self._episode: _Episode | None = None  # the one new alarms join
        self._where: dict[tuple[bytes, int], _Episode] = {}  # open passes -> their episode
        self._thread: threading.Thread | None = None
        self._idle = threading.Condition()
        self._outstanding = 0
        self._stopping = False
        self._known_titles: dict[str, str | None] = {}
        self.events_committed = 0
        self.commit_failures = 0

    # ------------------------------------------------------------ producers (any thread)

    def notify(self, notice: Notice) -> None:
        """Queue a notice from the core (never blocks)."""
        with self._idle:
            self._outstanding += 1
        self._queue.put(notice)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the builder thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="gate-events", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Handle every queued notice, close the open episode, stop."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping = True  # no more waiting on the agent for titles
        self._queue.put(_STOP)
        thread.join(timeout)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued notice was handled (tests, benchmarks)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._outstanding == 0, timeout)

    @property
    def backlog(self) -> int:
        """Notices queued and not yet handled."""
        with self._idle:
            return self._outstanding

    @property
    def open_items(self) -> int:
        """Alarmed passes whose event is not committed yet."""
        return len(self._where)

    # ------------------------------------------------------------ the thread

    def _run(self) -> None:
        while True:
            notice = self._queue.get()
            if notice is _STOP:
                # Close every episode still waiting for its passes, oldest first.
                pending = {id(e): e for e in self._where.values()}
                if self._episode is not None:
                    pending[id(self._episode)] = self._episode
                for episode in sorted(pending.values(), key=lambda e: e.started):
                    self._close(episode)
                self._episode = None
                self._where.clear()
                return
            try:
                self._handle(notice)  # type: ignore[arg-type]
            except Exception:
                log.exception("gate event builder: cannot handle %r", notice)
            finally:
                with self._idle:
                    self._outstanding -= 1
                    self._idle.notify_all()

    def _handle(self, notice: Notice) -> None:
        summary = notice.summary
        key = (summary.uid, summary.number)
        if isinstance(notice, Alarmed):
            when = summary.alarm.wall_time if summary.alarm else time.time()
            episode = self._episode
            if episode is None or not episode.accepting(when, self.episode_span_s):
                # Continuous traffic would chain alarms into one endless episode: a new one
                # starts once the open one is full or old, and the old one closes when its
                # passes end.
                episode = self._episode = _Episode(started=when)
            episode.members[key] = summary
            self._where[key] = episode
            return
        assert isinstance(notice, PassEnded)
        episode = self._where.pop(key, None)
        if episode is None:
            log.warning(
                "pass %d of %s ended outside any alarm episode", summary.number, summary.uid_hex
            )
            return
        episode.members[key] = summary  # the final read count
        episode.ended.add(key)
        if episode.complete:
            if episode is self._episode:
                self._episode = None
            self._close(episode)

    def _title(self, summary: PassSummary) -> str | None:
        facts = summary.facts
        if self._titles is None or facts is None or facts.item_id is None:
            return None
        item_id = facts.item_id
        if item_id in self._known_titles:
            return self._known_titles[item_id]
        if self._stopping or not self._titles_available():
            return None  # the agent is down (or we stop): the tag's title will do
        try:
            title = self._titles(item_id)
        except AgentUnavailable as exc:
            log.debug("no title for %s: %s", item_id, exc)
            return None
        # Titles rarely change, and an item that alarms once tends to alarm again.
        if len(self._known_titles) >= _TITLES_KEPT:
            self._known_titles.pop(next(iter(self._known_titles)))
        self._known_titles[item_id] = title
        return title

    def _close(self, episode: _Episode) -> None:
        ordered = sorted(
            episode.members.values(),
            key=lambda s: (s.alarm.switched_ns if s.alarm else 0, s.number),
        )
        try:
            event = GateAlarm(
                pass_id=uuid.uuid4(), items=[alarm_item(s, self._title(s)) for s in ordered]
            )
        except ValidationError as exc:  # a bug: every field is sanitised above
            log.error("gate alarm event cannot be built: %s", exc)
            self.commit_failures += 1
            return
        self._commit("gate_alarm", event.model_dump_json(), episode.started)
        self.events_committed += 1
        self.ledger.handled(len(event.items), episode.started)
        log.info(
            "alarm handled: %s",
            ", ".join(f"{i.item_id or i.tag_uid} ({i.title or 'untitled'})" for i in event.items),
        )
