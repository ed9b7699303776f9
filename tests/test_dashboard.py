"""The staff dashboard's server: snapshot contents, the live event stream, static files.

Everything runs for real: a Mosquitto broker, the central simulator on a SQLite file, a
device publishing events over MQTT, and uvicorn serving the dashboard on a free port.
"""

from __future__ import annotations

import datetime as dt
import json
import queue
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_agent.contract import (
    AlarmItem,
    Checkout,
    DeviceKind,
    GateAlarm,
    SecurityState,
    VisitorCount,
)
from simulators.central import CentralSimulator
from simulators.central.dashboard import DashboardServer, snapshot
from tests.support.broker import free_port
from tests.test_central_common import (
    NOW,
    TODAY,
    FakeDevice,
    envelope,
    fixed_clock,
    unique_library,
    write_seed,
)

Broker = Any


@pytest.fixture
def central(module_broker: Broker, tmp_path: Path) -> Iterator[tuple[CentralSimulator, str]]:
    """A running simulator with its own library id, and that id."""
    lib = unique_library()
    with CentralSimulator(
        module_broker.url,
        tmp_path / "central.sqlite",
        seed=write_seed(tmp_path, lib),
        instance=f"d-{lib}",
        clock=fixed_clock,
    ) as sim:
        yield sim, lib


@pytest.fixture
def device(module_broker: Broker, central: tuple[CentralSimulator, str]) -> Iterator[FakeDevice]:
    """A kiosk on the broker, publishing as the simulator's library."""
    dev = FakeDevice(module_broker.url, central[1], "kiosk-7")
    yield dev
    dev.close()


@pytest.fixture
def server(central: tuple[CentralSimulator, str]) -> Iterator[DashboardServer]:
    """The dashboard on a free loopback port."""
    with DashboardServer(central[0], port=free_port(), poll_s=0.05) as srv:
        yield srv


def _checkout(item: str) -> Checkout:
    return Checkout(patron_id="P-FREE", item_id=item, due_date=TODAY + dt.timedelta(days=21))


def test_snapshot_lists_devices_feed_charts_and_totals(
    central: tuple[CentralSimulator, str], device: FakeDevice
) -> None:
    """A snapshot shows the seeded and seen devices, each event, hourly charts and totals."""
    sim, lib = central
    device.send_status(online=True)
    device.send(envelope(1, _checkout("I-SHELF"), library_id=lib, device_id="kiosk-7"))
    alarm = GateAlarm(
        pass_id=uuid.uuid4(),
        items=[
            AlarmItem(
                tag_uid="E004015012345678",
                item_id="I-SHELF2",
                title="Số đỏ",
                security=SecurityState.SECURED,
                data_model="iso28560-2",
                antenna="left",
            )
        ],
    )
    visitors = VisitorCount(
        interval_start=NOW, interval_end=NOW + dt.timedelta(minutes=15), entered=7, exited=3
    )
    device.send(envelope(2, alarm, library_id=lib, device_id="kiosk-7", kind=DeviceKind.GATE))
    device.send(envelope(3, visitors, library_id=lib, device_id="kiosk-7", kind=DeviceKind.GATE))
    sim.wait_for_events(3)
    sim.wait_for(lambda: any(d.online for d in sim.devices()), what="device online")

    snap = snapshot(sim)

    devices = {d["device_id"]: d for d in snap["devices"]}
    assert devices["seed-kiosk"]["online"] is None
    assert devices["kiosk-7"]["online"] is True
    assert devices["kiosk-7"]["outbox_pending"] == 0
    # Times are shown as the library's wall clock: 03:00 UTC is 10:00 in Hà Nội.
    assert {e["local_time"] for e in snap["feed"]} == {"10:00:00"}
    assert devices["kiosk-7"]["last_seen_local"] is not None
    texts = [e["text"] for e in snap["feed"]]
    assert any("checkout of I-SHELF to P-FREE" in t for t in texts)
    assert any(t.startswith("ALARM: I-SHELF2") and "Số đỏ" in t for t in texts)
    hour = NOW.astimezone(sim.tz).hour
    assert snap["charts"]["visitors"][hour] == 7
    assert sum(snap["charts"]["visitors"]) == 7
    assert snap["charts"]["checkouts"][hour] == 1
    assert snap["totals"]["events"] == 3
    assert snap["totals"]["duplicates"] == 0
    assert snap["gaps"] == []


def test_snapshot_shows_gaps_and_duplicates(
    central: tuple[CentralSimulator, str], device: FakeDevice
) -> None:
    """A skipped sequence number is listed as a gap and a re-sent event counts as a duplicate."""
    sim, lib = central
    first = envelope(1, library_id=lib, device_id="kiosk-7")
    device.send(first)
    device.send(envelope(4, library_id=lib, device_id="kiosk-7"))
    device.send(first)
    sim.wait_for(lambda: sim.stats().duplicates_total == 1, what="one duplicate")

    snap = snapshot(sim)

    assert snap["gaps"] == [{"device_id": "kiosk-7", "first": 2, "last": 3, "size": 2}]
    assert snap["totals"]["duplicates"] == 1
    assert snap["totals"]["open_gaps"] == 1


def test_page_and_static_files_are_served(server: DashboardServer) -> None:
    """The page, its script and style are served; an unknown static name is a 404 naming it."""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        page = client.get("/")
        assert page.status_code == 200
        assert "/static/dashboard.js" in page.text
        assert "EventSource" in client.get("/static/dashboard.js").text
        assert client.get("/static/dashboard.css").headers["content-type"].startswith("text/css")
        missing = client.get("/static/../../etc/passwd.js")
        assert missing.status_code == 404
        missing = client.get("/static/nothing.js")
        assert missing.status_code == 404
        assert "nothing.js" in missing.text


def test_snapshot_endpoint_matches_the_view(
    server: DashboardServer, central: tuple[CentralSimulator, str], device: FakeDevice
) -> None:
    """GET /api/snapshot returns what the snapshot view computes."""
    sim, lib = central
    device.send(envelope(1, _checkout("I-SHELF"), library_id=lib, device_id="kiosk-7"))
    sim.wait_for_events(1)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        body = client.get("/api/snapshot").json()
    assert body == json.loads(json.dumps(snapshot(sim)))


def _read_stream(url: str, out: queue.Queue[dict[str, Any]], stop: threading.Event) -> None:
    """Put each ``snapshot`` event of the stream on ``out`` until ``stop`` is set."""
    with httpx.Client(timeout=10) as client, client.stream("GET", url) as response:
        event = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "snapshot":
                out.put(json.loads(line[6:]))
            if stop.is_set():
                return


def test_stream_sends_a_new_snapshot_when_an_event_arrives(
    server: DashboardServer, central: tuple[CentralSimulator, str], device: FakeDevice
) -> None:
    """The SSE stream sends the current state at once, then a new one holding a new event."""
    sim, lib = central
    got: queue.Queue[dict[str, Any]] = queue.Queue()
    stop = threading.Event()
    reader = threading.Thread(target=_read_stream, args=(server.url + "api/stream", got, stop))
    reader.start()
    try:
        first = got.get(timeout=10)
        assert first["feed"] == []
        device.send(envelope(1, _checkout("I-SHELF"), library_id=lib, device_id="kiosk-7"))
        sim.wait_for_events(1)
        second = got.get(timeout=10)
        assert [e["key"] for e in second["feed"]] == ["kiosk-7:1"]
    finally:
        stop.set()
        server.stop()  # ends the stream, so the reader's loop returns
        reader.join(10)
    assert not reader.is_alive()
