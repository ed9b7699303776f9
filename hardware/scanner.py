"""Barcode scanners (serial and keyboard-wedge) and the check of a scanned library card number.

A scanner runs in its own thread and hands events, in order, to a callback or a queue:

:class:`Scan`
    One complete scan: the text between two line ends (CR, LF or CR LF).
:class:`ScannerProblem`
    With a :class:`ScanProblemKind`: a line with bytes a scanner does not send (line noise, a
    wrong baud rate), a line longer than ``max_length`` (two scans run together, or a stuck
    scanner), a port that cannot be opened or vanished (it is reopened with backoff; the
    problem says when), or an internal error. The thread reports and carries on; it never
    dies silently.

Devices are URLs: ``serial:///dev/ttyACM0?baud=9600&parity=N``, a bare ``/dev/pts/N``,
``socket://host:port`` (see :mod:`hardware.ports`; scanners default to 9600 8N1), or
``evdev:/dev/input/event3`` for a keyboard-wedge scanner read through Linux evdev — that needs
the ``evdev`` package, imported only when such a URL is configured.

Whether a scan is a valid library card number is a separate, pure question:
:func:`check_card_number` with a :class:`CardNumberRule` (a regular expression and an optional
check digit: Luhn — the "mod 10" of Codabar library cards —, GS1 mod 10 or ISO 7064 mod 11-2)
returns a :class:`ValidCardNumber` or an :class:`InvalidCardNumber` whose ``reason`` a kiosk
turns into words for the patron.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import select
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal, Protocol

from stdnum import ean, luhn
from stdnum.exceptions import ValidationError
from stdnum.iso7064 import mod_11_2

from hardware.device_thread import Lost, ReconnectingThread, Trouble
from hardware.events import EventDelivery
from hardware.ports import LineSettings, PortURLError, open_port, parse_line_settings

__all__ = [
    "CardNumberCheck",
    "CardNumberRule",
    "CheckDigit",
    "InvalidCardNumber",
    "InvalidReason",
    "KeyDecoder",
    "LineSplitter",
    "Scan",
    "ScanEvent",
    "ScanProblemKind",
    "Scanner",
    "ScannerProblem",
    "ScannerSettings",
    "ScannerURLError",
    "ScannerUnavailableError",
    "ValidCardNumber",
    "check_card_number",
    "classify_line",
    "open_scanner",
]

log = logging.getLogger(__name__)

SCANNER_LINE = LineSettings(baudrate=9600, parity="N", bytesize=8, stopbits=1)


class ScannerURLError(ValueError):
    """A scanner URL is malformed."""


class ScannerUnavailableError(RuntimeError):
    """A scanner kind cannot be used on this machine (e.g. evdev is not installed)."""


class ScanProblemKind(Enum):
    """What went wrong, in terms a kiosk can turn into a message."""

    GARBLED = "garbled"  #: bytes no scanner sends: noise, wrong baud rate or wrong parity
    TOO_LONG = "too_long"  #: longer than any barcode we accept
    UNAVAILABLE = "unavailable"  #: the scanner cannot be opened
    DISCONNECTED = "disconnected"  #: the scanner vanished while in use
    INTERNAL_ERROR = "internal_error"  #: a bug or unexpected library error; retried


@dataclass(frozen=True, slots=True)
class Scan:
    """One scanned barcode, as text without its line end."""

    text: str
    at: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class ScannerProblem:
    """A problem with the scanner or with what it sent."""

    kind: ScanProblemKind
    detail: str
    raw: bytes = b""  #: the offending bytes (at most the first ``max_length``)
    retry_in: float | None = None
    at: float = field(default_factory=time.time)


ScanEvent = Scan | ScannerProblem

_PROBLEM_KIND = {
    Trouble.UNAVAILABLE: ScanProblemKind.UNAVAILABLE,
    Trouble.LOST: ScanProblemKind.DISCONNECTED,
    Trouble.INTERNAL_ERROR: ScanProblemKind.INTERNAL_ERROR,
}


@dataclass(frozen=True, slots=True)
class ScannerSettings:
    """Line length limit and reconnect backoff."""

    max_length: int = 64
    backoff_initial: float = 0.5
    backoff_max: float = 30.0


class Scanner(Protocol):
    """What the kiosk uses: start, stop, and events (or a callback given at construction)."""

    def start(self) -> None:
        """Start reading in a background thread."""

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and close the device."""

    def get_event(self, timeout: float | None = None) -> ScanEvent | None:
        """Wait for the next event; ``None`` when ``timeout`` passes first."""


# ---------------------------------------------------------------------- line framing
class LineSplitter:
    """Split a byte stream into lines ended by CR, LF or CR LF; flag over-long lines.

    Empty lines are dropped (a CR LF pair is one line end, and scanners configured with
    both suffixes send nothing between them). An over-long line is reported once, at its
    end, with its first ``max_length`` bytes; the rest of it is discarded.
    """

    def __init__(self, max_length: int) -> None:
        self.max_length = max_length
        self._buf = bytearray()
        self._overlong = False
        self._after_cr = False

    def feed(self, data: bytes) -> Iterator[tuple[bytes, bool]]:
        """Yield ``(line, too_long)`` for every line completed by ``data``."""
        for byte in data:
            if byte == 0x0A and self._after_cr:
                self._after_cr = False
                continue
            self._after_cr = byte == 0x0D
            if byte in (0x0A, 0x0D):
                line, overlong = bytes(self._buf), self._overlong
                self._buf.clear()
                self._overlong = False
                if line or overlong:
                    yield line, overlong
            elif len(self._buf) < self.max_length:
                self._buf.append(byte)
            else:
                self._overlong = True


def classify_line(line: bytes, too_long: bool, max_length: int) -> ScanEvent:
    """Turn one framed line into a :class:`Scan` or a :class:`ScannerProblem`."""
    if too_long:
        return ScannerProblem(
            ScanProblemKind.TOO_LONG,
            f"a scan longer than {max_length} characters was ignored",
            raw=line[:max_length],
        )
    for index, byte in enumerate(line):
        if not 0x20 <= byte <= 0x7E:
            return ScannerProblem(
                ScanProblemKind.GARBLED,
                f"unexpected byte 0x{byte:02X} at position {index} "
                "(noise on the line, or a wrong baud rate or parity)",
                raw=line,
            )
    text = line.decode("ascii").strip()
    if not text:
        return ScannerProblem(ScanProblemKind.GARBLED, "a scan of only spaces", raw=line)
    return Scan(text)


# ---------------------------------------------------------------------- keyboard wedge
# Linux input key codes (include/uapi/linux/input-event-codes.h, a stable kernel ABI) to
# (unshifted, shifted) characters on a US layout — the layout wedge scanners are set to.
_KEYS: dict[int, tuple[str, str]] = {
    2: ("1", "!"), 3: ("2", "@"), 4: ("3", "#"), 5: ("4", "$"), 6: ("5", "%"),
    7: ("6", "^"), 8: ("7", "&"), 9: ("8", "*"), 10: ("9", "("), 11: ("0", ")"),
    12: ("-", "_"), 13: ("=", "+"), 16: ("q", "Q"), 17: ("w", "W"), 18: ("e", "E"),
    19: ("r", "R"), 20: ("t", "T"), 21: ("y", "Y"), 22: ("u", "U"), 23: ("i", "I"),
    24: ("o", "O"), 25: ("p", "P"), 26: ("[", "{"), 27: ("]", "}"), 30: ("a", "A"),
    31: ("s", "S"), 32: ("d", "D"), 33: ("f", "F"), 34: ("g", "G"), 35: ("h", "H"),
    36: ("j", "J"), 37: ("k", "K"), 38: ("l", "L"), 39: (";", ":"), 40: ("'", '"'),
    41: ("`", "~"), 43: ("\\", "|"), 44: ("z", "Z"), 45: ("x", "X"), 46: ("c", "C"),
    47: ("v", "V"), 48: ("b", "B"), 49: ("n", "N"), 50: ("m", "M"), 51: (",", "<"),
    52: (".", ">"), 53: ("/", "?"), 57: (" ", " "), 55: ("*", "*"), 71: ("7", "7"),
    72: ("8", "8"), 73: ("9", "9"), 74: ("-", "-"), 75: ("4", "4"), 76: ("5", "5"),
    77: ("6", "6"), 78: ("+", "+"), 79: ("1", "1"), 80: ("2", "2"), 81: ("3", "3"),
    82: ("0", "0"), 83: (".", "."), 98: ("/", "/"),
}  # fmt: skip
_SHIFT_KEYS = {42, 54}  # KEY_LEFTSHIFT, KEY_RIGHTSHIFT
_ENTER_KEYS = {28, 96}  # KEY_ENTER, KEY_KPENTER
_IGNORED_KEYS = {29, 56, 58, 97, 100}  # ctrl, alt, caps lock: scanners send them as noise
_EV_KEY = 1


class KeyDecoder:
    """Turn evdev key events of a keyboard-wedge scanner into lines (pure, no device)."""

    def __init__(self, max_length: int) -> None:
        self.max_length = max_length
        self._shift = False
        self._chars: list[str] = []
        self._bad: int | None = None
        self._overlong = False

    def _end_line(self) -> ScanEvent | None:
        text, bad, overlong = "".join(self._chars), self._bad, self._overlong
        self._chars, self._bad, self._overlong = [], None, False
        raw = text.encode("ascii")
        if overlong:
            return classify_line(raw, True, self.max_length)
        if bad is not None:
            return ScannerProblem(
                ScanProblemKind.GARBLED,
                f"key code {bad} is not a character a scanner sends",
                raw=raw,
            )
        return classify_line(raw, False, self.max_length) if text else None

    def feed(self, ev_type: int, code: int, value: int) -> ScanEvent | None:
        """Take one input event; return an event when Enter completes a line."""
        if ev_type != _EV_KEY:
            return None
        if code in _SHIFT_KEYS:
            self._shift = value != 0
            return None
        if value != 1 or code in _IGNORED_KEYS:  # only key-down counts; repeats are noise
            return None
        if code in _ENTER_KEYS:
            return self._end_line()
        chars = _KEYS.get(code)
        if chars is None:
            self._bad = code if self._bad is None else self._bad
        elif len(self._chars) < self.max_length:
            self._chars.append(chars[1] if self._shift else chars[0])
        else:
            self._overlong = True
        return None


# ---------------------------------------------------------------------- the threads
class _ScannerThread(ReconnectingThread):
    """Event delivery, readiness and the reconnect policy shared by both scanner kinds."""

    noun = "scanner"
    fresh_start_on_open = True  # a port that opens is there; only failures to open back off

    def __init__(
        self,
        url: str,
        settings: ScannerSettings | None,
        on_event: Callable[[ScanEvent], None] | None,
    ) -> None:
        self.url = url
        self.settings = settings or ScannerSettings()
        super().__init__(
            url,
            thread_name=f"scanner {url}",
            log=log,
            backoff_initial=self.settings.backoff_initial,
            backoff_max=self.settings.backoff_max,
        )
        self._delivery: EventDelivery[ScanEvent] = EventDelivery(on_event, log, "scanner")
        self._ready = threading.Event()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to stop and wait for it to close the device."""
        self._stop_and_join(timeout)

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the device is open and being read; False on timeout."""
        return self._ready.wait(timeout)

    def get_event(self, timeout: float | None = None) -> ScanEvent | None:
        """Wait for the next event (when no callback was given); ``None`` on timeout."""
        return self._delivery.get(timeout)

    def _emit(self, event: ScanEvent) -> None:
        self._delivery.emit(event)

    def _open_failure(self, exc: Exception) -> str:
        # Opening raises OSError, PortURLError or evdev's own errors; each has a message.
        return f"the scanner {self.url!r} cannot be opened: {exc}"

    def _report(self, trouble: Trouble, detail: str, retry_in: float) -> None:
        self._emit(ScannerProblem(_PROBLEM_KIND[trouble], detail, retry_in=retry_in))

    def _serve(self, device: Any) -> Lost | None:
        self._ready.set()
        try:
            self._read(device)
        except OSError as exc:  # pyserial's SerialException is an OSError
            detail = f"the scanner {self.url!r} stopped answering (unplugged?): {exc}"
            return Lost(detail, worked=True)
        finally:
            self._ready.clear()
        return None

    @abstractmethod
    def _read(self, device: Any) -> None:
        """Read the open device, emitting events, until stopped; OSError when it is lost."""


class SerialScanner(_ScannerThread):
    """A scanner on a serial line (RS-232, USB CDC-ACM, a pty, or a TCP serial server)."""

    def _open(self) -> Any:
        return open_port(self.url, defaults=SCANNER_LINE, timeout=0.1)

    def _read(self, port: Any) -> None:
        splitter = LineSplitter(self.settings.max_length)
        while not self._stop.is_set():
            data = port.read(max(1, port.in_waiting))
            for line, too_long in splitter.feed(data):
                self._emit(classify_line(line, too_long, self.settings.max_length))


class EvdevScanner(_ScannerThread):
    """A keyboard-wedge scanner read (and grabbed, so its keys reach no window) via evdev."""

    def _open(self) -> Any:
        import evdev  # optional: open_scanner checked that it is installed

        device = evdev.InputDevice(self.url[len("evdev:") :])
        try:
            device.grab()
        except OSError:
            device.close()
            raise
        return device

    def _read(self, device: Any) -> None:
        decoder = KeyDecoder(self.settings.max_length)
        while not self._stop.is_set():
            ready, _, _ = select.select([device.fd], [], [], 0.1)
            if not ready:
                continue
            for event in device.read():
                result = decoder.feed(event.type, event.code, event.value)
                if result is not None:
                    self._emit(result)


def open_scanner(
    url: str,
    settings: ScannerSettings | None = None,
    *,
    on_event: Callable[[ScanEvent], None] | None = None,
) -> SerialScanner | EvdevScanner:
    """Create (not yet start) the scanner a URL names; see the module docstring."""
    if not url:
        raise ScannerURLError("an empty scanner URL")
    if url.startswith("evdev:"):
        if not url[len("evdev:") :].startswith("/"):
            raise ScannerURLError(
                f"{url!r}: an evdev URL names a device, e.g. evdev:/dev/input/event3"
            )
        if importlib.util.find_spec("evdev") is None:
            raise ScannerUnavailableError(
                f"{url!r}: keyboard-wedge scanners need the Python package 'evdev' "
                "(pip install evdev), which is not installed"
            )
        return EvdevScanner(url, settings, on_event)
    try:
        parse_line_settings(url, SCANNER_LINE)  # a typo in the configuration fails here, once
    except PortURLError as exc:
        raise ScannerURLError(str(exc)) from exc
    return SerialScanner(url, settings, on_event)


# ---------------------------------------------------------------------- card numbers
CheckDigit = Literal["none", "luhn", "mod10", "gs1", "mod11"]


class InvalidReason(Enum):
    """Why a scan is not a card number; each value names a message for the patron."""

    EMPTY = "empty"  #: nothing was read
    PATTERN = "pattern"  #: not shaped like this library's card numbers (maybe a book's barcode)
    CHECK_DIGIT = "check_digit"  #: misread, or not one of this library's cards


@dataclass(frozen=True, slots=True)
class ValidCardNumber:
    """A card number that passed the pattern and the check digit."""

    number: str


@dataclass(frozen=True, slots=True)
class InvalidCardNumber:
    """A scan that is not a valid card number, and why."""

    reason: InvalidReason
    text: str
    detail: str


CardNumberCheck = ValidCardNumber | InvalidCardNumber

_CODABAR_GUARDS = re.compile(r"^([ABCDabcd])(.*)([ABCDabcd])$")


@dataclass(frozen=True, slots=True)
class CardNumberRule:
    """What a library's card numbers look like.

    ``check_digit``: ``luhn`` (alias ``mod10``: the Luhn mod 10 printed on most Codabar
    library cards), ``gs1`` (mod 10 with weights 3-1, as in EAN/UPC), ``mod11`` (ISO 7064
    MOD 11-2, check character 0-9 or X), or ``none``. ``strip_codabar_guards`` removes the
    start/stop characters (A-D) that some scanners pass on from Codabar symbols.
    """

    pattern: str = r"^[0-9A-Za-z]{4,20}$"
    check_digit: CheckDigit = "none"
    strip_codabar_guards: bool = False

    def __post_init__(self) -> None:
        try:
            re.compile(self.pattern)
        except re.error as exc:
            raise ValueError(f"card number pattern {self.pattern!r} is invalid: {exc}") from exc
        if self.check_digit not in ("none", "luhn", "mod10", "gs1", "mod11"):
            raise ValueError(f"unknown check digit algorithm {self.check_digit!r}")


def _check_digit_ok(number: str, algorithm: CheckDigit) -> bool:
    try:
        if algorithm in ("luhn", "mod10"):
            luhn.validate(number)
        elif algorithm == "gs1":
            if len(number) < 2 or not number.isdigit():
                return False
            return ean.calc_check_digit(number[:-1]) == number[-1]
        elif algorithm == "mod11":
            mod_11_2.validate(number.upper())
    except ValidationError:
        return False
    return True


def check_card_number(text: str, rule: CardNumberRule) -> CardNumberCheck:
    """Check a scan against a library's card-number rule."""
    number = text.strip()
    if rule.strip_codabar_guards:
        match = _CODABAR_GUARDS.match(number)
        if match and match.group(2):
            number = match.group(2)
    if not number:
        return InvalidCardNumber(InvalidReason.EMPTY, text, "nothing was scanned")
    if not re.search(rule.pattern, number):
        return InvalidCardNumber(
            InvalidReason.PATTERN, text, f"does not match the card number pattern {rule.pattern!r}"
        )
    if rule.check_digit != "none" and not _check_digit_ok(number, rule.check_digit):
        return InvalidCardNumber(
            InvalidReason.CHECK_DIGIT, text, f"the {rule.check_digit} check digit is wrong"
        )
    return ValidCardNumber(number)
