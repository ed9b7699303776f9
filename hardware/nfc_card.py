"""Patron card reader over NFC: ISO 14443 A/B and FeliCa cards through nfcpy.

A patron taps a library card, a student card or a staff card on the kiosk's NFC reader. This
module runs nfcpy's ``ContactlessFrontend.connect(rdwr=…)`` loop in a thread of its own and
turns what happens into two kinds of event, delivered in order to a callback or a queue:

:class:`CardTap`
    A card was tapped: its UID (upper-case hex), its technology, nfcpy's tag type and, where
    the card carries one, the library card number (from an NDEF Text or URI record, or from a
    configured data location). A card is reported **once per tap**: while it stays on the
    reader nothing more is reported, and a card that comes back within ``retap_interval``
    seconds of last being seen is treated as the same tap (a hand that wobbles, or a presence
    check that missed once, is not a second patron).
:class:`CardReaderProblem`
    Something a kiosk should tell a patron or staff about, with a :class:`CardProblemKind`:
    the reader cannot be opened or stopped answering (it is retried with backoff, and the
    problem says when), a card of a technology we cannot use (a phone in peer-to-peer mode, a
    card that announces a protocol and then answers nothing, a tag type the site refused), a
    card removed while it was being read, or an internal error (the thread reports it and
    carries on after a backoff: it never dies silently).

The device is a URL: ``nfc:`` followed by nfcpy's own path — ``nfc:usb``,
``nfc:usb:072f:2200``, ``nfc:tty:AMA0:pn532``, ``nfc:udp:127.0.0.1:54321`` (nfcpy's simulated
reader, which ``libedge sim card`` answers).

Stopping is clean but not instant: nfcpy checks for termination between discovery cycles,
which take milliseconds on USB readers and up to a second per technology on the ``udp``
driver when no card answers.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from hardware.device_thread import Lost, ReconnectingThread, Trouble
from hardware.events import EventDelivery

__all__ = [
    "DEFAULT_URI_NUMBER_PATTERN",
    "CardEvent",
    "CardProblemKind",
    "CardReader",
    "CardReaderProblem",
    "CardReaderSettings",
    "CardReaderURLError",
    "CardTap",
    "DataLocation",
    "FelicaLocation",
    "NfcCardReader",
    "Type2Location",
    "open_card_reader",
    "probe_card_reader",
]

log = logging.getLogger(__name__)


class _OwnOpenFailures(logging.Filter):
    """Drops nfcpy's own "no reader available" line: the reader reports that as a problem.

    nfcpy logs it at ERROR on every failed open, so a kiosk whose reader is unplugged would
    write one error line per backoff step beside the reader's own, de-duplicated report.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("no reader available on path")


_NFCPY_OPEN_FILTER = _OwnOpenFailures()

#: The card number in a URI record: the last path segment or query value, e.g.
#: ``https://lib.example/card/21234000123456`` or ``…?card=21234000123456``.
DEFAULT_URI_NUMBER_PATTERN = r"[:/=](?P<number>[0-9A-Za-z][0-9A-Za-z-]*)/?$"

_TECHNOLOGY = {"A": "ISO 14443-A", "B": "ISO 14443-B", "F": "FeliCa"}
_MAX_NUMBER_LENGTH = 64


class CardReaderURLError(ValueError):
    """A card-reader URL is not of the form ``nfc:<nfcpy path>``."""


class CardProblemKind(Enum):
    """What went wrong, in terms a kiosk can turn into a message."""

    READER_UNAVAILABLE = "reader_unavailable"  #: cannot be opened (unplugged, busy, no access)
    READER_LOST = "reader_lost"  #: stopped answering while in use; it is being reopened
    UNKNOWN_TECHNOLOGY = "unknown_technology"  #: a card or device this kiosk cannot read
    CARD_REMOVED = "card_removed"  #: taken away before it was read completely
    INTERNAL_ERROR = "internal_error"  #: a bug or unexpected library error; retried


@dataclass(frozen=True, slots=True)
class CardTap:
    """One tap of one card."""

    uid: str  #: upper-case hex, as the card sends it
    technology: str  #: "ISO 14443-A", "ISO 14443-B" or "FeliCa"
    tag_type: str  #: nfcpy's tag type: "Type2Tag", "Type3Tag", "Type4Tag"
    card_number: str | None  #: the library card number, when the card carries one
    number_source: str | None  #: "ndef-text", "ndef-uri" or "data-location"
    at: float = field(default_factory=time.time)  #: wall-clock time of the tap


@dataclass(frozen=True, slots=True)
class CardReaderProblem:
    """A problem with the reader or with a card on it."""

    kind: CardProblemKind
    detail: str  #: plain words for the log and for staff
    uid: str | None = None  #: the card concerned, when there is one
    retry_in: float | None = None  #: seconds until the reader is tried again
    at: float = field(default_factory=time.time)


CardEvent = CardTap | CardReaderProblem

_PROBLEM_KIND = {
    Trouble.UNAVAILABLE: CardProblemKind.READER_UNAVAILABLE,
    Trouble.LOST: CardProblemKind.READER_LOST,
    Trouble.INTERNAL_ERROR: CardProblemKind.INTERNAL_ERROR,
}


@dataclass(frozen=True, slots=True)
class Type2Location:
    """The card number as ASCII in Type 2 tag memory, from ``first_page`` (4 bytes a page)."""

    first_page: int
    length: int


@dataclass(frozen=True, slots=True)
class FelicaLocation:
    """The card number as ASCII in a FeliCa service readable without encryption."""

    service_code: int  #: 16-bit service code, e.g. 0x000B
    block: int
    length: int


DataLocation = Type2Location | FelicaLocation


@dataclass(frozen=True, slots=True)
class CardReaderSettings:
    """How the reader polls and what it accepts; the defaults suit a kiosk."""

    retap_interval: float = 2.0
    targets: tuple[str, ...] = ("106A", "106B", "212F")
    accepted_types: tuple[str, ...] = ("Type2Tag", "Type3Tag", "Type4Tag")
    data_locations: tuple[DataLocation, ...] = ()
    uri_number_pattern: str = DEFAULT_URI_NUMBER_PATTERN
    read_attempts: int = 2
    #: nfcpy polls this many times, ``poll_interval`` apart, between termination checks.
    poll_iterations: int = 5
    poll_interval: float = 0.1
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    #: A card whose activation fails is reported after failing this many times in a row,
    #: so a card merely pulled away during activation is not called "unknown".
    failed_activations_before_report: int = 2


class CardReader(Protocol):
    """What the kiosk uses: start, stop, and events (or a callback given at construction)."""

    def start(self) -> None:
        """Start reading in a background thread."""

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread and release the reader."""

    def get_event(self, timeout: float | None = None) -> CardEvent | None:
        """Wait for the next event; ``None`` when ``timeout`` passes first."""


class _CardGoneError(Exception):
    """The card left the field while it was being read."""


def _uid_of_target(target: Any) -> str:
    if target.sdd_res:
        return bytes(target.sdd_res).hex().upper()
    if target.sensb_res:
        return bytes(target.sensb_res[1:5]).hex().upper()
    if target.sensf_res:
        return bytes(target.sensf_res[1:9]).hex().upper()
    return ""


def _technology(brty: str) -> str:
    return _TECHNOLOGY.get(brty[-1:], brty)


def _clean_number(text: str) -> str | None:
    """A card number as stored on a card: printable, not empty, not absurdly long."""
    number = text.strip().strip("\x00").strip()
    if not number or len(number) > _MAX_NUMBER_LENGTH or not number.isprintable():
        return None
    return number


class NfcCardReader(ReconnectingThread):
    """A patron-card reader running nfcpy's reader/writer loop in its own thread."""

    noun = "card reader"

    def __init__(
        self,
        path: str,
        settings: CardReaderSettings | None = None,
        *,
        on_event: Callable[[CardEvent], None] | None = None,
        frontend_factory: Callable[[str], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.settings = settings or CardReaderSettings()
        super().__init__(
            path,
            thread_name=f"nfc-card {path}",
            log=log,
            backoff_initial=self.settings.backoff_initial,
            backoff_max=self.settings.backoff_max,
        )
        self._uri_pattern = re.compile(self.settings.uri_number_pattern)
        self._delivery: EventDelivery[CardEvent] = EventDelivery(on_event, log, "card")
        self._factory = frontend_factory
        self._clock = clock
        self._last_seen: dict[str, float] = {}
        self._fresh = False
        self._pending: str | None = None
        self._failures: dict[str, int] = {}
        self._current: tuple[str, bool] | None = None

    # ------------------------------------------------------------------ public API
    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to stop and wait for it to release the reader."""
        if not self._stop_and_join(timeout):
            log.warning("card reader %s did not stop within %.1f s", self.path, timeout)

    def get_event(self, timeout: float | None = None) -> CardEvent | None:
        """Wait for the next event (when no callback was given); ``None`` on timeout."""
        return self._delivery.get(timeout)

    # ------------------------------------------------------------------ the thread
    def _emit(self, event: CardEvent) -> None:
        self._delivery.emit(event)

    def _open(self) -> Any:
        if self._factory is not None:
            return self._factory(self.path)
        import nfc  # only when a reader is used: it loads libusb

        clf_log = logging.getLogger("nfc.clf")
        if _NFCPY_OPEN_FILTER not in clf_log.filters:
            clf_log.addFilter(_NFCPY_OPEN_FILTER)
        return nfc.ContactlessFrontend(self.path)

    def _open_failure(self, exc: Exception) -> str:
        # nfcpy raises IOError, ValueError and libusb errors on open, some without a message.
        return f"the NFC reader {self.path!r} cannot be opened: {exc or type(exc).__name__}"

    def _report(self, trouble: Trouble, detail: str, retry_in: float) -> None:
        self._emit(CardReaderProblem(_PROBLEM_KIND[trouble], detail, retry_in=retry_in))

    def _serve(self, clf: Any) -> Lost | None:
        """Run discovery cycles until stopped (None) or the reader is lost (why; if any ran)."""
        s = self.settings
        options = {
            "targets": list(s.targets),
            "on-discover": self._on_discover,
            "on-connect": self._on_connect,
            "on-release": self._on_release,
            "iterations": s.poll_iterations,
            "interval": s.poll_interval,
            "beep-on-connect": True,
        }
        worked = False
        while not self._stop.is_set():
            if clf.connect(rdwr=options, terminate=self._terminate) is False:
                # nfcpy returns False after an IOError (device gone) or a refused technology.
                return Lost(
                    f"the NFC reader {self.path!r} stopped answering (unplugged?) or "
                    f"refused the technologies {', '.join(s.targets)}",
                    worked,
                )
            worked = True
        return None

    # ------------------------------------------------------------------ nfcpy callbacks
    def _note_seen(self, uid: str) -> bool:
        """Record that a card is on the reader now; True when this is a new tap."""
        now = self._clock()
        last = self._last_seen.get(uid)
        self._last_seen[uid] = now
        horizon = now - self.settings.retap_interval
        for old in [u for u, t in self._last_seen.items() if t < horizon]:
            del self._last_seen[old]
        return last is None or now - last >= self.settings.retap_interval

    def _terminate(self) -> bool:
        # nfcpy calls this between discovery cycles; a target that was discovered but never
        # reached on-connect failed activation.
        uid, self._pending = self._pending, None
        if uid is not None:
            count = self._failures.get(uid, 0) + 1
            self._failures = {uid: count}
            if count == self.settings.failed_activations_before_report:
                self._emit(
                    CardReaderProblem(
                        CardProblemKind.UNKNOWN_TECHNOLOGY,
                        "the card answered but could not be activated as an NFC Forum tag "
                        "(unsupported or damaged card)",
                        uid=uid,
                    )
                )
        return self._stop.is_set()

    def _on_discover(self, target: Any) -> bool:
        uid = _uid_of_target(target)
        self._fresh = self._note_seen(uid)
        if self._fresh:
            self._failures.pop(uid, None)
        if target.sel_res and target.sel_res[0] & 0x40:
            if self._fresh:
                self._emit(
                    CardReaderProblem(
                        CardProblemKind.UNKNOWN_TECHNOLOGY,
                        "a phone or device in peer-to-peer mode, not a card",
                        uid=uid,
                    )
                )
            return False
        self._pending = uid
        return True

    def _on_connect(self, tag: Any) -> bool:
        self._pending = None
        uid = bytes(tag.identifier).hex().upper()
        self._failures.pop(uid, None)
        self._current = (uid, True)
        if not self._fresh:
            return True  # the same tap continuing: wait silently for the card to leave
        technology = _technology(str(tag.target.brty))
        tag_type = str(tag.type)
        if tag_type not in self.settings.accepted_types:
            self._emit(
                CardReaderProblem(
                    CardProblemKind.UNKNOWN_TECHNOLOGY,
                    f"a {technology} card of type {tag_type}, which this kiosk does not read",
                    uid=uid,
                )
            )
            return True
        try:
            number, source = self._read_number(tag)
        except _CardGoneError:
            # Let the patron tap again at once: this tap did not count.
            self._last_seen.pop(uid, None)
            self._current = (uid, False)
            self._emit(
                CardReaderProblem(
                    CardProblemKind.CARD_REMOVED,
                    "the card was taken away before it was read; hold it still on the reader",
                    uid=uid,
                )
            )
            return True
        self._emit(CardTap(uid, technology, tag_type, number, source))
        return True

    def _on_release(self, tag: Any) -> bool:
        uid, remember = self._current or ("", False)
        self._current = None
        if remember:
            self._last_seen[uid] = self._clock()
        return True

    # ------------------------------------------------------------------ reading the number
    def _read_number(self, tag: Any) -> tuple[str | None, str | None]:
        import nfc

        errors = (nfc.tag.TagCommandError, nfc.clf.CommunicationError)
        ndef = None
        for _ in range(max(1, self.settings.read_attempts)):
            try:
                ndef = tag.ndef
            except errors as exc:
                log.debug("NDEF read failed: %s", exc)
                ndef = None
            if ndef is not None:
                break
            if not tag.is_present:
                raise _CardGoneError
        if ndef is not None:
            found = self._number_from_ndef(ndef)
            if found[0] is not None:
                return found
        for location in self.settings.data_locations:
            try:
                number = self._read_location(tag, location)
            except errors as exc:
                if not tag.is_present:
                    raise _CardGoneError from exc
                log.debug("data location %r unreadable: %s", location, exc)
                continue
            if number is not None:
                return number, "data-location"
        return None, None

    def _number_from_ndef(self, ndef: Any) -> tuple[str | None, str | None]:
        import ndef as ndeflib  # nfcpy's own NDEF library (ndeflib)

        try:
            records = list(ndef.records)
        except Exception as exc:  # ndeflib raises its own DecodeError family
            log.debug("NDEF message undecodable: %s", exc)
            return None, None
        for record in records:
            if isinstance(record, ndeflib.TextRecord):
                number = _clean_number(str(record.text))
                if number is not None:
                    return number, "ndef-text"
            elif isinstance(record, ndeflib.UriRecord):
                match = self._uri_pattern.search(str(record.iri))
                if match:
                    number = _clean_number(match.group("number"))
                    if number is not None:
                        return number, "ndef-uri"
        return None, None

    @staticmethod
    def _read_location(tag: Any, location: DataLocation) -> str | None:
        data = bytearray()
        if isinstance(location, Type2Location):
            if not hasattr(tag, "read") or str(tag.type) != "Type2Tag":
                return None
            page = location.first_page
            while len(data) < location.length:
                data += tag.read(page)
                page += 4
        else:
            if str(tag.type) != "Type3Tag":
                return None
            from nfc.tag.tt3 import BlockCode, ServiceCode

            service = ServiceCode(location.service_code >> 6, location.service_code & 0x3F)
            blocks = [BlockCode(location.block + i) for i in range((location.length + 15) // 16)]
            data += tag.read_without_encryption([service], blocks)
        raw = bytes(data[: location.length]).split(b"\x00", 1)[0]
        try:
            return _clean_number(raw.decode("ascii"))
        except UnicodeDecodeError:
            return None


def _nfc_path(url: str) -> str:
    if not url.startswith("nfc:") or len(url) <= len("nfc:"):
        raise CardReaderURLError(
            f"{url!r}: a card reader URL is 'nfc:' and nfcpy's path, e.g. nfc:usb, "
            "nfc:tty:AMA0:pn532 or nfc:udp:127.0.0.1:54321"
        )
    return url[len("nfc:") :]


def open_card_reader(
    url: str,
    settings: CardReaderSettings | None = None,
    *,
    on_event: Callable[[CardEvent], None] | None = None,
) -> NfcCardReader:
    """Create (not yet start) the card reader a URL names; see the module docstring."""
    return NfcCardReader(_nfc_path(url), settings, on_event=on_event)


def probe_card_reader(url: str) -> str:
    """Open the reader once and describe it ("NXP PN533 at usb:002:004"); OSError if absent."""
    path = _nfc_path(url)
    import nfc

    clf = nfc.ContactlessFrontend()
    try:
        if not clf.open(path):
            raise OSError(f"no NFC reader found at {path!r}")
        return str(clf.device)
    finally:
        clf.close()
