"""The tests' private brokers are real, restartable, and enforce per-device credentials and ACLs."""

from __future__ import annotations

import queue
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from simulators.central.mqtt import stop_loop
from tests.support.broker import AmqttBroker, MosquittoBroker, broker_kind
from tests.support.mqtt import MqttProbe

ACL = Path(__file__).resolve().parent.parent / "config" / "mosquitto" / "acl.conf"


def test_session_broker_is_a_private_real_mosquitto(broker: MosquittoBroker) -> None:
    """The session broker is a mosquitto process of our own that routes a QoS 1 message."""
    assert broker_kind() == "mosquitto", "CI installs mosquitto; the amqtt fallback is for others"
    assert broker.running
    assert broker.port != 1883
    client = MqttProbe(broker.url)
    assert client.connect().is_failure is False
    client.subscribe("$SYS/broker/version")
    client.subscribe("t/ping")
    client.publish("t/ping", b"hello")
    seen = {}
    while len(seen) < 2:
        message = client.get()
        seen[message.topic] = message.payload
    client.close()
    assert seen["t/ping"] == b"hello"
    assert seen["$SYS/broker/version"].startswith(b"mosquitto version")


def test_fresh_broker_stops_and_restarts_keeping_retained_messages(
    fresh_broker: MosquittoBroker,
) -> None:
    """An outage is real (connections refused) and a restart on the same port keeps retained state."""
    publisher = MqttProbe(fresh_broker.url)
    publisher.connect()
    publisher.publish("t/retained", b"kept", retain=True)
    publisher.close()
    port = fresh_broker.port
    fresh_broker.stop()
    assert not fresh_broker.running
    with pytest.raises(ConnectionRefusedError):
        MqttProbe(fresh_broker.url).client.connect("127.0.0.1", port)
    fresh_broker.start()
    assert fresh_broker.port == port
    reader = MqttProbe(fresh_broker.url)
    reader.connect()
    reader.subscribe("t/retained")
    message = reader.get()
    reader.close()
    assert (message.payload, message.retain) == (b"kept", True)


def test_acl_confines_each_device_to_its_own_subtree(broker_factory) -> None:  # type: ignore[no-untyped-def]
    """With the committed ACL, device A cannot publish into B's subtree nor read B's downlink."""
    passwords = {"kiosk-a": "pa", "kiosk-b": "pb", "central": "pc"}
    secured = broker_factory(passwords=passwords, acl_file=ACL, persistence=False)
    central = MqttProbe(secured.url, username="central", password="pc")
    assert not central.connect().is_failure
    central.subscribe("libedge/v1/+/+/up/#")
    device_a = MqttProbe(secured.url, username="kiosk-a", password="pa")
    assert not device_a.connect().is_failure
    forger = MqttProbe(secured.url, username="kiosk-a", password="pa")
    forger.connect()
    outcome = forger.try_publish("libedge/v1/lib/kiosk-b/up/event/checkout", b"forged")
    stop_loop(forger.client)
    assert outcome != "accepted"
    device_a.publish("libedge/v1/lib/kiosk-a/up/event/checkout", b"own")
    # The forged message was never routed: the first thing central sees is A's own event.
    assert central.get().topic == "libedge/v1/lib/kiosk-a/up/event/checkout"
    device_a.subscribe("libedge/v1/lib/kiosk-b/down/#")
    assert not device_a.subscribe("libedge/v1/lib/kiosk-a/down/#")[0].is_failure
    central.publish("libedge/v1/lib/kiosk-b/down/receipt", b"for b")  # A may not read it
    central.publish("libedge/v1/lib/kiosk-a/down/receipt", b"for a")
    assert device_a.get().payload == b"for a"
    with pytest.raises(queue.Empty):
        device_a.get(timeout=0.2)
    with pytest.raises(queue.Empty):
        central.get(timeout=0.2)  # nothing else reached central: no forged message is pending
    device_a.close()
    central.close()


def test_wrong_password_is_refused_with_a_reason(broker_factory) -> None:  # type: ignore[no-untyped-def]
    """A device with the wrong password gets a CONNACK that says so."""
    secured = broker_factory(passwords={"kiosk-a": "right"}, persistence=False)
    client = MqttProbe(secured.url, username="kiosk-a", password="wrong")
    code = client.connect()
    stop_loop(client.client)
    assert code.is_failure
    assert "not authorized" in str(code).lower() or "bad user name" in str(code).lower()


def test_amqtt_fallback_routes_messages(tmp_path: Path) -> None:
    """The embedded amqtt fallback broker starts on a free port and routes MQTT 3.1.1 messages."""
    fallback = AmqttBroker(tmp_path)
    fallback.start()
    try:
        client = MqttProbe(fallback.url, protocol=mqtt.MQTTv311)
        assert not client.connect().is_failure
        client.subscribe("t/x")
        client.publish("t/x", b"via amqtt")
        assert client.get().payload == b"via amqtt"
        client.close()
    finally:
        fallback.stop()
