"""The gate service on simulated readers: alarms, faults, turn-taking, people, health."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edge_agent.caches import CacheStore
from edge_agent.contract import CacheUpdate, GateAlarm, ItemState, ItemStates, VisitorCount
from edge_agent.contract.base import decode
from edge_agent.outbox import MemoryOutbox
from gate.agent import OutboxAgent
from gate.health import read_health
from gate.options import ANY_READER, GateOptions, ReaderSpec
from gate.service import GateService
from hardware.outputs import RecordingAlarm
from simulators.gate_traffic.catalog import Catalog, Kind
from simulators.gate_traffic.engine import CountingModel, GateReaders
from simulators.people import SimulatedPeopleCounter
from simulators.reader.frames import Request
from simulators.reader.model import Reply

OURS = "VN-DEMO"


@dataclass
class GateRig:
    """A running gate on simulated readers, its alarm and the agent outbox it hands over to."""

    service: GateService
    readers: GateReaders
    alarm: RecordingAlarm
    outbox: MemoryOutbox

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Payloads the agent holds, in seq order."""
        held = self.outbox.due(None, 1_000_000, resend_after=1e9)
        return [json.loads(e.payload) for e in held if kind is None or e.kind == kind]

    def alarmed_uids(self) -> list[str]:
        """Every item of every GateAlarm event committed so far."""
        return [item["tag_uid"] for event in self.events("gate_alarm") for item in event["items"]]

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until every pass ended and every event reached the agent's outbox.

        The simulated readers count a read when they send it; the gate may not have merged
        it yet. So first every read sent so far must have reached the gate: otherwise "no
        pass open" may only mean that the last tags' passes have not begun.
        """
        sent = sum(sum(lane.reads.values()) for lane in self.readers.lanes)
        self.service.wait_health(lambda h: h.reads_total >= sent and h.open_passes == 0, timeout)
        if not self.service.builder.wait_idle(timeout):
            raise TimeoutError("the gate's event builder did not finish")
        if not self.service.handover.wait_idle(timeout):
            raise TimeoutError("the gate did not hand every event over")

    def switched_on(self) -> int:
        """How often the alarm output was switched on."""
        return sum(1 for change in self.alarm.changes if change.on)


@contextmanager
def gate_rig(
    tmp_path: Path,
    *,
    lanes: int = 1,
    antennas: int = 2,
    air_time: bool = False,
    tcp: bool = True,
    caches: CacheStore | None = None,
    shared_bus: bool = False,
    **options: Any,
) -> Iterator[GateRig]:
    """Start simulated readers and a gate polling them; stop both afterwards.

    With ``shared_bus`` each lane's readers share one port at addresses of their own, and
    the gate is told those addresses; otherwise every reader has a port and answers 0xFF.
    """
    readers = GateReaders.start(
        lanes=lanes, antennas=antennas, tcp=tcp, air_time=air_time, shared_bus=shared_bus
    )
    outbox = MemoryOutbox()
    alarm = RecordingAlarm()
    specs = tuple(
        ReaderSpec(f"antenna-{i + 1}", url, address if shared_bus else ANY_READER)
        for i, (url, address) in enumerate(zip(readers.urls, readers.addresses, strict=True))
    )
    settings: dict[str, Any] = {
        "device_id": "gate-1",
        "readers": specs,
        "groups": (tuple(range(len(readers.urls))),),
        "isil": "VN-DEMO",
        # Short for tests, long enough that a loaded machine's pauses do not split a pass.
        "quiet_time_s": 0.3,
        "alarm_duration_s": 0.02,
        "data_dir": tmp_path / "gate",
        "timezone": "Asia/Ho_Chi_Minh",
    }
    settings.update(options)
    try:
        service = GateService(
            GateOptions(**settings), agent=OutboxAgent(outbox, caches, "gate-1"), alarm=alarm
        )
    except BaseException:
        readers.stop()
        raise
    service.start()
    try:
        if not readers.wait_polled(10):
            raise TimeoutError("the gate did not poll every simulated reader")
        yield GateRig(service, readers, alarm, outbox)
    finally:
        service.stop()
        readers.stop()


def make(item_id: str, kind: Kind, model: str = "2"):
    return Catalog.make(item_id, kind, own_isil=OURS, title="Dế Mèn phiêu lưu ký", model=model)


@pytest.mark.parametrize("identify_first", [True, False])
def test_each_kind_alarms_or_not_even_when_read_once(tmp_path: Path, identify_first: bool) -> None:
    """Every kind is judged right (AFI alone without identify_first), even a tag read once."""
    kinds = [
        Kind.UNISSUED,
        Kind.ISSUED,
        Kind.FOREIGN,
        Kind.PATRON_CARD,
        Kind.UNREADABLE_SECURED,
        Kind.UNREADABLE_UNSECURED,
    ]
    items = [make(f"K{n}{m}", kind, model=m) for n, kind in enumerate(kinds) for m in "23"]
    with gate_rig(tmp_path, identify_before_alarm=identify_first, full_scan_every=2) as rig:
        lane = rig.readers.lanes[0]
        for item in items:
            lane.enter(item.tag, 1, dwell_s=2.0)
        assert lane.wait_settled(5)
        if identify_first:
            expected = sorted(i.uid_hex for i in items if i.alarms)
        else:
            # The documented trade-off: the secured AFI alone decides, so foreign items and
            # cards that carry it alarm too; nothing unsecured ever does.
            expected = sorted(i.uid_hex for i in items if i.tag.afi == 0x07)
            assert {i.uid_hex for i in items if i.alarms} <= set(expected)
        rig.settle()
        assert sorted(rig.alarmed_uids()) == expected
        for payload in rig.events("gate_alarm"):
            alarm = GateAlarm.model_validate(payload)
            for item in alarm.items:
                assert item.reads == 1
    assert rig.switched_on() >= 1


def test_a_secured_item_is_named_in_the_event(tmp_path: Path) -> None:
    """The alarm event names the item: id, owner, model, the cache's title, antenna, reads."""
    item = make("31000777", Kind.UNISSUED)
    caches = CacheStore(tmp_path / "agent.sqlite")
    caches.apply(
        CacheUpdate(
            library_id="demo-library",
            version=1,
            time=dt.datetime.now(dt.UTC),
            body=ItemStates(items=[ItemState(item_id="31000777", state="on_shelf", title="Số đỏ")]),
        )
    )
    with gate_rig(tmp_path, caches=caches) as rig:
        assert rig.service.refresh_cache()
        lane = rig.readers.lanes[0]
        lane.enter(item.tag, 4, dwell_s=2.0)
        rig.alarm.wait_for(1)
        rig.settle()
    (payload,) = rig.events("gate_alarm")
    caches.close()
    (named,) = decode(GateAlarm, json.dumps(payload)).items
    assert (named.item_id, named.owner_institution, named.data_model) == (
        "31000777",
        OURS,
        "iso28560-2",
    )
    assert named.title == "Số đỏ"
    assert named.security == "secured"
    assert named.reads == 4
    assert named.antenna in ("antenna-1", "antenna-2")


def test_reader_unplugged_and_back(tmp_path: Path) -> None:
    """An unplugged reader shows in the health, is reconnected, and alarms again afterwards."""
    with gate_rig(tmp_path, antennas=1) as rig:
        sim = rig.readers.simulators[0]
        sim.unplug()
        health = rig.service.wait_health(lambda h: not h.readers_connected, 10)
        assert "disconnected" in " ".join(health.problems)
        sim.replug()
        health = rig.service.wait_health(lambda h: h.readers_connected, 10)
        assert health.antennas[0].reconnects == 1
        item = make("31000888", Kind.UNISSUED)
        rig.readers.lanes[0].enter(item.tag, 2, dwell_s=2.0)
        rig.alarm.wait_for(1)
        rig.settle()
    assert rig.alarmed_uids() == [item.uid_hex]


def test_garbled_frames_are_skipped_and_counted(tmp_path: Path) -> None:
    """Replies with bad CRCs are counted as garbled; polling goes on and alarms afterwards."""
    with gate_rig(tmp_path, antennas=1, reader_timeout_s=0.05) as rig:
        sim = rig.readers.simulators[0]
        sim.faults.update(corrupt_crc=1.0)
        health = rig.service.wait_health(lambda h: h.antennas[0].garbled >= 3, 10)
        assert not health.readers_connected  # three in a row: "not answering"
        sim.faults.update(corrupt_crc=0.0)
        rig.service.wait_health(lambda h: h.readers_connected, 10)
        item = make("31000999", Kind.UNISSUED)
        rig.readers.lanes[0].enter(item.tag, 3, dwell_s=2.0)
        rig.alarm.wait_for(1)


@pytest.mark.parametrize("tcp", [True, False], ids=["tcp", "pty"])
def test_two_readers_on_one_bus_share_its_port(tmp_path: Path, tcp: bool) -> None:
    """Pedestal readers at addresses 1 and 2 on one port: both are read, one alarm, no collision.

    The simulated port serves one TCP client at a time, so over TCP the second reader would
    never be heard unless the gate opened the port once for both.
    """
    with gate_rig(tmp_path, shared_bus=True, tcp=tcp) as rig:
        (sim,) = rig.readers.simulators
        item = make("31001234", Kind.UNISSUED)
        rig.readers.lanes[0].enter(item.tag, 6, dwell_s=3.0)
        rig.alarm.wait_for(1)
        rig.settle()
        health = rig.service.health()
    assert [a.reads > 0 for a in health.antennas] == [True, True]
    assert all(a.connected and a.reconnects == 0 for a in health.antennas)
    assert rig.alarmed_uids() == [item.uid_hex]
    counters = sim.counters()
    assert counters["collisions"] == 0
    assert counters["frames_ignored"] == 0
    assert counters["connections"] == (1 if tcp else 0)


class TimedModel(CountingModel):
    """Notes when each request was handled and how long its reply would be on air."""

    log: list[tuple[int, float, float]]
    lock = threading.Lock()

    def handle(self, request: Request) -> Reply | None:
        start = time.perf_counter()
        reply = super().handle(request)
        if reply is not None:
            with self.lock:
                self.log.append((id(self), start, start + reply.air_time))
        return reply


def overlaps(log: list[tuple[int, float, float]]) -> int:
    """Exchanges of one reader that overlap in time with another reader's."""
    ordered = sorted(log, key=lambda e: e[1])
    count = 0
    for (who, _, end), (other, start, _) in itertools.pairwise(ordered):
        if who != other and start < end:
            count += 1
    return count


@pytest.mark.parametrize("groups", [((0, 1),), ((0,), (1,))])
def test_readers_of_one_group_take_turns(
    tmp_path: Path, groups: tuple[tuple[int, ...], ...]
) -> None:
    """Readers in one turn group never transmit at the same time; separate groups do."""
    log: list[tuple[int, float, float]] = []
    with gate_rig(tmp_path, air_time=True, groups=groups) as rig:
        for sim in rig.readers.simulators:
            model = TimedModel(rig.readers.lanes[0], sim.field, timing=None)
            model.log = log
            sim.model = model
        item = make("31001000", Kind.UNISSUED)
        rig.readers.lanes[0].enter(item.tag, 40, dwell_s=5.0)
        assert rig.readers.lanes[0].wait_settled(10)
    with TimedModel.lock:
        found = overlaps(log)
    assert len(log) >= 40
    if len(groups) == 1:
        assert found == 0
    else:
        assert found > 0


def test_visitors_are_counted_and_a_garbled_counter_is_reported(tmp_path: Path) -> None:
    """Crossings become a visitor count event; a garbled line shows in the health, counting goes on."""
    with SimulatedPeopleCounter() as people, gate_rig(tmp_path, people_counter=people.url) as rig:
        people.wait_for_client()
        for direction in ("in", "in", "out"):
            people.walk(direction)
        people.garble()
        people.walk("out")
        rig.service.wait_health(lambda h: h.visitors_in == 2 and h.visitors_out == 2, 10)
        health = rig.service.health()
        assert health.people_counter_problems == 1
        assert "garbled" in (health.people_counter_last_problem or "")
        assert health.people_counter_problem is None  # it counted again since
    counts = [VisitorCount.model_validate(p) for p in rig.events("visitor_count")]
    assert sum(c.entered for c in counts) == 2
    assert sum(c.exited for c in counts) == 2


def test_eas_only_library_alarms_from_the_eas_bit(tmp_path: Path) -> None:
    """A library using only EAS: every tag is probed, an armed one alarms, a disarmed one does not."""
    from hardware.tags import SecurityConfig

    armed = make("31002000", Kind.UNISSUED)
    lent = make("31002001", Kind.ISSUED)
    eas_only = SecurityConfig(use_afi=False, use_eas=True)
    with gate_rig(tmp_path, security=eas_only) as rig:
        lane = rig.readers.lanes[0]
        lane.enter(armed.tag, 3, dwell_s=2.0)
        lane.enter(lent.tag, 3, dwell_s=2.0)
        assert lane.wait_settled(5)
        rig.settle()
    assert rig.alarmed_uids() == [armed.uid_hex]


def test_health_file_and_status_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The gate writes health.json; ``libedge gate status`` prints it and says whether all is well."""
    from edge_agent.cli import main

    config = tmp_path / "site.toml"
    config.write_text(f'[gate]\ndata_dir = "{tmp_path / "gate"}"\n', encoding="utf-8")
    assert main(["gate", "status", "--config", str(config)]) == 3
    with gate_rig(tmp_path, health_interval_s=0.1) as rig:
        rig.service.wait_health(lambda h: h.readers_connected, 10)
        rig.service.wait_health(
            lambda h: (
                (tmp_path / "gate" / "health.json").exists()
                and read_health(tmp_path / "gate").get("readers_connected") is True
            ),
            10,
        )
        capsys.readouterr()
        assert main(["gate", "status", "--config", str(config)]) == 0
        out = capsys.readouterr().out
        assert "antenna-1" in out
        assert "answering" in out
        assert main(["gate", "status", "--config", str(config), "--json"]) == 0
        assert '"readers_connected": true' in capsys.readouterr().out


def test_a_silent_pedestal_does_not_slow_its_partner(tmp_path: Path) -> None:
    """A reader that stops answering is asked again only now and then; its partner keeps polling."""
    with gate_rig(tmp_path, reader_timeout_s=0.05) as rig:
        silent, working = rig.readers.simulators
        silent.faults.update(corrupt_crc=1.0)
        health = rig.service.wait_health(lambda h: h.antennas[1].polls >= 300, 20)
        attempts = health.antennas[0].garbled
        assert attempts >= 3
        assert health.antennas[1].polls >= 10 * attempts
        assert not health.antennas[0].answering
        assert health.antennas[1].answering
        silent.faults.update(corrupt_crc=0.0)
        rig.service.wait_health(lambda h: h.readers_connected, 10)
        assert working.replies_sent > 0


def test_gate_run_names_a_configuration_it_cannot_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``libedge gate run`` refuses no readers, a bad turn group and a bad device URL in one line each."""
    from edge_agent.cli import main

    config = tmp_path / "site.toml"
    cases = {
        "": "devices.gate_readers",
        '[devices]\ngate_readers = ["socket://127.0.0.1:9"]\n[gate]\nturn_groups = [[3]]\n': (
            "turn_groups"
        ),
        '[devices]\ngate_readers = ["socket://127.0.0.1:9"]\nalarm_output = "bell:1"\n': (
            "unknown alarm output"
        ),
        '[devices]\ngate_readers = ["socket://127.0.0.1:9"]\npeople_counter = "udp://x"\n'
        '[gate]\nagent_url = "sqlite:///' + str(tmp_path / "a.sqlite") + '"\n'
        'data_dir = "' + str(tmp_path / "gate") + '"\n': "unknown people counter",
    }
    for text, expected in cases.items():
        config.write_text(text, encoding="utf-8")
        assert main(["gate", "run", "--config", str(config)]) == 2
        assert expected in capsys.readouterr().err
