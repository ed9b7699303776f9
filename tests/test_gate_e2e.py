"""End to end: simulated traffic -> gate -> edge agent (HTTP API, MQTT) -> central simulator.

Everything here is real except the readers' radio: FEIG simulators on TCP, the gate service
with its own hand-over queue, the edge agent service with its local API and MQTT link, a
private Mosquitto, and the central library system simulator, whose item states reach the
gate through the agent's cache.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edge_agent.config import LibedgeSettings
from edge_agent.contract import GateAlarm, VisitorCount
from edge_agent.service import AgentService
from gate.options import GateOptions, ReaderSpec
from gate.service import GateService
from hardware.outputs import RecordingAlarm
from simulators.central.simulator import CentralSimulator
from simulators.gate_traffic.catalog import Catalog, Kind
from simulators.gate_traffic.engine import GateReaders, TrafficReport, TrafficRunner
from simulators.gate_traffic.plan import PlanSettings, make_plan
from simulators.people import SimulatedPeopleCounter

OURS = "VN-DEMO"
TOKEN = "gate-e2e-token"
EXTRAS = {
    # Central's seed lends only a few items; most of what leaves a library is on loan.
    Kind.ISSUED: 150,
    Kind.FOREIGN: 40,
    Kind.PATRON_CARD: 30,
    Kind.UNREADABLE_SECURED: 8,
    Kind.UNREADABLE_UNSECURED: 8,
}


def agent_settings(tmp_path: Path, broker_url: str, port: int = 0) -> LibedgeSettings:
    return LibedgeSettings.model_validate(
        {
            "site": {"library_id": "demo-library", "device_id": "gate-1", "device_kind": "gate"},
            "agent": {
                "database": str(tmp_path / "agent.sqlite"),
                "api_port": port,
                "api_token": TOKEN,
                "broker": {"url": broker_url, "reconnect_min_s": 0.2, "reconnect_max_s": 1.0},
                "resend_after_s": 5.0,
            },
        }
    )


@dataclass
class Site:
    """A whole gate site on loopback."""

    central: CentralSimulator
    agent: AgentService
    gate: GateService
    readers: GateReaders
    people: SimulatedPeopleCounter
    alarm: RecordingAlarm
    catalog: Catalog

    def item_states(self) -> list[tuple[str, str, str | None]]:
        assert self.agent.caches is not None
        return [(i.item_id, i.state, i.title) for i in self.agent.caches.item_states(100_000)]


@contextmanager
def site(tmp_path: Path, broker_url: str) -> Iterator[Site]:
    """Start central, the agent, simulated readers and people counter, and the gate."""
    central = CentralSimulator(broker_url, tmp_path / "central.sqlite", cache_interval_s=0.2)
    central.start()
    agent = AgentService(agent_settings(tmp_path, broker_url))
    readers: GateReaders | None = None
    people: SimulatedPeopleCounter | None = None
    gate: GateService | None = None
    place: Site | None = None
    try:
        agent.start()
        caches = agent.caches
        assert caches is not None
        central.wait_for(
            lambda: caches.versions().get("item_states") is not None,
            20,
            "central's item states in the gate's agent",
        )
        readers = GateReaders.start(lanes=1, antennas=2)
        people = SimulatedPeopleCounter()
        alarm = RecordingAlarm()
        options = GateOptions(
            device_id="gate-1",
            readers=tuple(ReaderSpec(f"pedestal-{n + 1}", u) for n, u in enumerate(readers.urls)),
            groups=((0, 1),),
            isil=OURS,
            timezone="Asia/Ho_Chi_Minh",
            # Short for a test, yet long enough that a loaded machine's pauses between two
            # reads of one tag do not split its pass.
            quiet_time_s=0.3,
            alarm_duration_s=0.02,
            full_scan_every=3,
            people_counter=people.url,
            agent_url=agent.api_url,
            agent_token=TOKEN,
            data_dir=tmp_path / "gate",
            cache_refresh_s=0.5,
        )
        gate = GateService(options, alarm=alarm)
        gate.handover.backoff_max_s = 0.5  # the agent comes back within the test's seconds
        assert gate.refresh_cache()
        states = [(i, s, t) for i, s, t in _states(agent)]
        catalog = Catalog.from_states(
            states, own_isil=OURS, seed=5, unswitched_share=0.6, extras=EXTRAS
        )
        gate.start()
        assert readers.wait_polled(10)
        people.wait_for_client()
        place = Site(central, agent, gate, readers, people, alarm, catalog)
        yield place
    finally:
        if gate is not None:
            gate.stop()
        if readers is not None:
            readers.stop()
        if people is not None:
            people.close()
        agent.stop()
        # A test may have replaced the agent (a restart): stop the one running now too, or
        # its threads outlive the test and load every test after it.
        if place is not None and place.agent is not agent:
            place.agent.stop()
        central.stop()


def _states(agent: AgentService) -> list[tuple[str, str, str | None]]:
    assert agent.caches is not None
    return [(i.item_id, i.state, i.title) for i in agent.caches.item_states(100_000)]


def play(place: Site, passages: int, seed: int, start: int = 0) -> TrafficReport:
    plan = make_plan(place.catalog, PlanSettings(passages=passages + start, seed=seed))[start:]
    runner = TrafficRunner(place.readers.lanes, people=place.people, dwell_s=2.0, reuse_gap_s=0.3)
    return runner.run(plan)


def central_alarms(central: CentralSimulator) -> list[GateAlarm]:
    stored = central.events("gate-1", "gate_alarm")
    alarms = []
    for event in stored:
        assert isinstance(event.envelope.payload, GateAlarm)
        alarms.append(event.envelope.payload)
    return alarms


def settle(place: Site) -> list[GateAlarm]:
    """Wait until the gate handed everything over and central stored every alarm event."""
    place.gate.wait_health(lambda h: h.open_passes == 0, 20)
    assert place.gate.builder.wait_idle(120)
    assert place.gate.handover.wait_idle(120)
    committed = place.gate.builder.events_committed
    place.central.wait_for(
        lambda: len(place.central.events("gate-1", "gate_alarm")) >= committed,
        60,
        f"{committed} gate alarm events at central",
    )
    return central_alarms(place.central)


def check(report: TrafficReport, alarms: list[GateAlarm], place: Site) -> None:
    expected = Counter(item.uid_hex for _, item in report.expected_alarms)
    got = Counter(item.tag_uid for alarm in alarms for item in alarm.items)
    assert got == expected, {
        "missing": expected - got,
        "extra": {u: place.catalog.by_uid[bytes.fromhex(u)].kind for u in got - expected},
    }
    # Once each: central stored every committed event exactly once (a re-sent copy, if the
    # link re-sent one, is recognised and dropped there), and no sequence number is missing.
    assert len({a.pass_id for a in alarms}) == len(alarms)
    assert len(alarms) == place.gate.builder.events_committed
    assert place.central.gaps("gate-1") == []
    # One alarm per unissued item pass, none for the rest.
    assert place.gate.core.counters.alarms == sum(expected.values())


def kinds_seen(report: TrafficReport) -> Counter[Kind]:
    return Counter(
        c.item.kind for r in report.results for c in r.passage.carried if r.reads[c.item.tag.uid]
    )


def test_thousand_passes_alarm_exactly_for_unissued_items(tmp_path: Path, broker: Any) -> None:
    """1,000 passes: one alarm per unissued item pass, none for loans, foreign items or cards; each event once at central."""
    with site(tmp_path, broker.url) as place:
        report = play(place, 1000, seed=11)
        alarms = settle(place)
        check(report, alarms, place)
        seen = kinds_seen(report)
        for kind in Kind:
            assert seen[kind] > 0, f"the traffic never carried a {kind.value} item"
        assert sum(1 for r in report.results for c in r.passage.carried if c.reads == 1) > 50
        assert place.alarm.wait_for(1)
        # Visitor counts: the interval so far is sent now rather than at the end of the hour.
        place.gate.visitors.flush()
        assert place.gate.handover.wait_idle(60)

        def visitors() -> int:
            counts = [e.envelope.payload for e in place.central.events("gate-1", "visitor_count")]
            return sum(c.entered + c.exited for c in counts if isinstance(c, VisitorCount))

        place.central.wait_for(lambda: visitors() == 1000, 30, "1,000 visitors counted at central")


@pytest.mark.slow
def test_agent_down_for_an_hour_of_traffic(tmp_path: Path, broker: Any) -> None:
    """With the edge agent stopped the gate alarms on; every event arrives after it returns."""
    with site(tmp_path, broker.url) as place:
        first = play(place, 100, seed=21)
        settle(place)
        port = int(place.agent.api_url.rsplit(":", 1)[1])
        place.agent.stop()
        # A busy hour at a provincial library's gate, compressed.
        down = play(place, 400, seed=22, start=100)
        place.gate.wait_health(lambda h: h.open_passes == 0, 20)
        assert place.gate.builder.wait_idle(20)
        health = place.gate.health()
        assert health.handover.agent_ok is False
        assert health.handover.pending > 0
        assert any("edge agent unavailable" in p for p in health.problems)
        expected = len(first.expected_alarms) + len(down.expected_alarms)
        assert place.gate.core.counters.alarms == expected, (place.gate.core.counters, expected)
        place.agent = AgentService(agent_settings(tmp_path, place.central.address.url, port))
        place.agent.start()
        alarms = settle(place)
        combined = TrafficReport(results=first.results + down.results)
        check(combined, alarms, place)
