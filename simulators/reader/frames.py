"""The simulated reader's side of FEIG's ISO Host framing: CRC, request parsing, reply building.

Written independently of the driver in ``hardware.feig`` on purpose: if both shared one framing
module, a bug in it would make driver and simulator agree with each other and disagree with a
real reader. Everything here is checked against frames captured from real readers.

Frames (all multi-byte numbers big-endian except the CRC)::

    standard request   LEN | COM-ADR | CMD | DATA... | CRC-lo | CRC-hi            LEN = 5..255
    standard reply     LEN | COM-ADR | CMD | STATUS | DATA... | CRC-lo | CRC-hi
    advanced request   02 | ALEN-hi | ALEN-lo | COM-ADR | CMD | DATA... | CRC     ALEN = 7..65535
    advanced reply     02 | ALEN-hi | ALEN-lo | COM-ADR | CMD | STATUS | DATA... | CRC

The CRC is CRC-16/MCRF4XX over every byte before it; the CRC over a whole frame including its
own CRC bytes is zero. Advanced frames send the CRC low byte first unless the reader is set to
``crc_high_first`` (one FEIG manual draws it the other way round).

:class:`FrameParser` reads a byte stream the way a reader's UART does: it never raises on bad
input, drops garbage and frames whose CRC is wrong (a real reader stays silent on those), and
resynchronises on the next frame that checks out.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ADVANCED_MIN_LEN",
    "STANDARD_MAX_LEN",
    "STANDARD_MIN_LEN",
    "STX",
    "FrameParser",
    "Request",
    "build_reply",
    "crc16",
]

#: First byte of an advanced frame; no standard frame can start with it (LEN >= 5).
STX = 0x02
STANDARD_MIN_LEN = 5
STANDARD_MAX_LEN = 255
#: STX, ALEN (2), COM-ADR, CMD, CRC (2): an advanced request without data.
ADVANCED_MIN_LEN = 7


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _make_table()


def crc16(data: bytes | bytearray | memoryview, crc: int = 0xFFFF) -> int:
    """Return the CRC-16/MCRF4XX of ``data`` (reflected poly 0x8408, preset 0xFFFF, no final XOR).

    >>> hex(crc16(b"123456789"))
    '0x6f91'
    """
    for byte in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ byte) & 0xFF]
    return crc


@dataclass(frozen=True, slots=True)
class Request:
    """One request frame that arrived with a good CRC."""

    address: int
    command: int
    data: bytes
    advanced: bool = False


def _crc_bytes(crc: int, high_first: bool) -> bytes:
    return crc.to_bytes(2, "big" if high_first else "little")


def build_reply(
    address: int,
    command: int,
    status: int,
    data: bytes = b"",
    *,
    advanced: bool = False,
    crc_high_first: bool = False,
) -> bytes:
    """Frame a reply: standard, unless asked for advanced or longer than 255 bytes.

    ``crc_high_first`` only affects advanced frames: standard frames always carry the CRC low
    byte first.
    """
    standard_len = 4 + len(data) + 2
    if not advanced and standard_len <= STANDARD_MAX_LEN:
        body = bytes((standard_len, address, command, status)) + data
        return body + _crc_bytes(crc16(body), high_first=False)
    alen = 6 + len(data) + 2
    if alen > 0xFFFF:
        raise ValueError(f"reply of {len(data)} data bytes does not fit an advanced frame")
    body = bytes((STX,)) + alen.to_bytes(2, "big") + bytes((address, command, status)) + data
    return body + _crc_bytes(crc16(body), high_first=crc_high_first)


class FrameParser:
    """Cut a byte stream into requests, dropping and counting whatever is not a valid frame.

    Feed bytes as they arrive with :meth:`feed`; call :meth:`flush` when the line has been idle
    for longer than a frame may pause (a real reader uses a character timeout the same way), so
    that a stray length byte cannot hold back the requests behind it. Counters:
    ``frames`` good frames, ``bad_frames`` runs of discarded bytes (a bad-CRC frame, a burst of
    noise), ``discarded_bytes`` bytes dropped in total.
    """

    def __init__(self, *, max_frame_len: int = 0xFFFF, crc_high_first: bool = False) -> None:
        if max_frame_len < STANDARD_MIN_LEN:
            raise ValueError(f"max_frame_len must be at least {STANDARD_MIN_LEN}")
        self.max_frame_len = max_frame_len
        self.crc_high_first = crc_high_first
        self.frames = 0
        self.bad_frames = 0
        self.discarded_bytes = 0
        self._buffer = bytearray()
        self._in_garbage = False

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Request]:
        """Add bytes from the line and return the requests completed by them."""
        self._buffer += data
        return self._scan(final=False)

    def flush(self) -> list[Request]:
        """Treat the line as idle: no more bytes will complete what is buffered.

        Returns any valid frame found after skipping the incomplete start; everything else that
        is buffered is discarded.
        """
        found = self._scan(final=True)
        self._in_garbage = False
        return found

    def _discard(self, count: int) -> None:
        if not self._in_garbage:
            self.bad_frames += 1
            self._in_garbage = True
        self.discarded_bytes += count
        del self._buffer[:count]

    def _claimed_length(self) -> int | None:
        """Length claimed by the frame at the start; 0: cannot start one; None: unknown yet."""
        buf = self._buffer
        if buf[0] == STX:
            if len(buf) < 3:
                return None
            alen = int.from_bytes(buf[1:3], "big")
            if alen < ADVANCED_MIN_LEN or alen > self.max_frame_len:
                return 0
            return alen
        if buf[0] < STANDARD_MIN_LEN or buf[0] > self.max_frame_len:
            return 0
        return buf[0]

    def _scan(self, *, final: bool) -> list[Request]:
        found: list[Request] = []
        while self._buffer:
            length = self._claimed_length()
            if length == 0:
                self._discard(1)
                continue
            if length is None or length > len(self._buffer):
                if not final:
                    break
                # The line went idle in the middle of this "frame": it was noise. Slide past
                # its first byte; a real frame may start right behind it.
                self._discard(1)
                continue
            frame = bytes(self._buffer[:length])
            request = self._decode(frame)
            if request is None:
                # Bad CRC: slide by one byte rather than skipping the claimed length, since the
                # length byte itself may be noise sitting in front of a good frame.
                self._discard(1)
                continue
            del self._buffer[:length]
            self._in_garbage = False
            self.frames += 1
            found.append(request)
        return found

    def _decode(self, frame: bytes) -> Request | None:
        if frame[0] == STX:
            expected = _crc_bytes(crc16(frame[:-2]), self.crc_high_first)
            if frame[-2:] != expected:
                return None
            return Request(address=frame[3], command=frame[4], data=frame[5:-2], advanced=True)
        if crc16(frame) != 0:
            return None
        return Request(address=frame[1], command=frame[2], data=frame[3:-2], advanced=False)
