"""Device port URLs: line settings from serial:// URLs, clear errors, pyserial schemes pass through."""

from __future__ import annotations

import os

import pytest

from hardware.ports import LineSettings, PortURLError, open_port, parse_line_settings

FEIG = LineSettings()


def test_serial_url_carries_line_settings() -> None:
    """serial:///dev/x?baud=9600&parity=N overrides the caller's defaults."""
    port, line = parse_line_settings("serial:///dev/ttyUSB0?baud=9600&parity=n&stopbits=2", FEIG)
    assert port == "/dev/ttyUSB0"
    assert line == LineSettings(baudrate=9600, parity="N", bytesize=8, stopbits=2.0)


def test_other_urls_keep_the_defaults() -> None:
    """Bare paths and pyserial's own schemes pass through untouched."""
    for url in ("/dev/pts/3", "socket://127.0.0.1:7001", "spy://loop://", "loop://"):
        assert parse_line_settings(url, FEIG) == (url, FEIG)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("serial:///dev/x?baud=fast", "baud must be a whole number"),
        ("serial:///dev/x?parity=X", "parity must be N, E or O"),
        ("serial:///dev/x?bytesize=9", "bytesize must be 7 or 8"),
        ("serial:///dev/x?stopbits=3", "stopbits must be"),
        ("serial:///dev/x?speed=9600", "unknown serial setting 'speed'"),
        ("serial://", "needs a device path"),
    ],
)
def test_bad_serial_urls_name_the_problem(url: str, problem: str) -> None:
    """Every malformed serial:// URL is refused with a message naming the setting."""
    with pytest.raises(PortURLError, match=problem):
        parse_line_settings(url, FEIG)


def test_unknown_scheme_is_a_url_error() -> None:
    """A scheme pyserial does not know is reported as a bad URL, naming it."""
    with pytest.raises(PortURLError, match="bogus://x"):
        open_port("bogus://x")


def test_opens_a_real_pty_with_settings_and_timeouts() -> None:
    """A pty opened through a serial:// URL moves bytes and never blocks past its timeout."""
    master, slave = os.openpty()
    try:
        port = open_port(f"serial://{os.ttyname(slave)}?baud=9600&parity=N", timeout=0.05)
        try:
            assert (port.baudrate, port.parity) == (9600, "N")
            os.write(master, b"\x06\x00\x52\x00\xfc\xa8")
            assert port.read(6) == b"\x06\x00\x52\x00\xfc\xa8"
            assert port.read(1) == b""  # times out instead of blocking
        finally:
            port.close()
    finally:
        os.close(master)
        os.close(slave)


def test_missing_device_raises_oserror() -> None:
    """A device that is not there fails to open with an OSError naming it."""
    with pytest.raises(OSError, match="/dev/ttyNOPE"):
        open_port("/dev/ttyNOPE")
