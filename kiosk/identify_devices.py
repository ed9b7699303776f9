"""The patron's own ways in: the NFC card reader and the barcode scanner, wired to the controller.

:func:`open_identify_devices` creates and starts the card reader (``[devices] card_reader``)
and the scanner (``[devices] scanner``) that the configuration names. Each runs its own thread
(:mod:`hardware.nfc_card`, :mod:`hardware.scanner`); every event it reports is handed to the
UI thread through the kiosk's ``post`` and handled there, because the controller's state
belongs to that thread alone.

What the controller gets:

- a card tap with a library card number, or a scan, on the attract screen:
  :meth:`~kiosk.controller.KioskController.card_presented`, as if typed on the keypad (the
  controller checks the number's pattern and check digit and shows its own notices);
- the same during a visit, on the staff screens or out of service: nothing (a debug line).
  A library card on the pad during a visit does not end or replace the visit either
  (:mod:`kiosk.scanning`);
- a card that could not be read (unsupported, pulled away too early, garbled or over-long
  scan) on the attract screen: the controller's "could not read your card" notice; a tapped
  card that carries no library card number: its "not a library card number" notice.

A device that is missing, cannot be opened or stops answering does not stop the kiosk: patrons
still have the pad and the keypad. The first failure is logged as a warning naming the device
and its URL; the driver keeps retrying with its own backoff (repeats are logged at debug
level), and the first tap or scan afterwards logs that the device works again. A URL that
cannot name a device (a card reader URL not starting ``nfc:``, an ``evdev:`` scanner without
the evdev package) is a warning at start, and that device stays unused until the
configuration is corrected. Card numbers and PINs are never logged here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from hardware.nfc_card import (
    CardEvent,
    CardProblemKind,
    CardReaderProblem,
    CardReaderSettings,
    CardReaderURLError,
    CardTap,
    NfcCardReader,
    open_card_reader,
)
from hardware.scanner import (
    EvdevScanner,
    Scan,
    ScanEvent,
    ScannerProblem,
    ScannerSettings,
    ScannerUnavailableError,
    ScannerURLError,
    ScanProblemKind,
    SerialScanner,
    open_scanner,
)
from kiosk import messages as msg
from kiosk.i18n import Text
from kiosk.machine import State
from kiosk.workers import Post

if TYPE_CHECKING:
    from kiosk.controller import KioskController

__all__ = ["CARD_READER_STOP_S", "SCANNER_STOP_S", "IdentifyDevices", "open_identify_devices"]

log = logging.getLogger(__name__)

#: How long closing waits for each device thread. nfcpy checks for termination between
#: discovery cycles (milliseconds on a USB reader); a serial scanner reads with a 0.1 s timeout.
CARD_READER_STOP_S = 10.0
SCANNER_STOP_S = 5.0

#: Problems with a card or a scan (not with the device): the patron is asked to try again.
_CARD_MISREADS = frozenset({CardProblemKind.UNKNOWN_TECHNOLOGY, CardProblemKind.CARD_REMOVED})
_SCAN_MISREADS = frozenset({ScanProblemKind.GARBLED, ScanProblemKind.TOO_LONG})


@dataclass
class _Device:
    """One configured device, as the log names it, and whether it is failing now."""

    what: str  #: "card reader" or "scanner"
    key: str  #: its configuration key, e.g. "devices.card_reader"
    url: str
    failing: bool = False

    def __str__(self) -> str:
        return f"{self.what} {self.url} ({self.key})"


class IdentifyDevices:
    """The card reader and scanner of one kiosk; see the module docstring.

    Created by :func:`open_identify_devices`; :meth:`close` stops both threads. ``handled``
    counts the events handled on the UI thread (taps, scans and problems alike), so that a
    caller can wait until an event has been dealt with, even one that changed nothing.
    """

    def __init__(self, controller: KioskController, post: Post) -> None:
        self._controller = controller
        self._post = post
        self._closed = False
        self.card_reader: NfcCardReader | None = None
        self.scanner: SerialScanner | EvdevScanner | None = None
        self.handled = 0

    # ------------------------------------------------------------ opening and closing

    def open_card_reader(self, url: str, settings: CardReaderSettings | None = None) -> None:
        """Create and start the card reader; a URL that cannot name one is logged, not raised."""
        device = _Device("card reader", "devices.card_reader", url)
        try:
            reader = open_card_reader(url, settings, on_event=partial(self._from_thread, device))
        except CardReaderURLError as exc:
            # Retrying cannot help: only a corrected configuration (and a restart) can.
            log.warning("%s is not used: %s", device, exc)
            return
        reader.start()
        self.card_reader = reader

    def open_scanner(self, url: str, settings: ScannerSettings | None = None) -> None:
        """Create and start the scanner; a bad URL or a missing evdev is logged, not raised."""
        device = _Device("scanner", "devices.scanner", url)
        try:
            scanner = open_scanner(url, settings, on_event=partial(self._from_thread, device))
        except (ScannerURLError, ScannerUnavailableError) as exc:
            log.warning("%s is not used: %s", device, exc)
            return
        scanner.start()
        self.scanner = scanner

    def close(self) -> None:
        """Stop both device threads (idempotent); events still on their way are dropped."""
        self._closed = True
        if self.scanner is not None:
            scanner, self.scanner = self.scanner, None
            scanner.stop(SCANNER_STOP_S)
            if scanner.running:
                log.warning("scanner %s did not stop within %.0f s", scanner.url, SCANNER_STOP_S)
        if self.card_reader is not None:
            reader, self.card_reader = self.card_reader, None
            reader.stop(CARD_READER_STOP_S)  # it logs itself when its thread outlives this

    # ------------------------------------------------------------ the device threads

    def _from_thread(self, device: _Device, event: CardEvent | ScanEvent) -> None:
        """On the device's thread: hand the event to the UI thread, where the controller lives."""
        if not self._closed:
            self._post(partial(self._handle, device, event))

    # ------------------------------------------------------------ the UI thread

    def _handle(self, device: _Device, event: CardEvent | ScanEvent) -> None:
        if self._closed:
            return
        try:
            match event:
                case CardTap(card_number=None):
                    self._working(device)
                    # A bank card, a transport card, a blank tag: nothing to look up.
                    log.info("%s: a %s without a library card number", device, event.tag_type)
                    self._notice(msg.CARD_NOT_A_NUMBER)
                case CardTap(card_number=str(number)) | Scan(text=number):
                    self._working(device)
                    self._present(device, number)
                case CardReaderProblem(kind=kind) if kind in _CARD_MISREADS:
                    log.info("%s: %s", device, event.detail)
                    self._notice(msg.CARD_MISREAD)
                case ScannerProblem(kind=kind) if kind in _SCAN_MISREADS:
                    # The detail names the offending byte, never the scanned text.
                    log.info("%s: %s", device, event.detail)
                    self._notice(msg.CARD_MISREAD)
                case CardReaderProblem() | ScannerProblem():
                    self._failing(device, event.kind.value, event.detail, event.retry_in)
        finally:
            self.handled += 1

    def _present(self, device: _Device, number: str) -> None:
        state = self._controller.state.state
        if state is not State.ATTRACT:
            # As with a library card on the pad: a card or scan during a visit (or on a staff
            # screen) must neither end nor replace what is going on.
            log.debug("%s: a card while the kiosk is in %r, ignored", device, state.value)
            return
        self._controller.card_presented(number)

    def _notice(self, text: Text) -> None:
        """Tell the patron on the attract screen; anywhere else a notice would be out of place."""
        if self._controller.state.state is State.ATTRACT:
            self._controller.notice(text)
            self._controller.changed()

    def _working(self, device: _Device) -> None:
        if device.failing:
            device.failing = False
            log.info("%s works again", device)

    def _failing(self, device: _Device, kind: str, detail: str, retry_in: float | None) -> None:
        retry = f"tried again in {retry_in:.1f} s" if retry_in is not None else "tried again"
        if device.failing:
            log.debug("%s still failing (%s): %s; %s", device, kind, detail, retry)
            return
        device.failing = True
        log.warning(
            "%s failed (%s): %s. The kiosk carries on without it (patrons can use the pad and "
            "the keypad); it is %s, then with a growing backoff",
            device,
            kind,
            detail,
            retry,
        )


def open_identify_devices(
    controller: KioskController,
    post: Post,
    *,
    card_reader: str | None,
    scanner: str | None,
    card_reader_settings: CardReaderSettings | None = None,
    scanner_settings: ScannerSettings | None = None,
) -> IdentifyDevices:
    """Start the configured card reader and scanner (either may be ``None``: not configured)."""
    devices = IdentifyDevices(controller, post)
    try:
        if card_reader is not None:
            devices.open_card_reader(card_reader, card_reader_settings)
        if scanner is not None:
            devices.open_scanner(scanner, scanner_settings)
    except BaseException:
        devices.close()
        raise
    return devices
