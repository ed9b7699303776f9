"""Broker outages with a real Mosquitto and the central simulator: nothing lost, order intact."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pytest

from edge_agent.config import BrokerSettings
from edge_agent.link import AgentLink, LinkOptions
from edge_agent.outbox import EventState, OutboxFull, OutboxLimits, SqliteOutbox
from simulators.central import CentralSimulator
from tests.support.broker import MosquittoBroker

LIB = "demo-library"


def link_for(url: str, outbox: SqliteOutbox, device_id: str, **options: float) -> AgentLink:
    settings = {"window": 64, "receipt_window": 2000, "resend_after_s": 3.0, **options}
    return AgentLink(
        LinkOptions(LIB, device_id, "kiosk", **settings),  # type: ignore[arg-type]
        BrokerSettings(url=url, reconnect_min_s=0.1, reconnect_max_s=1.0),
        outbox,
    )


def append_concurrently(
    outbox: SqliteOutbox, device_id: str, total: int, threads: int = 16
) -> None:
    """Append ``total`` events from several threads (the way kiosk API calls arrive)."""

    def work(worker: int) -> None:
        for i in range(total // threads):
            payload = {"type": "checkin", "item_id": f"W{worker}-{i}"}
            outbox.append(device_id, "checkin", json.dumps(payload))

    pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


@pytest.mark.slow
@pytest.mark.broker
def test_ten_thousand_events_appended_during_an_outage_all_arrive_in_order(
    fresh_broker: MosquittoBroker, tmp_path: Path
) -> None:
    """Broker down while 10,000 events are committed; after it returns central has each once."""
    device_id = f"kiosk-{uuid.uuid4().hex[:6]}"
    outbox = SqliteOutbox(tmp_path / "agent.sqlite")
    central = CentralSimulator(fresh_broker.url, tmp_path / "central.sqlite", instance="c1")
    central.start()
    link = link_for(fresh_broker.url, outbox, device_id)
    link.start()
    try:
        assert link.wait_for(lambda: link.status().connected, 10)
        fresh_broker.stop()
        assert link.wait_for(lambda: not link.status().connected, 10)
        append_concurrently(outbox, device_id, 10_000)
        link.notify()
        assert outbox.stats().counts[EventState.PENDING] == 10_000
        assert link.status().problem_kind == "unreachable"
        fresh_broker.start()
        assert link.wait_for(lambda: outbox.stats().counts[EventState.CONFIRMED] == 10_000, 120), (
            outbox.stats()
        )
        stored = central.events(device_id)
        assert [e.seq for e in stored] == list(range(1, 10_001))  # once each, in order
        assert central.gaps(device_id) == []
        assert len({str(e.envelope.event_id) for e in stored}) == 10_000
        assert link.delivery.counters.refused == 0
        assert link.delivery.counters.dead_lettered == 0
    finally:
        link.stop()
        central.stop()
        outbox.close()


@pytest.mark.slow
@pytest.mark.broker
def test_a_full_outbox_refuses_until_the_link_drains_it_after_the_outage(
    fresh_broker: MosquittoBroker, tmp_path: Path
) -> None:
    """At the cap appends are refused (not dropped); once the link drains, appends work again."""
    device_id = f"kiosk-{uuid.uuid4().hex[:6]}"
    outbox = SqliteOutbox(tmp_path / "agent.sqlite", limits=OutboxLimits(max_rows=500))
    central = CentralSimulator(fresh_broker.url, tmp_path / "central.sqlite", instance="c1")
    central.start()
    link = link_for(fresh_broker.url, outbox, device_id)
    link.start()
    try:
        fresh_broker.stop()
        append_concurrently(outbox, device_id, 500, threads=4)
        with pytest.raises(OutboxFull, match="500 of 500 events"):
            outbox.append(device_id, "checkin", json.dumps({"type": "checkin", "item_id": "X"}))
        fresh_broker.start()
        assert link.wait_for(lambda: outbox.stats().counts[EventState.CONFIRMED] == 500, 60)
        stored = outbox.append(
            device_id, "checkin", json.dumps({"type": "checkin", "item_id": "Y"})
        )
        assert stored.seq == 501
        assert [
            e.seq for e in central.wait_for_events(501, device_id=device_id, timeout=30)
        ] == list(range(1, 502))
    finally:
        link.stop()
        central.stop()
        outbox.close()
