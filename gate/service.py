"""The long-running gate agent: readers, decisions, alarm, people counter, events, health.

:class:`GateService` wires the parts and owns their threads::

    PollGroup threads ──► GateCore ──► alarm output (switched on the polling thread)
                              │ notices
                              ▼
                         EventBuilder ──► Handover (SQLite, synchronous=FULL) ──► edge agent
    people counter ──► VisitorCounter ──┘                      sender thread ─┘
    housekeeping thread: visitor intervals, item-state snapshot, clock state, health.json

Starting never waits for a reader, the agent or the people counter: each is retried in the
background and its state shows in the health snapshot. Stopping goes in the order that
loses nothing: stop polling, end every open pass (so open alarm episodes become events),
commit the partial visitor interval, stop the sender (what it did not hand over stays in
the queue for the next start), then release the outputs.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from types import FrameType

from edge_agent.contract import VisitorCount
from gate.agent import AgentPort, open_agent
from gate.clock import clock_synchronised
from gate.core import GateCore
from gate.episodes import AlarmLedger, EventBuilder
from gate.errors import AgentUnavailable
from gate.handover import Handover
from gate.health import GateHealth, write_health
from gate.knowledge import ItemStates, TagMemo
from gate.options import GateOptions
from gate.poller import Antenna, PollGroup, PollSettings
from gate.visitors import VisitorCounter
from hardware.feig.bus import SharedBus
from hardware.outputs import AlarmOutput, open_alarm
from hardware.people_counter import (
    Crossing,
    GpioBeamInput,
    SocketBeamInput,
    open_people_counter,
)

__all__ = ["HANDOVER_FILE", "GateService"]

log = logging.getLogger(__name__)

HANDOVER_FILE = "handover.sqlite"
_HOUSEKEEPING_S = 0.25
_CLOCK_CHECK_S = 60.0
_STOP_DRAIN_S = 3.0


def _antennas(options: GateOptions) -> list[Antenna]:
    """One antenna per reader; readers that repeat a URL share its port (an RS-485 bus).

    The options have checked that such readers have addresses of their own and one turn
    group, so their one polling thread drives the shared port one exchange at a time.
    """
    counts = Counter(spec.url for spec in options.readers)
    buses = {url: SharedBus() for url, count in counts.items() if count > 1}
    antennas: list[Antenna] = []
    for spec in options.readers:
        antenna = Antenna(spec.name, spec.url, spec.address)
        bus = buses.get(spec.url)
        if bus is not None:
            antenna.opener = bus.open
        antennas.append(antenna)
    return antennas


class GateService:
    """One gate: build with options, :meth:`start`, :meth:`stop` (or run until signalled)."""

    def __init__(
        self,
        options: GateOptions,
        *,
        agent: AgentPort | None = None,
        alarm: AlarmOutput | None = None,
    ) -> None:
        self.options = options
        self.alarm = alarm if alarm is not None else open_alarm(options.alarm_output)
        self.agent = (
            agent
            if agent is not None
            else open_agent(
                options.agent_url,
                device_id=options.device_id,
                token=options.agent_token,
                max_events=options.agent_max_events,
            )
        )
        try:
            self.handover = Handover(
                options.data_dir / HANDOVER_FILE,
                options.device_id,
                self.agent,
                max_events=options.handover_max_events,
            )
        except BaseException:
            self.agent.close()
            raise
        self.ledger = AlarmLedger(options.timezone)
        self.builder = EventBuilder(
            self._commit,
            self.ledger,
            titles=self.agent.item_title,
            titles_available=lambda: self.handover.agent_ok is not False,
            # One visitor's items alarm within moments of each other; the quiet time is the
            # gate's own measure of "together".
            episode_span_s=options.quiet_time_s,
        )
        self.items = ItemStates()
        self.memo = TagMemo()
        self.core = GateCore(
            options.rules,
            self.alarm,
            quiet_time_s=options.quiet_time_s,
            alarm_duration_s=options.alarm_duration_s,
            memo=self.memo,
            items=self.items,
            notify=self.builder.notify,
        )
        self.antennas = _antennas(options)
        poll = PollSettings(
            security=options.security,
            full_scan_every=options.full_scan_every,
            identify_blocks=options.identify_blocks,
            reader_timeout_s=options.reader_timeout_s,
            expire_every_s=min(0.05, options.quiet_time_s / 4),
        )
        self.groups = [
            PollGroup(
                f"group-{number + 1}",
                [self.antennas[i] for i in group],
                self.core,
                poll,
                on_health_change=self._health_changed,
            )
            for number, group in enumerate(options.groups)
        ]
        self.visitors = VisitorCounter(options.visitor_interval_s, self._visitor_count)
        self._people: SocketBeamInput | GpioBeamInput | None = None
        self._people_problem: str | None = None
        self._people_last_problem: str | None = None
        self._people_problems = 0
        self._clock_ok = clock_synchronised()
        self._started = time.time()
        self._stop = threading.Event()
        self._health_due = threading.Event()
        self._changed = threading.Condition()
        self._housekeeper: threading.Thread | None = None
        self._running = False
        self._closed = False

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start every part; returns at once (readers connect in the background)."""
        if self._running:
            return
        if self._closed:
            raise RuntimeError("this gate service was stopped; build a new one")
        self._running = True
        self._stop.clear()
        self.options.data_dir.mkdir(parents=True, exist_ok=True)
        self.handover.start()
        self.builder.start()
        for group in self.groups:
            group.start()
        if self.options.people_counter:
            self._people = open_people_counter(
                self.options.people_counter, self._crossing, self._people_trouble
            )
        self._housekeeper = threading.Thread(
            target=self._housekeeping, name="gate-housekeeping", daemon=True
        )
        self._housekeeper.start()
        log.info(
            "gate %s started: %d reader(s) in %d turn group(s), alarm %s",
            self.options.device_id,
            len(self.antennas),
            len(self.groups),
            self.options.alarm_output or "none",
        )

    def stop(self) -> None:
        """Stop without losing anything (see the module docstring); idempotent.

        Also releases a service that was built but never started.
        """
        if self._closed:
            return
        if self._running:
            self._stop_threads()
            if self.handover.agent_ok is not False:
                # A clean stop hands over what is waiting if the agent takes it at once; the
                # rest stays in the queue for the next start.
                self.handover.wait_idle(_STOP_DRAIN_S)
        self._closed = True
        self._write_health()
        self.handover.stop()
        self.agent.close()
        self.alarm.close()
        log.info("gate %s stopped", self.options.device_id)

    def _stop_threads(self) -> None:
        self._running = False
        for group in self.groups:
            group.stop()
        self.core.end_all()
        self.builder.stop()
        if self._people is not None:
            self._people.close()
            self._people = None
        self.visitors.flush()
        self._stop.set()
        if self._housekeeper is not None:
            self._housekeeper.join(10)
            self._housekeeper = None

    def __enter__(self) -> GateService:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run_until_signalled(self) -> int:
        """Run until SIGTERM or SIGINT, then stop cleanly; return the exit status."""
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("gate: signal %d, stopping", signum)
            stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            # A timed wait keeps the main thread returning to the interpreter, where the
            # signal handler runs.
            while not stop.wait(0.5):
                pass
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    # ------------------------------------------------------------ events

    def _commit(self, kind: str, payload: str, event_time: float) -> bool:
        return self.handover.put(kind, payload, event_time=event_time, clock_trusted=self._clock_ok)

    def _visitor_count(self, count: VisitorCount) -> None:
        self._commit("visitor_count", count.model_dump_json(), count.interval_end.timestamp())

    def _crossing(self, crossing: Crossing) -> None:
        if self._people_problem is not None:
            log.info("people counter is working again")
            self._people_problem = None
        self.visitors.crossing(crossing)

    def _people_trouble(self, problem: str) -> None:
        if problem != self._people_problem:
            log.warning("%s", problem)
        self._people_problem = problem
        self._people_last_problem = problem
        self._people_problems += 1
        self._health_due.set()

    # ------------------------------------------------------------ housekeeping

    def _housekeeping(self) -> None:
        now = time.monotonic()
        next_cache = now
        next_health = now
        next_clock = now + _CLOCK_CHECK_S
        while not self._stop.is_set():
            try:
                self.visitors.tick()
                now = time.monotonic()
                if now >= next_cache:
                    next_cache = now + self.options.cache_refresh_s
                    self.refresh_cache()
                if now >= next_clock:
                    next_clock = now + _CLOCK_CHECK_S
                    self._clock_ok = clock_synchronised()
                if now >= next_health or self._health_due.is_set():
                    self._health_due.clear()
                    next_health = now + self.options.health_interval_s
                    health = self.health()
                    self._write_health(health)
                    self._report_details(health)
            except Exception:
                log.exception("gate housekeeping failed; going on")
            self._stop.wait(_HOUSEKEEPING_S)

    def refresh_cache(self) -> bool:
        """Load the agent's item states if their version changed; False if it could not."""
        try:
            version = self.agent.item_states_version()
            if version is None or version == self.items.version:
                return version is not None
            loaded = self.items.replace(version, self.agent.item_states())
        except AgentUnavailable as exc:
            log.debug("item states not refreshed: %s", exc)
            return False
        log.info("item states version %d loaded: %d items", version, loaded)
        return True

    def _health_changed(self) -> None:
        self._health_due.set()
        with self._changed:
            self._changed.notify_all()

    def wait_health(self, predicate: Callable[[GateHealth], bool], timeout: float) -> GateHealth:
        """Wait until a health snapshot satisfies ``predicate``; return it (TimeoutError if not).

        Woken by every reader state change; checked at least every 50 ms for the figures
        that change without one (reads, alarms, the hand-over queue).
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                health = self.health()
                if predicate(health):
                    return health
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"gate health did not reach the state in {timeout} s")
                self._changed.wait(min(remaining, 0.05))

    def _write_health(self, health: GateHealth | None = None) -> None:
        try:
            write_health(self.options.data_dir, health or self.health())
        except OSError as exc:
            log.warning("cannot write the health file: %s", exc)

    def _report_details(self, health: GateHealth) -> None:
        """Tell the agent the gate's reader and alarm figures for its retained status."""
        try:
            self.agent.report_details(health.status_details())
        except AgentUnavailable as exc:
            # The hand-over queue reports an unreachable agent already; the next interval
            # sends fresh figures anyway.
            log.debug("gate status not reported to the agent: %s", exc)

    def health(self) -> GateHealth:
        """A snapshot of the gate's health."""
        antennas = tuple(a.health() for a in self.antennas)
        handover = self.handover.status()
        running = self._running
        problems = [
            f"reader {a.name} {'not answering' if a.connected else 'disconnected'}: {a.last_error}"
            for a in antennas
            if running and not a.answering
        ]
        if handover.full:
            problems.append("hand-over queue full: events held in memory")
        if handover.agent_ok is False and (handover.pending or handover.held_in_memory):
            problems.append(f"edge agent unavailable: {handover.last_error}")
        if handover.dead:
            problems.append(f"{handover.dead} event(s) refused by the edge agent")
        if self.core.counters.output_errors:
            problems.append(f"alarm output failed {self.core.counters.output_errors} time(s)")
        if self._people_problem is not None:
            problems.append(self._people_problem)
        return GateHealth(
            device_id=self.options.device_id,
            running=running,
            time=time.time(),
            started=self._started,
            antennas=antennas,
            alarms_today=self.ledger.today(),
            alarms_total=self.ledger.alarms_total,
            last_alarm=self.ledger.last_alarm,
            open_passes=self.core.open_passes(),
            reads_total=self.core.reads_total,
            passes_total=self.core.passes_total,
            output_errors=self.core.counters.output_errors,
            handover=handover,
            people_counter=self.options.people_counter,
            people_counter_problem=self._people_problem,
            people_counter_last_problem=self._people_last_problem,
            people_counter_problems=self._people_problems,
            visitors_in=self.visitors.total_in,
            visitors_out=self.visitors.total_out,
            item_states_version=self.items.version,
            problems=tuple(problems),
        )
