"""The gate traffic simulator: catalog kinds, plans, exact read counting, and its command."""

from __future__ import annotations

import collections
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.outbox import SqliteOutbox
from hardware.feig import FeigReader
from hardware.feig.bus import SharedBus
from hardware.tags import DataModel, decode_tag
from simulators.gate_traffic.catalog import ALARMING, Catalog, Kind
from simulators.gate_traffic.engine import GateReaders, TrafficRunner, inventory_uids
from simulators.gate_traffic.plan import PlanSettings, make_plan

OURS = "VN-DEMO"
LIBEDGE = str(Path(sys.executable).with_name("libedge"))


@pytest.mark.parametrize("kind", list(Kind))
@pytest.mark.parametrize("model", ["2", "3"])
def test_each_kind_builds_the_tag_it_says(kind: Kind, model: str) -> None:
    """Every kind's tag decodes (or not) and carries the AFI its row in the table promises."""
    item = Catalog.make("31004242", kind, own_isil=OURS, title="Số đỏ", model=model)
    tag = decode_tag(item.tag.uid, bytes(item.tag.memory), dsfid=item.tag.dsfid, afi=None, eas=None)
    unreadable = kind in (Kind.UNREADABLE_SECURED, Kind.UNREADABLE_UNSECURED)
    assert (tag.model is DataModel.UNKNOWN) == unreadable
    if kind in (Kind.UNISSUED, Kind.ISSUED_UNSWITCHED, Kind.UNREADABLE_SECURED):
        assert (item.tag.afi, item.tag.eas) == (0x07, True)
    if kind in (Kind.ISSUED, Kind.RETURNED_UNSECURED, Kind.UNREADABLE_UNSECURED):
        assert (item.tag.afi, item.tag.eas) == (0xC2, False)
    if not unreadable:
        assert tag.item is not None
        assert tag.item.primary_item_id == "31004242"
        assert tag.item.is_patron_card == (kind is Kind.PATRON_CARD)
        assert (tag.item.owner_institution != OURS) == (kind is Kind.FOREIGN)
    assert item.alarms == (kind in ALARMING)


def test_plan_is_reproducible_and_keeps_items_apart() -> None:
    """The same seed gives the same plan; an item waits reuse_after passages to come back."""
    catalog = Catalog.synthetic(120, own_isil=OURS, seed=3)
    settings = PlanSettings(passages=300, seed=9, reuse_after=20)
    first, second = make_plan(catalog, settings), make_plan(catalog, settings)
    assert [[c.item.item_id for c in p.carried] for p in first] == [
        [c.item.item_id for c in p.carried] for p in second
    ]
    last: dict[str, int] = {}
    reads = collections.Counter()
    for passage in first:
        for carried in passage.carried:
            number = last.get(carried.item.item_id)
            assert number is None or passage.number - number >= 20
            last[carried.item.item_id] = passage.number
            assert 1 <= carried.reads <= 20
            reads[carried.reads == 1] += 1
    assert reads[True] > 0
    assert reads[False] > reads[True]


@given(st.binary(max_size=300))
def test_inventory_uids_of_garbage_stay_in_bounds(data: bytes) -> None:
    """Any reply data gives whole 8-byte UIDs, never an exception."""
    for uid in inventory_uids(data):
        assert len(uid) == 8


@pytest.fixture
def readers() -> Iterator[GateReaders]:
    gate = GateReaders.start(lanes=1, antennas=2)
    yield gate
    gate.stop()


def test_a_tag_is_read_exactly_as_often_as_planned(readers: GateReaders) -> None:
    """A driver polling both antennas gets each tag exactly its planned number of times."""
    catalog = Catalog.synthetic(20, own_isil=OURS, seed=1)
    plan = make_plan(catalog, PlanSettings(passages=15, seed=2, bag_weights=(0, 0, 0, 1)))
    seen: collections.Counter[bytes] = collections.Counter()
    stop = threading.Event()

    def poll() -> None:
        with FeigReader(readers.urls[0]) as left, FeigReader(readers.urls[1]) as right:
            while not stop.is_set():
                for reader in (left, right):
                    for entry in reader.inventory():
                        seen[entry.uid] += 1

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        report = TrafficRunner(readers.lanes, dwell_s=5.0).run(plan)
    finally:
        stop.set()
        thread.join(10)
    assert report.incomplete == 0
    planned: collections.Counter[bytes] = collections.Counter()
    for passage in plan:
        for carried in passage.carried:
            planned[carried.item.tag.uid] += carried.reads
    assert seen == planned
    assert report.reads == sum(planned.values())


def test_a_tag_nobody_reads_leaves_after_its_dwell(readers: GateReaders) -> None:
    """Without a gate polling, the tags still leave: the passage is reported incomplete."""
    catalog = Catalog.synthetic(10, own_isil=OURS, seed=1)
    plan = make_plan(catalog, PlanSettings(passages=1, seed=1, bag_weights=(0, 1)))
    report = TrafficRunner(readers.lanes, dwell_s=0.05).run(plan)
    assert report.incomplete == 1
    assert report.expected_alarms == []
    assert len(readers.lanes[0].fields[0]) == 0


def test_one_readers_inventory_is_one_round_on_a_shared_bus() -> None:
    """Both readers of a bus hear every request; only the addressed one's inventory counts.

    A tag planned for one read is still in the field after that read, so the gate can read
    its blocks to identify it, and leaves at the next inventory, as with a port each.
    """
    tag = Catalog.make("31000555", Kind.FOREIGN, own_isil=OURS).tag
    with GateReaders.start(lanes=1, antennas=2, shared_bus=True) as gate:
        gate.lanes[0].enter(tag, 1, dwell_s=10.0)
        bus = SharedBus()
        with FeigReader(gate.urls[0], address=gate.addresses[0], opener=bus.open) as left:
            assert [entry.uid for entry in left.inventory()] == [tag.uid]
            assert left.read_blocks(tag.uid, 0, 1).blocks  # still there to be identified
            assert left.inventory() == ()


def _lines(stream: object, out: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        out.put(line.rstrip("\n"))


def _expect(lines: queue.Queue[str], prefix: str, timeout: float = 20) -> str:
    while True:
        line = lines.get(timeout=timeout)
        if line.startswith(prefix):
            return line


@pytest.mark.parametrize("shared_bus", [False, True], ids=["port-each", "shared-bus"])
def test_gate_run_against_gate_traffic_commands(tmp_path: Path, shared_bus: bool) -> None:
    """``libedge gate run`` against ``libedge sim gate-traffic``: every expected alarm reaches the agent's outbox.

    With ``--shared-bus`` both readers hang on one port at addresses 1 and 2, and the gate is
    configured with them: every alarm still arrives once.
    """
    truth = tmp_path / "truth.jsonl"
    traffic = subprocess.Popen(
        [
            LIBEDGE,
            "sim",
            "gate-traffic",
            "--passages",
            "60",
            "--people",
            "--gap",
            "0.01",
            "--reuse-gap",
            "0.5",
            "--stagger",
            "0",
            "--seed",
            "4",
            "--truth",
            str(truth),
            *(["--shared-bus"] if shared_bus else []),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_lines, args=(traffic.stdout, lines), daemon=True)
    reader.start()
    gate: subprocess.Popen[str] | None = None
    try:
        announced = [_expect(lines, "reader: ").split(": ", 1)[1].split() for _ in range(2)]
        urls = [words[0] for words in announced]
        addresses = [int(words[1].removeprefix("address=")) for words in announced if shared_bus]
        people = _expect(lines, "people: ").split(": ", 1)[1]
        agent_db = tmp_path / "agent.sqlite"
        config = tmp_path / "gate.toml"
        config.write_text(
            "\n".join(
                [
                    "[site]",
                    'device_id = "gate-1"',
                    'device_kind = "gate"',
                    f'isil = "{OURS}"',
                    "[devices]",
                    f"gate_readers = {json.dumps(urls)}",
                    f"gate_reader_addresses = {json.dumps(addresses)}",
                    f'people_counter = "{people}"',
                    'alarm_output = "sim:"',
                    "[gate]",
                    "quiet_time_s = 0.2",
                    f'agent_url = "sqlite://{agent_db}"',
                    f'data_dir = "{tmp_path / "gate"}"',
                ]
            ),
            encoding="utf-8",
        )
        gate = subprocess.Popen(
            [LIBEDGE, "gate", "run", "--config", str(config)],
            stderr=subprocess.PIPE,
            text=True,
        )
        summary = json.loads(_expect(lines, "summary: ", timeout=120).split(": ", 1)[1])
        assert traffic.wait(20) == 0
        gate.send_signal(signal.SIGTERM)
        _, errors = gate.communicate(timeout=30)
        assert gate.returncode == 0, errors
    finally:
        for process in (traffic, gate):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)
        reader.join(10)  # the pipe is at its end once the traffic process is gone
        assert traffic.stdout is not None
        traffic.stdout.close()
    expected = collections.Counter()
    for line in truth.read_text(encoding="utf-8").splitlines():
        for item in json.loads(line)["items"]:
            if item["alarm"]:
                expected[item["uid"]] += 1
    assert sum(expected.values()) == summary["expected_alarms"] > 0
    outbox = SqliteOutbox(agent_db)
    try:
        held = outbox.due("gate-1", 100_000, resend_after=1e9)
    finally:
        outbox.close()
    got = collections.Counter(
        item["tag_uid"]
        for event in held
        if event.kind == "gate_alarm"
        for item in json.loads(event.payload)["items"]
    )
    assert got == expected
    visitors = [json.loads(e.payload) for e in held if e.kind == "visitor_count"]
    assert sum(v["entered"] + v["exited"] for v in visitors) == summary["passages"] == 60
    assert os.path.exists(tmp_path / "gate" / "health.json")
