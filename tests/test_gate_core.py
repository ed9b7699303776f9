"""The hot path (gate.core, gate.passes): passes, one alarm per pass, work, notices."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gate.core import Alarmed, GateCore, Notice, PassEnded, WorkKind
from gate.decide import Rules, TagFacts
from gate.identify import Probe
from gate.knowledge import ItemStates, TagMemo
from gate.passes import PassTracker
from hardware.outputs import RecordingAlarm
from hardware.reader import InventoryEntry, SystemInfo, TagNotFound
from hardware.tags import DataModel, SecurityState

OURS = "VN-DEMO"


def uid(n: int) -> bytes:
    return bytes((0xE0, 0x04, 0x01, 0, 0, 0, n >> 8, n & 0xFF))


def entries(*numbers: int) -> list[InventoryEntry]:
    return [InventoryEntry(uid=uid(n), dsfid=6) for n in numbers]


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    core: GateCore
    alarm: RecordingAlarm
    clock: Clock
    notices: list[Notice] = field(default_factory=list)

    def on(self) -> int:
        return sum(1 for change in self.alarm.changes if change.on)


@pytest.fixture
def make_rig() -> object:
    alarms: list[RecordingAlarm] = []

    def make(identify_first: bool = False, items: ItemStates | None = None) -> Rig:
        clock = Clock()
        alarm = RecordingAlarm()
        alarms.append(alarm)
        notices: list[Notice] = []
        core = GateCore(
            Rules(own_isil=OURS, identify_first=identify_first),
            alarm,
            quiet_time_s=2.0,
            alarm_duration_s=0.01,
            items=items,
            notify=notices.append,
            clock=clock,
        )
        return Rig(core, alarm, clock, notices)

    yield make
    for alarm in alarms:
        alarm.close()


def facts(item_id: str = "31000123", owner: str | None = OURS, card: bool = False) -> TagFacts:
    return TagFacts(DataModel.ISO28560_2, item_id, owner, "Truyện Kiều", card)


def test_secured_inventory_alarms_on_the_calling_thread(make_rig) -> None:
    """A tag in the secured-AFI inventory switches the alarm on before inventory() returns."""
    rig = make_rig()
    work = rig.core.inventory("a1", 1, entries(1), secured=True, reply_ns=5)
    assert rig.on() == 1
    assert [type(n) for n in rig.notices] == [Alarmed]
    mark = rig.notices[0].summary.alarm
    assert mark is not None
    assert mark.reply_ns == 5
    assert mark.antenna == "a1"
    # Not read yet: the pass asks to be named, in the background.
    assert [(w.kind, w.urgent) for w in work] == [(WorkKind.IDENTIFY, False)]


def test_one_alarm_per_pass_however_many_reads_and_antennas(make_rig) -> None:
    """Twenty reads on two antennas within the quiet time make one pass and one alarm."""
    rig = make_rig()
    for n in range(20):
        rig.clock.now += 0.1
        rig.core.inventory("a1" if n % 2 else "a2", n, entries(1), secured=True, reply_ns=n)
    assert rig.core.counters.alarms == 1
    assert rig.core.passes_total == 1
    rig.clock.now += 2.0
    assert rig.core.expire() == 0  # no inventory since: nothing shows the tag has gone
    rig.core.inventory("a1", 21, [], secured=True, reply_ns=21)  # the gate looked: gone
    assert rig.core.expire() == 1
    ended = [n for n in rig.notices if isinstance(n, PassEnded)]
    assert len(ended) == 1
    assert ended[0].summary.reads == 20
    assert ended[0].summary.antennas == {"a1": 10, "a2": 10}


def test_a_new_pass_after_the_quiet_time_alarms_again(make_rig) -> None:
    """The same tag back after the quiet time is a new pass with its own alarm."""
    rig = make_rig()
    rig.core.inventory("a1", 1, entries(1), secured=True, reply_ns=1)
    rig.clock.now += 2.5
    rig.core.inventory("a1", 2, [], secured=True, reply_ns=2)  # looked, and it was gone
    # No expire() in between: the late read still starts a new pass.
    rig.core.inventory("a1", 3, entries(1), secured=True, reply_ns=3)
    assert rig.core.counters.alarms == 2
    rig.core.expire()
    assert sum(isinstance(n, PassEnded) for n in rig.notices) == 1  # the replaced first pass


def test_a_stalled_gate_does_not_split_a_pass(make_rig) -> None:
    """Polling that stalls past the quiet time (a starved CPU) leaves the tag in one pass."""
    rig = make_rig()
    rig.core.inventory("a1", 1, entries(1), secured=True, reply_ns=1)
    rig.clock.now += 3.0  # no inventory ran meanwhile
    assert rig.core.expire() == 0
    rig.core.inventory("a1", 2, entries(1), secured=True, reply_ns=2)
    assert rig.core.counters.alarms == 1
    assert rig.core.passes_total == 1


def test_passes_end_even_when_the_gate_cannot_read(make_rig) -> None:
    """With every reader gone, a pass still ends after ten quiet times, so its event is sent."""
    rig = make_rig()
    rig.core.inventory("a1", 1, entries(1), secured=True, reply_ns=1)
    quiet = rig.core.tracker.quiet_time_s
    rig.clock.now += quiet * 9.9
    assert rig.core.expire() == 0
    rig.clock.now += quiet * 0.2
    assert rig.core.expire() == 1


def test_unsecured_tags_in_a_full_scan_are_probed_not_alarmed(make_rig) -> None:
    """A tag seen only in the unfiltered inventory asks for a probe; its AFI then decides."""
    rig = make_rig()
    work = rig.core.inventory("a1", 1, entries(2), secured=False, reply_ns=1)
    assert rig.on() == 0
    assert [(w.kind, w.urgent) for w in work] == [(WorkKind.PROBE, True)]
    info = SystemInfo(uid=uid(2), dsfid=6, afi=0x07, block_size=4, block_count=28, ic_reference=1)
    rig.core.probed(work[0].tag_pass, "a1", Probe(SecurityState.SECURED, info), reply_ns=9)
    assert rig.on() == 1
    assert rig.notices[0].summary.alarm.reply_ns == 9


def test_identify_first_holds_the_alarm_for_a_foreign_item(make_rig) -> None:
    """With identify_first a secured tag is read first, and a foreign one never alarms."""
    rig = make_rig(identify_first=True)
    work = rig.core.inventory("a1", 1, entries(3), secured=True, reply_ns=1)
    assert rig.on() == 0
    assert [(w.kind, w.urgent) for w in work] == [(WorkKind.IDENTIFY, True)]
    rig.core.identified(work[0].tag_pass, "a1", facts(owner="DE-Heu1"), reply_ns=2)
    assert rig.on() == 0
    assert rig.core.counters.alarms == 0


def test_identify_first_alarms_when_the_read_fails(make_rig) -> None:
    """A secured tag that left before it could be read alarms all the same."""
    rig = make_rig(identify_first=True)
    work = rig.core.inventory("a1", 1, entries(4), secured=True, reply_ns=1)
    rig.core.identify_failed(
        work[0].tag_pass, "a1", TagNotFound("gone", status=1, status_name="x"), 3, final=True
    )
    assert rig.on() == 1
    assert "not read" in rig.notices[0].summary.alarm.reason


def test_memo_decides_the_next_pass_without_a_read(make_rig) -> None:
    """A tag read once is known by UID: its next pass is decided from the inventory alone."""
    rig = make_rig(identify_first=True)
    work = rig.core.inventory("a1", 1, entries(5), secured=True, reply_ns=1)
    rig.core.identified(work[0].tag_pass, "a1", facts(owner="DE-Heu1"), reply_ns=2)
    rig.clock.now += 3
    rig.core.expire()
    again = rig.core.inventory("a1", 2, entries(5), secured=True, reply_ns=3)
    assert again == []
    assert rig.on() == 0


def test_cache_corrects_both_ways(make_rig) -> None:
    """On loan per cache stays silent though secured; back on the shelf per cache alarms."""
    items = ItemStates()
    items.replace(1, [("LOAN1", "on_loan"), ("BACK1", "on_shelf")])
    rig = make_rig(identify_first=True, items=items)
    work = rig.core.inventory("a1", 1, entries(6), secured=True, reply_ns=1)
    rig.core.identified(work[0].tag_pass, "a1", facts("LOAN1"), reply_ns=2)
    assert rig.on() == 0
    work = rig.core.inventory("a1", 2, entries(7), secured=False, reply_ns=3)
    info = SystemInfo(uid=uid(7), dsfid=6, afi=0xC2, block_size=4, block_count=28, ic_reference=1)
    rig.core.probed(work[0].tag_pass, "a1", Probe(SecurityState.UNSECURED, info), reply_ns=4)
    assert rig.on() == 0
    tag_pass = rig.core.tracker.get(uid(7))
    assert tag_pass is not None
    rig.core.identified(tag_pass, "a1", facts("BACK1"), reply_ns=5)
    assert rig.on() == 1
    assert "on_shelf" in rig.notices[-1].summary.alarm.reason


def test_a_pass_left_undecided_alarms_when_it_ends(make_rig) -> None:
    """A secured tag whose decisive read never happened alarms when its pass ends (late, not never)."""
    rig = make_rig(identify_first=True)
    rig.core.inventory("a1", 1, entries(8), secured=True, reply_ns=1)
    assert rig.on() == 0
    rig.clock.now += 3
    rig.core.inventory("a1", 2, [], secured=True, reply_ns=2)  # the gate looked: all gone
    rig.core.expire()
    assert rig.on() == 1
    assert [type(n) for n in rig.notices] == [Alarmed, PassEnded]


def test_end_all_reports_open_alarmed_passes(make_rig) -> None:
    """Stopping ends every open pass; those that alarmed are reported as ended."""
    rig = make_rig()
    rig.core.inventory("a1", 1, entries(9, 10), secured=True, reply_ns=1)
    rig.core.end_all()
    assert sum(isinstance(n, PassEnded) for n in rig.notices) == 2
    assert rig.core.open_passes() == 0


def test_tag_memo_forgets_the_least_recently_used() -> None:
    """The memo keeps at most its capacity, dropping the tag used longest ago; undecodable reads are not kept."""
    memo = TagMemo(capacity=2)
    memo.put(uid(1), facts("A"))
    memo.put(uid(2), facts("B"))
    assert memo.get(uid(1)) is not None  # 1 is now the most recent
    memo.put(uid(3), facts("C"))
    assert memo.get(uid(2)) is None
    assert memo.get(uid(1)) is not None
    memo.put(uid(4), TagFacts(DataModel.UNKNOWN, problem="x"))
    assert memo.get(uid(4)) is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 7), st.floats(0, 3)), min_size=1, max_size=60))
def test_tracker_one_pass_per_quiet_gap(reads: list[tuple[int, float]]) -> None:
    """While the gate polls, reads of a UID open a new pass exactly when the last one is a quiet time ago."""
    tracker = PassTracker(quiet_time_s=1.0)
    now = 0.0
    last: dict[int, float] = {}
    expected = 0
    for number, step in reads:
        now += step
        if number not in last or now - last[number] >= 1.0:
            expected += 1
        last[number] = now
        if step > 0:
            tracker.inventory_done(now - step / 2)  # the gate polls continuously between reads
        tracker.read(uid(number), 6, "a", 0, now, 0)
    assert tracker.passes_total == expected
    tracker.inventory_done(now + 2.0)
    ended = tracker.expire(now + 2.0)
    assert len(ended) == expected
    assert sum(p.reads for p in ended) == len(reads)
