"""The gate's hot path: merge reads into passes, decide each pass once, switch the alarm.

:class:`GateCore` is called by the polling threads (one per group of readers that take
turns) with every inventory reply, and with the result of every probe or identifying read
they did because the core asked for it (:class:`Work`). Under one lock it merges the reads
into passes (:class:`~gate.passes.PassTracker`), applies the rules
(:func:`~gate.decide.decide`) from what is known, and when the verdict is ALARM switches the
output *on the calling thread, at once* — before anything is logged, looked up or written.
Everything else about an alarm (naming the item, grouping the items of one visitor,
committing the event) happens on the event builder's thread, which gets :class:`Alarmed`
and :class:`PassEnded` notices through a callback that only enqueues.

Each pass alarms at most once, however many reads and antennas it has.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gate.decide import Decision, Rules, TagFacts, Verdict, decide
from gate.identify import Probe
from gate.knowledge import ItemStates, TagMemo
from gate.passes import AlarmMark, PassSummary, PassTracker, TagPass
from hardware.outputs import AlarmOutput, OutputError
from hardware.reader import InventoryEntry
from hardware.tags import SecurityState

__all__ = ["Alarmed", "GateCore", "Notice", "PassEnded", "Work", "WorkKind"]

log = logging.getLogger(__name__)

#: Tries per pass before the gate stops asking for a probe / an identifying read.
_MAX_PROBES = 3
_MAX_IDENTIFY = 3


class WorkKind(enum.Enum):
    """Reader work the core asks a polling thread to do for one pass."""

    PROBE = "probe"
    IDENTIFY = "identify"


@dataclass(frozen=True, slots=True)
class Work:
    """Probe or read one tag; ``urgent`` when the decision waits on it (not mere naming)."""

    kind: WorkKind
    tag_pass: TagPass
    urgent: bool


@dataclass(frozen=True, slots=True)
class Alarmed:
    """A pass set the alarm off (sent the moment it happened)."""

    summary: PassSummary


@dataclass(frozen=True, slots=True)
class PassEnded:
    """A pass that had alarmed ended (its tag has been quiet for the quiet time)."""

    summary: PassSummary


Notice = Alarmed | PassEnded


@dataclass
class CoreCounters:
    """Figures for the health snapshot and the benchmark."""

    alarms: int = 0
    allowed: int = 0
    probes: int = 0
    probe_failures: int = 0
    identifications: int = 0
    identify_failures: int = 0
    output_errors: int = 0


class GateCore:
    """Passes, decisions and the alarm output, shared by every polling thread."""

    def __init__(
        self,
        rules: Rules,
        alarm: AlarmOutput,
        *,
        quiet_time_s: float,
        alarm_duration_s: float,
        memo: TagMemo | None = None,
        items: ItemStates | None = None,
        notify: Callable[[Notice], None] = lambda notice: None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.rules = rules
        self.alarm = alarm
        self.alarm_duration_s = alarm_duration_s
        self.memo = memo if memo is not None else TagMemo()
        self.items = items if items is not None else ItemStates()
        self.tracker = PassTracker(quiet_time_s)
        self.counters = CoreCounters()
        self._notify = notify
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        #: Every alarm's timing, when ``keep_alarm_log`` is set (for the benchmark).
        self.alarm_log: list[AlarmMark] = []
        self.keep_alarm_log = False

    # ------------------------------------------------------------ from the polling threads

    def inventory(
        self,
        antenna: str,
        cycle: int,
        entries: Sequence[InventoryEntry],
        *,
        secured: bool,
        reply_ns: int,
    ) -> list[Work]:
        """Merge one inventory reply; alarm for what it decides; return the work it needs.

        ``secured`` says the inventory was filtered on the library's secured AFI, so every
        tag in it is SECURED. ``reply_ns`` is when the reply's last byte was read.
        """
        now = self._clock()
        if not entries:
            with self._lock:
                self.tracker.inventory_done(now)
            return []
        work: list[Work] = []
        with self._lock:
            for entry in entries:
                tag_pass, started = self.tracker.read(
                    entry.uid, entry.dsfid, antenna, cycle, now, reply_ns
                )
                changed = started
                if started:
                    tag_pass.facts = self.memo.get(entry.uid)
                if secured and tag_pass.security is not SecurityState.SECURED:
                    tag_pass.security = SecurityState.SECURED
                    tag_pass.secured_ns = reply_ns
                    changed = True
                if changed:
                    self._evaluate(tag_pass, antenna, reply_ns)
                job = self._work_for(tag_pass)
                if job is not None:
                    work.append(job)
            # After the reads: this inventory proves absence only for later reads.
            self.tracker.inventory_done(now)
        work.sort(key=lambda job: not job.urgent)
        return work

    def probed(self, tag_pass: TagPass, antenna: str, probe: Probe, reply_ns: int) -> Work | None:
        """Record a probe's security state (and layout), decide again; return the next step.

        The next step (a read, when the decision needs one) is for the same polling thread
        to do at once: the tag was in the field a moment ago, and may not be seen again.
        """
        with self._lock:
            self.counters.probes += 1
            tag_pass.probe_attempts += 1
            if not self._current(tag_pass):
                return None
            tag_pass.layout = probe.info
            if tag_pass.security is not SecurityState.SECURED:
                tag_pass.security = probe.security
            self._evaluate(tag_pass, antenna, reply_ns)
            return self._work_for(tag_pass)

    def probe_failed(self, tag_pass: TagPass, error: Exception) -> None:
        """A probe failed (the tag left, an RF error); it is tried again on a later read."""
        with self._lock:
            self.counters.probe_failures += 1
            tag_pass.probe_attempts += 1
        log.debug("probe of %s failed: %s", tag_pass.uid_hex, error)

    def identified(
        self, tag_pass: TagPass, antenna: str, facts: TagFacts, reply_ns: int
    ) -> Work | None:
        """Record what reading the tag said, remember it, decide again; return the next step."""
        self.memo.put(tag_pass.uid, facts)
        with self._lock:
            self.counters.identifications += 1
            tag_pass.identify_attempts += 1
            tag_pass.facts = facts
            tag_pass.wants_name = False
            if not self._current(tag_pass):
                return None
            self._evaluate(tag_pass, antenna, reply_ns)
            return self._work_for(tag_pass)

    def identify_failed(
        self, tag_pass: TagPass, antenna: str, error: Exception, reply_ns: int, *, final: bool
    ) -> None:
        """A read failed; with ``final`` decide without it now (it is not asked for again)."""
        with self._lock:
            self.counters.identify_failures += 1
            tag_pass.identify_attempts += 1
            if final or tag_pass.identify_attempts >= _MAX_IDENTIFY:
                tag_pass.identify_failed = True
                tag_pass.wants_name = False
                if self._current(tag_pass):
                    self._evaluate(tag_pass, antenna, reply_ns)
        log.debug("reading %s failed: %s", tag_pass.uid_hex, error)

    def expire(self) -> int:
        """End the passes that went quiet; return how many ended."""
        now = self._clock()
        with self._lock:
            ended = self.tracker.expire(now)
            notices = self._ended(ended)
        for notice in notices:
            self._notify(notice)
        return len(ended)

    def _ended(self, ended: list[TagPass]) -> list[Notice]:
        notices: list[Notice] = []
        for tag_pass in ended:
            decision = tag_pass.decision
            if (
                tag_pass.alarm is None
                and tag_pass.security is SecurityState.SECURED
                and decision is not None
                and not decision.final
            ):
                # Secured, and the read that was to decide never happened (the reader went
                # away in between): the secured state decides, late rather than never.
                tag_pass.identify_failed = True
                self._evaluate(tag_pass, tag_pass.last_antenna, time.perf_counter_ns())
            if tag_pass.alarm is not None:
                notices.append(PassEnded(tag_pass.summary()))
        return notices

    def end_all(self) -> None:
        """End every open pass now (the gate is stopping)."""
        with self._lock:
            notices = self._ended(self.tracker.end_all())
        for notice in notices:
            self._notify(notice)

    # ------------------------------------------------------------ views

    def open_passes(self) -> int:
        """Passes in progress."""
        with self._lock:
            return len(self.tracker)

    @property
    def reads_total(self) -> int:
        """Reads merged since start."""
        return self.tracker.reads_total

    @property
    def passes_total(self) -> int:
        """Passes started since start."""
        return self.tracker.passes_total

    # ------------------------------------------------------------ under the lock

    def _current(self, tag_pass: TagPass) -> bool:
        """Whether the pass is still open (a late answer for an ended pass is ignored)."""
        return self.tracker.get(tag_pass.uid) is tag_pass

    def _evaluate(self, tag_pass: TagPass, antenna: str, reply_ns: int) -> None:
        if tag_pass.alarm is not None:
            return  # one alarm per pass
        decision = decide(
            tag_pass.security,
            tag_pass.facts,
            self.rules,
            self.items.state,
            identify_failed=tag_pass.identify_failed,
            cache_known=self.items.known,
        )
        previous, tag_pass.decision = tag_pass.decision, decision
        if decision.verdict is Verdict.ALARM:
            self._sound(tag_pass, antenna, decision, reply_ns)
        elif decision.verdict is Verdict.ALLOW and not (previous and previous.final):
            self.counters.allowed += 1

    def _sound(self, tag_pass: TagPass, antenna: str, decision: Decision, reply_ns: int) -> None:
        try:
            self.alarm.trigger(self.alarm_duration_s)
        except OutputError as exc:
            # The event is still recorded; staff see the output problem in the health.
            self.counters.output_errors += 1
            log.error("alarm output failed: %s", exc)
        switched = time.perf_counter_ns()
        inventory_ns = tag_pass.secured_ns or tag_pass.first_inventory_ns
        mark = AlarmMark(antenna, decision.reason, reply_ns, inventory_ns, switched, self._wall())
        tag_pass.alarm = mark
        tag_pass.wants_name = tag_pass.facts is None and not tag_pass.identify_failed
        self.counters.alarms += 1
        if self.keep_alarm_log:
            self.alarm_log.append(mark)
        self._notify(Alarmed(tag_pass.summary()))

    def _work_for(self, tag_pass: TagPass) -> Work | None:
        if tag_pass.alarm is not None:
            if tag_pass.wants_name and tag_pass.identify_attempts < _MAX_IDENTIFY:
                return Work(WorkKind.IDENTIFY, tag_pass, urgent=False)
            return None
        decision = tag_pass.decision
        if decision is None:
            return None
        if decision.verdict is Verdict.PROBE and tag_pass.probe_attempts < _MAX_PROBES:
            return Work(WorkKind.PROBE, tag_pass, urgent=True)
        if decision.verdict is Verdict.IDENTIFY and tag_pass.identify_attempts < _MAX_IDENTIFY:
            # Urgent too when only the cache can tell: a tag read once may not be seen again.
            return Work(WorkKind.IDENTIFY, tag_pass, urgent=True)
        return None
