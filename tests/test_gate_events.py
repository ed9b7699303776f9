"""Alarm episodes into GateAlarm events (gate.episodes) and visitor counts (gate.visitors)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from edge_agent.contract import GateAlarm, VisitorCount
from edge_agent.contract.base import decode
from gate.core import Alarmed, PassEnded
from gate.decide import TagFacts
from gate.episodes import AlarmLedger, EventBuilder, alarm_item
from gate.errors import AgentUnavailable
from gate.passes import AlarmMark, PassSummary
from gate.visitors import VisitorCounter
from hardware.people_counter import Crossing, Direction
from hardware.tags import DataModel, SecurityState


def summary(
    number: int,
    item_id: str | None = "31000123",
    reads: int = 3,
    switched: int = 0,
    title: str | None = None,
) -> PassSummary:
    facts = (
        TagFacts(DataModel.ISO28560_2, item_id, "VN-DEMO", title) if item_id is not None else None
    )
    return PassSummary(
        uid=bytes((0xE0, 4, 1, 0, 0, 0, 0, number)),
        number=number,
        reads=reads,
        antennas={"left": reads},
        security=SecurityState.SECURED,
        facts=facts,
        alarm=AlarmMark("left", "secured", 1, 1, switched or number, 1_700_000_000.0 + number),
        reason="secured",
    )


class Committed:
    """A commit function that records what it was given and checks the ledger was not ahead."""

    def __init__(self, ledger: AlarmLedger) -> None:
        self.ledger = ledger
        self.events: list[tuple[str, str, float]] = []
        self.done = threading.Condition()

    def __call__(self, kind: str, payload: str, when: float) -> bool:
        # Committed before handled: the ledger must not count this alarm yet.
        assert self.ledger.alarms_total == len(self.events)
        with self.done:
            self.events.append((kind, payload, when))
            self.done.notify_all()
        return True


@pytest.fixture
def builder() -> tuple[EventBuilder, Committed]:
    ledger = AlarmLedger("Asia/Ho_Chi_Minh")
    commit = Committed(ledger)
    titles = {"31000123": "Truyện Kiều"}
    events = EventBuilder(commit, ledger, titles=titles.get)
    events.start()
    yield events, commit
    events.stop()


def test_items_alarming_together_make_one_event(builder: tuple[EventBuilder, Committed]) -> None:
    """Three alarms of one visitor become one GateAlarm once all three passes have ended."""
    events, commit = builder
    for n in (1, 2, 3):
        events.notify(Alarmed(summary(n, item_id=f"I{n}")))
    events.notify(PassEnded(summary(1, item_id="I1", reads=7)))
    events.notify(PassEnded(summary(2, item_id="I2", reads=1)))
    assert events.wait_idle(5)
    assert commit.events == []  # pass 3 is still going on
    events.notify(PassEnded(summary(3, item_id="I3", reads=4)))
    assert events.wait_idle(5)
    assert len(commit.events) == 1
    kind, payload, when = commit.events[0]
    alarm = decode(GateAlarm, payload)
    assert kind == "gate_alarm"
    assert [(i.item_id, i.reads) for i in alarm.items] == [("I1", 7), ("I2", 1), ("I3", 4)]
    assert when == pytest.approx(1_700_000_001.0)
    assert events.ledger.alarms_total == 1
    assert events.ledger.items_total == 3


def test_an_alarm_after_the_episode_closed_opens_another(
    builder: tuple[EventBuilder, Committed],
) -> None:
    """Alarms whose passes do not overlap are separate events, each committed once."""
    events, commit = builder
    events.notify(Alarmed(summary(1)))
    events.notify(PassEnded(summary(1)))
    events.notify(Alarmed(summary(2)))
    events.notify(PassEnded(summary(2)))
    assert events.wait_idle(5)
    passes = [decode(GateAlarm, payload).pass_id for _, payload, _ in commit.events]
    assert len(passes) == 2
    assert len(set(passes)) == 2


def test_items_are_named_from_the_cache_then_the_tag(
    builder: tuple[EventBuilder, Committed],
) -> None:
    """The cache's title wins; the tag's title is the fallback; an unread tag is named by UID."""
    events, commit = builder
    passes = [
        summary(1, item_id="31000123", title="on the tag"),
        summary(2, item_id="OTHER", title="Số đỏ"),
        summary(3, item_id=None),
    ]
    for each in passes:
        events.notify(Alarmed(each))
    for each in passes:
        events.notify(PassEnded(each))
    assert events.wait_idle(5)
    items = decode(GateAlarm, commit.events[0][1]).items
    assert [i.title for i in items] == ["Truyện Kiều", "Số đỏ", None]
    assert items[2].item_id is None
    assert items[2].data_model == "unknown"
    assert items[2].tag_uid == "E004010000000003"


def test_a_title_lookup_that_fails_does_not_lose_the_event() -> None:
    """With the agent unreachable the event is still committed, titled from the tag."""
    ledger = AlarmLedger()
    commit = Committed(ledger)

    def broken(item_id: str) -> str | None:
        raise AgentUnavailable("connection refused")

    events = EventBuilder(commit, ledger, titles=broken)
    events.start()
    try:
        events.notify(Alarmed(summary(1, title="Tắt đèn")))
        events.notify(PassEnded(summary(1, title="Tắt đèn")))
        assert events.wait_idle(5)
    finally:
        events.stop()
    assert decode(GateAlarm, commit.events[0][1]).items[0].title == "Tắt đèn"


def test_stopping_commits_the_open_episode() -> None:
    """An episode still open when the gate stops is committed, not lost."""
    ledger = AlarmLedger()
    commit = Committed(ledger)
    events = EventBuilder(commit, ledger)
    events.start()
    events.notify(Alarmed(summary(1)))
    events.stop()
    assert len(commit.events) == 1


def test_alarm_item_drops_what_the_contract_cannot_hold() -> None:
    """An item id longer than the contract allows is left out; the UID still names the tag."""
    item = alarm_item(summary(1, item_id="9" * 80), title="x" * 900)
    assert item.item_id is None
    assert item.title is not None
    assert len(item.title) == 500


def test_ledger_counts_today_in_the_library_time_zone() -> None:
    """alarms_today restarts at local midnight, not at UTC midnight."""
    now = [dt.datetime(2025, 3, 1, 16, 59, tzinfo=dt.UTC).timestamp()]  # 23:59 in Hanoi
    ledger = AlarmLedger("Asia/Ho_Chi_Minh", wall=lambda: now[0])
    ledger.handled(2)
    assert ledger.today() == 1
    now[0] += 120  # 00:01 the next day in Hanoi, still 1 March in UTC
    assert ledger.today() == 0
    ledger.handled(1)
    assert ledger.today() == 1
    assert ledger.alarms_total == 2


def test_visitor_intervals_are_aligned_and_zero_intervals_sent() -> None:
    """Counts go out per aligned interval, empty ones included, and the rest on flush."""
    now = [7200.0 + 1800.0]
    sent: list[VisitorCount] = []
    counter = VisitorCounter(3600, sent.append, wall=lambda: now[0])
    counter.crossing(Crossing(Direction.IN, now[0]))
    counter.crossing(Crossing(Direction.IN, now[0]))
    counter.crossing(Crossing(Direction.OUT, now[0]))
    assert counter.tick() == 0
    now[0] = 3 * 3600 + 5 + 3600  # one interval later and then some
    assert counter.tick() == 2
    assert [(c.entered, c.exited) for c in sent] == [(2, 1), (0, 0)]
    assert sent[0].interval_start == dt.datetime.fromtimestamp(7200, dt.UTC)
    assert sent[1].interval_end == dt.datetime.fromtimestamp(4 * 3600, dt.UTC)
    counter.crossing(Crossing(Direction.OUT, now[0]))
    flushed = counter.flush()
    assert flushed is not None
    assert (flushed.entered, flushed.exited) == (0, 1)
    assert flushed.interval_end == dt.datetime.fromtimestamp(now[0], dt.UTC)
    now[0] = 5 * 3600 + 1
    assert counter.tick() == 1
    assert sent[-1].interval_end == dt.datetime.fromtimestamp(5 * 3600, dt.UTC)
    assert counter.total_in == 2
    assert counter.total_out == 2


def test_continuous_alarms_are_split_into_bounded_events(
    builder: tuple[EventBuilder, Committed],
) -> None:
    """Overlapping alarms without end become several events of at most 50 items, none lost."""
    events, commit = builder
    passes = [summary(n, item_id=f"I{n}") for n in range(1, 121)]
    for each in passes:
        events.notify(Alarmed(each))
    for each in passes:
        events.notify(PassEnded(each))
    assert events.wait_idle(5)
    sizes = [len(decode(GateAlarm, payload).items) for _, payload, _ in commit.events]
    # 1 s between alarms: an episode takes the alarms of 10 s (its span), never over 50 items.
    assert sum(sizes) == 120
    assert max(sizes) <= 50
    assert len(sizes) >= 3


def test_an_episode_holds_at_most_fifty_items() -> None:
    """However long alarms follow each other, no event carries more than 50 items."""
    ledger = AlarmLedger()
    commit = Committed(ledger)
    events = EventBuilder(commit, ledger, episode_span_s=1e6)
    events.start()
    try:
        passes = [summary(n, item_id=f"I{n}") for n in range(1, 121)]
        for each in passes:
            events.notify(Alarmed(each))
        for each in passes:
            events.notify(PassEnded(each))
        assert events.wait_idle(5)
    finally:
        events.stop()
    assert [len(decode(GateAlarm, p).items) for _, p, _ in commit.events] == [50, 50, 20]
