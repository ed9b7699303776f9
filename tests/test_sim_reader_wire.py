"""Test-side wire helpers for the simulated FEIG reader, and the tests of those helpers.

The helpers build request frames and read reply frames with their own CRC (bit by bit, where
the simulator uses a table), so a framing bug in the simulator cannot hide behind a shared
one. Other ``test_sim_reader_*`` modules import them.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from simulators.reader import FeigSimulator, RFField, SimTag

# Captured and computed frames from the protocol reference sheet.
INVENTORY_REQUEST = bytes.fromhex("07 FF B0 01 00 1C 56")
NO_TAG_REPLY = bytes.fromhex("06 00 B0 01 5C 63")
ONE_TAG_REPLY = bytes.fromhex("11 00 B0 00 01 03 00 E0 16 80 FF 08 00 50 24 80 75")
RF_ERROR_REPLY = bytes.fromhex("07 00 B0 83 00 B2 2C")
LENGTH_ERROR_REPLY = bytes.fromhex("06 00 B0 81 54 E7")
BAUD_REQUEST = bytes.fromhex("06 FF 52 00 0F 6E")
BAUD_REPLY = bytes.fromhex("06 00 52 00 FC A8")
CPU_RESET_REQUEST = bytes.fromhex("05 FF 63 D3 AE")
CPU_RESET_REPLY = bytes.fromhex("06 00 63 00 86 07")
VERSION_REPLY = bytes.fromhex("0D 00 65 00 03 03 00 44 53 0D 30 33 09")
ADVANCED_INVENTORY_REQUEST = bytes.fromhex("02 00 09 FF B0 01 00 18 43")
EAS_ALARM_REQUEST = bytes.fromhex("08 FF B1 04 A5 00 73 13")
SET_EAS_REQUEST = bytes.fromhex("10 FF B1 04 A2 01 E0 16 80 FF 08 00 50 24 A4 FB")
CAPTURED_UID = bytes.fromhex("E0 16 80 FF 08 00 50 24")


def crc_bitwise(data: bytes) -> int:
    """CRC-16/MCRF4XX computed bit by bit (independent of the simulator's table)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc


def request(command: int, data: bytes = b"", address: int = 0xFF) -> bytes:
    """A standard request frame."""
    body = bytes((len(data) + 5, address, command)) + data
    return body + crc_bitwise(body).to_bytes(2, "little")


def advanced_request(command: int, data: bytes = b"", address: int = 0xFF) -> bytes:
    """An advanced request frame (CRC low byte first)."""
    body = b"\x02" + (len(data) + 7).to_bytes(2, "big") + bytes((address, command)) + data
    return body + crc_bitwise(body).to_bytes(2, "little")


def reply(command: int, status: int, data: bytes = b"", address: int = 0) -> bytes:
    """The standard reply frame we expect from the reader."""
    body = bytes((len(data) + 6, address, command, status)) + data
    return body + crc_bitwise(body).to_bytes(2, "little")


def advanced_reply(command: int, status: int, data: bytes = b"", address: int = 0) -> bytes:
    """The advanced reply frame we expect from the reader."""
    body = b"\x02" + (len(data) + 8).to_bytes(2, "big") + bytes((address, command, status)) + data
    return body + crc_bitwise(body).to_bytes(2, "little")


def iso(sub: int, mode: int = 0, uid: bytes | None = None, rest: bytes = b"") -> bytes:
    """A 0xB0 request frame: sub-command, MODE, optional UID (sets addressed mode), data."""
    if uid is not None:
        mode = (mode & ~0x07) | 0x01
    return request(0xB0, bytes((sub, mode)) + (uid or b"") + rest)


def status_of(frame: bytes) -> int:
    """The STATUS byte of a reply frame (standard or advanced)."""
    return frame[5] if frame[0] == 0x02 else frame[3]


def data_of(frame: bytes) -> bytes:
    """The data after STATUS of a reply frame (standard or advanced)."""
    return frame[6:-2] if frame[0] == 0x02 else frame[4:-2]


class Wire:
    """The host end of a connection to the simulator: a pty slave fd or a TCP socket."""

    def __init__(self, fd: int, sock: socket.socket | None = None) -> None:
        self.fd = fd
        self.sock = sock

    @classmethod
    def pty(cls, path: str) -> Wire:
        """Open the simulator's pty slave as a driver would (the pty is raw at 38400 8E1)."""
        return cls(os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK))

    @classmethod
    def tcp(cls, port: int) -> Wire:
        """Connect to the simulator's TCP port."""
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.setblocking(False)
        return cls(sock.fileno(), sock)

    def close(self) -> None:
        """Close the connection."""
        if self.sock is not None:
            self.sock.close()
        else:
            with contextlib.suppress(OSError):
                os.close(self.fd)

    def write(self, data: bytes) -> None:
        """Send bytes to the reader."""
        if self.sock is not None:
            self.sock.sendall(data)
        else:
            os.write(self.fd, data)

    def _read_some(self, limit: int) -> bytes:
        if self.sock is not None:
            return self.sock.recv(limit)
        return os.read(self.fd, limit)

    def read_exact(self, count: int, timeout: float = 3.0) -> bytes:
        """Read exactly ``count`` bytes or fail the test after ``timeout`` seconds."""
        out = bytearray()
        deadline = time.monotonic() + timeout
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        while len(out) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"reader sent {out.hex(' ')} then nothing ({count} bytes expected)")
            if not poller.poll(remaining * 1000):
                continue
            try:
                chunk = self._read_some(count - len(out))
            except BlockingIOError:
                continue
            if not chunk:
                pytest.fail(f"connection closed after {out.hex(' ')}")
            out += chunk
        return bytes(out)

    def read_frame(self, timeout: float = 3.0) -> bytes:
        """Read one reply frame (standard or advanced) by its length field."""
        first = self.read_exact(1, timeout)
        if first[0] == 0x02:
            alen = self.read_exact(2, timeout)
            return first + alen + self.read_exact(int.from_bytes(alen, "big") - 3, timeout)
        return first + self.read_exact(first[0] - 1, timeout)

    def available(self) -> bytes:
        """Whatever has arrived by now, without waiting."""
        out = bytearray()
        with contextlib.suppress(BlockingIOError):
            while True:
                chunk = self._read_some(4096)
                if not chunk:
                    break
                out += chunk
        return bytes(out)

    def exchange(self, frame: bytes, timeout: float = 3.0) -> bytes:
        """Send one request and return the reply frame."""
        self.write(frame)
        return self.read_frame(timeout)


@contextlib.contextmanager
def serving(
    field: RFField | None = None, *, tcp: bool = False, **options: Any
) -> Iterator[tuple[FeigSimulator, Wire]]:
    """A running simulator (pty by default) and a host-side connection to it."""
    sim = FeigSimulator(field if field is not None else RFField(), **options)
    wire: Wire | None = None
    try:
        wire = Wire.tcp(sim.start_tcp()) if tcp else Wire.pty(sim.start_pty())
        yield sim, wire
    finally:
        if wire is not None:
            wire.close()
        sim.stop()


def captured_tag(**kwargs: Any) -> SimTag:
    """The tag of the captured one-tag inventory (UID E0 16 80 FF 08 00 50 24, DSFID 00)."""
    return SimTag(uid=CAPTURED_UID, dsfid=0x00, **kwargs)


# ---------------------------------------------------------------- tests of the helpers


def test_bitwise_crc_matches_reference_check_values() -> None:
    """The helper's CRC gives the reference sheet's check values."""
    assert crc_bitwise(b"123456789") == 0x6F91
    assert crc_bitwise(bytes.fromhex("0D 00 65 00 03 03 00 44 53 0D 30")) == 0x0933


def test_request_helpers_rebuild_captured_frames() -> None:
    """The request and reply helpers produce the captured frames byte for byte."""
    assert request(0xB0, b"\x01\x00") == INVENTORY_REQUEST
    assert request(0x52, b"\x00") == BAUD_REQUEST
    assert request(0x63) == CPU_RESET_REQUEST
    assert advanced_request(0xB0, b"\x01\x00") == ADVANCED_INVENTORY_REQUEST
    assert request(0xB1, bytes.fromhex("04 A5 00")) == EAS_ALARM_REQUEST
    assert iso(0xA2, uid=CAPTURED_UID)[3:-2] == bytes.fromhex("A2 01") + CAPTURED_UID
    assert reply(0xB0, 0x01) == NO_TAG_REPLY
    assert reply(0x65, 0x00, bytes.fromhex("03 03 00 44 53 0D 30")) == VERSION_REPLY
    assert status_of(RF_ERROR_REPLY) == 0x83
    assert data_of(ONE_TAG_REPLY) == bytes.fromhex("01 03 00") + CAPTURED_UID
