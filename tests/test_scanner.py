"""The serial barcode scanner driver reading from the pty scanner simulator."""

from __future__ import annotations

import importlib.util
import queue
from collections.abc import Callable, Iterator

import pytest

from hardware.scanner import (
    CardNumberRule,
    InvalidCardNumber,
    InvalidReason,
    Scan,
    ScanEvent,
    ScannerProblem,
    ScannerSettings,
    ScannerUnavailableError,
    ScannerURLError,
    ScanProblemKind,
    SerialScanner,
    ValidCardNumber,
    check_card_number,
    open_scanner,
)
from simulators.scanner import SimulatedScanner, Terminator

WAIT = 5.0
LIBRARY_CARDS = CardNumberRule(pattern=r"^2\d{13}$", check_digit="luhn")


def with_luhn(payload: str) -> str:
    """Append a Luhn check digit, computed here independently of the driver's library."""
    total = 0
    for position, char in enumerate(reversed(payload)):
        digit = int(char) * (2 if position % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return payload + str((10 - total % 10) % 10)


GOOD = with_luhn("2123400012345")  # 21234000123455
BAD = GOOD[:-1] + str((int(GOOD[-1]) + 1) % 10)


@pytest.fixture
def sim() -> Iterator[SimulatedScanner]:
    with SimulatedScanner() as scanner:
        yield scanner


@pytest.fixture
def started() -> Iterator[Callable[..., SerialScanner]]:
    scanners: list[SerialScanner] = []

    def start(url: str, settings: ScannerSettings | None = None, **kwargs: object) -> SerialScanner:
        scanner = open_scanner(url, settings, **kwargs)  # type: ignore[arg-type]
        assert isinstance(scanner, SerialScanner)
        scanner.start()
        scanners.append(scanner)
        assert scanner.wait_ready(WAIT), "the scanner never opened its port"
        return scanner

    yield start
    for scanner in scanners:
        scanner.stop()
        assert not scanner.running


def next_event(scanner: SerialScanner) -> ScanEvent:
    event = scanner.get_event(timeout=WAIT)
    assert event is not None, "no event from the scanner"
    return event


def test_valid_scan_passes_the_card_number_rule(
    sim: SimulatedScanner, started: Callable[..., SerialScanner]
) -> None:
    """A scanned library card number arrives whole and passes pattern and Luhn check."""
    scanner = started(sim.url)
    sim.scan(GOOD)
    event = next_event(scanner)
    assert isinstance(event, Scan)
    assert event.text == GOOD
    assert check_card_number(event.text, LIBRARY_CARDS) == ValidCardNumber(GOOD)


def test_wrong_check_digit_is_a_typed_refusal(
    sim: SimulatedScanner, started: Callable[..., SerialScanner]
) -> None:
    """A misread digit fails the check digit with a reason the kiosk can word."""
    scanner = started(sim.url)
    sim.scan(BAD)
    event = next_event(scanner)
    assert isinstance(event, Scan)
    result = check_card_number(event.text, LIBRARY_CARDS)
    assert isinstance(result, InvalidCardNumber)
    assert result.reason is InvalidReason.CHECK_DIGIT
    assert "luhn" in result.detail


def test_garbage_then_a_good_scan(
    sim: SimulatedScanner, started: Callable[..., SerialScanner]
) -> None:
    """Line noise gives a GARBLED problem naming the byte; the next scan still comes through."""
    scanner = started(sim.url)
    sim.send_raw(b"21\x00\xfe\x1b9\r\n")
    sim.scan(GOOD)
    problem = next_event(scanner)
    assert isinstance(problem, ScannerProblem)
    assert problem.kind is ScanProblemKind.GARBLED
    assert "0x00" in problem.detail
    assert problem.raw == b"21\x00\xfe\x1b9"
    event = next_event(scanner)
    assert isinstance(event, Scan)
    assert event.text == GOOD


def test_overlong_line_is_one_problem(
    sim: SimulatedScanner, started: Callable[..., SerialScanner]
) -> None:
    """A line longer than max_length is reported once, with its first bytes, then reading goes on."""
    scanner = started(sim.url, ScannerSettings(max_length=20))
    sim.send_raw(b"9" * 500 + b"\r\n")
    sim.scan("12345")
    problem = next_event(scanner)
    assert isinstance(problem, ScannerProblem)
    assert problem.kind is ScanProblemKind.TOO_LONG
    assert problem.raw == b"9" * 20
    event = next_event(scanner)
    assert isinstance(event, Scan)
    assert event.text == "12345"


@pytest.mark.parametrize("terminator", ["crlf", "cr", "lf"])
def test_every_line_end_works(
    terminator: Terminator, started: Callable[..., SerialScanner]
) -> None:
    """CR, LF and CR LF scanners all give exactly one scan per barcode, and no empty ones."""
    with SimulatedScanner(terminator) as sim:
        scanner = started(sim.url)
        for text in ("A1", "B2", "C3"):
            sim.scan(text)
        events = [next_event(scanner) for _ in range(3)]
        assert [e.text for e in events if isinstance(e, Scan)] == ["A1", "B2", "C3"]
        sim.scan("D4")
        last = next_event(scanner)
    assert isinstance(last, Scan)
    assert last.text == "D4"


def test_scan_split_across_writes(
    sim: SimulatedScanner, started: Callable[..., SerialScanner]
) -> None:
    """A scan that arrives in pieces (slow serial line) is joined; CR and LF across writes are one end."""
    scanner = started(sim.url)
    got: list[ScanEvent] = []
    sim.send_raw(GOOD[:7].encode())
    sim.send_raw(GOOD[7:].encode() + b"\r")
    got.append(next_event(scanner))
    sim.send_raw(b"\nX9\r\n")
    got.append(next_event(scanner))
    assert [e.text for e in got if isinstance(e, Scan)] == [GOOD, "X9"]


def test_vanished_scanner_is_reported(started: Callable[..., SerialScanner]) -> None:
    """Unplugging the scanner gives DISCONNECTED with the retry delay; stop() still works."""
    sim = SimulatedScanner()
    # A long backoff: the freed /dev/pts number may belong to someone else's pty by then.
    scanner = started(sim.url, ScannerSettings(backoff_initial=60.0))
    sim.close()
    problem = next_event(scanner)
    assert isinstance(problem, ScannerProblem)
    assert problem.kind is ScanProblemKind.DISCONNECTED
    assert problem.retry_in == 60.0


def test_missing_port_is_reported_with_backoff() -> None:
    """A scanner port that does not exist gives UNAVAILABLE events with growing retry delays."""
    events: queue.Queue[ScanEvent] = queue.Queue()
    scanner = open_scanner(
        "/dev/libedge-no-such-scanner",
        ScannerSettings(backoff_initial=0.01, backoff_max=0.02),
        on_event=events.put,
    )
    scanner.start()
    try:
        first, second, third = (events.get(timeout=WAIT) for _ in range(3))
    finally:
        scanner.stop()
    problems = [e for e in (first, second, third) if isinstance(e, ScannerProblem)]
    assert [p.kind for p in problems] == [ScanProblemKind.UNAVAILABLE] * 3
    assert [p.retry_in for p in problems] == [0.01, 0.02, 0.02]
    assert "/dev/libedge-no-such-scanner" in problems[0].detail


def test_bad_urls_are_refused() -> None:
    """An empty URL and an evdev URL without a device path are errors that say so."""
    with pytest.raises(ScannerURLError):
        open_scanner("")
    with pytest.raises(ScannerURLError, match="baud"):
        open_scanner("serial:///dev/ttyACM0?baud=fast")
    with pytest.raises(ScannerURLError, match="evdev:/dev/input/event3"):
        open_scanner("evdev:event3")


def test_evdev_without_the_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the evdev package, an evdev URL is refused with the package name in the message."""
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "evdev" else real_find_spec(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ScannerUnavailableError, match="pip install evdev"):
        open_scanner("evdev:/dev/input/event3")
