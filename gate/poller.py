"""Polling the gate's readers: each group of readers takes turns, as fast as the readers allow.

Pedestals of one lane stand face to face; if both transmitted at once their fields would
interfere. Readers whose fields overlap therefore form a *turn group*, and one
:class:`PollGroup` thread drives all readers of a group strictly one exchange at a time:
reader A's inventory (and the reads it calls for), then reader B's, then A's again. Groups
far apart run in threads of their own.

One cycle on one antenna:

1. an inventory filtered on the secured AFI (when the library uses AFI): every tag in the
   reply is secured, and the core decides and alarms before the next exchange;
2. every ``full_scan_every`` cycles (every cycle when EAS is used, or AFI is not), an
   unfiltered inventory that also lists unsecured tags, so a tag on loan per its AFI but
   returned per the cache is caught, and a secured tag missed by step 1 is probed;
3. the probes and reads the core asked for: all that may hold back an alarm, and at most one
   that only names an item or consults the cache, so inventories are not starved.

A reader that vanishes is marked disconnected and reopened with backoff (0.1 s doubling to
2 s) while the others go on; a garbled or missing reply is counted and the cycle moves on,
and a reader that stops answering (three failed exchanges in a row) is asked again with the
same backoff, so that a dead pedestal does not slow its partner to one poll per timeout.
Nothing is raised out of the thread: an unexpected error is logged with its traceback and
polling continues.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gate.core import GateCore, Work, WorkKind
from gate.identify import identify, probe_security
from gate.timing import TimedPort, timed_opener
from hardware.feig import FeigReader, PortOpener
from hardware.feig.transport import open_serial_transport
from hardware.reader import (
    FrameError,
    ReaderDisconnected,
    ReaderError,
    ReaderTimeout,
)
from hardware.tags import SecurityConfig

__all__ = ["Antenna", "AntennaHealth", "PollGroup", "PollSettings"]

log = logging.getLogger(__name__)

_BACKOFF_MIN_S = 0.1
_BACKOFF_MAX_S = 2.0
#: Consecutive failed exchanges after which a reader counts as not answering.
_SILENT_AFTER = 3
#: Non-urgent reads per cycle and antenna (naming, cache checks).
_BACKGROUND_PER_CYCLE = 1


@dataclass(frozen=True, slots=True)
class PollSettings:
    """How the readers are polled (from the site configuration)."""

    security: SecurityConfig
    full_scan_every: int = 4
    identify_blocks: int = 8
    reader_timeout_s: float = 0.3
    #: How often passes are checked for their end (seconds).
    expire_every_s: float = 0.05


@dataclass(frozen=True, slots=True)
class AntennaHealth:
    """One reader as the health snapshot shows it."""

    name: str
    url: str
    connected: bool
    answering: bool
    reads: int
    polls: int
    garbled: int
    errors: int
    reconnects: int
    last_read: float | None
    last_error: str | None


@dataclass(eq=False)
class Antenna:
    """One gate reader and its counters (touched only by its group's thread)."""

    name: str
    url: str
    address: int = 0xFF
    opener: PortOpener = open_serial_transport
    reader: FeigReader | None = None
    port: TimedPort | None = None
    connected: bool = False
    cycles: int = 0
    polls: int = 0
    reads: int = 0
    garbled: int = 0
    errors: int = 0
    reconnects: int = 0
    failures_in_row: int = 0
    last_read: float | None = None
    last_error: str | None = None
    next_attempt: float = 0.0
    backoff: float = _BACKOFF_MIN_S
    ever_connected: bool = False

    def health(self) -> AntennaHealth:
        """A snapshot of this antenna."""
        return AntennaHealth(
            name=self.name,
            url=self.url,
            connected=self.connected,
            answering=self.connected and self.failures_in_row < _SILENT_AFTER,
            reads=self.reads,
            polls=self.polls,
            garbled=self.garbled,
            errors=self.errors,
            reconnects=self.reconnects,
            last_read=self.last_read,
            last_error=self.last_error,
        )

    def _noted_port(self, port: TimedPort) -> None:
        self.port = port

    def open_reader(self, timeout_s: float) -> FeigReader:
        """Build the driver (not yet connected); the port opens on the first attempt."""
        if self.reader is None:
            self.reader = FeigReader(
                self.url,
                address=self.address,
                timeout=timeout_s,
                auto_reconnect=False,
                connect=False,
                opener=timed_opener(self._noted_port, self.opener),
            )
        return self.reader


class PollGroup:
    """A thread that polls a group of readers in turn and feeds the core."""

    def __init__(
        self,
        name: str,
        antennas: Sequence[Antenna],
        core: GateCore,
        settings: PollSettings,
        *,
        on_health_change: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not antennas:
            raise ValueError("a poll group needs at least one antenna")
        self.name = name
        self.antennas = list(antennas)
        self.core = core
        self.settings = settings
        self._on_health_change = on_health_change
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_expire = 0.0
        for antenna in self.antennas:
            antenna.open_reader(settings.reader_timeout_s)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start polling."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=f"gate-{self.name}", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling and close the readers."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        for antenna in self.antennas:
            if antenna.reader is not None:
                antenna.reader.close()
            antenna.connected = False

    # ------------------------------------------------------------ the loop

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                polled = self._round()
            except Exception:
                # A bug must not end the gate's watch: log it, breathe, go on.
                log.exception("gate polling group %s: unexpected error", self.name)
                polled = False
                self._stop.wait(0.1)
            self._expire_if_due()
            if not polled:
                self._stop.wait(self._idle_wait())

    def _round(self) -> bool:
        """One cycle on every antenna that is up; True when any was polled."""
        polled = False
        for antenna in self.antennas:
            if self._stop.is_set():
                break
            if not antenna.connected and not self._reconnect(antenna):
                continue
            if antenna.failures_in_row >= _SILENT_AFTER and self._clock() < antenna.next_attempt:
                # A pedestal that does not answer is asked again later, so that its partner
                # is not slowed to one poll per reply timeout.
                continue
            polled = True
            self._cycle(antenna)
        return polled

    def _idle_wait(self) -> float:
        now = self._clock()
        waits = [
            a.next_attempt - now
            for a in self.antennas
            if not a.connected or a.failures_in_row >= _SILENT_AFTER
        ]
        waits.append(self.settings.expire_every_s)
        return max(0.005, min(waits))

    def _expire_if_due(self) -> None:
        now = self._clock()
        if now >= self._next_expire:
            self._next_expire = now + self.settings.expire_every_s
            self.core.expire()

    # ------------------------------------------------------------ connection

    def _reconnect(self, antenna: Antenna) -> bool:
        now = self._clock()
        if now < antenna.next_attempt:
            return False
        reader = antenna.open_reader(self.settings.reader_timeout_s)
        try:
            reader.reconnect(attempts=1)
        except ReaderError as exc:
            antenna.next_attempt = now + antenna.backoff
            antenna.backoff = min(antenna.backoff * 2, _BACKOFF_MAX_S)
            if antenna.last_error != str(exc):
                log.warning("gate reader %s (%s) unavailable: %s", antenna.name, antenna.url, exc)
                antenna.last_error = str(exc)
                self._on_health_change()
            return False
        antenna.connected = True
        antenna.backoff = _BACKOFF_MIN_S
        antenna.failures_in_row = 0
        if antenna.ever_connected:
            antenna.reconnects += 1
            log.info("gate reader %s reconnected", antenna.name)
        else:
            log.info("gate reader %s connected at %s", antenna.name, antenna.url)
        antenna.ever_connected = True
        self._on_health_change()
        return True

    def _lost(self, antenna: Antenna, exc: ReaderDisconnected) -> None:
        antenna.connected = False
        antenna.last_error = str(exc)
        antenna.next_attempt = self._clock() + antenna.backoff
        log.warning("gate reader %s disconnected: %s", antenna.name, exc)
        self._on_health_change()

    # ------------------------------------------------------------ one cycle

    def _cycle(self, antenna: Antenna) -> None:
        reader = antenna.reader
        assert reader is not None
        settings = self.settings
        security = settings.security
        antenna.cycles += 1
        cycle = antenna.cycles
        full = not security.use_afi or security.use_eas
        if not full and settings.full_scan_every:
            full = cycle % settings.full_scan_every == 0
        try:
            if security.use_afi:
                # Work that may hold back an alarm is done at once, before the next inventory.
                self._work(
                    antenna,
                    reader,
                    self._inventory(antenna, reader, cycle, afi=security.secured_afi),
                )
            if full:
                self._work(antenna, reader, self._inventory(antenna, reader, cycle, afi=None))
        except ReaderDisconnected as exc:
            self._lost(antenna, exc)
        except (ReaderTimeout, FrameError) as exc:
            # A garbled or missing reply: the decoder skipped what it could not use.
            antenna.garbled += 1
            self._failed(antenna, exc)
        except ReaderError as exc:
            antenna.errors += 1
            self._failed(antenna, exc)

    def _failed(self, antenna: Antenna, exc: ReaderError) -> None:
        antenna.failures_in_row += 1
        antenna.last_error = str(exc)
        if antenna.failures_in_row < _SILENT_AFTER:
            return
        antenna.next_attempt = self._clock() + antenna.backoff
        antenna.backoff = min(antenna.backoff * 2, _BACKOFF_MAX_S)
        if antenna.failures_in_row == _SILENT_AFTER:
            log.warning("gate reader %s is not answering: %s", antenna.name, exc)
            self._on_health_change()

    def _inventory(
        self, antenna: Antenna, reader: FeigReader, cycle: int, *, afi: int | None
    ) -> list[Work]:
        entries = reader.inventory(afi=afi)
        port = antenna.port
        reply_ns = port.last_read_ns if port is not None else time.perf_counter_ns()
        antenna.polls += 1
        if antenna.failures_in_row:
            if antenna.failures_in_row >= _SILENT_AFTER:
                log.info("gate reader %s answers again", antenna.name)
                self._on_health_change()
            antenna.failures_in_row = 0
            antenna.backoff = _BACKOFF_MIN_S
        if entries:
            antenna.reads += len(entries)
            antenna.last_read = time.time()
        # An empty reply matters too: it is what shows the passes of absent tags have ended.
        return self.core.inventory(
            antenna.name, cycle, entries, secured=afi is not None, reply_ns=reply_ns
        )

    def _work(self, antenna: Antenna, reader: FeigReader, work: list[Work]) -> None:
        """Do what the decisions wait on, with each step's follow-up; a little naming."""
        background = 0
        todo = list(work)  # urgent first
        while todo:
            job = todo.pop(0)
            if not job.urgent:
                if background >= _BACKGROUND_PER_CYCLE:
                    continue
                background += 1
            try:
                if job.kind is WorkKind.PROBE:
                    follow = self._probe(antenna, reader, job)
                else:
                    follow = self._identify(antenna, reader, job)
            except ReaderDisconnected as exc:
                # The reader is gone: a decision waiting on a read must not wait for it.
                for waiting in [job, *todo]:
                    if waiting.urgent and waiting.kind is WorkKind.IDENTIFY:
                        self.core.identify_failed(
                            waiting.tag_pass, antenna.name, exc, self._reply_ns(antenna), final=True
                        )
                raise
            if follow is not None:
                todo.insert(0, follow)  # the same tag, while it is still in the field

    def _reply_ns(self, antenna: Antenna) -> int:
        port = antenna.port
        return port.last_read_ns if port is not None else time.perf_counter_ns()

    def _probe(self, antenna: Antenna, reader: FeigReader, job: Work) -> Work | None:
        try:
            probe = probe_security(reader, job.tag_pass.uid, self.settings.security)
        except ReaderDisconnected:
            raise
        except ReaderError as exc:
            self.core.probe_failed(job.tag_pass, exc)
            return None
        return self.core.probed(job.tag_pass, antenna.name, probe, self._reply_ns(antenna))

    def _identify(self, antenna: Antenna, reader: FeigReader, job: Work) -> Work | None:
        tag_pass = job.tag_pass
        try:
            facts = identify(
                reader,
                tag_pass.uid,
                tag_pass.dsfid,
                blocks=self.settings.identify_blocks,
                layout=tag_pass.layout,
            )
        except ReaderDisconnected:
            raise
        except ReaderError as exc:
            self.core.identify_failed(
                tag_pass, antenna.name, exc, self._reply_ns(antenna), final=job.urgent
            )
            return None
        return self.core.identified(tag_pass, antenna.name, facts, self._reply_ns(antenna))
