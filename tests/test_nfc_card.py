"""The NFC patron-card reader: the real nfcpy stack against the simulated card over UDP."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hardware.nfc_card import (
    CardEvent,
    CardProblemKind,
    CardReaderProblem,
    CardReaderSettings,
    CardReaderURLError,
    CardTap,
    NfcCardReader,
    Type2Location,
    open_card_reader,
)
from simulators.card import SimulatedCard

NTAG_UID = bytes.fromhex("04A1B2C3D4E5F6")
FELICA_IDM = bytes.fromhex("0102030405060708")
CARD_NUMBER = "21234000123456"
WAIT = 10.0

# Only ISO 14443-A is polled in most tests: on the udp driver every technology nobody
# answers costs a one-second timeout per discovery cycle.
TYPE_A_ONLY = CardReaderSettings(targets=("106A",), poll_iterations=1)


class FakeClock:
    """A monotonic clock the test moves by hand, so the re-tap interval needs no waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ntag() -> Iterator[SimulatedCard]:
    with SimulatedCard(NTAG_UID, card_number=CARD_NUMBER, ndef="text") as card:
        yield card


@pytest.fixture
def started() -> Iterator[Callable[..., NfcCardReader]]:
    readers: list[NfcCardReader] = []

    def start(url: str, settings: CardReaderSettings = TYPE_A_ONLY, **kwargs: Any) -> NfcCardReader:
        reader = NfcCardReader(url.removeprefix("nfc:"), settings, **kwargs)
        reader.start()
        readers.append(reader)
        return reader

    yield start
    for reader in readers:
        reader.stop()
        assert not reader.running


def next_event(reader: NfcCardReader) -> CardEvent:
    event = reader.get_event(timeout=WAIT)
    assert event is not None, "no event from the card reader"
    return event


def test_type2_text_record_gives_the_card_number(
    ntag: SimulatedCard, started: Callable[..., NfcCardReader]
) -> None:
    """An NTAG213 whose NDEF Text record holds the card number is reported with UID and number."""
    event = next_event(started(ntag.url))
    assert event == CardTap(
        uid="04A1B2C3D4E5F6",
        technology="ISO 14443-A",
        tag_type="Type2Tag",
        card_number=CARD_NUMBER,
        number_source="ndef-text",
        at=event.at,
    )


def test_type2_uri_record_gives_the_card_number(started: Callable[..., NfcCardReader]) -> None:
    """A card number at the end of an NDEF URI record is extracted by the URI pattern."""
    with SimulatedCard(NTAG_UID, card_number="P-0042", ndef="uri") as card:
        event = next_event(started(card.url))
    assert isinstance(event, CardTap)
    assert (event.card_number, event.number_source) == ("P-0042", "ndef-uri")


def test_card_without_ndef_gives_just_the_uid(started: Callable[..., NfcCardReader]) -> None:
    """A blank card (no NDEF message) is reported by its UID alone."""
    with SimulatedCard(bytes.fromhex("04112233445566")) as card:
        event = next_event(started(card.url))
    assert isinstance(event, CardTap)
    assert event.uid == "04112233445566"
    assert event.card_number is None
    assert event.number_source is None


def test_felica_card_with_default_targets(started: Callable[..., NfcCardReader]) -> None:
    """A FeliCa (Type 3) card is found among the default technologies and its NDEF number read."""
    with SimulatedCard(FELICA_IDM, kind="felica", card_number="F7788", ndef="text") as card:
        event = next_event(started(card.url, CardReaderSettings(poll_iterations=1)))
    assert isinstance(event, CardTap)
    assert (event.uid, event.technology, event.tag_type) == (
        "0102030405060708",
        "FeliCa",
        "Type3Tag",
    )
    assert event.card_number == "F7788"


def test_number_from_a_configured_data_location(started: Callable[..., NfcCardReader]) -> None:
    """A card without NDEF but with the number as ASCII at a configured page is read there."""
    with SimulatedCard(NTAG_UID, card_number=CARD_NUMBER, ndef="none", raw_number_page=8) as card:
        settings = CardReaderSettings(
            targets=("106A",), poll_iterations=1, data_locations=(Type2Location(8, 16),)
        )
        event = next_event(started(card.url, settings))
    assert isinstance(event, CardTap)
    assert (event.card_number, event.number_source) == (CARD_NUMBER, "data-location")


def test_held_card_and_quick_retap_are_one_tap(
    ntag: SimulatedCard, started: Callable[..., NfcCardReader]
) -> None:
    """A card held, lifted and put back within the re-tap interval is one tap; later it is two."""
    clock = FakeClock()
    reader = started(ntag.url, clock=clock)
    assert isinstance(next_event(reader), CardTap)

    ntag.remove()
    polls = ntag.polls
    assert ntag.wait_until(lambda c: c.polls > polls, WAIT), "reader never noticed the removal"
    ntag.present()
    # Three reads mean activation and on-connect are over and the presence check is running.
    assert ntag.wait_until(lambda c: c.reads >= 3, WAIT)
    assert reader.get_event(timeout=0) is None

    ntag.remove()
    polls = ntag.polls
    assert ntag.wait_until(lambda c: c.polls > polls, WAIT)
    clock.now += reader.settings.retap_interval + 0.1
    ntag.present()
    event = next_event(reader)
    assert isinstance(event, CardTap)
    assert event.card_number == CARD_NUMBER


def test_card_removed_mid_read_is_reported_and_may_tap_again(
    started: Callable[..., NfcCardReader],
) -> None:
    """A card that leaves after its first memory read gives CARD_REMOVED; the next tap counts."""
    with SimulatedCard(NTAG_UID, card_number=CARD_NUMBER, vanish_after_reads=1) as card:
        reader = started(card.url)
        event = next_event(reader)
        assert isinstance(event, CardReaderProblem)
        assert event.kind is CardProblemKind.CARD_REMOVED
        assert event.uid == "04A1B2C3D4E5F6"
        card.vanish_after_reads = None
        card.present()
        again = next_event(reader)
    assert isinstance(again, CardTap)
    assert again.card_number == CARD_NUMBER


def test_unsupported_card_is_reported_once_while_held(
    started: Callable[..., NfcCardReader],
) -> None:
    """A card that announces ISO-DEP and then stays silent gives one UNKNOWN_TECHNOLOGY problem."""
    with SimulatedCard(bytes.fromhex("11223344"), kind="unsupported") as card:
        reader = started(card.url)
        event = next_event(reader)
        assert isinstance(event, CardReaderProblem)
        assert event.kind is CardProblemKind.UNKNOWN_TECHNOLOGY
        assert event.uid == "11223344"
        polls = card.polls
        assert card.wait_until(lambda c: c.polls >= polls + 4, WAIT), "no further attempts"
        assert reader.get_event(timeout=0) is None


def test_refused_tag_type_is_unknown_technology(
    ntag: SimulatedCard, started: Callable[..., NfcCardReader]
) -> None:
    """A tag type the site does not accept is a typed problem naming the type, not a tap."""
    settings = CardReaderSettings(
        targets=("106A",), poll_iterations=1, accepted_types=("Type3Tag",)
    )
    event = next_event(started(ntag.url, settings))
    assert isinstance(event, CardReaderProblem)
    assert event.kind is CardProblemKind.UNKNOWN_TECHNOLOGY
    assert "Type2Tag" in event.detail


def test_unavailable_reader_is_retried_with_backoff(
    ntag: SimulatedCard, started: Callable[..., NfcCardReader]
) -> None:
    """A reader that cannot be opened is reported with growing retry delays until it opens."""
    import nfc

    attempts: list[str] = []

    def flaky_open(path: str) -> Any:
        attempts.append(path)
        if len(attempts) <= 2:
            raise OSError(19, "No such device")
        return nfc.ContactlessFrontend(path)

    settings = CardReaderSettings(
        targets=("106A",), poll_iterations=1, backoff_initial=0.01, backoff_max=0.02
    )
    reader = started(ntag.url, settings, frontend_factory=flaky_open)
    first, second, tap = next_event(reader), next_event(reader), next_event(reader)
    assert isinstance(first, CardReaderProblem)
    assert isinstance(second, CardReaderProblem)
    assert first.kind is second.kind is CardProblemKind.READER_UNAVAILABLE
    assert "No such device" in first.detail
    assert (first.retry_in, second.retry_in) == (0.01, 0.02)
    assert isinstance(tap, CardTap)


class LostFrontend:
    """Stands in for a USB reader that was unplugged: nfcpy's connect() returns False."""

    def __init__(self) -> None:
        self.closed = threading.Event()

    def connect(self, **options: Any) -> bool:
        return False

    def close(self) -> None:
        self.closed.set()


def test_lost_reader_is_reported_closed_and_reopened(
    ntag: SimulatedCard, started: Callable[..., NfcCardReader]
) -> None:
    """When nfcpy gives up on the device, the reader says so, closes it and opens it again."""
    import nfc

    lost = LostFrontend()
    frontends: list[Any] = [lost]

    def open_next(path: str) -> Any:
        return frontends.pop(0) if frontends else nfc.ContactlessFrontend(path)

    settings = CardReaderSettings(targets=("106A",), poll_iterations=1, backoff_initial=0.01)
    reader = started(ntag.url, settings, frontend_factory=open_next)
    problem = next_event(reader)
    assert isinstance(problem, CardReaderProblem)
    assert problem.kind is CardProblemKind.READER_LOST
    assert lost.closed.is_set()
    assert isinstance(next_event(reader), CardTap)


class ExplodingFrontend(LostFrontend):
    """A library bug: connect() raises something nobody expected."""

    def connect(self, **options: Any) -> bool:
        raise KeyError("surprise")


def test_internal_error_is_reported_and_the_thread_survives(
    ntag: SimulatedCard, started: Callable[..., NfcCardReader]
) -> None:
    """An unexpected exception becomes an INTERNAL_ERROR event and reading goes on."""
    import nfc

    frontends: list[Any] = [ExplodingFrontend()]

    def open_next(path: str) -> Any:
        return frontends.pop(0) if frontends else nfc.ContactlessFrontend(path)

    settings = CardReaderSettings(targets=("106A",), poll_iterations=1, backoff_initial=0.01)
    reader = started(ntag.url, settings, frontend_factory=open_next)
    problem = next_event(reader)
    assert isinstance(problem, CardReaderProblem)
    assert problem.kind is CardProblemKind.INTERNAL_ERROR
    assert "surprise" in problem.detail
    assert isinstance(next_event(reader), CardTap)


def test_callback_gets_events_and_its_exceptions_do_not_stop_reading(
    started: Callable[..., NfcCardReader],
) -> None:
    """Events go to the callback; a callback that raises is logged and the reader carries on."""
    import queue

    got: queue.Queue[CardEvent] = queue.Queue()

    def callback(event: CardEvent) -> None:
        got.put(event)
        raise RuntimeError("kiosk bug")

    with SimulatedCard(NTAG_UID, card_number=CARD_NUMBER) as card:
        reader = started(card.url, on_event=callback)
        assert isinstance(got.get(timeout=WAIT), CardTap)
        card.remove()
        polls = card.polls
        assert card.wait_until(lambda c: c.polls > polls, WAIT)
        assert reader.running
        assert reader.get_event(timeout=0) is None  # nothing went to the queue


def test_open_card_reader_checks_the_url() -> None:
    """A URL without the nfc: prefix is refused with a message showing the right form."""
    with pytest.raises(CardReaderURLError, match="nfc:usb"):
        open_card_reader("usb:072f:2200")
    with pytest.raises(CardReaderURLError):
        open_card_reader("nfc:")
    reader = open_card_reader("nfc:udp:127.0.0.1:9")
    assert reader.path == "udp:127.0.0.1:9"
    assert not reader.running


def test_a_missing_reader_is_reported_once_by_us_not_again_by_nfcpy(
    started: Callable[..., NfcCardReader], caplog: pytest.LogCaptureFixture
) -> None:
    """nfcpy's own ERROR line for a failed open is dropped: the problem event says it all."""
    settings = CardReaderSettings(
        targets=("106A",), poll_iterations=1, backoff_initial=0.01, backoff_max=0.02
    )
    caplog.set_level(logging.DEBUG)
    reader = started("nfc:usb:ffff:ffff", settings)
    first, second = next_event(reader), next_event(reader)
    assert isinstance(first, CardReaderProblem)
    assert isinstance(second, CardReaderProblem)
    assert first.kind is CardProblemKind.READER_UNAVAILABLE
    assert "usb:ffff:ffff" in first.detail
    from_nfcpy = [r for r in caplog.records if r.name.startswith("nfc")]
    assert not [r for r in from_nfcpy if "no reader available" in r.getMessage()]
