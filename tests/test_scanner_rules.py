"""The scanner's pure parts: line framing, keyboard-wedge decoding and card-number rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hardware.scanner import (
    CardNumberRule,
    InvalidCardNumber,
    InvalidReason,
    KeyDecoder,
    LineSplitter,
    Scan,
    ScannerProblem,
    ScanProblemKind,
    ValidCardNumber,
    check_card_number,
    classify_line,
)

# ---------------------------------------------------------------- check digits, computed here


def luhn_digit(payload: str) -> str:
    total = 0
    for position, char in enumerate(reversed(payload)):
        digit = int(char) * (2 if position % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return str((10 - total % 10) % 10)


def gs1_digit(payload: str) -> str:
    total = sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(reversed(payload)))
    return str((10 - total % 10) % 10)


def mod11_2_char(payload: str) -> str:
    p = 0
    for char in payload:
        p = (p + int(char)) * 2 % 11
    value = (12 - p) % 11
    return "X" if value == 10 else str(value)


# ---------------------------------------------------------------- line framing


def test_splitter_handles_every_line_end_and_drops_empty_lines() -> None:
    """CR, LF, CR LF and blank lines between scans give exactly the scans."""
    splitter = LineSplitter(64)
    lines = list(splitter.feed(b"A\rB\nC\r\n\r\n\nD\r"))
    assert lines == [(b"A", False), (b"B", False), (b"C", False), (b"D", False)]


def test_splitter_keeps_partial_lines_across_feeds() -> None:
    """A line and a CR LF split over several reads come out once, whole."""
    splitter = LineSplitter(64)
    assert list(splitter.feed(b"12")) == []
    assert list(splitter.feed(b"34\r")) == [(b"1234", False)]
    assert list(splitter.feed(b"\n56\n")) == [(b"56", False)]


def test_splitter_flags_an_overlong_line_once() -> None:
    """An over-long line is one (truncated, flagged) line; the next line is normal."""
    splitter = LineSplitter(4)
    assert list(splitter.feed(b"123456789\nok\n")) == [(b"1234", True), (b"ok", False)]


@given(st.binary(max_size=300), st.integers(min_value=1, max_value=40), st.data())
def test_splitter_output_does_not_depend_on_chunking(
    data: bytes, limit: int, draw: st.DataObject
) -> None:
    """Feeding bytes in any chunks gives the same lines as feeding them at once; none has a CR or LF."""
    whole = list(LineSplitter(limit).feed(data))
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(data)), max_size=6)))
    splitter = LineSplitter(limit)
    pieces: list[tuple[bytes, bool]] = []
    start = 0
    for cut in [*cuts, len(data)]:
        pieces += splitter.feed(data[start:cut])
        start = cut
    assert pieces == whole
    for line, too_long in whole:
        assert b"\r" not in line
        assert b"\n" not in line
        assert len(line) <= limit
        assert line or too_long


@given(st.binary(max_size=100), st.booleans())
def test_classify_any_line(line: bytes, too_long: bool) -> None:
    """Any framed line becomes a Scan of printable ASCII or a typed problem; nothing raises."""
    event = classify_line(line, too_long, 64)
    if isinstance(event, Scan):
        assert not too_long
        assert event.text.isascii()
        assert event.text.isprintable()
        assert event.text == event.text.strip()
    else:
        assert isinstance(event, ScannerProblem)
        assert event.kind in (ScanProblemKind.GARBLED, ScanProblemKind.TOO_LONG)
        assert event.detail


# ---------------------------------------------------------------- keyboard wedge
KEY_DOWN, KEY_UP, EV_KEY, EV_SYN = 1, 0, 1, 0
LEFTSHIFT, ENTER = 42, 28
KEYCODES = {"2": 3, "1": 2, "a": 30, "b": 48, "-": 12}  # from input-event-codes.h


def type_keys(decoder: KeyDecoder, text: str) -> list[object]:
    out: list[object] = []
    for char in text:
        shifted = char.isupper()
        if shifted:
            out.append(decoder.feed(EV_KEY, LEFTSHIFT, KEY_DOWN))
        code = KEYCODES[char.lower()]
        out.append(decoder.feed(EV_KEY, code, KEY_DOWN))
        out.append(decoder.feed(EV_SYN, 0, 0))
        out.append(decoder.feed(EV_KEY, code, KEY_UP))
        if shifted:
            out.append(decoder.feed(EV_KEY, LEFTSHIFT, KEY_UP))
    out.append(decoder.feed(EV_KEY, ENTER, KEY_DOWN))
    return [o for o in out if o is not None]


def test_key_decoder_builds_a_line_with_shift() -> None:
    """Key-down events with shift make upper case; Enter ends the scan; key-ups add nothing."""
    results = type_keys(KeyDecoder(64), "Ab-12")
    assert len(results) == 1
    assert isinstance(results[0], Scan)
    assert results[0].text == "Ab-12"


def test_key_decoder_reports_unknown_keys_and_overlong_lines() -> None:
    """A function key in a scan is GARBLED; too many keys before Enter is TOO_LONG."""
    decoder = KeyDecoder(3)
    decoder.feed(EV_KEY, 59, KEY_DOWN)  # KEY_F1
    garbled = decoder.feed(EV_KEY, ENTER, KEY_DOWN)
    assert isinstance(garbled, ScannerProblem)
    assert garbled.kind is ScanProblemKind.GARBLED
    assert "59" in garbled.detail
    for _ in range(5):
        decoder.feed(EV_KEY, 2, KEY_DOWN)
    overlong = decoder.feed(EV_KEY, ENTER, KEY_DOWN)
    assert isinstance(overlong, ScannerProblem)
    assert overlong.kind is ScanProblemKind.TOO_LONG


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 300), st.integers(-1, 3)), max_size=80))
def test_key_decoder_survives_any_events(events: list[tuple[int, int, int]]) -> None:
    """Arbitrary input events never raise and only ever yield scans or typed problems."""
    decoder = KeyDecoder(16)
    for ev_type, code, value in events:
        result = decoder.feed(ev_type, code, value)
        assert result is None or isinstance(result, Scan | ScannerProblem)


# ---------------------------------------------------------------- card numbers


@pytest.mark.parametrize(
    ("algorithm", "payload", "make"),
    [
        ("luhn", "2123400012345", luhn_digit),
        ("mod10", "7992739871", luhn_digit),
        ("gs1", "400638133393", gs1_digit),
        ("mod11", "0794", mod11_2_char),
        ("mod11", "079", mod11_2_char),
    ],
)
def test_check_digit_algorithms(algorithm: str, payload: str, make: object) -> None:
    """Each algorithm accepts the right check character and refuses every wrong one."""
    rule = CardNumberRule(pattern=r"^[0-9X]+$", check_digit=algorithm)  # type: ignore[arg-type]
    right = make(payload)  # type: ignore[operator]
    assert check_card_number(payload + right, rule) == ValidCardNumber(payload + right)
    for wrong in "0123456789X":
        if wrong != right:
            result = check_card_number(payload + wrong, rule)
            assert isinstance(result, InvalidCardNumber)
            assert result.reason is InvalidReason.CHECK_DIGIT


def test_pattern_empty_and_guards() -> None:
    """Pattern mismatch and empty scans have their own reasons; Codabar guards can be stripped."""
    rule = CardNumberRule(pattern=r"^\d{6}$")
    assert check_card_number("  ", rule).reason is InvalidReason.EMPTY  # type: ignore[union-attr]
    mismatch = check_card_number("9781234567897", rule)
    assert isinstance(mismatch, InvalidCardNumber)
    assert mismatch.reason is InvalidReason.PATTERN
    assert mismatch.text == "9781234567897"
    assert isinstance(check_card_number("A123456B", rule), InvalidCardNumber)
    guarded = CardNumberRule(pattern=r"^\d{6}$", strip_codabar_guards=True)
    assert check_card_number("A123456B", guarded) == ValidCardNumber("123456")


def test_rule_validates_itself() -> None:
    """A broken pattern or an unknown algorithm is refused when the rule is made."""
    with pytest.raises(ValueError, match="pattern"):
        CardNumberRule(pattern="([")
    with pytest.raises(ValueError, match="crc32"):
        CardNumberRule(check_digit="crc32")  # type: ignore[arg-type]


@given(st.text(max_size=40), st.sampled_from(["none", "luhn", "mod10", "gs1", "mod11"]))
def test_any_scan_gets_a_typed_answer(text: str, algorithm: str) -> None:
    """Whatever was scanned, the check returns a valid number or a reason; it never raises."""
    rule = CardNumberRule(pattern=r"^\w{1,30}$", check_digit=algorithm)  # type: ignore[arg-type]
    result = check_card_number(text, rule)
    if isinstance(result, ValidCardNumber):
        assert result.number == text.strip()
    else:
        assert isinstance(result.reason, InvalidReason)
        assert result.text == text
