"""Request data and reply parsing for the FEIG commands an item reader needs, as pure functions.

Only bytes in, values out: the driver (:mod:`hardware.feig.driver`) does the I/O. Each builder
returns the request *data* (what follows CMD in the frame); each parser takes a reply's data
(what follows STATUS) and raises :class:`~hardware.reader.FrameError` when its length or
content does not fit the command.

Details inferred rather than documented (see the facts doc) are parameters here, with the
inferred value as default: the per-block byte order of 0x23/0x24 (reversed) and the MODE bit
that puts an AFI byte into an inventory request (bit 4).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from hardware.reader import (
    UID_LENGTH,
    FrameLengthError,
    InventoryEntry,
    ReaderInfo,
    ReaderUsageError,
    SystemInfo,
)

__all__ = [
    "CMD_BAUD_DETECTION",
    "CMD_CPU_RESET",
    "CMD_CUSTOM",
    "CMD_HOST",
    "CMD_RF_RESET",
    "CMD_SOFTWARE_VERSION",
    "INVENTORY_AFI",
    "INVENTORY_MORE",
    "MFR_NXP",
    "BlockOrder",
    "HostCommand",
    "NxpCommand",
    "addressing",
    "custom_request",
    "inventory_request",
    "parse_block_read",
    "parse_inventory",
    "parse_reader_info",
    "parse_system_info",
    "read_blocks_request",
    "system_info_request",
    "write_afi_request",
    "write_blocks_request",
]

CMD_BAUD_DETECTION = 0x52
CMD_CPU_RESET = 0x63
CMD_SOFTWARE_VERSION = 0x65
CMD_RF_RESET = 0x69
CMD_HOST = 0xB0
CMD_CUSTOM = 0xB1

MFR_NXP = 0x04

#: Inventory MODE bit 7: fetch the rest of the last inventory (after status 0x94).
INVENTORY_MORE = 0x80
#: Inventory MODE bit 4: an AFI byte follows MODE (inferred from FEIG manuals; configurable).
INVENTORY_AFI = 0x10

_MODE_NON_ADDRESSED = 0x00
_MODE_ADDRESSED = 0x01
_INVENTORY_RECORD = 10
_ISO15693 = 0x03
_SYSTEM_INFO_SIZE = 13
_READER_INFO_MIN = 7


class HostCommand(enum.IntEnum):
    """0xB0 sub-commands (ISO 15693 host commands) this driver sends."""

    INVENTORY = 0x01
    READ_MULTIPLE_BLOCKS = 0x23
    WRITE_MULTIPLE_BLOCKS = 0x24
    WRITE_AFI = 0x27
    GET_SYSTEM_INFORMATION = 0x2B


class NxpCommand(enum.IntEnum):
    """NXP custom commands sent through 0xB1 (lock commands deliberately absent)."""

    SET_EAS = 0xA2
    RESET_EAS = 0xA3
    EAS_ALARM = 0xA5


class BlockOrder(enum.Enum):
    """How the bytes of each data block travel in 0x23/0x24 frames relative to tag memory."""

    #: Each block's bytes reversed (LSB..MSB), as FEIG's SDK suggests: the default.
    REVERSED = "reversed"
    #: Bytes in tag-memory order.
    MEMORY = "memory"


def _byte(value: int, what: str) -> int:
    if not 0 <= value <= 0xFF:
        raise ReaderUsageError(f"{what} {value} is out of range 0..255")
    return value


def addressing(uid: bytes | None) -> tuple[int, bytes]:
    """Return (MODE address bits, UID bytes) for addressed (UID given) or non-addressed mode."""
    if uid is None:
        return _MODE_NON_ADDRESSED, b""
    if len(uid) != UID_LENGTH:
        raise ReaderUsageError(f"UID {uid.hex().upper()} has {len(uid)} bytes; expected 8")
    return _MODE_ADDRESSED, bytes(uid)


def inventory_request(
    *, more: bool = False, afi: int | None = None, afi_mode_bit: int = INVENTORY_AFI
) -> bytes:
    """Build an 0xB0 Inventory request: a new inventory, or the rest after status 0x94."""
    mode = INVENTORY_MORE if more else 0x00
    if afi is None:
        return bytes((HostCommand.INVENTORY, mode))
    return bytes((HostCommand.INVENTORY, mode | afi_mode_bit, _byte(afi, "AFI")))


def parse_inventory(data: bytes) -> tuple[InventoryEntry, ...]:
    """Take apart Inventory reply data: DATA-SETS, then per tag TR-TYPE, DSFID, UID[8]."""
    if not data:
        raise FrameLengthError("inventory reply has no DATA-SETS byte")
    count = data[0]
    expected = 1 + count * _INVENTORY_RECORD
    if len(data) != expected:
        raise FrameLengthError(
            f"inventory reply announces {count} data sets ({expected} bytes) "
            f"but carries {len(data)} bytes"
        )
    entries = []
    for index in range(count):
        record = data[1 + index * _INVENTORY_RECORD : 1 + (index + 1) * _INVENTORY_RECORD]
        if record[0] != _ISO15693:
            raise FrameLengthError(
                f"inventory data set {index} has transponder type 0x{record[0]:02X}; "
                "only ISO 15693 (0x03) records are understood"
            )
        entries.append(InventoryEntry(uid=record[2:], dsfid=record[1], transponder_type=record[0]))
    return tuple(entries)


def read_blocks_request(uid: bytes | None, first_block: int, count: int) -> bytes:
    """Build an 0xB0 Read Multiple Blocks request (no security status bytes)."""
    mode, uid_bytes = addressing(uid)
    if count < 1:
        raise ReaderUsageError(f"block count {count} must be at least 1")
    return (
        bytes((HostCommand.READ_MULTIPLE_BLOCKS, mode))
        + uid_bytes
        + bytes((_byte(first_block, "first block"), _byte(count, "block count")))
    )


def _order(block: bytes, order: BlockOrder) -> bytes:
    return block[::-1] if order is BlockOrder.REVERSED else block


def parse_block_read(
    data: bytes, first_block: int, order: BlockOrder
) -> tuple[int, list[bytes], tuple[int, ...] | None]:
    """Take apart Read Multiple Blocks reply data: DB-N, DB-SIZE, then DB-N blocks.

    FEIG manuals put a SEC-STATUS byte before every block (0x00 unless MODE bit 3 asked for
    the real one); the facts doc has it only when asked. The two layouts differ in length for
    any DB-N >= 1, so both are accepted. Returns (block size, blocks in tag-memory byte order,
    security status bytes or None when the reply had none).
    """
    if len(data) < 2:
        raise FrameLengthError(f"block read reply of {len(data)} bytes lacks DB-N and DB-SIZE")
    count, size = data[0], data[1]
    if size == 0:
        raise FrameLengthError("block read reply says blocks are 0 bytes long")
    if len(data) == 2 + count * size:
        blocks = [_order(data[2 + i * size : 2 + (i + 1) * size], order) for i in range(count)]
        return size, blocks, None
    step = size + 1
    if len(data) == 2 + count * step:
        records = [data[2 + i * step : 2 + (i + 1) * step] for i in range(count)]
        blocks = [_order(record[1:], order) for record in records]
        return size, blocks, tuple(record[0] for record in records)
    raise FrameLengthError(
        f"block read reply announces {count} blocks of {size} bytes from block {first_block} "
        f"({2 + count * size} bytes, or {2 + count * step} with security status) but carries "
        f"{len(data)} bytes"
    )


def write_blocks_request(
    uid: bytes | None, first_block: int, blocks: Sequence[bytes], order: BlockOrder
) -> bytes:
    """Build an 0xB0 Write Multiple Blocks request; blocks given in tag-memory order."""
    mode, uid_bytes = addressing(uid)
    if not blocks:
        raise ReaderUsageError("nothing to write: no blocks given")
    size = len(blocks[0])
    if any(len(block) != size for block in blocks):
        raise ReaderUsageError(
            f"blocks must all have the same size; got sizes {sorted({len(b) for b in blocks})}"
        )
    header = bytes(
        (
            _byte(first_block, "first block"),
            _byte(len(blocks), "block count"),
            _byte(size, "block size"),
        )
    )
    body = b"".join(_order(bytes(block), order) for block in blocks)
    return bytes((HostCommand.WRITE_MULTIPLE_BLOCKS, mode)) + uid_bytes + header + body


def write_afi_request(uid: bytes | None, afi: int) -> bytes:
    """Build an 0xB0 Write AFI request."""
    mode, uid_bytes = addressing(uid)
    return bytes((HostCommand.WRITE_AFI, mode)) + uid_bytes + bytes((_byte(afi, "AFI"),))


def system_info_request(uid: bytes | None) -> bytes:
    """Build an 0xB0 Get System Information request."""
    mode, uid_bytes = addressing(uid)
    return bytes((HostCommand.GET_SYSTEM_INFORMATION, mode)) + uid_bytes


def parse_system_info(data: bytes) -> SystemInfo:
    """Take apart Get System Information reply data: DSFID, UID[8], AFI, MEM-SIZE[2], IC-REF.

    MEM-SIZE is taken as ISO 15693 sends it, each value minus one: block size (low 5 bits of
    the first byte) then number of blocks.
    """
    if len(data) != _SYSTEM_INFO_SIZE:
        raise FrameLengthError(
            f"system information reply carries {len(data)} bytes; expected {_SYSTEM_INFO_SIZE}"
        )
    return SystemInfo(
        uid=data[1:9],
        dsfid=data[0],
        afi=data[9],
        block_size=(data[10] & 0x1F) + 1,
        block_count=data[11] + 1,
        ic_reference=data[12],
    )


def custom_request(command: NxpCommand, uid: bytes | None) -> bytes:
    """Build an 0xB1 NXP custom request: MFR, CMD, MODE, [UID]."""
    mode, uid_bytes = addressing(uid)
    return bytes((MFR_NXP, command, mode)) + uid_bytes


def parse_reader_info(data: bytes) -> ReaderInfo:
    """Take apart 0x65 reply data: SW-REV[2], D-REV, HW-TYPE, SW-TYPE, TR-TYPE[2]."""
    if len(data) < _READER_INFO_MIN:
        raise FrameLengthError(
            f"software version reply carries {len(data)} bytes; expected at least "
            f"{_READER_INFO_MIN}"
        )
    return ReaderInfo(
        software_revision=data[0] << 8 | data[1],
        driver_revision=data[2],
        hardware_type=data[3],
        software_type=data[4],
        transponder_types=data[5] << 8 | data[6],
        raw=bytes(data),
    )
