"""FEIG reader status codes and ISO 15693 error codes: names, and the error each one raises.

The status byte of a reply says whether the *reader* failed (unknown command, wrong length,
busy…: :class:`~hardware.reader.ReaderStatusError`) or the *tag* did (no answer, RF error, an
ISO 15693 error code: :class:`~hardware.reader.TagError`). The split decides what a caller does:
retry the tag, or look at the reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from hardware.reader import ReaderError, ReaderStatusError, TagError, TagNotFound

__all__ = [
    "B0_DATA_STATUSES",
    "ISO_ERROR_NAMES",
    "STATUS_NAMES",
    "Status",
    "iso_error_name",
    "status_error",
    "status_name",
]


class Status:
    """Status codes the driver acts on by value (the full list is :data:`STATUS_NAMES`)."""

    OK: Final = 0x00
    NO_TRANSPONDER: Final = 0x01
    WRITE_ERROR: Final = 0x03
    RF_COMMUNICATION_ERROR: Final = 0x83
    MORE_DATA: Final = 0x94
    ISO_ERROR: Final = 0x95


#: Every status code of the ISO Host protocol, by code.
STATUS_NAMES: Mapping[int, str] = {
    0x00: "OK",
    0x01: "no transponder",
    0x02: "data false",
    0x03: "write error",
    0x04: "address error",
    0x05: "wrong transponder type",
    0x06: "read error",
    0x07: "select error",
    0x08: "authent error",
    0x09: "invalid address",
    0x0A: "transponder changed",
    0x0B: "collision",
    0x0C: "weak collision",
    0x0E: "general error",
    0x0F: "busy",
    0x10: "EEPROM error",
    0x11: "parameter range error",
    0x13: "login request",
    0x14: "login error",
    0x15: "read protection",
    0x16: "write protection",
    0x80: "unknown command",
    0x81: "protocol length error",
    0x82: "command not available",
    0x83: "RF communication error",
    0x84: "RF warning",
    0x85: "synchronisation error",
    0x86: "unsupported command option",
    0x90: "data table overrun",
    0x92: "no valid data",
    0x93: "data table overflow",
    0x94: "more data",
    0x95: "ISO error",
    0x96: "ISO 14443 error",
    0xF1: "hardware warning",
    0xF2: "initialisation warning",
}

#: ISO 15693 error codes a tag returns (carried after status 0x95).
ISO_ERROR_NAMES: Mapping[int, str] = {
    0x01: "command not supported",
    0x02: "command not recognised",
    0x03: "option not supported",
    0x0F: "unknown error",
    0x10: "block not available",
    0x11: "block already locked",
    0x12: "block locked, cannot change",
    0x13: "block not programmed",
    0x14: "block not locked",
}

#: For 0xB0 commands, data follows the status byte only with these statuses.
B0_DATA_STATUSES: frozenset[int] = frozenset({0x00, 0x83, 0x94, 0x95})

# Statuses that describe the tag or the air interface to it, not the reader: the caller's
# remedy is "try the tag again / it left", not "check the reader".
_TAG_STATUSES: frozenset[int] = frozenset(
    {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x83, 0x95, 0x96}
)


def status_name(code: int) -> str:
    """Name a reader status code (an unknown code is named as such, with its value)."""
    return STATUS_NAMES.get(code, f"unknown status 0x{code:02X}")


def iso_error_name(code: int) -> str:
    """Name an ISO 15693 error code (0xA0-0xDF are custom, the rest reserved)."""
    if code in ISO_ERROR_NAMES:
        return ISO_ERROR_NAMES[code]
    if 0xA0 <= code <= 0xDF:
        return f"custom error 0x{code:02X}"
    return f"reserved error 0x{code:02X}"


def status_error(
    status: int,
    *,
    action: str,
    iso_error: int | None = None,
    block: int | None = None,
) -> ReaderError:
    """Build the exception for a failed ``action`` (e.g. "read blocks") with this status."""
    name = status_name(status)
    message = f"{action}: reader status 0x{status:02X} ({name})"
    if status not in _TAG_STATUSES:
        return ReaderStatusError(message, status=status, status_name=name)
    iso_name = None
    if iso_error is not None:
        iso_name = iso_error_name(iso_error)
        message += f", ISO 15693 error 0x{iso_error:02X} ({iso_name})"
    if block is not None:
        message += f", at block {block}"
    kind = TagNotFound if status == Status.NO_TRANSPONDER else TagError
    return kind(
        message,
        status=status,
        status_name=name,
        iso_error=iso_error,
        iso_error_name=iso_name,
        block=block,
    )
