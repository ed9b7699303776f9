"""Test helpers for the FEIG driver, written apart from it, and the tests that pin them down.

The helpers build frames with their own bit-by-bit CRC and their own framing code (never the
driver's encoder), and a scripted transport stands in for the serial port: it records what the
driver writes and answers each write with the next scripted reply.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import serial

from hardware.ports import LineSettings

CAPTURED_INVENTORY_REQUEST = "07 FF B0 01 00 1C 56"
CAPTURED_ONE_TAG = "11 00 B0 00 01 03 00 E0 16 80 FF 08 00 50 24 80 75"
CAPTURED_NO_TAG = "06 00 B0 01 5C 63"
CAPTURED_RF_ERROR = "07 00 B0 83 00 B2 2C"
CAPTURED_LENGTH_ERROR = "06 00 B0 81 54 E7"
CAPTURED_VERSION = "0D 00 65 00 03 03 00 44 53 0D 30 33 09"
CAPTURED_UID = bytes.fromhex("E0 16 80 FF 08 00 50 24")


def h(text: str) -> bytes:
    """Bytes from spaced hex."""
    return bytes.fromhex(text)


def bit_crc(data: bytes) -> int:
    """CRC-16/MCRF4XX computed bit by bit (a deliberately different method from the driver's)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc


def reply_frame(address: int, command: int, status: int, data: bytes = b"") -> bytes:
    """A standard reply frame: LEN ADR CMD STATUS DATA CRC-lo CRC-hi."""
    body = bytes([len(data) + 6, address, command, status]) + data
    crc = bit_crc(body)
    return body + bytes([crc & 0xFF, crc >> 8])


def advanced_reply(
    address: int, command: int, status: int, data: bytes = b"", *, high_first: bool = False
) -> bytes:
    """An advanced reply frame: 02 ALEN-hi ALEN-lo ADR CMD STATUS DATA CRC."""
    length = len(data) + 8
    body = bytes([0x02, length >> 8, length & 0xFF, address, command, status]) + data
    crc = bit_crc(body)
    tail = bytes([crc >> 8, crc & 0xFF]) if high_first else bytes([crc & 0xFF, crc >> 8])
    return body + tail


def request_frame(address: int, command: int, data: bytes = b"") -> bytes:
    """A standard request frame, for asserting what the driver wrote."""
    body = bytes([len(data) + 5, address, command]) + data
    crc = bit_crc(body)
    return body + bytes([crc & 0xFF, crc >> 8])


def inventory_data(*tags: tuple[bytes, int]) -> bytes:
    """Inventory reply data: DATA-SETS, then TR-TYPE 03, DSFID, UID per tag."""
    out = bytes([len(tags)])
    for uid, dsfid in tags:
        out += bytes([0x03, dsfid]) + uid
    return out


def uid_n(n: int) -> bytes:
    """A distinct NXP-style UID for tag number ``n``."""
    return bytes([0xE0, 0x04, 0x01, 0x00, 0x00, 0x00, n >> 8, n & 0xFF])


Script = bytes | list[bytes] | BaseException | None


class ScriptedTransport:
    """A fake port: each write is answered with the next scripted item.

    An item is a reply (bytes), a reply delivered in chunks (list of bytes), an exception that
    the next read raises (a vanished device), or None (the device stays silent).
    """

    def __init__(self, script: Iterable[Script] = ()) -> None:
        self.script: deque[Script] = deque(script)
        self.writes: list[bytes] = []
        self.rx: deque[bytes] = deque()
        self.read_error: BaseException | None = None
        self.write_error: BaseException | None = None
        self.timeout: float | None = 0.5
        self.closed = False
        self.resets = 0

    @property
    def in_waiting(self) -> int:
        return len(self.rx[0]) if self.rx else 0

    def read(self, size: int = 1, /) -> bytes:
        if self.read_error is not None:
            raise self.read_error
        if self.closed:
            raise serial.PortNotOpenError()
        if not self.rx:
            return b""  # a real port returns nothing only after its timeout passed
        chunk = self.rx.popleft()
        if len(chunk) > size:
            self.rx.appendleft(chunk[size:])
            chunk = chunk[:size]
        return chunk

    def write(self, data: bytes, /) -> int:
        if self.write_error is not None:
            raise self.write_error
        self.writes.append(bytes(data))
        item = self.script.popleft() if self.script else None
        if isinstance(item, BaseException):
            self.read_error = item
        elif isinstance(item, list):
            self.rx.extend(item)
        elif item is not None:
            self.rx.append(item)
        return len(data)

    def reset_input_buffer(self) -> None:
        self.resets += 1
        self.rx.clear()

    def close(self) -> None:
        self.closed = True


class FakeOpener:
    """Hands out scripted transports (or raises) in turn, recording each open."""

    def __init__(self, *results: ScriptedTransport | BaseException) -> None:
        self.results = deque(results)
        self.opened: list[tuple[str, LineSettings, float]] = []

    def __call__(self, url: str, line: LineSettings, timeout: float) -> ScriptedTransport:
        self.opened.append((url, line, timeout))
        result = self.results.popleft()
        if isinstance(result, BaseException):
            raise result
        return result


# ---------------------------------------------------------------- the helpers' own tests


def test_bit_crc_matches_the_documented_check_values() -> None:
    """The helper CRC reproduces both check values of the facts doc."""
    assert bit_crc(b"123456789") == 0x6F91
    assert bit_crc(h("0D 00 65 00 03 03 00 44 53 0D 30")) == 0x0933


def test_reply_helper_reproduces_captured_replies() -> None:
    """The reply builder yields the captured no-tag, one-tag, error and version replies."""
    assert reply_frame(0x00, 0xB0, 0x01) == h(CAPTURED_NO_TAG)
    assert reply_frame(0x00, 0xB0, 0x00, inventory_data((CAPTURED_UID, 0x00))) == h(
        CAPTURED_ONE_TAG
    )
    assert reply_frame(0x00, 0xB0, 0x83, b"\x00") == h(CAPTURED_RF_ERROR)
    assert reply_frame(0x00, 0xB0, 0x81) == h(CAPTURED_LENGTH_ERROR)
    assert reply_frame(0x00, 0x65, 0x00, h("03 03 00 44 53 0D 30")) == h(CAPTURED_VERSION)


def test_request_helper_reproduces_captured_requests() -> None:
    """The request builder yields the captured inventory, baud detection and reset requests."""
    assert request_frame(0xFF, 0xB0, h("01 00")) == h(CAPTURED_INVENTORY_REQUEST)
    assert request_frame(0xFF, 0x52, h("00")) == h("06 FF 52 00 0F 6E")
    assert request_frame(0xFF, 0x63) == h("05 FF 63 D3 AE")


def test_scripted_transport_answers_each_write_in_turn() -> None:
    """The fake port delivers the scripted reply after each write, chunk by chunk."""
    port = ScriptedTransport([[b"\x01\x02", b"\x03"], None])
    port.write(b"x")
    assert port.in_waiting == 2
    assert port.read(5) == b"\x01\x02"
    assert port.read(5) == b"\x03"
    assert port.read(5) == b""
    port.write(b"y")
    assert port.read(1) == b""
    assert port.writes == [b"x", b"y"]
