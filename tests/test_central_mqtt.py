"""The central simulator against the real private Mosquitto: storage, receipts, gaps, rejections."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from paho.mqtt.enums import MQTTErrorCode

from edge_agent.contract import (
    Checkout,
    Command,
    DeliveryReceipt,
    OutOfService,
    ScreenMessage,
    decode,
)
from edge_agent.contract.topics import command_topic, receipt_topic
from simulators.central import BrokerUnavailableError, CentralError, CentralSimulator
from simulators.central.mqtt import make_client, parse_broker_url, stop_loop
from tests.support.broker import MosquittoBroker, free_port
from tests.support.mqtt import MqttProbe
from tests.test_central_common import (
    TODAY,
    FakeDevice,
    envelope,
    fixed_clock,
    settle,
    unique_library,
    write_seed,
)

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def broker(module_broker: MosquittoBroker) -> MosquittoBroker:
    """This module's own broker: other modules' retained messages cannot reach central here."""
    return module_broker


@pytest.fixture
def lib() -> str:
    return unique_library()


@pytest.fixture
def sim(broker: MosquittoBroker, tmp_path: Path, lib: str) -> Iterator[CentralSimulator]:
    with CentralSimulator(
        broker.url,
        tmp_path / "central.sqlite",
        seed=write_seed(tmp_path, lib),
        instance=f"c-{lib}",
        clock=fixed_clock,
        cache_interval_s=0.2,
    ) as simulator:
        yield simulator


@pytest.fixture
def device(broker: MosquittoBroker, lib: str) -> Iterator[FakeDevice]:
    fake = FakeDevice(broker.url, lib)
    yield fake
    fake.close()


def stored_seqs(db: Path, device_id: str) -> set[int]:
    """What a separate reader sees committed in the database right now."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT seq FROM events WHERE device_id = ?", (device_id,))
        return {row[0] for row in rows}
    finally:
        conn.close()


def test_event_published_twice_is_stored_once(
    sim: CentralSimulator, device: FakeDevice, lib: str
) -> None:
    """The same envelope published twice is one stored event and one counted duplicate."""
    env = envelope(1, library_id=lib)
    device.send(env)
    device.send(env)
    sim.wait_for(lambda: sim.stats().duplicates_total == 1, what="one duplicate")
    [stored] = sim.events("kiosk-1")
    assert stored.envelope == env
    assert stored.instance == sim.instance
    assert sim.stats().events == 1
    assert sim.stats().duplicates == {"kiosk-1": 1}
    receipts = device.receipts_until({1})
    assert all(r.confirmed == [1] for r in receipts)


def test_receipts_are_sent_only_after_the_commit(
    sim: CentralSimulator, device: FakeDevice, lib: str
) -> None:
    """Whenever a receipt arrives, every number it confirms is already committed."""
    for seq in range(1, 41):
        device.send(envelope(seq, library_id=lib))
    seen: set[int] = set()
    while seen != set(range(1, 41)):
        receipt = device.receipts_until({min(set(range(1, 41)) - seen)})[-1]
        assert set(receipt.confirmed) <= stored_seqs(sim.db_path, "kiosk-1")
        seen.update(receipt.confirmed)
    assert sim.stats().instance["receipts_sent"] >= 1


def test_gaps_are_reported_and_closed_by_late_events(
    sim: CentralSimulator, device: FakeDevice, lib: str
) -> None:
    """Seq 1, 2, 5 leave 3..4 missing; 4 then 3 close the gap."""
    for seq in (1, 2, 5):
        device.send(envelope(seq, library_id=lib))
    sim.wait_for_events(3)
    assert [(g.device_id, g.first, g.last) for g in sim.gaps()] == [("kiosk-1", 3, 4)]
    assert sim.stats().missing == 2
    device.send(envelope(4, library_id=lib))
    device.send(envelope(3, library_id=lib))
    sim.wait_for(lambda: not sim.gaps(), what="gap closed")
    stats = sim.stats()
    assert (stats.events, stats.gaps_filled, stats.open_gaps) == (5, 2, 0)


def test_payload_naming_another_device_is_rejected_back_to_the_sender(
    sim: CentralSimulator, device: FakeDevice, lib: str
) -> None:
    """A device publishing another device's event gets it rejected; nothing is stored."""
    device.send(envelope(7, library_id=lib, device_id="kiosk-2"), kind="refusal")
    device.probe.publish(
        f"libedge/v1/{lib}/kiosk-1/up/event/refusal",
        envelope(8, library_id="other-library").model_dump_json(),
    )
    receipts = device.receipts_until(set(), {7, 8})
    rejected = [r for receipt in receipts for r in receipt.rejected]
    assert [r.seq for r in rejected] == [7, 8]
    assert all(receipt.confirmed == [] for receipt in receipts)
    assert all("differs from the topic" in r.reason for r in rejected)
    assert sim.events() == []
    assert sim.stats().rejected.get("mismatch") == 2
    assert {r.device_id for r in sim.rejected()} == {"kiosk-1"}


def test_garbage_and_foreign_topics_are_counted_and_the_service_goes_on(
    sim: CentralSimulator, device: FakeDevice, lib: str
) -> None:
    """Broken payloads and foreign topics are counted by kind; a valid event still gets stored."""
    probe = device.probe
    base = settle(sim, probe)
    garbage = [b"", b"\xff\xfe", b"[" * 50_000, b"null", b'{"seq": 3, "nonsense": true}']
    for payload in garbage:
        probe.publish(f"libedge/v1/{lib}/kiosk-1/up/event/checkout", payload)
    for topic in (
        f"libedge/v1/{lib}/kiosk-1/up/whatever",
        f"libedge/v1/{lib}/kiosk-1/up/event/refusal/extra",
        "libedge/v1/another-library/kiosk-1/up/event/refusal",
        f"libedge/v1/{lib}/k iosk/up/status",
    ):
        probe.publish(topic, envelope(1, library_id=lib).model_dump_json())
    device.send(envelope(1, library_id=lib))

    def counted() -> dict[str, int]:
        now = sim.stats().rejected
        return {kind: now.get(kind, 0) - base.rejected.get(kind, 0) for kind in now}

    sim.wait_for(lambda: sum(counted().values()) >= 9, what="9 rejections")
    sim.wait_for_events(1)
    assert counted() == {"malformed": 5, "foreign": 4}
    # Only the garbage whose seq could be read is rejected in a receipt.
    receipts = device.receipts_until({1}, {3})
    assert [r.seq for receipt in receipts for r in receipt.rejected] == [3]


def test_two_instances_share_the_load_and_store_each_event_once(
    broker: MosquittoBroker, tmp_path: Path, lib: str, device: FakeDevice
) -> None:
    """Two instances on one shared subscription and one database store every event exactly once."""
    seed = write_seed(tmp_path, lib)
    db = tmp_path / "shared.sqlite"
    with (
        CentralSimulator(broker.url, db, seed=seed, instance="share-a", clock=fixed_clock) as a,
        CentralSimulator(broker.url, db, seed=seed, instance="share-b", clock=fixed_clock) as b,
    ):
        envelopes = [envelope(seq, library_id=lib) for seq in range(1, 101)]
        for env in envelopes + envelopes:
            device.send(env)
        a.wait_for(lambda: a.stats().duplicates_total == 100, timeout=30, what="100 duplicates")
        events = a.events("kiosk-1")
        assert [e.seq for e in events] == list(range(1, 101))
        assert {e.instance for e in events} == {"share-a", "share-b"}
        assert b.stats().events == 100
        assert a.gaps() == []
        device.receipts_until(set(range(1, 101)))


def test_staff_command_reaches_the_device(
    sim: CentralSimulator, device: FakeDevice, lib: str
) -> None:
    """A command sent through the Python API arrives on the device's command topic."""
    sent = sim.send_command("kiosk-1", OutOfService(reason="bảo trì / maintenance"))
    message = device.next_on(command_topic(lib, "kiosk-1"))
    received = decode(Command, message.payload)
    assert received == sent
    assert isinstance(received.body, OutOfService)
    sim.send_command("kiosk-1", ScreenMessage(text_vi="Xin chào", text_en="Hello"))
    follow_up = decode(Command, device.next_on(command_topic(lib, "kiosk-1")).payload)
    assert isinstance(follow_up.body, ScreenMessage)
    assert follow_up.body.text_vi == "Xin chào"
    assert sim.stats().instance["commands_sent"] == 2


def test_checkout_event_changes_the_circulation_model(
    sim: CentralSimulator, device: FakeDevice, lib: str
) -> None:
    """A checkout over MQTT puts the item on loan; an offline loan of a held item is an exception."""
    device.send(
        envelope(
            1, Checkout(patron_id="P-HOLDER", item_id="I-SHELF", due_date=TODAY), library_id=lib
        )
    )
    device.send(
        envelope(
            2,
            Checkout(patron_id="P-FREE", item_id="I-HELD", due_date=TODAY, offline=True),
            library_id=lib,
        )
    )
    sim.wait_for_events(2)
    item = sim.item("I-SHELF")
    assert item is not None
    assert (item.state, item.patron_id) == ("on_loan", "P-HOLDER")
    assert [(e.reason, e.item_id) for e in sim.exceptions()] == [("item_on_hold", "I-HELD")]
    assert sim.stats().exceptions_open == 1
    sim.resolve_exception(sim.exceptions()[0].id)
    assert sim.exceptions() == []
    assert len(sim.exceptions(include_resolved=True)) == 1
    assert {i.item_id for i in sim.loans("P-HOLDER")} == {"I-SHELF"}


def test_start_fails_clearly_without_a_broker(tmp_path: Path, lib: str) -> None:
    """With nothing listening, start raises BrokerUnavailableError naming the broker."""
    url = f"mqtt://127.0.0.1:{free_port()}"
    simulator = CentralSimulator(url, tmp_path / "c.sqlite", seed=write_seed(tmp_path, lib))
    with pytest.raises(BrokerUnavailableError, match=r"127\.0\.0\.1"):
        simulator.start(timeout=1.0)
    with pytest.raises(CentralError, match="not running"):
        simulator.stats()


def test_works_with_the_committed_acl_as_user_central(broker_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Behind the project's ACL, central (user 'central') stores events and devices get receipts."""
    acl = Path(__file__).resolve().parent.parent / "config" / "mosquitto" / "acl.conf"
    secured = broker_factory(
        passwords={"central": "pc", "kiosk-1": "pk"}, acl_file=acl, persistence=False
    )
    lib = unique_library()
    with pytest.raises(BrokerUnavailableError, match="refused"):
        CentralSimulator(
            secured.url,
            tmp_path / "x.sqlite",
            seed=write_seed(tmp_path, lib),
            username="central",
            password="wrong",
        ).start(timeout=2.0)
    with CentralSimulator(
        secured.url,
        tmp_path / "c.sqlite",
        seed=write_seed(tmp_path, lib),
        username="central",
        password="pc",
        clock=fixed_clock,
    ) as simulator:
        kiosk = MqttProbe(secured.url, username="kiosk-1", password="pk")
        assert not kiosk.connect().is_failure
        kiosk.subscribe(receipt_topic(lib, "kiosk-1"))
        kiosk.publish(
            f"libedge/v1/{lib}/kiosk-1/up/event/refusal",
            envelope(1, library_id=lib).model_dump_json(),
        )
        receipt = decode(DeliveryReceipt, kiosk.get().payload)
        kiosk.close()
        assert receipt.confirmed == [1]
        assert simulator.stats().events == 1


def test_stop_loop_survives_paho_losing_the_race_with_its_own_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """paho's loop_stop raises AttributeError when its network thread ends under it.

    That race (seen once in four full test runs) cannot be forced on a real thread, so
    paho's own error is raised in its place; everything else is the real client.
    """
    client = make_client("race-test", parse_broker_url(f"mqtt://127.0.0.1:{free_port()}"))
    calls: list[str] = []
    disconnect = client.disconnect

    def disconnecting() -> MQTTErrorCode:
        calls.append("disconnect")
        return disconnect()

    def racing() -> MQTTErrorCode:
        calls.append("loop_stop")
        raise AttributeError("'NoneType' object has no attribute 'join'")

    monkeypatch.setattr(client, "disconnect", disconnecting)
    monkeypatch.setattr(client, "loop_stop", racing)
    stop_loop(client)
    assert calls == ["disconnect", "loop_stop"]
