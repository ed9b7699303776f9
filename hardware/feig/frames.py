"""FEIG ISO Host frames: encode requests, parse replies, and find replies in a noisy byte stream.

Two framings share one channel, and a receiver must accept both:

* standard: ``LEN | COM-ADR | CMD | [STATUS] | DATA | CRC-lo | CRC-hi``, LEN 5..255 counting
  every byte of the frame;
* advanced: ``0x02 | ALEN-hi | ALEN-lo | COM-ADR | CMD | [STATUS] | DATA | CRC``, ALEN counting
  every byte too. A reader answers with it when a reply exceeds 255 bytes. Manuals disagree on
  the CRC byte order here, so it is a switch (low byte first by default).

Replies always carry STATUS. :func:`parse_reply` checks one complete frame and names what is
wrong with it; :class:`FrameDecoder` takes bytes as they arrive and resynchronises after
garbage by skipping bytes until a plausible frame with a valid CRC starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hardware.feig.crc import crc16
from hardware.reader import (
    FrameCRCError,
    FrameError,
    FrameLengthError,
    FrameTruncatedError,
    ReaderUsageError,
)

__all__ = [
    "ADVANCED_MAX",
    "ADVANCED_REPLY_MIN",
    "STANDARD_MAX",
    "STANDARD_REPLY_MIN",
    "STX",
    "FrameDecoder",
    "Reply",
    "encode_request",
    "parse_reply",
]

STX = 0x02
STANDARD_MAX = 255
#: LEN, COM-ADR, CMD, STATUS, CRC x2.
STANDARD_REPLY_MIN = 6
ADVANCED_MAX = 0xFFFF
#: STX, ALEN x2, COM-ADR, CMD, STATUS, CRC x2.
ADVANCED_REPLY_MIN = 8
_ADVANCED_HEADER = 3
_CRC_SIZE = 2


@dataclass(frozen=True, slots=True)
class Reply:
    """One reply frame from a reader, checked and taken apart."""

    address: int
    command: int
    status: int
    data: bytes
    advanced: bool = False
    #: The whole frame as received (not part of equality).
    raw: bytes = field(default=b"", compare=False, repr=False)


def _crc_bytes(crc: int, *, high_first: bool) -> bytes:
    return bytes((crc >> 8, crc & 0xFF)) if high_first else bytes((crc & 0xFF, crc >> 8))


def encode_request(
    address: int,
    command: int,
    data: bytes = b"",
    *,
    advanced: bool = False,
    crc_high_first: bool = False,
) -> bytes:
    """Build a request frame; a standard frame unless ``advanced`` (or it needs > 255 bytes)."""
    if not 0 <= address <= 0xFF:
        raise ReaderUsageError(f"bus address {address} is out of range 0..255")
    if not 0 <= command <= 0xFF:
        raise ReaderUsageError(f"command {command} is out of range 0..255")
    standard_length = 2 + len(data) + 3
    if not advanced and standard_length <= STANDARD_MAX:
        frame = bytes((standard_length, address, command)) + data
        # Standard frames always send the CRC low byte first.
        return frame + _crc_bytes(crc16(frame), high_first=False)
    length = _ADVANCED_HEADER + 2 + len(data) + _CRC_SIZE
    if length > ADVANCED_MAX:
        raise ReaderUsageError(f"request of {len(data)} data bytes exceeds the largest frame")
    frame = bytes((STX, length >> 8, length & 0xFF, address, command)) + data
    return frame + _crc_bytes(crc16(frame), high_first=crc_high_first)


def _frame_length(buf: bytes | bytearray, start: int = 0) -> tuple[int, bool] | None:
    """Return (announced length, advanced?) of the frame at ``start``; None if header is short.

    Raises FrameLengthError when the length field is out of range for a reply.
    """
    first = buf[start]
    if first == STX:
        if len(buf) - start < _ADVANCED_HEADER:
            return None
        length = (buf[start + 1] << 8) | buf[start + 2]
        if length < ADVANCED_REPLY_MIN:
            raise FrameLengthError(
                f"advanced frame length {length} is out of range "
                f"{ADVANCED_REPLY_MIN}..{ADVANCED_MAX}"
            )
        return length, True
    if first < STANDARD_REPLY_MIN:
        raise FrameLengthError(
            f"frame length byte 0x{first:02X} ({first}) is out of range "
            f"{STANDARD_REPLY_MIN}..{STANDARD_MAX}"
        )
    return first, False


def _check_crc(frame: bytes | bytearray, *, advanced: bool, crc_high_first: bool) -> None:
    high_first = advanced and crc_high_first
    body, tail = frame[:-_CRC_SIZE], frame[-_CRC_SIZE:]
    received = (tail[0] << 8 | tail[1]) if high_first else (tail[1] << 8 | tail[0])
    computed = crc16(body)
    if received != computed:
        order = "high byte first" if high_first else "low byte first"
        raise FrameCRCError(
            f"bad CRC: frame carries 0x{received:04X} ({order}), computed 0x{computed:04X} "
            f"over {len(body)} bytes {bytes(body[:12]).hex(' ').upper()}"
            f"{' …' if len(body) > 12 else ''}",
            received=received,
            computed=computed,
        )


def _split(frame: bytes, *, advanced: bool) -> Reply:
    offset = _ADVANCED_HEADER if advanced else 1
    return Reply(
        address=frame[offset],
        command=frame[offset + 1],
        status=frame[offset + 2],
        data=bytes(frame[offset + 3 : -_CRC_SIZE]),
        advanced=advanced,
        raw=bytes(frame),
    )


def parse_reply(frame: bytes, *, crc_high_first: bool = False) -> Reply:
    """Check one complete reply frame (standard or advanced) and take it apart.

    Raises a :class:`~hardware.reader.FrameError` subclass naming the problem: truncated,
    length out of range or disagreeing with the byte count, or a bad CRC with both values.
    ``crc_high_first`` applies to advanced frames only.
    """
    if not frame:
        raise FrameTruncatedError("empty frame: no length byte")
    header = _frame_length(frame)
    if header is None:
        raise FrameTruncatedError(
            f"advanced frame of {len(frame)} bytes ends inside its 3-byte header"
        )
    length, advanced = header
    if len(frame) < length:
        raise FrameTruncatedError(
            f"frame announces {length} bytes but only {len(frame)} arrived: "
            f"{frame[:12].hex(' ').upper()}"
        )
    if len(frame) > length:
        raise FrameLengthError(
            f"frame announces {length} bytes but {len(frame)} were given "
            f"({len(frame) - length} trailing)"
        )
    _check_crc(frame, advanced=advanced, crc_high_first=crc_high_first)
    return _split(frame, advanced=advanced)


class FrameDecoder:
    """Collect bytes from a port and hand out each valid reply frame found in them.

    Garbage is skipped byte by byte: a position is taken as the start of a frame only when its
    length is in range and, once complete, its CRC is valid. While the frame at the front is
    still incomplete, a complete valid frame further on wins (the front was noise announcing a
    long frame), so a stray byte never makes the caller wait for bytes that will not come.
    What was skipped, and why, is kept in :attr:`discarded` and :attr:`last_problem`.
    """

    def __init__(self, *, crc_high_first: bool = False, max_buffer: int = 4 * ADVANCED_MAX) -> None:
        self._buf = bytearray()
        self._crc_high_first = crc_high_first
        self._max_buffer = max_buffer
        #: Bytes skipped as garbage since the last :meth:`clear`.
        self.discarded = 0
        #: Why the most recent garbage was skipped (None if nothing was).
        self.last_problem: FrameError | None = None

    @property
    def pending(self) -> bytes:
        """Bytes received but not yet part of a returned frame."""
        return bytes(self._buf)

    def clear(self) -> None:
        """Forget buffered bytes and the garbage statistics (call before a new request)."""
        self._buf.clear()
        self.discarded = 0
        self.last_problem = None

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        self._buf += data
        if len(self._buf) > self._max_buffer:
            # A runaway stream (a device babbling at the wrong baud rate) must not grow memory
            # without bound; keep the newest bytes, which are the ones that can still matter.
            excess = len(self._buf) - self._max_buffer
            self._skip(excess, FrameLengthError(f"receive buffer overflow: {excess} bytes dropped"))

    def _skip(self, count: int, problem: FrameError | None) -> None:
        del self._buf[:count]
        self.discarded += count
        if problem is not None:
            self.last_problem = problem

    def _candidate(self, start: int) -> tuple[bool | None, int, FrameError | None]:
        """Judge the bytes at ``start``: True valid, None incomplete, False garbage."""
        buf = self._buf
        try:
            header = _frame_length(buf, start)
        except FrameError as exc:
            return False, 0, exc
        if header is None:
            return None, 0, None
        length, advanced = header
        if len(buf) - start < length:
            return None, length, None
        try:
            _check_crc(
                buf[start : start + length],
                advanced=advanced,
                crc_high_first=self._crc_high_first,
            )
        except FrameError as exc:
            return False, length, exc
        return True, length, None

    def next_frame(self) -> Reply | None:
        """Return the next valid frame, or None until more bytes arrive."""
        buf = self._buf
        first_incomplete: int | None = None
        first_problem: FrameError | None = None
        for start in range(len(buf)):
            verdict, length, problem = self._candidate(start)
            if verdict is None:
                if first_incomplete is None:
                    first_incomplete = start
                continue
            if verdict is False:
                if first_problem is None and first_incomplete is None:
                    first_problem = problem
                continue
            if start:
                if first_problem is None:
                    first_problem = FrameLengthError(
                        f"skipped {start} bytes before a valid frame: "
                        f"{bytes(buf[:start][:12]).hex(' ').upper()}"
                    )
                self._skip(start, first_problem)
            frame = bytes(buf[:length])
            del buf[:length]
            return _split(frame, advanced=frame[0] == STX)
        keep_from = len(buf) if first_incomplete is None else first_incomplete
        if keep_from:
            self._skip(keep_from, first_problem)
        return None

    def needed(self) -> int:
        """Return how many more bytes complete the frame at the front of the buffer (at least 1).

        Call after :meth:`next_frame` returned None, so the buffer starts where a frame may.
        With nothing buffered one byte is needed (a standard LEN byte or an STX); an advanced
        frame needs its 3-byte header; otherwise the header's LEN or ALEN says how many. A
        reader then asks its port for exactly these bytes, instead of trusting ``in_waiting``
        (pyserial's ``socket://`` port reports at most 1 byte waiting).
        """
        buf = self._buf
        if not buf:
            return 1
        try:
            header = _frame_length(buf)
        except FrameError:
            # Garbage at the front (next_frame keeps none, but a caller may not have asked).
            return 1
        if header is None:
            return _ADVANCED_HEADER - len(buf)
        return max(1, header[0] - len(buf))

    def describe(self) -> str:
        """Say what is buffered and what was skipped, for a timeout message."""
        parts = []
        if self._buf:
            parts.append(
                f"{len(self._buf)} bytes of an incomplete frame: "
                f"{bytes(self._buf[:16]).hex(' ').upper()}{' …' if len(self._buf) > 16 else ''}"
            )
        if self.discarded:
            parts.append(f"{self.discarded} bytes skipped as garbage ({self.last_problem})")
        return "; ".join(parts) if parts else "nothing received"
