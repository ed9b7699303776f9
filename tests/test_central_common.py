"""Helpers shared by the central simulator's tests: a small explicit seed, envelopes, a fake device.

This module holds no tests. The seed below is written out in full so that every expectation in
the tests can be traced to a line here, rather than to the packaged demo seed.
"""

from __future__ import annotations

import datetime as dt
import json
import queue
import uuid
from pathlib import Path
from typing import Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent.contract import (
    CacheUpdate,
    DeliveryReceipt,
    DeviceKind,
    DeviceStatus,
    Envelope,
    Refusal,
    RefusalReason,
    Request,
    Response,
    decode,
)
from edge_agent.contract.topics import (
    device_downlink,
    event_topic,
    receipt_topic,
    request_topic,
    response_topic,
    status_topic,
)
from simulators.central import CentralSimulator, CentralStats
from tests.support.mqtt import MqttProbe, Received

#: The simulators' fixed clock: 10:00 in Hanoi on 10 March 2025.
NOW = dt.datetime(2025, 3, 10, 3, 0, tzinfo=dt.UTC)
TODAY = dt.date(2025, 3, 10)
SECRET_PIN = "8642097531"
WRONG_PIN = "1357924680"

SEED: dict[str, Any] = {
    "library_id": "test-library",
    "currency": "VND",
    "timezone": "Asia/Ho_Chi_Minh",
    "policy": {
        "loan_days": 21,
        "max_loans": 5,
        "max_renewals": 1,
        "offline_max_items": 2,
        "fines_block_threshold": 30000,
        "hold_pickup_days": 4,
    },
    "patrons": [
        {"patron_id": "P-PIN", "name": "Nguyễn Thị Lan", "pin": SECRET_PIN, "language": "vi"},
        {"patron_id": "P-FREE", "name": "Emma Wilson", "language": "en"},
        {
            "patron_id": "P-BLOCKED",
            "name": "Trần Văn Khoa",
            "blocked": True,
            "block_reason": "card expired",
        },
        {"patron_id": "P-FINES", "name": "Lê Minh", "fines": 45000},
        {"patron_id": "P-FULL", "name": "Phạm Hùng", "max_loans": 1},
        {"patron_id": "P-HOLDER", "name": "John Smith"},
    ],
    "items": [
        {"item_id": "I-SHELF", "title": "Dế Mèn phiêu lưu ký"},
        {"item_id": "I-SHELF2", "title": "Số đỏ"},
        {"item_id": "I-HELD", "title": "Truyện Kiều"},
        {"item_id": "I-READY", "title": "Harry Potter and the Philosopher's Stone"},
        {"item_id": "I-REF", "title": "Từ điển Tiếng Việt", "not_for_loan": True},
        {"item_id": "I-NOOFF", "title": "Chí Phèo", "not_for_offline_issue": True},
        {"item_id": "I-LOAN", "title": "Tắt đèn"},
        {"item_id": "I-LIMIT", "title": "Matilda"},
        {"item_id": "I-OVERDUE", "title": "The Hobbit"},
        {"item_id": "I-FULL", "title": "Mắt biếc"},
    ],
    "loans": [
        {"item_id": "I-LOAN", "patron_id": "P-FREE", "due_in_days": 5},
        {"item_id": "I-LIMIT", "patron_id": "P-FREE", "due_in_days": 3, "renewals": 1},
        {"item_id": "I-OVERDUE", "patron_id": "P-FREE", "due_in_days": -2},
        {"item_id": "I-FULL", "patron_id": "P-FULL", "due_in_days": 9},
    ],
    "holds": [
        {"item_id": "I-HELD", "patron_id": "P-HOLDER"},
        {"item_id": "I-READY", "patron_id": "P-FREE", "ready": True, "pickup_in_days": 3},
        {"item_id": "I-OVERDUE", "patron_id": "P-HOLDER"},
    ],
    "devices": [{"device_id": "seed-kiosk", "kind": "kiosk"}],
}


def fixed_clock() -> dt.datetime:
    """The tests' clock: always NOW."""
    return NOW


def write_seed(directory: Path, library_id: str = "test-library", **changes: Any) -> Path:
    """Write the test seed (with changes) as JSON and return its path."""
    data = {**SEED, "library_id": library_id, **changes}
    path = directory / f"seed-{library_id}.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def unique_library() -> str:
    """A library id no other test uses, so retained messages on the shared broker do not mix."""
    return f"lib-{uuid.uuid4().hex[:10]}"


def envelope(
    seq: int,
    payload: Any = None,
    *,
    device_id: str = "kiosk-1",
    library_id: str = "test-library",
    event_id: uuid.UUID | None = None,
    time: dt.datetime = NOW,
    clock_trusted: bool = True,
    kind: DeviceKind = DeviceKind.KIOSK,
) -> Envelope:
    """An event envelope; by default a refusal, which changes no circulation state."""
    return Envelope(
        event_id=event_id or uuid.uuid4(),
        library_id=library_id,
        device_id=device_id,
        device_kind=kind,
        seq=seq,
        time=time,
        clock_trusted=clock_trusted,
        payload=payload or Refusal(action="checkout", reason=RefusalReason.ITEM_UNKNOWN),
    )


class FakeDevice:
    """A device on the real broker: publishes uplinks, sorts what central sends it by topic."""

    def __init__(self, url: str, library_id: str, device_id: str = "kiosk-1") -> None:
        self.library_id, self.device_id = library_id, device_id
        self.probe = MqttProbe(url)
        assert not self.probe.connect().is_failure
        self.probe.subscribe(device_downlink(library_id, device_id))
        self.stash: list[Received] = []
        self._status_sent = False

    def close(self) -> None:
        """Clear the retained status this device left on the shared broker, and disconnect."""
        if self._status_sent:
            self.probe.publish(status_topic(self.library_id, self.device_id), b"", retain=True)
        self.probe.close()

    def send(self, env: Envelope | bytes, kind: str = "refusal") -> None:
        """Publish an event (or raw bytes on the ``kind`` event topic) and wait for its PUBACK."""
        if isinstance(env, Envelope):
            topic = event_topic(env.library_id, self.device_id, env.kind)
            self.probe.publish(topic, env.model_dump_json())
        else:
            self.probe.publish(event_topic(self.library_id, self.device_id, kind), env)

    def send_status(self, online: bool = True) -> None:
        """Publish a retained device status."""
        status = DeviceStatus(
            library_id=self.library_id,
            device_id=self.device_id,
            device_kind=DeviceKind.KIOSK,
            online=online,
            time=NOW,
            software_version="test",
        )
        topic = status_topic(self.library_id, self.device_id)
        self.probe.publish(topic, status.model_dump_json(), retain=True)
        self._status_sent = True

    def next_on(self, topic: str, timeout: float = 10.0) -> Received:
        """The next message on ``topic`` (others are kept in ``stash``)."""
        for n, message in enumerate(self.stash):
            if message.topic == topic:
                return self.stash.pop(n)
        while True:
            message = self.probe.get(timeout)
            if message.topic == topic:
                return message
            self.stash.append(message)

    def receipts_until(
        self, confirmed: set[int], rejected: set[int] | None = None, timeout: float = 10.0
    ) -> list[DeliveryReceipt]:
        """Collect receipts until they confirm and reject (at least) the given numbers."""
        topic = receipt_topic(self.library_id, self.device_id)
        receipts: list[DeliveryReceipt] = []
        got_ok: set[int] = set()
        got_bad: set[int] = set()
        while not (confirmed <= got_ok and (rejected or set()) <= got_bad):
            receipt = decode(DeliveryReceipt, self.next_on(topic, timeout).payload)
            receipts.append(receipt)
            got_ok.update(receipt.confirmed)
            got_bad.update(r.seq for r in receipt.rejected)
        return receipts

    def cache(self, name: str, timeout: float = 10.0) -> tuple[CacheUpdate, bool]:
        """The next update of one cache and whether it came as a retained message."""
        topic = f"{device_downlink(self.library_id, self.device_id)[:-1]}cache/{name}"
        message = self.next_on(topic, timeout)
        return decode(CacheUpdate, message.payload), message.retain

    def request(
        self,
        body: Any,
        *,
        response_to: str | None = None,
        raw: bytes | None = None,
        op: str | None = None,
        timeout: float = 10.0,
    ) -> tuple[Response, bytes | None]:
        """Ask central; return its response and the correlation data it came back with."""
        request: Request | None = None
        if raw is None:
            request = Request(
                request_id=uuid.uuid4(),
                library_id=self.library_id,
                device_id=self.device_id,
                time=NOW,
                body=body,
            )
            raw, op = request.model_dump_json().encode(), op or request.body.op
        assert op is not None, "raw requests need their op for the topic"
        correlation = uuid.uuid4().bytes
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.ResponseTopic = response_to or response_topic(self.library_id, self.device_id)
        properties.CorrelationData = correlation
        topic = request_topic(self.library_id, self.device_id, op)
        self.probe.client.publish(topic, raw, qos=1, properties=properties)
        own = response_topic(self.library_id, self.device_id)
        while True:
            message = self.next_on(own, timeout)
            got = getattr(message.properties, "CorrelationData", None)
            if got == correlation:
                response = decode(Response, message.payload)
                if request is not None:
                    assert response.request_id == request.request_id
                return response, got


def settle(sim: CentralSimulator, probe: MqttProbe) -> CentralStats:
    """Stats once everything the broker sent the simulator so far has been processed.

    The shared test broker may hand a new subscriber retained messages of other tests (other
    libraries: foreign). A marker published now is processed after them, so counts taken once
    it is seen are a clean baseline.
    """
    marker = f"libedge/v1/settle-{uuid.uuid4().hex[:8]}/x/up/status"
    probe.publish(marker, b"{}")
    sim.wait_for(lambda: any(r.topic == marker for r in sim.rejected(20)), what="settled")
    return sim.stats()


def drain(q: queue.Queue[Any]) -> list[Any]:
    """Everything currently in a queue."""
    items = []
    while True:
        try:
            items.append(q.get_nowait())
        except queue.Empty:
            return items
