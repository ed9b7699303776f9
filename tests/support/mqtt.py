"""Small synchronous paho helpers for tests: connect and wait for CONNACK, collect messages."""

from __future__ import annotations

import queue
import threading
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from simulators.central.mqtt import stop_loop


@dataclass
class Received:
    """One message a test client received."""

    topic: str
    payload: bytes
    retain: bool
    properties: Any


class MqttProbe:
    """A paho client on its own network thread that queues what it receives."""

    def __init__(
        self,
        url: str,
        *,
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        protocol: int = mqtt.MQTTv5,
    ) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 1883
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-{uuid.uuid4().hex[:8]}",
            protocol=protocol,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.messages: queue.Queue[Received] = queue.Queue()
        self.connack: queue.Queue[ReasonCode] = queue.Queue()
        self.subacks: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.published: dict[int, threading.Event] = {}
        self.client.on_connect = lambda c, u, f, rc, p: self.connack.put(rc)
        self.client.on_message = lambda c, u, m: self.messages.put(
            Received(m.topic, m.payload, bool(m.retain), m.properties)
        )
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.put(list(rcs))
        self.outcomes: queue.Queue[str] = queue.Queue()
        self.client.on_publish = lambda c, u, mid, rc, p: self.outcomes.put(
            "refused: " + str(rc) if rc.is_failure else "accepted"
        )
        self.client.on_disconnect = lambda c, u, f, rc, p: self.outcomes.put("disconnected")

    def connect(self, timeout: float = 10.0) -> ReasonCode:
        """Connect and return the CONNACK reason code."""
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        return self.connack.get(timeout=timeout)

    def subscribe(self, topic: str, qos: int = 1, timeout: float = 10.0) -> list[ReasonCode]:
        """Subscribe and wait for the SUBACK."""
        self.client.subscribe(topic, qos)
        return self.subacks.get(timeout=timeout)

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> None:
        """Publish and wait until the broker acknowledged it (QoS 1)."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout=10)

    def try_publish(self, topic: str, payload: bytes, timeout: float = 10.0) -> str:
        """Publish at QoS 1 and say what the broker did: 'accepted', 'refused: …' or 'disconnected'.

        Brokers refuse an unauthorised publish either with a failure PUBACK or by closing the
        connection (Mosquitto 2.0.11 does the latter for MQTT v5 clients).
        """
        self.client.publish(topic, payload, qos=1)
        return self.outcomes.get(timeout=timeout)

    def get(self, timeout: float = 10.0) -> Received:
        """The next received message."""
        return self.messages.get(timeout=timeout)

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        stop_loop(self.client)
