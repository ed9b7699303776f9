"""The staff dashboard in headless Chromium: it loads, shows the devices, and updates live.

Debian's ``chromium`` is driven by Playwright's Python client (``executable_path``; no
browser download). The last test leaves a screenshot in docs/screenshots/dashboard.png.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from edge_agent.contract import (
    AlarmItem,
    Checkout,
    DeviceKind,
    GateAlarm,
    SecurityState,
    VisitorCount,
)
from simulators.central import CentralSimulator
from simulators.central.dashboard import DashboardServer
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
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "screenshots" / "dashboard.png"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium, shared by this module's tests."""
    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def site(
    module_broker: Broker, tmp_path: Path
) -> Iterator[tuple[CentralSimulator, FakeDevice, DashboardServer]]:
    """A simulator, a kiosk-like device on the broker, and the dashboard on a free port."""
    lib = unique_library()
    with CentralSimulator(
        module_broker.url,
        tmp_path / "central.sqlite",
        seed=write_seed(tmp_path, lib),
        instance=f"b-{lib}",
        clock=fixed_clock,
    ) as sim:
        device = FakeDevice(module_broker.url, lib, "gate-1")
        try:
            with DashboardServer(sim, port=free_port(), poll_s=0.1) as server:
                yield sim, device, server
        finally:
            device.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser page."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    yield context.new_page()
    context.close()


def test_page_shows_devices_and_a_new_event_without_reload(
    site: tuple[CentralSimulator, FakeDevice, DashboardServer], page: Page
) -> None:
    """The page lists the devices, then shows an alarm naming its item with no reload."""
    sim, device, server = site
    device.send_status(online=True)
    sim.wait_for(lambda: any(d.online for d in sim.devices()), what="device online")
    page.goto(server.url)
    expect(page.locator("tr[data-device='seed-kiosk']")).to_contain_text("not seen")
    expect(page.locator("tr[data-device='gate-1']")).to_contain_text("online")
    expect(page.locator("#feed li")).to_have_count(0)
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

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
    device.send(envelope(1, alarm, library_id=sim.library_id, device_id="gate-1"))

    expect(page.locator("#feed li.gate_alarm")).to_contain_text("I-SHELF2")
    assert navigations == []


def test_screenshot_of_a_busy_dashboard(
    site: tuple[CentralSimulator, FakeDevice, DashboardServer], page: Page
) -> None:
    """With checkouts, visitors and an alarm stored, the charts draw bars; a screenshot is kept."""
    sim, device, server = site
    lib = sim.library_id
    device.send_status(online=True)
    items = ["I-SHELF", "I-SHELF2", "I-HELD"]
    for seq, item in enumerate(items, start=1):
        checkout = Checkout(patron_id="P-PIN", item_id=item, due_date=TODAY + dt.timedelta(days=21))
        device.send(envelope(seq, checkout, library_id=lib, device_id="gate-1"))
    for n, hour in enumerate((-2, -1, 0)):
        start = NOW + dt.timedelta(hours=hour)
        count = VisitorCount(
            interval_start=start,
            interval_end=start + dt.timedelta(hours=1),
            entered=5 + 4 * n,
            exited=3,
        )
        device.send(
            envelope(4 + n, count, library_id=lib, device_id="gate-1", kind=DeviceKind.GATE)
        )
    sim.wait_for_events(6)
    page.goto(server.url)
    expect(page.locator("#feed li")).to_have_count(6)
    expect(page.locator("#chart-checkouts rect[height='110']")).to_have_count(1)
    expect(page.locator("#chart-visitors rect[height='110']")).to_have_count(1)
    expect(page.locator("[data-total='checkout']")).to_have_text("checkout: 3")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000
