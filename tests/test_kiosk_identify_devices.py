"""The kiosk's NFC card reader and barcode scanner: a tap or a scan starts a visit.

Everything real but the devices' far ends: a private Mosquitto, the central library system
simulator (default seed), the edge agent service on a unix socket, the simulated FEIG pad on
a pty, and the kiosk built by :func:`kiosk.wiring.open_kiosk` exactly as ``libedge kiosk run``
builds it, with its worker thread and a :class:`~kiosk.workers.PostQueue` standing in for
Kivy's clock (the test thread is the UI thread). The card reader is nfcpy over its ``udp``
driver, answered by :class:`simulators.card.SimulatedCard`; the scanner is the real serial
driver on the pty of :class:`simulators.scanner.SimulatedScanner`.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_agent.config import (
    AgentSettings,
    BrokerSettings,
    DevicesSettings,
    LibedgeSettings,
    SiteSettings,
)
from edge_agent.service import AgentService
from kiosk import messages as msg
from kiosk.i18n import Text
from kiosk.identify_devices import IdentifyDevices
from kiosk.machine import State
from kiosk.wiring import KioskRuntime, open_kiosk
from kiosk.workers import PostQueue
from simulators.card import SimulatedCard
from simulators.central import CentralSimulator
from simulators.reader import FeigSimulator, RFField
from simulators.scanner import SimulatedScanner
from tests.support.broker import MosquittoBroker
from tests.test_kiosk_support import sim_tag

pytestmark = pytest.mark.broker

TOKEN = "identify-devices-token"
WAIT = 20.0  # generous: nfcpy's udp driver and a busy machine; a healthy run never waits this long
NTAG_UID = bytes.fromhex("04A1B2C3D4E5F6")
MISSING_READER = "nfc:usb:ffff:ffff"  # a USB vendor:product no reader has
DEVICE_THREADS = ("nfc-card ", "scanner ")  # the names the drivers give their threads


@dataclass
class Site:
    """The central system and the agent, shared by this module's kiosks."""

    settings: LibedgeSettings
    central: CentralSimulator


@pytest.fixture(scope="module")
def site(
    module_broker: MosquittoBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """Central and the agent on a broker of this module's own."""
    tmp = tmp_path_factory.mktemp("site")
    settings = LibedgeSettings(
        site=SiteSettings(library_id="demo-library", device_id=f"kiosk-{uuid.uuid4().hex[:6]}"),
        agent=AgentSettings(
            database=tmp / "agent.sqlite",
            api_socket=tmp / "agent.sock",
            api_token=TOKEN,  # type: ignore[arg-type]
            request_timeout_s=5.0,
            broker=BrokerSettings(url=module_broker.url, reconnect_min_s=0.1, reconnect_max_s=1),
        ),
    )
    central = CentralSimulator(module_broker.url, tmp / "central.sqlite", instance="c1")
    central.start()
    service = AgentService(settings)
    service.start()
    try:
        assert service.link is not None
        link = service.link
        assert link.wait_for(lambda: link.status().connected, 10)
        yield Site(settings, central)
    finally:
        service.stop()
        central.stop()


@pytest.fixture
def pad() -> Iterator[tuple[str, RFField]]:
    """The simulated pad reader: its pty path and its field."""
    field = RFField()
    sim = FeigSimulator(field, air_time=False)
    try:
        yield sim.start_pty(), field
    finally:
        sim.stop()


@dataclass
class Kiosk:
    """A kiosk as ``libedge kiosk run`` opens it, driven from the test thread."""

    runtime: KioskRuntime
    post: PostQueue

    @property
    def identify(self) -> IdentifyDevices:
        assert self.runtime.identify is not None
        return self.runtime.identify

    def run_until(self, predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
        return self.post.run_until(predicate, timeout)

    def screen(self) -> State:
        return self.runtime.controller.view.screen

    def patron(self) -> str | None:
        session = self.runtime.controller.session
        return session.patron.patron_id if session and session.patron else None

    def shows(self, text: Text) -> bool:
        controller = self.runtime.controller
        return controller.view.notice == controller.catalogues.render(
            text, controller.view.language
        )


@pytest.fixture
def open_site_kiosk(
    site: Site, pad: tuple[str, RFField], tmp_path: Path
) -> Iterator[Callable[..., Kiosk]]:
    """Open a kiosk with the given card reader / scanner URLs; closed after the test."""
    opened: list[KioskRuntime] = []

    def open_(
        *, card_reader: str | None = None, scanner: str | None = None, **more: object
    ) -> Kiosk:
        devices = DevicesSettings(
            item_reader=pad[0],
            card_reader=card_reader,
            scanner=scanner,
            **more,  # type: ignore[arg-type]
        )
        settings = site.settings.model_copy(update={"devices": devices})
        post = PostQueue()
        runtime = open_kiosk(settings, post, data_dir=tmp_path)
        opened.append(runtime)
        # Start-up recovery and the link check have run and reported back.
        assert runtime.worker.wait_idle(WAIT)
        post.run_pending()
        kiosk = Kiosk(runtime, post)
        assert kiosk.screen() is State.ATTRACT
        return kiosk

    yield open_
    for runtime in opened:
        runtime.close()


def device_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(DEVICE_THREADS)]


def close_and_check_threads(kiosk: Kiosk, expected: set[str]) -> None:
    """close() stops the device threads: none of them is left alive."""
    threads = [t for t in device_threads() if t.name in expected]
    assert {t.name for t in threads} == expected, "the devices' threads were not running"
    kiosk.runtime.close()
    for thread in threads:
        thread.join(WAIT)
    assert [t.name for t in threads if t.is_alive()] == []


def test_card_tap_starts_a_visit(open_site_kiosk: Callable[..., Kiosk]) -> None:
    """A library card tapped on the NFC reader identifies its patron, as a typed number would."""
    # Put on the reader once the kiosk is open: a tap before that would race its start-up.
    with SimulatedCard(NTAG_UID, card_number="P0006", ndef="text", present=False) as card:
        kiosk = open_site_kiosk(card_reader=card.url)
        card.present()
        assert kiosk.run_until(lambda: kiosk.screen() is State.CHOOSE), kiosk.screen()
        assert kiosk.patron() == "P0006"  # Hoàng Thị Em: no PIN in the default seed
        assert "Hoàng Thị Em" in kiosk.runtime.controller.view.title
        close_and_check_threads(kiosk, {f"nfc-card {card.url.removeprefix('nfc:')}"})


def test_card_without_a_number_is_told_and_starts_nothing(
    open_site_kiosk: Callable[..., Kiosk],
) -> None:
    """A tapped card carrying no library card number gets the controller's notice, no visit."""
    with SimulatedCard(NTAG_UID, ndef="none", present=False) as card:
        kiosk = open_site_kiosk(card_reader=card.url)
        card.present()
        assert kiosk.run_until(lambda: kiosk.identify.handled >= 1)
        assert kiosk.screen() is State.ATTRACT
        assert kiosk.shows(msg.CARD_NOT_A_NUMBER)


def test_scan_starts_a_visit_and_never_hijacks_one(
    open_site_kiosk: Callable[..., Kiosk],
) -> None:
    """A garbled scan asks to try again; a card scan starts a visit; a second one leaves it be."""
    with SimulatedScanner() as scanner:
        kiosk = open_site_kiosk(scanner=scanner.url)
        assert kiosk.identify.scanner is not None
        assert kiosk.identify.scanner.wait_ready(WAIT)
        scanner.send_raw(b"P00\x0703\r\n")  # line noise inside a scan
        assert kiosk.run_until(lambda: kiosk.identify.handled >= 1)
        assert kiosk.screen() is State.ATTRACT
        assert kiosk.shows(msg.CARD_MISREAD)

        scanner.scan("P0003")
        assert kiosk.run_until(lambda: kiosk.screen() is State.CHOOSE), kiosk.screen()
        assert kiosk.patron() == "P0003"

        # Someone else's card under the scanner during the visit: handled, and ignored.
        scanner.scan("P0005")
        assert kiosk.run_until(lambda: kiosk.identify.handled >= 3)
        assert kiosk.screen() is State.CHOOSE
        assert kiosk.patron() == "P0003"
        close_and_check_threads(kiosk, {f"scanner {scanner.url}"})


def test_scan_with_a_wrong_check_digit_is_a_misread(
    open_site_kiosk: Callable[..., Kiosk],
) -> None:
    """With Luhn check digits configured, a scan failing its check asks to try again."""
    with SimulatedScanner() as scanner:
        kiosk = open_site_kiosk(scanner=scanner.url, card_check_digit="luhn")
        assert kiosk.identify.scanner is not None
        assert kiosk.identify.scanner.wait_ready(WAIT)
        scanner.scan("21234000123456")  # the Luhn check digit would be 5
        assert kiosk.run_until(lambda: kiosk.identify.handled >= 1)
        assert kiosk.screen() is State.ATTRACT
        assert kiosk.shows(msg.CARD_MISREAD)


def test_missing_devices_leave_the_kiosk_working(
    open_site_kiosk: Callable[..., Kiosk],
    pad: tuple[str, RFField],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An absent card reader and scanner are named in warnings; the pad card still works."""
    caplog.set_level(logging.WARNING, logger="kiosk.identify_devices")
    missing_scanner = str(tmp_path / "no-scanner")

    def warned(url: str) -> bool:
        return any(r.levelno == logging.WARNING and url in r.getMessage() for r in caplog.records)

    kiosk = open_site_kiosk(card_reader=MISSING_READER, scanner=missing_scanner)
    assert kiosk.run_until(lambda: warned(MISSING_READER) and warned(missing_scanner))
    messages = [r.getMessage() for r in caplog.records]
    assert any(
        m.startswith(f"card reader {MISSING_READER} (devices.card_reader)") for m in messages
    )
    assert any(m.startswith(f"scanner {missing_scanner} (devices.scanner)") for m in messages)

    _, field = pad
    field.place(sim_tag("P0003", type_of_usage=0x80))  # a library card on the pad
    kiosk.runtime.controller.scan_now()
    assert kiosk.run_until(lambda: kiosk.screen() is State.CHOOSE), kiosk.screen()
    assert kiosk.patron() == "P0003"
    close_and_check_threads(
        kiosk, {f"nfc-card {MISSING_READER.removeprefix('nfc:')}", f"scanner {missing_scanner}"}
    )


def test_a_bad_url_is_named_and_not_fatal(
    open_site_kiosk: Callable[..., Kiosk], caplog: pytest.LogCaptureFixture
) -> None:
    """A card reader URL that is not nfc:…: a warning at start, and the kiosk runs without it."""
    caplog.set_level(logging.WARNING, logger="kiosk.identify_devices")
    kiosk = open_site_kiosk(card_reader="usb:072f:2200")
    assert kiosk.identify.card_reader is None
    assert any(
        "card reader usb:072f:2200 (devices.card_reader) is not used" in r.getMessage()
        for r in caplog.records
    )
    assert kiosk.screen() is State.ATTRACT
