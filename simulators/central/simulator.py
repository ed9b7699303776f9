"""``CentralSimulator``: the simulated central library system on an MQTT broker.

Threads and who owns what:

- paho's network thread runs the callbacks. They do no disk I/O and take no lock of ours: a
  received message is put on one of two queues, as it came (``Inbound``).
- the *ingest* worker drains the event queue in passes (up to ``batch_max`` messages), runs
  :class:`~simulators.central.pipeline.Ingestor` in one transaction, and only after the commit
  publishes the receipts and acknowledges the messages to the broker. It also pushes caches.
- the *request* worker answers requests one by one on the request's response topic, with its
  correlation data, so that a backlog of events never delays a patron at the kiosk.

Messages are acknowledged manually (paho ``manual_ack``), after the commit: the broker's
receive maximum then bounds what waits in memory, and a message this instance has not stored
is not acknowledged. An acknowledgement is only valid on the connection the message came on,
so each message carries the connection's generation and stale ones are not acknowledged.

Every instance writes to the same database file if given the same ``db_path``; the database,
not the instance, decides what is a duplicate (see :mod:`simulators.central.store`).
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.contract.topics import (
    central_subscription,
    receipt_topic,
)

from . import store
from .answers import Answerer
from .api import CentralQueries
from .caches import CACHE_NAMES, PushPlanner, plan_pushes
from .errors import BrokerUnavailableError, CentralError, SeedError
from .mqtt import make_client, parse_broker_url, stop_loop
from .pipeline import Inbound, Ingestor, PassResult, Responder, SeenDevice
from .seed import PinBook, load_seed

__all__ = ["CentralSimulator"]

log = logging.getLogger(__name__)

_IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_STOP = object()
_REQUEST_MARK = "/up/request/"


class CentralSimulator(CentralQueries):
    """The simulated central library system: stores events, answers requests, pushes caches.

    Use as a context manager (``with CentralSimulator(url, db) as sim: ...``) or call
    :meth:`start` and :meth:`stop`. Queries (:meth:`stats`, :meth:`events`, :meth:`gaps`, …)
    read the shared database, so they include what other instances stored.
    """

    def __init__(
        self,
        broker_url: str,
        db_path: Path,
        *,
        seed: Path | None = None,
        instance: str = "central-1",
        library_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        ca_file: Path | None = None,
        cache_interval_s: float = 1.0,
        batch_max: int = 500,
        session_expiry_s: int = 0,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.address = parse_broker_url(broker_url)
        if not _IDENT.match(instance):
            raise CentralError(f"instance name {instance!r}: letters, digits, '.', '_', '-' only")
        self.instance = instance
        self.db_path = Path(db_path)
        loaded = load_seed(seed)
        pins = PinBook(loaded.patrons)
        # From here on only the digests exist: the seed kept by the simulator has no PINs.
        self.seed = loaded.model_copy(
            update={"patrons": [p.model_copy(update={"pin": None}) for p in loaded.patrons]}
        )
        self.library_id = library_id or self.seed.library_id
        if not _IDENT.match(self.library_id):
            raise CentralError(f"library id {self.library_id!r} cannot be a topic segment")
        try:
            self.tz = ZoneInfo(self.seed.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SeedError(f"seed timezone {self.seed.timezone!r} is unknown: {exc}") from exc
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._credentials = (username, password, ca_file)
        self._batch_max = max(1, batch_max)
        self._session_expiry = session_expiry_s
        self._answerer = Answerer(self.seed, pins)
        self._planner = PushPlanner(cache_interval_s, time.monotonic)
        self._events_q: queue.Queue[Any] = queue.Queue()
        self._requests_q: queue.Queue[Any] = queue.Queue()
        self._changed = threading.Condition()
        self._counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()
        self._stopping = threading.Event()
        self._subscribed = threading.Event()
        # Set when start() can stop waiting: subscribed, or refused for good.
        self._settled = threading.Event()
        self._force_push = threading.Event()
        self._connect_error: str | None = None
        self._generation = 0
        self._pending_device_pushes: list[tuple[str, str]] = []
        self._known_devices: set[tuple[str, str]] = set()
        self._client: mqtt.Client | None = None
        self._threads: list[threading.Thread] = []
        self._conns: dict[str, sqlite3.Connection] = {}
        self._api_lock = threading.Lock()

    # ------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 10.0) -> CentralSimulator:
        """Open the database, connect and subscribe; raise BrokerUnavailableError if that fails."""
        if self._client is not None:
            raise CentralError(f"central {self.instance} is already started")
        self._stopping.clear()
        self._settled.clear()
        self._connect_error = None
        # Fresh queues: a failed start or an earlier run may have left a stop mark behind.
        self._events_q, self._requests_q = queue.Queue(), queue.Queue()
        try:
            for role in ("ingest", "requests", "api"):
                self._conns[role] = store.connect(self.db_path)
            now = self._clock()
            other = store.ensure_seeded(
                self._conns["ingest"],
                self.seed,
                self.library_id,
                now.astimezone(self.tz).date(),
                now.isoformat(),
            )
        except sqlite3.Error as exc:
            self._close_conns()
            raise CentralError(f"database {self.db_path} cannot be used: {exc}") from exc
        if other is not None:
            log.warning(
                "database %s was seeded from another seed (%s); give every instance the same seed",
                self.db_path,
                other,
            )
        self._force_push.set()
        username, password, ca_file = self._credentials
        client = make_client(
            f"libedge-{self.instance}",
            self.address,
            username=username,
            password=password,
            ca_file=ca_file,
            manual_ack=True,
        )
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        self._client = client
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self._session_expiry
        # Unacknowledged messages the broker may send us at once: our backpressure.
        properties.ReceiveMaximum = min(2 * self._batch_max, 65535)
        client.connect_async(
            self.address.host,
            self.address.port,
            keepalive=30,
            clean_start=self._session_expiry == 0,
            properties=properties,
        )
        client.loop_start()
        # A refused CONNECT or SUBSCRIBE ends the wait at once; an unreachable broker is
        # retried until the timeout, since it may still be starting.
        self._settled.wait(timeout)
        if not self._subscribed.is_set():
            why = self._connect_error or f"no subscription within {timeout} s"
            self.stop()
            raise BrokerUnavailableError(f"central {self.instance} at {self.address.url}: {why}")
        # Started once subscribed, so that the first cache push finds the client connected;
        # anything received before that waits in the queues.
        self._threads = [
            threading.Thread(target=self._ingest_loop, name=f"{self.instance}-ingest"),
            threading.Thread(target=self._request_loop, name=f"{self.instance}-requests"),
        ]
        for thread in self._threads:
            thread.start()
        log.info(
            "central %s serving library %s from %s on %s",
            self.instance,
            self.library_id,
            self.db_path,
            self.address.url,
        )
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the passes in progress, publish their receipts, disconnect, close the files."""
        client = self._client
        if client is None:
            return
        self._stopping.set()
        self._events_q.put(_STOP)
        self._requests_q.put(_STOP)
        # The workers finish their passes first: those receipts still go out on this client.
        for thread in self._threads:
            thread.join(timeout)
            if thread.is_alive():
                log.error("worker %s did not stop within %s s", thread.name, timeout)
        self._threads = []
        self._client = None
        stop_loop(client)
        self._subscribed.clear()
        with self._api_lock:  # a query in another thread finishes first
            self._close_conns()
        log.info("central %s stopped", self.instance)

    def _close_conns(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns = {}

    def __enter__(self) -> CentralSimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------ paho callbacks (no I/O)

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: object,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self._connect_error = f"broker refused the connection: {reason}"
            log.error("central %s: %s", self.instance, self._connect_error)
            self._settled.set()
            return
        self._generation += 1
        client.subscribe(central_subscription(), qos=1)

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _mid: int,
        reasons: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        failed = [r for r in reasons if r.is_failure]
        if failed:
            self._connect_error = f"subscription to {central_subscription()} refused: {failed[0]}"
            log.error("central %s: %s", self.instance, self._connect_error)
            self._settled.set()
            return
        self._subscribed.set()
        self._settled.set()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: object,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if not self._stopping.is_set():
            log.warning("central %s lost the broker (%s); reconnecting", self.instance, reason)

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            # MQTT requires UTF-8 topics, so a broker should never pass this on; if one does,
            # the message still gets classified (as foreign) instead of killing paho's thread.
            topic = msg._topic.decode("utf-8", "replace")
        props = msg.properties
        inbound = Inbound(
            topic=topic,
            payload=bytes(msg.payload),
            qos=msg.qos,
            mid=msg.mid,
            generation=self._generation,
            response_topic=getattr(props, "ResponseTopic", None) if props else None,
            correlation=getattr(props, "CorrelationData", None) if props else None,
        )
        target = self._requests_q if _REQUEST_MARK in topic else self._events_q
        target.put(inbound)

    # ------------------------------------------------------------ workers

    def _count(self, name: str, by: int = 1) -> None:
        with self._counts_lock:
            self._counts[name] += by

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _ack(self, messages: list[Any]) -> None:
        client = self._client
        for message in messages:
            if (
                client is not None
                and isinstance(message, Inbound)
                and message.qos > 0
                and message.generation == self._generation
            ):
                client.ack(message.mid, message.qos)

    def _publish(
        self,
        topic: str,
        payload: str,
        *,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> mqtt.MQTTMessageInfo | None:
        client = self._client
        if client is None:
            return None
        info = client.publish(topic, payload.encode(), qos=1, retain=retain, properties=properties)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            # Queued for after the reconnect, or dropped when paho's queue is full; either
            # way the device resends what was not confirmed and gets confirmed then.
            log.warning("publish to %s not sent now: %s", topic, mqtt.error_string(info.rc))
        return info

    def _ingest_loop(self) -> None:
        ingestor = Ingestor(
            self._conns["ingest"],
            instance=self.instance,
            library_id=self.library_id,
            policy=self.seed.policy,
            clock=self._clock,
            tz=self.tz,
        )
        stop = False
        while not stop:
            try:
                self._push_caches()
            except Exception:
                # A bug here must not end the worker that stores events.
                log.exception("cache push failed")
            try:
                first = self._events_q.get(timeout=0.1 if self._planner.pending() else 0.5)
            except queue.Empty:
                continue
            batch: list[Any] = []
            if first is _STOP:
                stop = True
            else:
                batch.append(first)
                while len(batch) < self._batch_max:
                    try:
                        item = self._events_q.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stop = True
                        break
                    batch.append(item)
            if batch:
                self._ingest_batch(ingestor, batch)

    def _ingest_batch(self, ingestor: Ingestor, batch: list[Any]) -> None:
        attempt = 0
        while True:
            try:
                result = ingestor.run(batch)
                break
            except sqlite3.OperationalError as exc:
                # Locked or busy beyond the timeout, disk full: nothing was committed, so try
                # the same batch again (in order) until it works or we are told to stop.
                attempt += 1
                log.error("ingest of %d messages failed (try %d): %s", len(batch), attempt, exc)
                if self._stopping.wait(min(0.1 * 2**attempt, 5.0)):
                    return
            except Exception:
                if len(batch) > 1:
                    # A bug triggered by one message must not cost the others their receipts.
                    for message in batch:
                        self._ingest_batch(ingestor, [message])
                    return
                log.exception("message dropped: it could not be processed")
                self._ack(batch)
                return
        self._after_commit(result, batch)

    def _after_commit(self, result: PassResult, batch: list[Any]) -> None:
        for key, draft in sorted(result.receipts.items()):
            receipt = draft.build(key, result.now)
            # Counted before it goes out, so whoever holds the receipt sees it counted.
            self._count("receipts_sent")
            self._publish(receipt_topic(*key), receipt.model_dump_json())
        self._ack(batch)
        for message in result.misrouted:
            self._requests_q.put(message)
        self._planner.mark(result.changed)
        self._pending_device_pushes.extend(result.new_devices)
        self._count("events_stored", result.stored)
        self._notify()

    def _push_caches(self) -> None:
        force = self._force_push.is_set()
        self._force_push.clear()
        due = set(self._planner.due())
        fresh, self._pending_device_pushes = self._pending_device_pushes, []
        names = [name for name in CACHE_NAMES if force or name in due or fresh]
        if not names:
            return
        try:
            pushes = plan_pushes(
                self._conns["ingest"],
                library_id=self.library_id,
                policy=self.seed.policy,
                names=names,
                everyone=force,
                fresh=fresh,
                now=self._clock(),
            )
        except sqlite3.Error as exc:
            log.error("cache push failed, will retry: %s", exc)
            self._planner.mark(list(CACHE_NAMES))
            self._pending_device_pushes.extend(fresh)
            return
        for push in pushes:
            self._publish(push.topic, push.payload, retain=True)
            self._count("cache_pushes")
        for name in names:
            if force or name in due:
                self._planner.pushed(name)
        self._notify()

    def _request_loop(self) -> None:
        responder = Responder(
            self._conns["requests"],
            instance=self.instance,
            library_id=self.library_id,
            answerer=self._answerer,
            clock=self._clock,
            tz=self.tz,
        )
        while True:
            message = self._requests_q.get()
            if message is _STOP:
                return
            try:
                reply = responder.handle(message)
            except Exception:
                log.exception("request on %r could not be answered", message.topic[:120])
                reply = None
            finally:
                self._ack([message])
            if reply is not None:
                properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                if reply.correlation is not None:
                    properties.CorrelationData = reply.correlation
                # Counted before it goes out, so whoever holds the answer sees it counted.
                self._count(f"requests:{reply.op}:{reply.response.outcome}")
                self._publish(reply.topic, reply.response.model_dump_json(), properties=properties)
                if reply.device not in self._known_devices:
                    self._known_devices.add(reply.device)
                    self._events_q.put(SeenDevice(*reply.device))
            self._notify()
