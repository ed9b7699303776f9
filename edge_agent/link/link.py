"""The edge agent's link to central: one MQTT connection, one worker thread, one queue.

:class:`AgentLink` wires the pieces of this package together::

    paho callbacks ──(records)──► SimpleQueue ──► worker thread ──► outbox / caches (SQLite)
     (network thread,                               │  Delivery: window, receipts, re-sends
      MqttConnection)  ◄──── publish() ─────────────┘  PendingRequests: answers to ask()

The network thread (:class:`~edge_agent.link.connection.MqttConnection`) only moves
bytes and reports; the worker thread makes every decision and does every disk write, so no
paho callback ever waits on SQLite or an application lock. API threads call :meth:`ask`
(which publishes directly and waits on its own slot) and :meth:`notify` (which only puts a
wake-up on the queue).

On every connection the worker first publishes the retained :class:`DeviceStatus` with
``online: true``; only after the broker accepted it do events flow (see
:mod:`edge_agent.link.delivery`). The Last Will says ``online: false``; a clean
:meth:`stop` publishes that itself and disconnects without triggering the Will.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from queue import SimpleQueue

from paho.mqtt.packettypes import PacketTypes

from edge_agent.caches import CacheError, CacheStore
from edge_agent.config import BrokerSettings, LibedgeSettings
from edge_agent.contract import (
    Command,
    DeviceKind,
    DeviceStatus,
    Request,
    StatusDetails,
)
from edge_agent.contract.central import RequestBody
from edge_agent.contract.topics import (
    device_downlink,
    request_topic,
    response_topic,
    status_topic,
)
from edge_agent.link.answers import AskResult, Offline, PendingRequests
from edge_agent.link.backoff import Backoff
from edge_agent.link.broker import BrokerAddress, WillMessage, new_properties, tls_context
from edge_agent.link.connection import MqttConnection
from edge_agent.link.delivery import Delivery
from edge_agent.link.events import (
    Connected,
    Disconnected,
    LinkEvent,
    Problem,
    ProblemKind,
    Published,
    PublishedBatch,
    Received,
    Wake,
)
from edge_agent.link.inbound import Inbound
from edge_agent.link.marks import MarkWriter
from edge_agent.link.options import LinkCounters, LinkOptions, LinkStatus, software_version
from edge_agent.outbox import EventState, Outbox, OutboxError

__all__ = ["AgentLink", "LinkOptions", "LinkStatus"]

log = logging.getLogger(__name__)

_STOP = object()
#: How long a clean stop waits for the broker to accept the "offline" status.
_STOP_STATUS_WAIT_S = 2.0


class AgentLink:
    """Publishes the outbox to central, applies what central sends, answers ``ask``."""

    def __init__(
        self,
        options: LinkOptions,
        broker: BrokerSettings,
        outbox: Outbox,
        caches: CacheStore | None = None,
        *,
        on_command: Callable[[Command], None] | None = None,
    ) -> None:
        self.options = options
        self.outbox = outbox
        self.caches = caches
        #: What the device's own processes reported (reader connected, printer, alarms today),
        #: merged into the published status; the service wires it to the API's store.
        self.device_details: Callable[[], Mapping[str, object]] = dict
        self._queue: SimpleQueue[LinkEvent | object] = SimpleQueue()
        self.pending = PendingRequests()
        self.marks = MarkWriter(
            outbox,
            options.device_id,
            on_confirmed=self._count_confirmed,
            on_error=lambda exc: self._count_storage_error(),
        )
        self.delivery = Delivery(
            outbox,
            device_id=options.device_id,
            library_id=options.library_id,
            device_kind=options.device_kind,
            window=options.window,
            receipt_window=options.receipt_window,
            resend_after_s=options.resend_after_s,
            refused_after=options.refused_after,
            marks=self.marks,
        )
        address = BrokerAddress.parse(broker.url)
        tls = (
            tls_context(broker.ca_file, broker.cert_file, broker.key_file)
            if address.tls or broker.cert_file or broker.ca_file
            else None
        )
        username = broker.username
        if username is None and broker.password is not None:
            username = options.device_id
        self._version = software_version()
        will = WillMessage(
            status_topic(options.library_id, options.device_id),
            self._status(online=False, details=StatusDetails()).model_dump_json().encode(),
        )
        self.connection = MqttConnection(
            client_id=options.device_id,
            address=address,
            events=self._queue,  # type: ignore[arg-type]
            subscriptions=[device_downlink(options.library_id, options.device_id)],
            will=will,
            username=username,
            password=broker.password.get_secret_value() if broker.password else None,
            tls=tls,
            keepalive_s=broker.keepalive_s,
            session_expiry_s=broker.session_expiry_s,
            max_inflight=options.window,
            backoff=Backoff(
                broker.reconnect_min_s, max(broker.reconnect_max_s, broker.reconnect_min_s)
            ),
        )
        self.counters = LinkCounters()
        self.inbound = Inbound(
            library_id=options.library_id,
            device_id=options.device_id,
            delivery=self.delivery,
            pending=self.pending,
            counters=self.counters,
            caches=caches,
            on_command=on_command,
        )
        self.connected_since: float | None = None
        self._generation: int | None = None
        self._status_gate: tuple[int, int] | None = None  # (generation, mid) of first status
        self._status_ok = False
        self._status_strikes = 0
        self._problem: tuple[ProblemKind, str, float] | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._pass_done = threading.Condition()
        self._count_lock = threading.Lock()
        self._broker_text = f"{address.host}:{address.port}{' (TLS)' if tls else ''}"

    def _count_confirmed(self, changed: int) -> None:
        self.delivery.counters.confirmed += changed

    def _count_storage_error(self) -> None:
        self.delivery.counters.storage_errors += 1

    # ------------------------------------------------------------ lifecycle

    @classmethod
    def from_settings(
        cls, settings: LibedgeSettings, outbox: Outbox, caches: CacheStore | None = None
    ) -> AgentLink:
        """A link configured from ``[site]`` and ``[agent]``."""
        return cls(LinkOptions.from_settings(settings), settings.agent.broker, outbox, caches)

    def start(self) -> None:
        """Start the worker and network threads; the link connects in the background."""
        if self._thread is not None:
            return
        self._stopped.clear()
        self.marks.start()
        self._thread = threading.Thread(
            target=self._run, name=f"link-{self.options.device_id}", daemon=True
        )
        self._thread.start()
        self.connection.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Publish 'offline', commit what was learned, disconnect cleanly; idempotent."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopped.set()
        self._queue.put(_STOP)
        thread.join(timeout)
        self.marks.stop()
        self.connection.stop()
        self.pending.fail_all("stopping", "the agent is stopping")

    def notify(self) -> None:
        """Something was appended (or retried): publish it without waiting for a timer."""
        self._queue.put(Wake())

    # ------------------------------------------------------------ ask

    def ask(self, body: RequestBody, timeout: float | None = None) -> AskResult:
        """Ask central; return its Response, or Offline when it cannot answer in time."""
        wait = self.options.request_timeout_s if timeout is None else timeout
        self._count_request("asked")
        if self._stopped.is_set() or self._thread is None:
            return self._offline("stopping", "the agent is stopping")
        if not self.connection.connected:
            why = self._problem[1] if self._problem else "not connected to the broker yet"
            return self._offline("link_down", f"no link to central: {why}")
        request = Request(
            request_id=uuid.uuid4(),
            library_id=self.options.library_id,
            device_id=self.options.device_id,
            time=dt.datetime.now(dt.UTC),
            body=body,
        )
        key = request.request_id.bytes
        slot = self.pending.open(key)
        properties = new_properties(PacketTypes.PUBLISH)
        properties.ResponseTopic = response_topic(self.options.library_id, self.options.device_id)
        properties.CorrelationData = key
        # model_dump_json reveals a PIN (PatronLookup) for the wire only; it is never logged.
        sent = self.connection.publish(
            request_topic(self.options.library_id, self.options.device_id, body.op),
            request.model_dump_json().encode(),
            properties=properties,
        )
        if sent is None:
            self.pending.close(key)
            return self._offline("not_sent", "the link dropped before the request left")
        if not slot.done.wait(wait):
            self.pending.close(key)
            return self._offline(
                "timeout", f"central did not answer within {wait:g} s", request.request_id
            )
        result = slot.result
        if result is None:  # pragma: no cover - set before done
            return self._offline("link_lost", "no answer")
        self._count_request(result.outcome)
        return result

    def _count_request(self, outcome: str, n: int = 1) -> None:
        # Called from many API threads at once: a lock keeps the counts exact.
        with self._count_lock:
            self.counters.requests[outcome] = self.counters.requests.get(outcome, 0) + n

    def _offline(self, kind: str, reason: str, request_id: uuid.UUID | None = None) -> Offline:
        self._count_request("offline")
        return Offline.model_validate({"kind": kind, "reason": reason, "request_id": request_id})

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``predicate()`` holds, re-checked after every worker pass; False on timeout.

        For tests and tools that need "the link has caught up" without sleeping.
        """
        deadline = time.monotonic() + timeout
        with self._pass_done:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                # The timeout also covers state that changes outside the worker (the outbox).
                self._pass_done.wait(min(remaining, 0.25))
        return True

    # ------------------------------------------------------------ views

    @property
    def commands(self) -> deque[Command]:
        """The last staff commands from central, oldest first."""
        return self.inbound.commands

    @property
    def out_of_service(self) -> bool:
        """Whether central's last word was 'out of service'."""
        return self.inbound.out_of_service

    @property
    def last_central_contact(self) -> float | None:
        """Unix time of the last valid message from central."""
        return self.inbound.last_central_contact

    def status(self) -> LinkStatus:
        """A snapshot for staff (read without locks: figures may be a pass apart)."""
        problem = self._problem
        return LinkStatus(
            phase=self.connection.phase.value,
            connected=self.connection.connected and self._status_ok,
            broker=self._broker_text,
            problem=problem[1] if problem else None,
            problem_kind=problem[0].value if problem else None,
            problem_at=problem[2] if problem else None,
            connected_since=self.connected_since,
            last_central_contact=self.last_central_contact,
            inflight=self.delivery.inflight,
            awaiting_receipt=self.delivery.awaiting_receipt,
            probing=self.delivery.suspect,
            reconnects=max(self.counters.connections - 1, 0),
            last_refusal=self.delivery.last_refusal,
            out_of_service=self.out_of_service,
        )

    def _status(self, *, online: bool, details: StatusDetails) -> DeviceStatus:
        return DeviceStatus(
            library_id=self.options.library_id,
            device_id=self.options.device_id,
            device_kind=DeviceKind(self.options.device_kind),
            online=online,
            time=dt.datetime.now(dt.UTC),
            software_version=self._version,
            details=details,
        )

    def status_details(self) -> StatusDetails:
        """What the retained status says about this device (outbox, caches, service)."""
        values: dict[str, object] = {"out_of_service": self.out_of_service}
        try:
            stats = self.outbox.stats()
        except OutboxError as exc:
            log.warning("status without outbox figures: %s", exc)
        else:
            counts = stats.counts
            values.update(
                outbox_pending=counts[EventState.PENDING],
                outbox_unconfirmed=counts[EventState.PENDING] + counts[EventState.SENT],
                outbox_dead=counts[EventState.DEAD],
                oldest_unconfirmed_s=stats.oldest_unconfirmed_age_s,
            )
        if self.last_central_contact is not None:
            values["last_central_contact"] = dt.datetime.fromtimestamp(
                self.last_central_contact, dt.UTC
            )
        if self.caches is not None:
            try:
                values["cache_versions"] = self.caches.versions()
            except CacheError as exc:
                log.warning("status without cache versions: %s", exc)
        values.update(self.device_details())
        return StatusDetails.model_validate(values)

    # ------------------------------------------------------------ worker thread

    def _run(self) -> None:
        now = time.monotonic()
        next_status = now + self.options.status_interval_s
        next_prune = now + min(60.0, self.options.prune_every_s)
        next_poll = now + self.options.poll_interval_s
        stopping = False
        while not stopping:
            deadline = min(next_status, next_prune, next_poll)
            resend = self.delivery.next_deadline()
            if resend is not None:
                deadline = min(deadline, resend)
            timeout = max(0.0, deadline - time.monotonic())
            batch: list[LinkEvent | object] = []
            try:
                batch.append(self._queue.get(timeout=timeout))
                while len(batch) < 10_000:
                    batch.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            for event in batch:
                if event is _STOP:
                    stopping = True
                else:
                    self._handle(event)  # type: ignore[arg-type]
            self.delivery.flush()
            if not stopping and self._status_ok:
                self.delivery.pump(self._publish_event)
            with self._pass_done:
                self._pass_done.notify_all()
            now = time.monotonic()
            if now >= next_poll:
                # Another process may have appended to the outbox file.
                next_poll = now + self.options.poll_interval_s
                self.delivery.poke()
            if now >= next_status:
                next_status = now + self.options.status_interval_s
                self._publish_status()
            if now >= next_prune:
                next_prune = now + self.options.prune_every_s
                self._prune()
        self._finish()

    def _publish_event(self, topic: str, payload: bytes) -> int | None:
        sent = self.connection.publish(topic, payload)
        if sent is None or sent[0] != self._generation:
            return None
        return sent[1]

    def _publish_status(self, *, online: bool = True) -> tuple[int, int] | None:
        if self._generation is None:
            return None
        status = self._status(online=online, details=self.status_details())
        return self.connection.publish(
            status_topic(self.options.library_id, self.options.device_id),
            status.model_dump_json().encode(),
            retain=True,
        )

    def _prune(self) -> None:
        try:
            pruned = self.outbox.prune_confirmed(self.options.retention_s)
        except OutboxError as exc:
            log.warning("cannot prune confirmed events: %s", exc)
            return
        if pruned:
            log.info(
                "pruned %d confirmed events older than %.1f days",
                pruned,
                self.options.retention_s / 86400,
            )

    def _handle(self, event: LinkEvent) -> None:
        if isinstance(event, PublishedBatch):
            puback = self.delivery.puback
            for ack in event.items:
                if (ack.generation, ack.mid) == self._status_gate:
                    self._status_answered(ack)
                else:
                    puback(ack.generation, ack.mid, ack.reason_code, ack.reason)
        elif isinstance(event, Received):
            self.inbound.handle(event)
        elif isinstance(event, Connected):
            self._connected(event)
        elif isinstance(event, Disconnected):
            self._disconnected(event)
        elif isinstance(event, Problem):
            self._problem = (event.kind, event.message, time.time())
        elif isinstance(event, Wake):
            self.delivery.poke()  # the pump after this batch reads the outbox again

    def _connected(self, event: Connected) -> None:
        self._generation = event.generation
        self._status_ok = False
        self.counters.connections += 1
        gate = self._publish_status()
        self._status_gate = gate
        if gate is None:
            log.info("connection %d dropped before the status could be published", event.generation)

    def _status_answered(self, event: Published) -> None:
        self._status_gate = None
        if event.reason_code >= 0x80:
            topic = status_topic(self.options.library_id, self.options.device_id)
            message = (
                f"the broker refused this device's status on {topic} ({event.reason}); "
                "check that the MQTT username is the device id and the broker ACL"
            )
            self._problem = (ProblemKind.REFUSED, message, time.time())
            log.warning("MQTT link: %s", message)
            self.connection.drop("status refused")
            return
        self._status_ok = True
        self._status_strikes = 0
        self._problem = None
        self.connected_since = time.time()
        self.connection.mark_healthy()
        self.delivery.connected(event.generation)

    def _disconnected(self, event: Disconnected) -> None:
        if event.generation != self._generation:
            return
        if self._status_gate is not None and self._status_gate[0] == event.generation:
            self._status_strikes += 1
            if self._status_strikes >= self.options.refused_after:
                topic = status_topic(self.options.library_id, self.options.device_id)
                message = (
                    f"the broker closed the connection {self._status_strikes} times while this "
                    f"device's status on {topic} was in flight; its ACL probably refuses this "
                    "device's topics (is the MQTT username the device id?)"
                )
                self._problem = (ProblemKind.REFUSED, message, time.time())
                log.warning("MQTT link: %s", message)
        self.delivery.disconnected(event.generation, event.reason, event.by_server)
        self._generation = None
        self._status_gate = None
        self._status_ok = False
        self.connected_since = None
        if self._problem is None and not self._stopped.is_set():
            self._problem = (
                ProblemKind.UNREACHABLE,
                f"connection lost: {event.reason}",
                time.time(),
            )
        failed = self.pending.fail_all("link_lost", f"the link to central dropped: {event.reason}")
        if failed:
            self._count_request("offline", failed)
        log.info("MQTT link down: %s", event.reason)

    def _finish(self) -> None:
        """Say 'offline' while still connected, and commit what the last PUBACKs said."""
        # Connected at all (even if the online status is not acknowledged yet): say offline,
        # or the retained status would stay "online" after a clean stop.
        gate = self._publish_status(online=False)
        deadline = time.monotonic() + _STOP_STATUS_WAIT_S
        while gate is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log.warning("the broker did not confirm the offline status in time")
                break
            try:
                event = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if isinstance(event, PublishedBatch | Received | Disconnected):
                self._handle(event)
                if isinstance(event, Disconnected):
                    break
            if isinstance(event, PublishedBatch) and any(
                (ack.generation, ack.mid) == gate for ack in event.items
            ):
                break
        if not self.delivery.sync(5.0):
            log.warning("some SENT/CONFIRMED marks were not committed at stop (resent later)")
