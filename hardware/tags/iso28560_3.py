"""ISO 28560-3: the fixed-length library data model (the Danish data model and its successors).

A 32-byte basic block, optionally followed by extension blocks::

    byte 0       version (high nibble, 1) | type of usage (low nibble, primary qualifier)
    bytes 1-2    set information: parts in item, ordinal part (00 00 = none recorded)
    bytes 3-18   primary item identifier, NUL padded
    bytes 19-20  CRC-16/CCITT of the block, LSB first
    bytes 21-31  owner library ISIL, NUL padded

The CRC (poly 0x1021, preset 0xFFFF, not reflected, no final XOR; ``binascii.crc_hqx``) runs
over the block with bytes 19-20 taken out and two 0x00 appended. The owner field follows the
old Danish layout, country code then library code without the hyphen ("DE705" is ISIL
"DE-705"); an ISIL that layout cannot hold (its prefix is not two letters, or its identifier
has a hyphen) is written whole, hyphens and all. Extension blocks differ between vendors, so
they are kept as raw bytes in ``ItemData.extension``.
"""

from __future__ import annotations

import binascii
import re

from hardware.tags.model import ItemData, SetInfo, TagDataError

__all__ = [
    "BASIC_BLOCK_SIZE",
    "basic_block_crc",
    "crc16_ccitt",
    "decode_28560_3",
    "encode_28560_3",
    "looks_like_28560_3",
]

#: Size of the basic block in bytes.
BASIC_BLOCK_SIZE = 32
_VERSION = 1
_PII_SIZE = 16
_OWNER_SIZE = 11
_NUL = b"\x00"
_DANISH_ISIL = re.compile(r"([A-Za-z]{2})-([^-]+)")


def crc16_ccitt(data: bytes, value: int = 0xFFFF) -> int:
    """Return CRC-16/CCITT (poly 0x1021, preset 0xFFFF, no reflection, no final XOR)."""
    return binascii.crc_hqx(data, value)


def basic_block_crc(block: bytes | bytearray) -> int:
    """Return the CRC a 32-byte basic block should carry at bytes 19-20."""
    return binascii.crc_hqx(block[:19] + block[21:32] + b"\x00\x00", 0xFFFF)


def looks_like_28560_3(memory: bytes | bytearray) -> bool:
    """Tell whether memory starts with a version-1 basic block whose CRC is right."""
    return (
        len(memory) >= BASIC_BLOCK_SIZE
        and memory[0] >> 4 == _VERSION
        and basic_block_crc(memory) == memory[19] | (memory[20] << 8)
    )


def _field_text(field: bytes, name: str) -> str:
    """Decode a NUL-padded text field (up to its first NUL) as UTF-8."""
    end = field.find(0)
    if end >= 0:
        field = field[:end]
    try:
        return field.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TagDataError(
            f"{name} {field.hex(' ').upper()} is not valid UTF-8 at byte {exc.start}"
        ) from None


def _isil_from_field(text: str) -> str:
    # "DE705" (country + library, old Danish layout) is ISIL "DE-705"; a field that already has
    # a hyphen holds the ISIL whole.
    if "-" not in text and len(text) > 2 and text[:2].isascii() and text[:2].isalpha():
        return f"{text[:2]}-{text[2:]}"
    return text


def decode_28560_3(memory: bytes | bytearray) -> ItemData:
    """Decode ISO 28560-3 user memory into item data; raise TagDataError if it is not valid."""
    if len(memory) < BASIC_BLOCK_SIZE:
        raise TagDataError(f"memory holds {len(memory)} bytes; an ISO 28560-3 basic block needs 32")
    mem = bytes(memory)
    head = mem[0]
    if head >> 4 != _VERSION:
        raise TagDataError(f"byte 0 is 0x{head:02X}: data model version {head >> 4}, not 1")
    stored = mem[19] | (mem[20] << 8)
    computed = binascii.crc_hqx(mem[:19] + mem[21:32] + b"\x00\x00", 0xFFFF)
    if stored != computed:
        raise TagDataError(f"CRC at bytes 19-20 is 0x{stored:04X}, the data gives 0x{computed:04X}")
    pii = _field_text(mem[3:19], "primary item identifier (bytes 3-18)")
    if not pii:
        raise TagDataError("the primary item identifier (bytes 3-18) is empty")
    owner = _field_text(mem[21:32], "owner library (bytes 21-31)")
    parts, part = mem[1], mem[2]
    return ItemData(
        primary_item_id=pii,
        owner_institution=_isil_from_field(owner) if owner else None,
        set_info=SetInfo(parts, part) if parts or part else None,
        type_of_usage=(head & 0x0F) << 4,
        extension=mem[BASIC_BLOCK_SIZE:].rstrip(_NUL),
    )


def _fixed_field(text: str, size: int, name: str) -> bytes:
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise TagDataError(f"{name} {text!r} cannot be encoded as UTF-8") from None
    if _NUL in data:
        raise TagDataError(f"{name} {text!r} holds a NUL character, which ends the field")
    if len(data) > size:
        raise TagDataError(f"{name} {text!r} needs {len(data)} bytes; the field holds {size}")
    return data + bytes(size - len(data))


def _owner_field(isil: str, isil_hyphen: bool) -> bytes:
    if "-" not in isil:
        raise TagDataError(f"owner institution {isil!r} is not an ISIL (prefix-identifier)")
    match = _DANISH_ISIL.fullmatch(isil)
    text = isil if isil_hyphen or match is None else match[1] + match[2]
    return _fixed_field(text, _OWNER_SIZE, "owner institution")


def encode_28560_3(
    item: ItemData,
    *,
    extension: bytes = b"",
    memory_size: int | None = None,
    isil_hyphen: bool = False,
) -> bytes:
    """Encode item data as an ISO 28560-3 basic block, then the extension blocks.

    ``extension`` (raw bytes written after the basic block) replaces ``item.extension`` when
    given. The owner ISIL is written in the Danish layout ("DE705") unless ``isil_hyphen``.
    Without ``memory_size`` the result is 32 bytes plus the extension; with it, exactly
    ``memory_size`` bytes padded with 0x00. The basic block holds only the identifier, owner,
    set information and primary type of usage: an item with more raises TagDataError.
    """
    leftovers = [
        name
        for name, value in (
            ("shelf location", item.shelf_location),
            ("title", item.title),
            ("other data elements", item.other or None),
        )
        if value is not None
    ]
    if leftovers:
        raise TagDataError(f"an ISO 28560-3 basic block cannot hold {', '.join(leftovers)}")
    if not item.primary_item_id:
        raise TagDataError("the primary item identifier is empty")
    usage = item.type_of_usage
    if usage is None:
        raise TagDataError("an ISO 28560-3 tag needs a type of usage (0x10 = circulating)")
    if not 0 <= usage <= 0xFF or usage & 0x0F:
        raise TagDataError(
            f"type of usage 0x{usage:02X} does not fit ISO 28560-3, which holds only the "
            "primary qualifier (high nibble) and no secondary qualifier"
        )
    if item.set_info is None:
        parts = part = 0
    else:
        parts, part = item.set_info.parts, item.set_info.part
        if not 1 <= part <= parts <= 0xFF:
            raise TagDataError(f"set information {item.set_info} is not part 1..parts of 1..255")
    block = bytearray((_VERSION << 4 | usage >> 4, parts, part))
    block += _fixed_field(item.primary_item_id, _PII_SIZE, "primary item identifier")
    block += b"\x00\x00"
    if item.owner_institution is None:
        block += bytes(_OWNER_SIZE)
    else:
        block += _owner_field(item.owner_institution, isil_hyphen)
    crc = basic_block_crc(bytes(block))
    block[19] = crc & 0xFF
    block[20] = crc >> 8
    out = bytes(block) + (extension or item.extension)
    if memory_size is None:
        return out
    if len(out) > memory_size:
        raise TagDataError(
            f"the item needs {len(out)} bytes of tag memory; the tag has {memory_size}"
        )
    return out + bytes(memory_size - len(out))
