"""The interface every ISO 15693 item reader implements, its result types and its errors.

Kiosk pads, staff stations and security gates talk to "an item reader", never to a chipset:
:class:`ItemReader` is the contract (a :class:`typing.Protocol`), and each reader family lives
in its own package that implements it (``hardware.feig`` for FEIG ID ISC readers speaking the
ISO Host protocol). Results are frozen dataclasses; UIDs are 8 ``bytes`` in the order tags and
readers print them, most significant byte first (``E0`` first).

A ``uid`` argument of ``None`` means *non-addressed* mode: the command goes to whichever single
tag is in the field. Pass the UID from :meth:`ItemReader.inventory` whenever more than one tag
may be present.

Exceptions
----------
A driver lets nothing escape but the tree below (``ReaderUsageError`` is also a ``ValueError``,
because it is the caller's mistake, not the device's)::

    ReaderError                   anything that went wrong talking to a reader
    ├── ReaderUsageError          a malformed URL, an out-of-range argument (also ValueError)
    ├── ReaderTimeout             no complete reply within the timeout (the device may be slow)
    ├── ReaderDisconnected        the port vanished or cannot be opened; reconnect() may help
    ├── FrameError                bytes that are not a valid reply, or not the reply asked for
    │   ├── FrameCRCError         the CRC does not match (both values are given)
    │   ├── FrameLengthError      a length field out of range or disagreeing with the data
    │   ├── FrameTruncatedError   the frame ends before its length says it should
    │   └── UnexpectedReplyError  answered by another bus address, or for another command
    ├── ReaderStatusError         the reader refused or failed the command itself (status code)
    └── TagError                  the tag failed the command (status code, ISO 15693 error code)
        └── TagNotFound           no tag answered: it is not (or no longer) in the field

``ReaderStatusError`` and ``TagError`` carry the reader's ``status`` code and its
``status_name``; ``TagError`` also carries ``iso_error``/``iso_error_name`` (status 0x95) and
the failing ``block`` when the reader names one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "UID_LENGTH",
    "BlockRead",
    "FrameCRCError",
    "FrameError",
    "FrameLengthError",
    "FrameTruncatedError",
    "InventoryEntry",
    "ItemReader",
    "ReaderDisconnected",
    "ReaderError",
    "ReaderInfo",
    "ReaderStatusError",
    "ReaderTimeout",
    "ReaderUsageError",
    "SystemInfo",
    "TagError",
    "TagNotFound",
    "UnexpectedReplyError",
    "format_uid",
    "parse_uid",
]

#: Bytes in an ISO 15693 UID.
UID_LENGTH = 8


# ---------------------------------------------------------------- errors


class ReaderError(Exception):
    """Base of every error an item reader driver raises."""


class ReaderUsageError(ReaderError, ValueError):
    """The caller asked for something impossible: a malformed URL or an argument out of range."""


# The brief and callers use these names without an "Error" suffix; they read as events.
class ReaderTimeout(ReaderError):  # noqa: N818
    """The reader did not deliver a complete reply within the timeout."""


class ReaderDisconnected(ReaderError):  # noqa: N818
    """The port vanished (unplugged, closed by its other side) or cannot be opened."""


class FrameError(ReaderError):
    """Received bytes are not a valid frame, or not the frame that answers the request."""


class FrameCRCError(FrameError):
    """A frame's CRC does not match the CRC computed over its bytes."""

    def __init__(self, message: str, *, received: int, computed: int) -> None:
        super().__init__(message)
        self.received = received
        self.computed = computed


class FrameLengthError(FrameError):
    """A length field is out of range or disagrees with the bytes that carry it."""


class FrameTruncatedError(FrameError):
    """A frame ends before the length it announces."""


class UnexpectedReplyError(FrameError):
    """A valid reply arrived for our request, but it does not hold what was asked for."""


class ReaderStatusError(ReaderError):
    """The reader answered with a status that says it refused or failed the command."""

    def __init__(self, message: str, *, status: int, status_name: str) -> None:
        super().__init__(message)
        self.status = status
        self.status_name = status_name


class TagError(ReaderError):
    """The tag failed the command: no answer, an RF error, or an ISO 15693 error code."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        status_name: str,
        iso_error: int | None = None,
        iso_error_name: str | None = None,
        block: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.status_name = status_name
        self.iso_error = iso_error
        self.iso_error_name = iso_error_name
        self.block = block


class TagNotFound(TagError):  # noqa: N818
    """No tag answered: it is not in the field, or it left during the exchange."""


# ---------------------------------------------------------------- UIDs


def parse_uid(text: str) -> bytes:
    """Turn a printed UID (16 hex digits, spaces/colons allowed) into 8 bytes, MSB first."""
    cleaned = text.replace(":", "").replace(" ", "").replace("-", "")
    try:
        uid = bytes.fromhex(cleaned)
    except ValueError:
        raise ReaderUsageError(f"UID {text!r} is not hexadecimal") from None
    if len(uid) != UID_LENGTH:
        raise ReaderUsageError(f"UID {text!r} has {len(uid)} bytes; an ISO 15693 UID has 8")
    return uid


def format_uid(uid: bytes) -> str:
    """Print a UID the way readers and tag vendors do: 16 upper-case hex digits, E0 first."""
    return uid.hex().upper()


# ---------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class InventoryEntry:
    """One tag seen by an inventory: its UID, DSFID and the reader's transponder type."""

    uid: bytes
    dsfid: int
    transponder_type: int = 0x03

    @property
    def uid_hex(self) -> str:
        """The UID as 16 upper-case hex digits."""
        return format_uid(self.uid)


@dataclass(frozen=True, slots=True)
class SystemInfo:
    """A tag's registers and memory layout (ISO 15693 Get System Information)."""

    uid: bytes
    dsfid: int
    afi: int
    block_size: int
    block_count: int
    ic_reference: int

    @property
    def memory_size(self) -> int:
        """User memory in bytes."""
        return self.block_size * self.block_count


@dataclass(frozen=True, slots=True)
class BlockRead:
    """Data blocks read from a tag, each in tag-memory byte order.

    ``security_status`` holds one byte per block (bit 0: locked) when the reader sent them.
    """

    first_block: int
    block_size: int
    blocks: tuple[bytes, ...]
    security_status: tuple[int, ...] | None = None

    @property
    def data(self) -> bytes:
        """The blocks joined, as they lie in tag memory."""
        return b"".join(self.blocks)


@dataclass(frozen=True, slots=True)
class ReaderInfo:
    """What a reader says about itself (firmware and hardware identification)."""

    software_revision: int
    driver_revision: int
    hardware_type: int
    software_type: int
    transponder_types: int
    raw: bytes

    @property
    def software_version(self) -> str:
        """Firmware revision as ``major.minor`` (e.g. ``3.3``)."""
        return f"{self.software_revision >> 8}.{self.software_revision & 0xFF}"


# ---------------------------------------------------------------- the interface


class ItemReader(Protocol):
    """An ISO 15693 item reader; every method raises only :class:`ReaderError` subclasses."""

    def inventory(self, *, afi: int | None = None) -> tuple[InventoryEntry, ...]:
        """List every tag in the field (only those with this AFI when ``afi`` is given)."""
        ...

    def read_blocks(self, uid: bytes | None, first_block: int, count: int) -> BlockRead:
        """Read ``count`` blocks from ``first_block`` (at most :meth:`max_blocks_per_read`)."""
        ...

    def write_blocks(self, uid: bytes | None, first_block: int, blocks: Sequence[bytes]) -> None:
        """Write equally sized blocks, given in tag-memory byte order, from ``first_block``."""
        ...

    def system_info(self, uid: bytes | None = None) -> SystemInfo:
        """Read the tag's AFI, DSFID, block size, block count and IC reference."""
        ...

    def write_afi(self, uid: bytes | None, afi: int) -> None:
        """Write the tag's AFI register (never locks it)."""
        ...

    def set_eas(self, uid: bytes | None) -> None:
        """Arm the tag's EAS bit (NXP ICODE SLI/SLIX; never locks it)."""
        ...

    def reset_eas(self, uid: bytes | None) -> None:
        """Disarm the tag's EAS bit (NXP ICODE SLI/SLIX)."""
        ...

    def eas_alarm(self, uid: bytes | None = None) -> bool:
        """Return True when the tag (or any tag, non-addressed) answers with its EAS bit set."""
        ...

    def rf_reset(self) -> None:
        """Switch the RF field off briefly so every tag returns to the ready state."""
        ...

    def reader_info(self) -> ReaderInfo:
        """Ask the reader for its firmware and hardware identification."""
        ...

    def max_blocks_per_read(self, block_size: int) -> int:
        """Return the most blocks of this size that one read can return."""
        ...

    def close(self) -> None:
        """Release the port; further calls raise :class:`ReaderDisconnected`."""
        ...
