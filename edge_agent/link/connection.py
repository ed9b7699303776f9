"""One MQTT v5 connection per device identity, kept up by a network thread of our own.

:class:`MqttConnection` owns the socket side of the link and nothing else: it connects
(TLS, username/password or client certificate, persistent session with an explicit
Session Expiry Interval, the device's Last Will), subscribes to the device's downlink,
reconnects with jittered exponential backoff, and turns everything paho reports into
:mod:`edge_agent.link.events` records on a queue. What to publish and what an answer means
is decided by the worker thread in :mod:`edge_agent.link.link`.

Why a network thread of our own instead of paho's ``loop_start()``: paho's thread
reconnects by itself, without jitter, and re-sends the messages it still holds from the
previous connection. Those messages are the reason a broker that refuses a topic by
closing the connection (Mosquitto 2.0.11 does that for MQTT v5 clients) would otherwise
be fed the same refused message forever. Here every connection attempt gets a fresh paho
client driven through paho's external-loop API (``loop_read``/``loop_write``/
``loop_misc`` around our own ``select``), so nothing survives a drop except what the
durable outbox holds, and each connection has a ``generation`` number that tags its
events. All socket writes happen on the network thread: other threads only queue packets
with ``publish()`` and wake the thread through a socket pair.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from enum import StrEnum
from queue import SimpleQueue
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent.link.backoff import Backoff
from edge_agent.link.broker import (
    BrokerAddress,
    WillMessage,
    describe_connect_error,
    new_properties,
    tls_context,
)
from edge_agent.link.events import (
    Connected,
    Disconnected,
    LinkEvent,
    Problem,
    ProblemKind,
    Published,
    PublishedBatch,
    Received,
)

__all__ = ["LinkPhase", "MqttConnection"]

log = logging.getLogger(__name__)

#: CONNACK reason codes that mean "these credentials are not accepted".
_AUTH_CODES = frozenset({0x86, 0x87, 0x8C})
#: A connection must stay up this long after its status was accepted before the backoff
#: starts again from its base; a broker that accepts and then drops us at once (an ACL
#: that refuses one of our messages) must not make us reconnect at the base rate.
STABLE_AFTER_S = 5.0


class LinkPhase(StrEnum):
    """Where the connection is."""

    STOPPED = "stopped"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    WAITING = "waiting"  # backing off before the next attempt


class MqttConnection:
    """Keeps one MQTT v5 connection up and reports what happens on ``events``."""

    def __init__(
        self,
        *,
        client_id: str,
        address: BrokerAddress,
        events: SimpleQueue[LinkEvent],
        subscriptions: Sequence[str],
        will: WillMessage,
        username: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
        keepalive_s: int = 30,
        session_expiry_s: int = 7 * 24 * 3600,
        backoff: Backoff | None = None,
        connect_timeout_s: float = 5.0,
        connack_timeout_s: float = 10.0,
        max_inflight: int = 0,
    ) -> None:
        if address.tls and tls is None:
            tls = tls_context(None, None, None)
        self.client_id = client_id
        self.address = address
        self._events = events
        self._subscriptions = list(subscriptions)
        self._will = will
        self._username = username
        self._password = password
        self._tls = tls
        self._keepalive = keepalive_s
        self._session_expiry = session_expiry_s
        self.backoff = backoff or Backoff(0.5, 60.0)
        self._connect_timeout = connect_timeout_s
        self._connack_timeout = connack_timeout_s
        self._max_inflight = max_inflight  # 0: no limit
        self.phase = LinkPhase.STOPPED
        #: (client, generation) while connected; read without a lock (one atomic attribute).
        self._live: tuple[mqtt.Client, int] | None = None
        self._generation = 0
        #: Connection attempts since start (each TCP connect tried counts one).
        self.attempts = 0
        self._stopping = threading.Event()
        self._drop_requested: str | None = None
        self._healthy = False
        self._thread: threading.Thread | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        # Facts recorded by paho callbacks (on the network thread) and acted on after the
        # paho call returns, still on the network thread.
        self._connack: tuple[int, str, bool] | None = None
        self._lost: tuple[str, bool] | None = None
        self._last_problem: str | None = None
        self._acks: list[Published] = []  # PUBACKs read by paho, not yet handed over

    # ------------------------------------------------------------ other threads

    @property
    def generation(self) -> int:
        """The number of the current (or last) connection."""
        return self._generation

    @property
    def connected(self) -> bool:
        """Whether a connection is up right now."""
        return self._live is not None

    def start(self) -> None:
        """Start the network thread (it connects at once)."""
        if self._thread is not None:
            return
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"mqtt-net-{self.client_id}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Send DISCONNECT (so the Last Will is not published), stop the thread, close sockets."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        self._wake()
        thread.join(timeout)
        if thread.is_alive():  # pragma: no cover - a stuck TCP connect longer than timeout
            log.warning("MQTT network thread did not stop within %.1f s", timeout)
            return
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        self._wake_r = self._wake_w = None
        self.phase = LinkPhase.STOPPED

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> tuple[int, int] | None:
        """Queue a publish on the live connection; return (generation, mid), or None if down."""
        live = self._live
        if live is None:
            return None
        client, generation = live
        info = client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return None
        return generation, info.mid

    def drop(self, reason: str) -> None:
        """Ask the network thread to close the current connection (it then backs off)."""
        self._drop_requested = reason
        self._wake()

    def mark_healthy(self) -> None:
        """The broker accepted our status on this connection: it is a usable link."""
        self._healthy = True

    def _wake(self) -> None:
        sock = self._wake_w
        if sock is None:
            return
        with contextlib.suppress(BlockingIOError, OSError):
            sock.send(b"\0")

    # ------------------------------------------------------------ network thread

    def _run(self) -> None:
        delay = 0.0
        try:
            while not self._stopping.is_set():
                if delay > 0:
                    self.phase = LinkPhase.WAITING
                    if self._stopping.wait(delay):
                        break
                client = self._attempt()
                if client is None:
                    delay = self.backoff.next_delay()
                    continue
                lived = self._serve(client)
                if self._stopping.is_set():
                    break
                if self._healthy and lived >= STABLE_AFTER_S:
                    self.backoff.reset()
                delay = self.backoff.next_delay()
        except Exception:  # pragma: no cover - a bug here must not silently kill the link
            log.exception("MQTT network thread failed; the link is down until restart")
            raise
        finally:
            self._live = None
            self.phase = LinkPhase.STOPPED

    def _problem(self, kind: ProblemKind, message: str) -> None:
        # Log a problem when it changes; the same failure every few seconds goes to debug,
        # and the status (and the staff page) always shows the latest.
        if message != self._last_problem:
            log.warning("MQTT link: %s", message)
            self._last_problem = message
        else:
            log.debug("MQTT link (again): %s", message)
        self._events.put(Problem(kind, message))

    def _new_client(self, generation: int) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            userdata=generation,
        )
        client.connect_timeout = self._connect_timeout
        # paho sends at most this many QoS 1 messages before their PUBACKs and holds the
        # rest in order, sending the next one the moment a PUBACK arrives, on this thread:
        # the window stays full without a hand-off between threads for every message.
        client.max_inflight_messages_set(self._max_inflight)
        if self._username is not None:
            client.username_pw_set(self._username, self._password)
        if self._tls is not None:
            client.tls_set_context(self._tls)
        client.will_set(self._will.topic, self._will.payload, qos=1, retain=self._will.retain)
        events = self._events

        def on_connect(c: Any, gen: int, flags: Any, reason: Any, props: Any) -> None:
            self._connack = (int(reason.value), str(reason), bool(flags.session_present))

        def on_disconnect(c: Any, gen: int, flags: Any, reason: Any, props: Any) -> None:
            self._lost = (str(reason), bool(flags.is_disconnect_packet_from_server))

        acks = self._acks

        def on_publish(c: Any, gen: int, mid: int, reason: Any, props: Any) -> None:
            code = int(reason.value)
            # The name is only read for a refusal; building it for every PUBACK costs.
            # Collected here and handed over once per socket read (see _hand_over_acks).
            acks.append(Published(gen, mid, code, str(reason) if code >= 0x80 else ""))

        def on_message(c: Any, gen: int, message: Any) -> None:
            try:
                topic = message.topic
            except UnicodeDecodeError:
                topic = "<topic is not UTF-8>"
            events.put(Received(gen, topic, bytes(message.payload), message.properties))

        def on_subscribe(c: Any, gen: int, mid: int, reasons: Any, props: Any) -> None:
            refused = [str(r) for r in reasons if r.is_failure]
            if refused:
                events.put(
                    Problem(
                        ProblemKind.REFUSED,
                        f"broker refused the downlink subscription ({', '.join(refused)}): "
                        "receipts and answers cannot arrive; check the broker ACL",
                    )
                )

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_publish = on_publish
        client.on_message = on_message
        client.on_subscribe = on_subscribe
        # Packets queued by other threads are written by this thread only: paho then never
        # writes to the socket from the caller's thread, so writes cannot interleave.
        client.on_socket_register_write = lambda c, u, s: self._wake()
        return client

    def _attempt(self) -> mqtt.Client | None:
        """Open a TCP (+TLS) connection and send CONNECT; None when that failed."""
        self._generation += 1
        self.attempts += 1
        generation = self._generation
        self.phase = LinkPhase.CONNECTING
        self._connack = None
        self._lost = None
        self._healthy = False
        self._drop_requested = None
        client = self._new_client(generation)
        properties = new_properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self._session_expiry
        try:
            client.connect(
                self.address.host,
                self.address.port,
                keepalive=self._keepalive,
                clean_start=False,
                properties=properties,
            )
        except (OSError, ValueError, ssl.CertificateError) as exc:
            self._close(client)
            kind, message = describe_connect_error(exc, self.address)
            self._problem(kind, message)
            return None
        sock = client.socket()
        if isinstance(sock, socket.socket):
            # paho leaves Nagle's algorithm on: small PUBLISH packets would then wait for
            # the ACK of the previous ones, capping a drain at a few thousand events/s.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return client

    def _serve(self, client: mqtt.Client) -> float:
        """Run one connection until it ends; return how long it was up (seconds)."""
        generation = self._generation
        connack_deadline = time.monotonic() + self._connack_timeout
        up_since: float | None = None
        try:
            while not self._stopping.is_set():
                timeout = 1.0
                if up_since is None:
                    timeout = max(0.0, min(timeout, connack_deadline - time.monotonic()))
                if not self._turn(client, timeout):
                    break
                if self._connack is not None and up_since is None:
                    code, reason, session_present = self._connack
                    if code >= 0x80:
                        self._refused_connack(code, reason)
                        break
                    up_since = time.monotonic()
                    self._on_up(client, generation, session_present)
                if self._lost is not None:
                    break
                if self._drop_requested is not None:
                    log.info("MQTT link: closing the connection: %s", self._drop_requested)
                    break
                if up_since is None and time.monotonic() >= connack_deadline:
                    self._problem(
                        ProblemKind.PROTOCOL,
                        f"broker {self.address.host}:{self.address.port} sent no CONNACK within "
                        f"{self._connack_timeout:.0f} s",
                    )
                    break
            if self._stopping.is_set() and up_since is not None:
                self._disconnect_cleanly(client)
        finally:
            self._live = None
            self._close(client)
            self._hand_over_acks()
            if up_since is not None:
                reason, by_server = self._lost or (self._drop_requested or "closed", False)
                if self._stopping.is_set():
                    reason, by_server = "the agent is stopping", False
                self._events.put(Disconnected(generation, reason, by_server))
        return 0.0 if up_since is None else time.monotonic() - up_since

    def _turn(self, client: mqtt.Client, timeout: float) -> bool:
        """Wait up to ``timeout`` for the socket, then read, write and keep alive once.

        Returns False when the socket is gone (paho closed it after an error).
        """
        sock = client.socket()
        if sock is None:
            return False
        # TLS may hold decrypted bytes that select() cannot see.
        pending = sock.pending() if isinstance(sock, ssl.SSLSocket) else 0
        wake = self._wake_r
        readers: list[Any] = [sock] if wake is None else [sock, wake]
        writers: list[Any] = [sock] if client.want_write() else []
        try:
            readable, _, _ = select.select(readers, writers, [], 0.0 if pending else timeout)
        except (OSError, ValueError):
            readable = [sock]  # the socket died under us: let loop_read find out
        if wake is not None and wake in readable:
            with contextlib.suppress(BlockingIOError, OSError):
                wake.recv(4096)
        if sock in readable or pending:
            client.loop_read()
            self._hand_over_acks()
        if client.socket() is not None and client.want_write():
            client.loop_write()
        if client.socket() is not None:
            client.loop_misc()
        return True

    def _hand_over_acks(self) -> None:
        if self._acks:
            batch = self._acks[:]
            self._acks.clear()  # the same list object: on_publish holds a reference to it
            self._events.put(PublishedBatch(batch))

    def _on_up(self, client: mqtt.Client, generation: int, session_present: bool) -> None:
        for topic in self._subscriptions:
            client.subscribe(topic, qos=1)
        self._live = (client, generation)
        self.phase = LinkPhase.CONNECTED
        self._last_problem = None
        log.info(
            "MQTT link up to %s:%d as %s (session %s)",
            self.address.host,
            self.address.port,
            self.client_id,
            "resumed" if session_present else "new",
        )
        self._events.put(Connected(generation, session_present))

    def _refused_connack(self, code: int, reason: str) -> None:
        who = f"user {self._username!r}" if self._username else "this client certificate"
        if code in _AUTH_CODES:
            self._problem(
                ProblemKind.AUTH,
                f"broker refused the credentials of {who} ({reason}, 0x{code:02X}); "
                "check agent.broker.username/password or the client certificate",
            )
        else:
            self._problem(
                ProblemKind.REFUSED, f"broker refused the connection: {reason} (0x{code:02X})"
            )

    def _disconnect_cleanly(self, client: mqtt.Client) -> None:
        """Send DISCONNECT and give it a moment to leave (the Will is then discarded)."""
        client.disconnect()
        deadline = time.monotonic() + 2.0
        while client.socket() is not None and client.want_write():
            sock = client.socket()
            remaining = deadline - time.monotonic()
            if sock is None or remaining <= 0:
                break
            with contextlib.suppress(OSError, ValueError):
                select.select([], [sock], [], remaining)
            client.loop_write()

    @staticmethod
    def _close(client: mqtt.Client) -> None:
        sock = client.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
