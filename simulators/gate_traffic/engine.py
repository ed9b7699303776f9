"""Moving tags through simulated gate readers the way visitors carry them.

A gate lane is one or two pedestal readers (:class:`~simulators.reader.FeigSimulator`),
each with its own antenna field. :class:`Lane` puts a visitor's tags into every field of
the lane and takes each one out once the readers have reported it as often as the plan
says — counted in the readers' own inventory replies, so "read once" means the gate got
exactly one inventory reply with that UID. A tag leaves at the start of the *next*
inventory round, so whatever the gate does right after the last inventory (a read to
identify the tag) still finds it, as it would a metre from the antenna. A tag also leaves
after ``dwell_s`` even if it was read less often (a gate that polls too slowly).

To count, each reader runs :class:`CountingModel`, the simulated reader's command set with
a look at every inventory request and reply. :class:`TrafficRunner` plays a plan passage
by passage, walks the simulated people counter, and reports what actually happened.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from simulators.gate_traffic.catalog import CatalogItem
from simulators.gate_traffic.plan import Passage
from simulators.people import SimulatedPeopleCounter
from simulators.reader.frames import Request
from simulators.reader.model import AirTiming, ReaderModel, Reply, Status
from simulators.reader.server import FeigSimulator
from simulators.reader.tags import RFField, SimTag

__all__ = [
    "CountingModel",
    "GateReaders",
    "Lane",
    "PassageResult",
    "TrafficReport",
    "TrafficRunner",
]

log = logging.getLogger(__name__)

_HOST = 0xB0
_INVENTORY = 0x01
_MORE = 0x80
_RECORD = 10
_WITH_RECORDS = (Status.OK, Status.MORE_DATA, Status.RF_COMMUNICATION_ERROR)


def inventory_uids(data: bytes) -> list[bytes]:
    """The UIDs in an inventory reply's data (DATA-SETS, then TR-TYPE, DSFID, UID each)."""
    if not data:
        return []
    count = min(data[0], (len(data) - 1) // _RECORD)
    return [data[1 + i * _RECORD + 2 : 1 + (i + 1) * _RECORD] for i in range(count)]


class Lane:
    """The tags in one lane's fields and how many more reads each may get; thread-safe."""

    def __init__(
        self, number: int, fields: Sequence[RFField], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not fields:
            raise ValueError("a lane needs at least one antenna field")
        self.number = number
        self.fields = list(fields)
        self._clock = clock
        self._changed = threading.Condition()
        self._left: dict[bytes, int] = {}
        self._deadline: dict[bytes, float] = {}
        self._leaving: set[bytes] = set()
        #: Inventory reports per UID since the tag last entered.
        self.reads: Counter[bytes] = Counter()
        self.rounds = 0

    def enter(self, tag: SimTag, reads: int, dwell_s: float) -> None:
        """Put a tag into every field of the lane, to be read ``reads`` times at most."""
        if reads < 1:
            raise ValueError(f"a tag enters to be read at least once, not {reads} times")
        with self._changed:
            self._left[tag.uid] = reads
            self._deadline[tag.uid] = self._clock() + dwell_s
            self._leaving.discard(tag.uid)
            self.reads[tag.uid] = 0
        for each in self.fields:
            each.place(tag)

    def before_inventory(self) -> None:
        """A new inventory round starts: tags that were read enough, or stayed too long, leave."""
        now = self._clock()
        with self._changed:
            self.rounds += 1
            gone = self._leaving | {u for u, at in self._deadline.items() if now >= at}
            if not gone:
                return
            for uid in gone:
                self._left.pop(uid, None)
                self._deadline.pop(uid, None)
            self._leaving.clear()
            self._changed.notify_all()
        for each in self.fields:
            each.remove(*gone)

    def reported(self, uids: Sequence[bytes]) -> None:
        """An inventory reply carried these UIDs."""
        with self._changed:
            for uid in uids:
                left = self._left.get(uid)
                if left is None or uid in self._leaving:
                    continue
                self.reads[uid] += 1
                if left <= 1:
                    self._leaving.add(uid)
                    self._changed.notify_all()
                else:
                    self._left[uid] = left - 1

    def settled(self) -> bool:
        """Whether no tag is waiting for more reads."""
        with self._changed:
            return not set(self._left) - self._leaving

    def wait_settled(self, timeout: float) -> bool:
        """Wait until every tag was read enough or left; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: not set(self._left) - self._leaving, timeout)

    def clear(self) -> None:
        """Take every tag out now."""
        with self._changed:
            uids = list(self._left)
            self._left.clear()
            self._deadline.clear()
            self._leaving.clear()
            self._changed.notify_all()
        for each in self.fields:
            each.remove(*uids)


class CountingModel(ReaderModel):
    """The simulated reader's command set, telling a :class:`Lane` about inventories."""

    def __init__(self, lane: Lane, rf_field: RFField, **options: object) -> None:
        super().__init__(rf_field, **options)  # type: ignore[arg-type]
        self.lane = lane

    def handle(self, request: Request) -> Reply | None:
        """Answer as the reader does; count the UIDs of every inventory reply."""
        if not self.addressed(request):
            # On a shared bus every reader hears every request: only the addressed one's
            # inventory is a new round for the lane (else tags would leave before it ends).
            return None
        inventory = request.command == _HOST and request.data[:1] == bytes((_INVENTORY,))
        if inventory and len(request.data) >= 2 and not request.data[1] & _MORE:
            self.lane.before_inventory()
        reply = super().handle(request)
        if inventory and reply is not None and reply.status in _WITH_RECORDS:
            self.lane.reported(inventory_uids(reply.data))
        return reply


@dataclass
class GateReaders:
    """The simulated readers of a gate: ``lanes`` lanes of ``antennas`` readers each.

    ``urls`` and ``addresses`` give each reader's port and FEIG bus address, lane by lane.
    With ``shared_bus`` a lane's readers hang on one port (one simulator, an RS-485 bus) at
    addresses 1, 2, …; otherwise each reader has a port of its own.
    """

    simulators: list[FeigSimulator]
    lanes: list[Lane]
    urls: list[str]
    addresses: list[int] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        *,
        lanes: int = 1,
        antennas: int = 2,
        tcp: bool = True,
        air_time: bool = False,
        timing: AirTiming | None = None,
        seed: int | None = None,
        shared_bus: bool = False,
    ) -> GateReaders:
        """Start the readers (TCP on loopback, or ptys) and return their URLs, lane by lane."""
        simulators: list[FeigSimulator] = []
        lane_list: list[Lane] = []
        urls: list[str] = []
        addresses: list[int] = []

        def counting(sim: FeigSimulator, lane: Lane, each: RFField, address: int) -> CountingModel:
            # The counting model answers exactly as the stock one, with the same settings;
            # only inventories are looked at on the way through.
            return CountingModel(
                lane,
                each,
                address=address,
                faults=sim.faults,
                buffer_size=sim.buffer_size,
                timing=timing,
            )

        def serve(sim: FeigSimulator) -> str:
            simulators.append(sim)
            return f"socket://127.0.0.1:{sim.start_tcp()}" if tcp else sim.start_pty()

        try:
            for number in range(lanes):
                fields = [RFField() for _ in range(antennas)]
                lane = Lane(number, fields)
                lane_list.append(lane)
                if shared_bus:
                    sim = FeigSimulator(
                        fields[0], address=1, air_time=air_time, timing=timing, seed=seed
                    )
                    sim.model = counting(sim, lane, fields[0], 1)
                    for index, each in enumerate(fields[1:], start=2):
                        sim.add_reader(counting(sim, lane, each, index))
                    url = serve(sim)
                    urls += [url] * antennas
                    addresses += list(range(1, antennas + 1))
                    continue
                for each in fields:
                    sim = FeigSimulator(each, air_time=air_time, timing=timing, seed=seed)
                    sim.model = counting(sim, lane, each, sim.address)
                    urls.append(serve(sim))
                    addresses.append(sim.address)
        except BaseException:
            for sim in simulators:
                sim.stop()
            raise
        return cls(simulators, lane_list, urls, addresses)

    def wait_polled(self, timeout: float) -> bool:
        """Wait until every reader got at least one request (the gate is polling)."""
        deadline = time.monotonic() + timeout
        for sim in self.simulators:
            if not sim.wait_until(
                lambda s: s.frames_received > 0, max(0.0, deadline - time.monotonic())
            ):
                return False
        return True

    def stop(self) -> None:
        """Stop every reader."""
        for sim in self.simulators:
            sim.stop()

    def __enter__(self) -> GateReaders:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class PassageResult:
    """What happened to one passage: how often each tag was read."""

    passage: Passage
    reads: dict[bytes, int]
    completed: bool

    @property
    def expected_alarms(self) -> list[CatalogItem]:
        """Items a correct gate alarmed for: alarming kinds that were read at least once."""
        return [
            c.item
            for c in self.passage.carried
            if c.item.alarms and self.reads.get(c.item.tag.uid, 0) > 0
        ]


@dataclass
class TrafficReport:
    """The whole run."""

    results: list[PassageResult] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0

    @property
    def expected_alarms(self) -> list[tuple[int, CatalogItem]]:
        """(passage number, item) of every pass that must alarm."""
        return [(r.passage.number, item) for r in self.results for item in r.expected_alarms]

    @property
    def reads(self) -> int:
        """Inventory reports of carried tags in total."""
        return sum(sum(r.reads.values()) for r in self.results)

    @property
    def incomplete(self) -> int:
        """Passages whose tags left on their dwell limit rather than by being read enough."""
        return sum(1 for r in self.results if not r.completed)


class TrafficRunner:
    """Plays passages on a gate's lanes and walks the people counter."""

    def __init__(
        self,
        lanes: Sequence[Lane],
        *,
        people: SimulatedPeopleCounter | None = None,
        dwell_s: float = 3.0,
        gap_s: float = 0.0,
        reuse_gap_s: float = 0.0,
        stagger_s: float = 0.0,
        stop: threading.Event | None = None,
    ) -> None:
        self.lanes = list(lanes)
        self.people = people
        self.dwell_s = dwell_s
        self.gap_s = gap_s
        self.reuse_gap_s = reuse_gap_s
        self.stagger_s = stagger_s
        self._stop = stop or threading.Event()
        self._last_left: dict[bytes, float] = {}

    def run(
        self, plan: Sequence[Passage], on_passage: Callable[[PassageResult], None] | None = None
    ) -> TrafficReport:
        """Play every passage in order (each waits for the previous one's tags to leave)."""
        report = TrafficReport(started=time.monotonic())
        for passage in plan:
            if self._stop.is_set():
                break
            result = self.play(passage)
            report.results.append(result)
            if on_passage is not None:
                on_passage(result)
            if self.gap_s:
                self._stop.wait(self.gap_s)
        report.finished = time.monotonic()
        return report

    def play(self, passage: Passage) -> PassageResult:
        """One visitor: beams, tags in, tags read, tags out."""
        lane = self.lanes[passage.lane % len(self.lanes)]
        self._respect_reuse_gap(passage)
        if self.people is not None:
            self.people.walk("in" if passage.direction == "in" else "out")
        for number, carried in enumerate(passage.carried):
            if number and self.stagger_s:
                self._stop.wait(self.stagger_s)  # the next book in the bag, a step later
            lane.enter(carried.item.tag, carried.reads, self.dwell_s)
        if not lane.wait_settled(self.dwell_s + 1.0):
            # The gate did not read them all in time: they are gone anyway.
            lane.clear()
        now = time.monotonic()
        reads = {}
        for carried in passage.carried:
            uid = carried.item.tag.uid
            reads[uid] = lane.reads[uid]
            self._last_left[uid] = now
        completed = all(reads[c.item.tag.uid] >= c.reads for c in passage.carried)
        return PassageResult(passage, reads, completed)

    def _respect_reuse_gap(self, passage: Passage) -> None:
        if not self.reuse_gap_s:
            return
        now = time.monotonic()
        last = max((self._last_left.get(c.item.tag.uid, 0.0) for c in passage.carried), default=0.0)
        wait = last + self.reuse_gap_s - now
        if wait > 0:
            # The same book cannot come back through the gate within moments of leaving.
            self._stop.wait(wait)
