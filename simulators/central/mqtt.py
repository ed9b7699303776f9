"""The simulator's MQTT plumbing: broker URLs, the paho client it uses, one-shot publishing.

A broker is a URL, as everywhere in libedge: ``mqtt://host:port`` or ``mqtts://host:port``
(TLS with the system's CAs, or ``ca_file``). The client speaks MQTT v5 (shared subscriptions,
response topics and correlation data need it) with paho-mqtt 2.x's VERSION2 callbacks.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from .errors import BrokerUnavailableError, CentralError

__all__ = ["BrokerAddress", "make_client", "parse_broker_url", "publish_once", "stop_loop"]


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the broker is and whether to use TLS."""

    host: str
    port: int
    tls: bool

    @property
    def url(self) -> str:
        """The address written back as a URL."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    """Parse ``mqtt://host[:port]`` or ``mqtts://host[:port]``; raise CentralError if not one."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("mqtt", "mqtts"):
        raise CentralError(f"broker URL {url!r}: the scheme must be mqtt:// or mqtts://")
    if not parsed.hostname or parsed.path not in ("", "/") or parsed.username:
        raise CentralError(
            f"broker URL {url!r}: expected mqtt[s]://host[:port] (credentials go in options)"
        )
    try:
        port = parsed.port
    except ValueError as exc:
        raise CentralError(f"broker URL {url!r}: {exc}") from exc
    tls = parsed.scheme == "mqtts"
    return BrokerAddress(parsed.hostname, port or (8883 if tls else 1883), tls)


def _no_delay(_client: mqtt.Client, _userdata: object, sock: object) -> None:
    """Switch Nagle's algorithm off on every connection paho opens.

    Receipts and answers are small packets; with Nagle on, each waits for the peer's delayed
    ACK (~40 ms), which put ~0.9 s on a 10-item kiosk checkout that asks central per item.
    """
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def make_client(
    client_id: str,
    address: BrokerAddress,
    *,
    username: str | None = None,
    password: str | None = None,
    ca_file: Path | None = None,
    manual_ack: bool = False,
) -> mqtt.Client:
    """A paho v5 client for ``address`` (not yet connected)."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    if username is not None:
        client.username_pw_set(username, password)
    if address.tls:
        client.tls_set(ca_certs=str(ca_file) if ca_file else None)
    # paho's outgoing queue is unlimited by default; a stuck broker must not eat the memory.
    client.max_queued_messages_set(10_000)
    client.on_socket_open = _no_delay
    client.reconnect_delay_set(min_delay=1, max_delay=10)
    return client


def stop_loop(client: mqtt.Client) -> None:
    """Disconnect and wait for the network thread of ``loop_start()`` to end.

    paho's ``loop_stop`` checks its thread, then joins it; but the thread clears that
    attribute itself on its way out, which ``disconnect()`` has just set off. Losing that race
    raises AttributeError from inside paho (seen about one run in a thousand): by then the
    thread has finished, which is all that is waited for here.
    """
    client.disconnect()
    with contextlib.suppress(AttributeError):
        client.loop_stop()


def publish_once(
    client_id: str,
    address: BrokerAddress,
    topic: str,
    payload: bytes,
    *,
    username: str | None = None,
    password: str | None = None,
    ca_file: Path | None = None,
    timeout: float = 10.0,
) -> None:
    """Connect, publish one QoS 1 message, wait for the broker's PUBACK and disconnect."""
    client = make_client(client_id, address, username=username, password=password, ca_file=ca_file)
    connected = threading.Event()
    outcome: list[ReasonCode] = []

    def on_connect(
        _c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: Properties | None
    ) -> None:
        outcome.append(rc)
        connected.set()

    def on_publish(
        _c: mqtt.Client, _u: object, _mid: int, rc: ReasonCode, _p: Properties | None
    ) -> None:
        # A PUBACK with a failure code (e.g. not authorised) is still a PUBACK: check it.
        acked.append(rc)

    acked: list[ReasonCode] = []
    client.on_connect = on_connect
    client.on_publish = on_publish
    try:
        client.connect(address.host, address.port, keepalive=30)
    except OSError as exc:
        raise BrokerUnavailableError(f"cannot reach the broker at {address.url}: {exc}") from exc
    client.loop_start()
    try:
        if not connected.wait(timeout) or outcome[0].is_failure:
            why = outcome[0] if outcome else f"no answer within {timeout} s"
            raise BrokerUnavailableError(f"broker {address.url} refused the connection: {why}")
        info = client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise BrokerUnavailableError(
                f"broker {address.url} did not acknowledge within {timeout} s"
            )
        if acked and acked[0].is_failure:
            raise CentralError(f"broker {address.url} refused the message on {topic}: {acked[0]}")
    finally:
        stop_loop(client)
