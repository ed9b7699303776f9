"""The MQTT link against a real Mosquitto, with a small test client standing in for central."""

from __future__ import annotations

import datetime as dt
import json
import queue
import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent.caches import CacheStore
from edge_agent.config import BrokerSettings
from edge_agent.contract import (
    CacheUpdate,
    CheckoutAnswer,
    CheckoutAuth,
    DeliveryReceipt,
    DeviceStatus,
    Envelope,
    ItemStates,
    LoanPolicy,
    OutOfService,
    PatronBlocks,
    PatronLookup,
    Request,
    Response,
    decode,
)
from edge_agent.contract import Command as StaffCommand
from edge_agent.link import AgentLink, LinkOptions, Offline
from edge_agent.outbox import EventState, MemoryOutbox, SqliteOutbox
from tests.support.broker import MosquittoBroker
from tests.support.mqtt import MqttProbe

LIB = "test-lib"
NOW = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)


def device() -> str:
    """A device id of this test's own (the session broker keeps retained messages)."""
    return f"kiosk-{uuid.uuid4().hex[:8]}"


def checkin(outbox: MemoryOutbox | SqliteOutbox, dev: str, n: int) -> None:
    for i in range(n):
        outbox.append(dev, "checkin", json.dumps({"type": "checkin", "item_id": f"I{i}"}))


def make_link(
    url: str,
    outbox: MemoryOutbox | SqliteOutbox,
    dev: str,
    caches: CacheStore | None = None,
    **options: float,
) -> AgentLink:
    settings = {"window": 8, "receipt_window": 200, "request_timeout_s": 2.0, **options}
    return AgentLink(
        LinkOptions(LIB, dev, "kiosk", **settings),  # type: ignore[arg-type]
        BrokerSettings(url=url, reconnect_min_s=0.05, reconnect_max_s=0.5),
        outbox,
        caches,
    )


@contextmanager
def running(link: AgentLink) -> Iterator[AgentLink]:
    """Start ``link`` for the block and stop it afterwards, whatever happens."""
    link.start()
    try:
        yield link
    finally:
        link.stop()


class Central:
    """A stand-in for central: reads one device's uplink, sends receipts and answers."""

    def __init__(self, url: str, dev: str) -> None:
        self.dev = dev
        self.probe = MqttProbe(url)
        self.probe.connect()
        self.probe.subscribe(f"libedge/v1/{LIB}/{dev}/up/#")

    def next(self, channel: str, timeout: float = 10.0) -> tuple[str, bytes, object]:
        """The next message on one channel ('event', 'status', 'request'), others skipped."""
        while True:
            message = self.probe.get(timeout=timeout)
            if f"/up/{channel}" in message.topic:
                return message.topic, message.payload, message.properties

    def events(self, count: int, timeout: float = 10.0) -> list[Envelope]:
        return [decode(Envelope, self.next("event", timeout)[1]) for _ in range(count)]

    def receipt(self, confirmed: list[int], rejected: dict[int, str] | None = None) -> None:
        body = DeliveryReceipt(
            library_id=LIB,
            device_id=self.dev,
            confirmed=confirmed,
            rejected=[{"seq": s, "reason": r} for s, r in (rejected or {}).items()],
            time=NOW,
        )
        self.probe.publish(f"libedge/v1/{LIB}/{self.dev}/down/receipt", body.model_dump_json())

    def down(self, channel: str, payload: bytes | str, retain: bool = False) -> None:
        self.probe.publish(f"libedge/v1/{LIB}/{self.dev}/down/{channel}", payload, retain=retain)

    def close(self) -> None:
        self.probe.close()


@pytest.fixture
def dev() -> str:
    return device()


@pytest.fixture
def central(broker: MosquittoBroker, dev: str) -> Iterator[Central]:
    stand_in = Central(broker.url, dev)
    yield stand_in
    stand_in.close()


def confirmed(outbox: MemoryOutbox | SqliteOutbox) -> int:
    return outbox.stats().counts[EventState.CONFIRMED]


@pytest.mark.broker
def test_events_reach_central_oldest_first_and_receipts_confirm_them(
    broker: MosquittoBroker, central: Central, dev: str, tmp_path: Path
) -> None:
    """Committed events are published as valid envelopes in seq order; a receipt confirms them."""
    outbox = SqliteOutbox(tmp_path / "agent.sqlite")
    checkin(outbox, dev, 40)
    link = make_link(broker.url, outbox, dev)
    link.start()
    try:
        envelopes = central.events(40)
        assert [e.seq for e in envelopes] == list(range(1, 41))
        assert {e.device_id for e in envelopes} == {dev}
        assert link.wait_for(lambda: outbox.stats().counts[EventState.SENT] == 40, 10)
        central.receipt(list(range(1, 41)))
        assert link.wait_for(lambda: confirmed(outbox) == 40, 10)
        status = link.status()
        assert status.connected
        assert status.last_central_contact is not None
        assert link.delivery.counters.confirmed == 40
    finally:
        link.stop()
        outbox.close()


@pytest.mark.broker
def test_status_is_retained_online_with_details_and_offline_after_a_clean_stop(
    broker: MosquittoBroker, central: Central, dev: str
) -> None:
    """The retained status says online with outbox figures, then offline after stop()."""
    outbox = MemoryOutbox()
    checkin(outbox, dev, 3)
    link = make_link(broker.url, outbox, dev)
    link.start()
    status = decode(DeviceStatus, central.next("status")[1])
    assert status.online
    assert status.device_id == dev
    assert status.details.outbox_unconfirmed == 3
    link.stop()
    watcher = MqttProbe(broker.url)
    watcher.connect()
    watcher.subscribe(f"libedge/v1/{LIB}/{dev}/up/status")
    retained = watcher.get()
    watcher.close()
    last = decode(DeviceStatus, retained.payload)
    assert retained.retain
    assert last.online is False


@pytest.mark.broker
def test_rejected_events_are_dead_lettered_with_centrals_reason(
    broker: MosquittoBroker, central: Central, dev: str
) -> None:
    """A receipt's rejection moves the event to the dead letters, the rest confirm."""
    outbox = MemoryOutbox()
    checkin(outbox, dev, 3)
    with running(make_link(broker.url, outbox, dev)) as link:
        central.events(3)
        central.receipt([1, 3], {2: "payload: unknown item"})
        assert link.wait_for(lambda: outbox.stats().counts[EventState.DEAD] == 1, 10)
        (dead,) = outbox.dead_letters()
        assert dead.seq == 2
        assert dead.dead_reason == "rejected by central: payload: unknown item"
        assert link.wait_for(lambda: confirmed(outbox) == 2, 10)


@pytest.mark.broker
def test_unconfirmed_events_are_resent_until_central_confirms(
    broker: MosquittoBroker, central: Central, dev: str
) -> None:
    """Events whose receipt never came are published again after resend_after_s."""
    outbox = MemoryOutbox()
    checkin(outbox, dev, 5)
    with running(make_link(broker.url, outbox, dev, resend_after_s=0.3)) as link:
        first = central.events(5)
        again = central.events(5)  # no receipt: the same events come again
        assert [e.seq for e in again] == [e.seq for e in first]
        assert [e.event_id for e in again] == [e.event_id for e in first]
        central.receipt([1, 2, 3, 4, 5])
        assert link.wait_for(lambda: confirmed(outbox) == 5, 10)
        assert link.delivery.counters.resent >= 5


@pytest.mark.broker
def test_ask_returns_centrals_answer_paired_by_correlation_data(
    broker: MosquittoBroker, central: Central, dev: str
) -> None:
    """A request carries a response topic and correlation data; the answer is returned typed."""
    with running(make_link(broker.url, MemoryOutbox(), dev)) as link:
        central.next("status")
        assert link.wait_for(lambda: link.status().connected, 10)
        answers: queue.Queue[object] = queue.Queue()
        asker = __import__("threading").Thread(
            target=lambda: answers.put(link.ask(CheckoutAuth(patron_id="P1", item_id="I9")))
        )
        asker.start()
        topic, payload, properties = central.next("request")
        request = decode(Request, payload)
        assert topic.endswith("/up/request/checkout")
        assert properties.CorrelationData == request.request_id.bytes  # type: ignore[attr-defined]
        # A stray answer for someone else first: it must not be taken for ours.
        stray = Response(request_id=uuid.uuid4(), time=NOW, outcome="error")
        central.down("response", stray.model_dump_json())
        answer = Response(
            request_id=request.request_id,
            time=NOW,
            outcome="ok",
            body=CheckoutAnswer(item_id="I9", due_date=dt.date(2025, 3, 15)),
        )
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.CorrelationData = request.request_id.bytes
        info = central.probe.client.publish(
            properties.ResponseTopic,  # type: ignore[attr-defined]
            answer.model_dump_json(),
            qos=1,
            properties=props,
        )
        info.wait_for_publish(timeout=5)
        asker.join(10)
        result = answers.get(timeout=1)
        assert isinstance(result, Response)
        assert result.outcome == "ok"
        assert result.body == answer.body


@pytest.mark.broker
def test_ask_answers_offline_on_timeout_and_when_the_link_is_down(
    broker: MosquittoBroker, central: Central, dev: str
) -> None:
    """No answer in time gives Offline(timeout); no link gives Offline(link_down) at once."""
    with running(make_link(broker.url, MemoryOutbox(), dev)) as link:
        assert link.wait_for(lambda: link.status().connected, 10)
        result = link.ask(PatronLookup(patron_id="P1", pin="4321"), timeout=0.3)
        assert isinstance(result, Offline)
        assert result.kind == "timeout"
        _, payload, _ = central.next("request")
        assert json.loads(payload)["body"]["pin"] == "4321"  # on the wire only
    down = make_link("mqtt://127.0.0.1:1", MemoryOutbox(), dev)
    down.start()
    try:
        assert down.wait_for(lambda: down.status().problem is not None, 10)
        result = down.ask(PatronLookup(patron_id="P1"))
        assert isinstance(result, Offline)
        assert result.kind == "link_down"
        assert "refused the TCP connection" in result.reason
    finally:
        down.stop()


@pytest.mark.broker
def test_cache_updates_are_versioned_full_replaces_delta_merges(
    broker: MosquittoBroker, central: Central, dev: str, tmp_path: Path
) -> None:
    """Retained caches are stored; older versions are ignored; a delta merges into the cache."""
    caches = CacheStore(tmp_path / "agent.sqlite")

    def push(name: str, version: int, body: object, full: bool = True) -> None:
        update = CacheUpdate(library_id=LIB, version=version, full=full, time=NOW, body=body)  # type: ignore[arg-type]
        central.down(f"cache/{name}", update.model_dump_json(), retain=True)

    push("patron_blocks", 5, PatronBlocks(blocked=[{"patron_id": "P1"}, {"patron_id": "P2"}]))
    push("loan_policy", 2, LoanPolicy(loan_days=21, offline_max_items=3))
    link = make_link(broker.url, MemoryOutbox(), dev, caches=caches)
    link.start()
    try:
        assert link.wait_for(
            lambda: caches.versions() == {"patron_blocks": 5, "loan_policy": 2}, 10
        )
        push("patron_blocks", 4, PatronBlocks(blocked=[]))  # older: ignored
        items = [{"item_id": "I1", "state": "on_loan"}, {"item_id": "I2", "state": "on_hold"}]
        push("item_states", 1, ItemStates(items=items))
        delta = [{"item_id": "I2", "state": "on_shelf"}, {"item_id": "I3", "state": "missing"}]
        push("item_states", 2, ItemStates(items=delta), full=False)
        assert link.wait_for(lambda: caches.versions().get("item_states") == 2, 10)
        assert link.counters.cache_stale >= 1
        assert {b.patron_id for b in caches.patron_blocks()} == {"P1", "P2"}
        assert [(i.item_id, i.state) for i in caches.item_states()] == [
            ("I1", "on_loan"),
            ("I2", "on_shelf"),
            ("I3", "missing"),
        ]
        assert caches.loan_policy() == LoanPolicy(loan_days=21, offline_max_items=3)
        assert link.status_details().cache_versions == {
            "patron_blocks": 5,
            "loan_policy": 2,
            "item_states": 2,
        }
    finally:
        link.stop()
        caches.close()
        for name in ("patron_blocks", "loan_policy", "item_states"):
            central.down(f"cache/{name}", b"", retain=True)  # clear the retained messages


@pytest.mark.broker
def test_garbage_on_every_downlink_topic_is_ignored_and_the_link_keeps_working(
    broker: MosquittoBroker, central: Central, dev: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Random bytes, wrong JSON and foreign ids are logged with a reason; receipts still work."""
    outbox = MemoryOutbox()
    checkin(outbox, dev, 2)
    link = make_link(broker.url, outbox, dev)
    link.start()
    rng = random.Random(20250301)
    garbage = [rng.randbytes(rng.randrange(0, 200)) for _ in range(60)]
    garbage += [
        b"{}",
        b"null",
        b'{"schema_version": 1}',
        json.dumps({"schema_version": 99, "confirmed": [1, 2]}).encode(),
        DeliveryReceipt(library_id=LIB, device_id="someone-else", confirmed=[1, 2], time=NOW)
        .model_dump_json()
        .encode(),
    ]
    try:
        central.events(2)
        for i, payload in enumerate(garbage):
            channel = ("receipt", "response", "command", "cache/item_states", "cache/zz")[i % 5]
            central.down(channel, payload)
            central.down("receipt", payload)
        central.receipt([1, 2])
        assert link.wait_for(lambda: confirmed(outbox) == 2, 10)
        ignored = link.counters.ignored
        assert sum(ignored.values()) >= 2 * (len(garbage) - 1)  # b"" is "no message" to paho
        assert ignored.get("malformed", 0) > 0
        assert ignored.get("mismatched_ids", 0) >= 1
        assert "ignored a message (malformed)" in caplog.text
        assert link.status().connected
    finally:
        link.stop()


@pytest.mark.broker
def test_staff_commands_are_kept_and_out_of_service_is_reported(
    broker: MosquittoBroker, central: Central, dev: str
) -> None:
    """A command from central is kept for the kiosk and out-of-service shows in the status."""
    with running(make_link(broker.url, MemoryOutbox(), dev)) as link:
        assert link.wait_for(lambda: link.status().connected, 10)
        command = StaffCommand(command_id=uuid.uuid4(), time=NOW, body=OutOfService(reason="x"))
        central.down("command", command.model_dump_json())
        assert link.wait_for(lambda: link.status().out_of_service, 10)
        assert list(link.commands) == [command]
        assert link.status_details().out_of_service


@pytest.mark.broker
def test_receipts_sent_while_the_device_was_away_arrive_with_the_persistent_session(
    broker: MosquittoBroker, central: Central, dev: str, tmp_path: Path
) -> None:
    """With clean_start=False and a session expiry, the broker keeps receipts for the device."""
    outbox = SqliteOutbox(tmp_path / "agent.sqlite")
    checkin(outbox, dev, 3)
    link = make_link(broker.url, outbox, dev)
    link.start()
    central.events(3)
    assert link.wait_for(lambda: outbox.stats().counts[EventState.SENT] == 3, 10)
    link.stop()
    central.receipt([1, 2, 3])  # the device is offline now
    again = make_link(broker.url, outbox, dev, resend_after_s=600)
    again.start()
    try:
        assert again.wait_for(lambda: confirmed(outbox) == 3, 10)
    finally:
        again.stop()
        outbox.close()


@pytest.mark.broker
def test_the_link_reconnects_after_a_broker_restart_and_delivers_what_waited(
    fresh_broker: MosquittoBroker, tmp_path: Path
) -> None:
    """While the broker is down the problem is reported; after it returns, events flow again."""
    dev = device()
    outbox = SqliteOutbox(tmp_path / "agent.sqlite")
    # The link may reconnect and publish before the stand-in central below subscribes; the
    # broker drops what nobody subscribed to, and the re-send of unconfirmed events (1 s here)
    # is what delivers them then, as it would in the field.
    link = make_link(fresh_broker.url, outbox, dev, resend_after_s=1.0)
    link.start()
    try:
        assert link.wait_for(lambda: link.status().connected, 10)
        fresh_broker.stop()
        assert link.wait_for(lambda: not link.status().connected, 10)
        checkin(outbox, dev, 20)
        link.notify()
        assert link.wait_for(lambda: link.status().problem_kind == "unreachable", 10)
        fresh_broker.start()
        central = Central(fresh_broker.url, dev)
        try:
            seen = {e.seq for e in central.events(20, timeout=15)}
            assert seen == set(range(1, 21))
            central.receipt(sorted(seen))
            assert link.wait_for(lambda: confirmed(outbox) == 20, 10)
        finally:
            central.close()
        assert link.status().reconnects >= 1
    finally:
        link.stop()
        outbox.close()


def test_a_paho_client_can_read_what_the_link_publishes_as_mqtt_v5() -> None:
    """The constants the tests rely on: MQTT v5 protocol number as paho names it."""
    assert mqtt.MQTTv5 == 5


@pytest.mark.broker
def test_confirmed_events_are_pruned_after_the_retention_period(
    broker: MosquittoBroker, central: Central, dev: str, tmp_path: Path
) -> None:
    """The worker prunes CONFIRMED events older than the retention; unconfirmed ones stay."""
    outbox = SqliteOutbox(tmp_path / "agent.sqlite")
    checkin(outbox, dev, 4)
    link = make_link(broker.url, outbox, dev, retention_s=0.0, prune_every_s=0.2)
    link.start()
    try:
        central.events(4)
        central.receipt([1, 2])
        assert link.wait_for(lambda: outbox.get(dev, 1) is None and outbox.get(dev, 2) is None, 10)
        assert outbox.stats().counts[EventState.CONFIRMED] == 0
        assert outbox.get(dev, 3) is not None  # not confirmed: kept
        assert outbox.stats().last_seq == {dev: 4}  # the seq is never reused
    finally:
        link.stop()
        outbox.close()
