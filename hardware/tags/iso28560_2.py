"""ISO 28560-2 (DSFID 0x06): the object-based, compacted library data model.

User memory is a run of data elements from byte 0, ended by the first 0x00 where a precursor is
expected (or by the end of memory)::

    precursor | [OID-15 byte] | [offset byte] | length | data | [0x00 x offset]

The precursor holds the offset flag (bit 7), the compaction scheme (bits 6-4, see
:class:`~hardware.tags.compaction.Compaction`) and the relative OID (bits 3-0; 15 means the next
byte holds OID - 15). The primary item identifier comes first.

Encoding follows what interoperable writers do: title and ONIX media format in UTF-8; type of
usage and any ``bytes`` value (so media format and supply-chain stage, OIDs 19 and 20, given as
bytes) as an octet string; owner and ILL institutions (OIDs 3, 11) in ISIL compaction when their
characters allow; everything else in the first scheme that fits of integer, numeric, 5-bit,
6-bit, 7-bit, UTF-8. The content parameter (OID 2, a bitmap of the other OIDs present, computed
here, omitted when only the identifier is present) is written in scheme 0 (precursor 02), as in
the worked example of the facts document and on tags in the field, not as an octet string; the
decoder accepts it either way and does not keep it.

Layout: the primary item identifier, then the content parameter, then unlocked elements in OID
order packed without gaps, then the elements the caller will lock (``locked_oids``) in OID
order, each starting and ending on a block boundary (an offset byte and 0x00 padding after its
data), so that locking whole blocks locks exactly those elements. When a locked element follows
an unlocked one, the unlocked one gets the padding that brings the locked one to a boundary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import cast

from hardware.tags.compaction import (
    SCHEME_NAMES,
    Compaction,
    choose_compaction,
    decode_text,
    encode_text,
)
from hardware.tags.isil import decode_isil, encode_isil, isil_fits
from hardware.tags.model import ItemData, SetInfo, TagDataError

__all__ = ["DSFID", "content_parameter", "decode_28560_2", "encode_28560_2"]

#: The DSFID an ISO 28560-2 tag carries.
DSFID = 0x06

_PII, _CONTENT, _OWNER, _SET, _USAGE, _SHELF, _ONIX, _ILL, _TITLE = 1, 2, 3, 4, 5, 6, 7, 11, 17
_ISIL_OIDS = frozenset({_OWNER, _ILL})
_FIELD_OIDS = frozenset({_PII, _CONTENT, _OWNER, _SET, _USAGE, _SHELF, _TITLE})
_MAX_OID = 15 + 0xFF
_FIELD_NAMES = {
    _PII: "primary item identifier",
    _OWNER: "owner institution",
    _SET: "set information",
    _USAGE: "type of usage",
    _SHELF: "shelf location",
    _TITLE: "title",
}


# ---------------------------------------------------------------- decoding


def _text(oid: int, scheme: int, data: bytes) -> str:
    """Decode a text element; scheme 0 is ISIL on OIDs 3/11 and unreadable elsewhere."""
    if scheme == 0:
        if oid in _ISIL_OIDS:
            return decode_isil(data)
        raise TagDataError("application-defined compaction cannot be read as text")
    return decode_text(data, scheme)


def _pii(oid: int, scheme: int, data: bytes) -> str:
    text = _text(oid, scheme, data)
    if not text:
        raise TagDataError("the primary item identifier is empty")
    return text


def _set_info(oid: int, scheme: int, data: bytes) -> SetInfo:
    text = _text(oid, scheme, data)
    if len(text) not in (2, 4, 6) or not (text.isascii() and text.isdigit()):
        raise TagDataError(f"set information {text!r} is not 2, 4 or 6 digits")
    half = len(text) // 2
    return SetInfo(parts=int(text[:half]), part=int(text[half:]))


def _usage(oid: int, scheme: int, data: bytes) -> int:
    # Writers use an octet string, application-defined or an integer; for one byte all three
    # store the same value.
    if scheme not in (0, 1, 6) or len(data) != 1:
        raise TagDataError(f"type of usage must be one byte (octet string), not {len(data)} bytes")
    return data[0]


def _content(oid: int, scheme: int, data: bytes) -> None:
    # Derived from the elements present, so there is nothing to keep.
    return None


def _other(oid: int, scheme: int, data: bytes) -> str | bytes:
    if scheme == 6 or (scheme == 0 and oid not in _ISIL_OIDS):
        return data
    return _text(oid, scheme, data)


_FIELD_DECODERS: dict[int, Callable[[int, int, bytes], object]] = {
    _PII: _pii,
    _CONTENT: _content,
    _OWNER: _text,
    _SET: _set_info,
    _USAGE: _usage,
    _SHELF: _text,
    _TITLE: _text,
}


def _walk(mem: bytes) -> list[tuple[int, int, int, bytes]]:
    """Split memory into elements: (start byte, OID, scheme, data), up to the terminator."""
    end = len(mem)
    pos = 0
    elements: list[tuple[int, int, int, bytes]] = []
    seen: dict[int, int] = {}
    while pos < end:
        start = pos
        precursor = mem[pos]
        if precursor == 0:
            break  # terminator
        oid = precursor & 0x0F
        scheme = (precursor >> 4) & 0x07
        if pos + 2 + (oid == 15) + (precursor >> 7) > end:
            raise TagDataError(f"element at byte {start}: its header runs past the end of memory")
        pos += 1
        if oid == 15:
            oid = 15 + mem[pos]
            pos += 1
        offset = 0
        if precursor & 0x80:
            offset = mem[pos]
            pos += 1
        length = mem[pos]
        pos += 1
        data = mem[pos : pos + length]
        pos += length + offset
        if pos > end:
            raise TagDataError(
                f"element at byte {start} (OID {oid}, {SCHEME_NAMES[scheme]}): {length} data and "
                f"{offset} padding bytes run past the end of memory ({end} bytes)"
            )
        if oid == 0:
            raise TagDataError(f"element at byte {start}: precursor 0x{precursor:02X} has OID 0")
        if oid in seen:
            raise TagDataError(
                f"element at byte {start}: OID {oid} appears again (first at byte {seen[oid]})"
            )
        if not seen and oid != _PII:
            raise TagDataError(
                f"element at byte {start} has OID {oid}; the first element must be the primary "
                "item identifier (OID 1)"
            )
        seen[oid] = start
        elements.append((start, oid, scheme, data))
    return elements


def decode_28560_2(memory: bytes | bytearray) -> ItemData:
    """Decode ISO 28560-2 user memory into item data; raise TagDataError if it is not valid."""
    values: dict[int, object] = {}
    other: dict[int, str | bytes] = {}
    for start, oid, scheme, data in _walk(bytes(memory)):
        decoder = _FIELD_DECODERS.get(oid)
        try:
            if decoder is None:
                other[oid] = _other(oid, scheme, data)
            else:
                values[oid] = decoder(oid, scheme, data)
        except TagDataError as exc:
            raise TagDataError(
                f"element at byte {start} (OID {oid}, {SCHEME_NAMES[scheme]}): {exc}"
            ) from None
    if _PII not in values:
        raise TagDataError("no primary item identifier: memory starts with the terminator 0x00")
    # The decoders above guarantee each value's type; the casts only tell mypy.
    return ItemData(
        primary_item_id=cast(str, values[_PII]),
        owner_institution=cast("str | None", values.get(_OWNER)),
        set_info=cast("SetInfo | None", values.get(_SET)),
        type_of_usage=cast("int | None", values.get(_USAGE)),
        shelf_location=cast("str | None", values.get(_SHELF)),
        title=cast("str | None", values.get(_TITLE)),
        other=other,
    )


# ---------------------------------------------------------------- encoding


def content_parameter(oids: Iterable[int]) -> bytes:
    """Return the content parameter for the OIDs present: bit 7 of byte 0 is OID 3, and so on."""
    bitmap = bytearray()
    for oid in oids:
        if oid < 3:
            continue
        index, bit = divmod(oid - 3, 8)
        if index >= len(bitmap):
            bitmap.extend(bytes(index + 1 - len(bitmap)))
        bitmap[index] |= 0x80 >> bit
    return bytes(bitmap).rstrip(b"\x00")


def _encode_text_element(oid: int, text: str) -> tuple[int, bytes]:
    if oid in _ISIL_OIDS and isil_fits(text):
        return Compaction.APPLICATION, encode_isil(text)
    if oid in (_TITLE, _ONIX):
        return Compaction.UTF8, encode_text(text, Compaction.UTF8)
    scheme = choose_compaction(text)
    return scheme, encode_text(text, scheme)


def _set_info_text(info: SetInfo) -> str:
    if not 1 <= info.part <= info.parts <= 999:
        raise TagDataError(f"set information {info} is not a part 1..parts of 1..999 parts")
    # Two digits each at least: readers that know only the four-digit form ("0101") read it.
    width = max(2, len(str(info.parts)))
    return f"{info.parts:0{width}d}{info.part:0{width}d}"


def _elements(item: ItemData) -> dict[int, tuple[int, bytes]]:
    """Return OID -> (scheme, data) for every element the item holds, except OID 2."""
    if not item.primary_item_id:
        raise TagDataError("the primary item identifier is empty")
    if item.extension:
        raise TagDataError("ISO 28560-2 has no extension blocks; ItemData.extension must be empty")
    out = {_PII: _encode_text_element(_PII, item.primary_item_id)}
    if item.owner_institution is not None:
        out[_OWNER] = _encode_text_element(_OWNER, item.owner_institution)
    if item.set_info is not None:
        text = _set_info_text(item.set_info)
        out[_SET] = _encode_text_element(_SET, text)
    if item.type_of_usage is not None:
        if not 0 <= item.type_of_usage <= 0xFF:
            raise TagDataError(f"type of usage {item.type_of_usage!r} is not a byte")
        out[_USAGE] = Compaction.OCTET, bytes((item.type_of_usage,))
    if item.shelf_location is not None:
        out[_SHELF] = _encode_text_element(_SHELF, item.shelf_location)
    if item.title is not None:
        out[_TITLE] = _encode_text_element(_TITLE, item.title)
    for oid, value in item.other.items():
        out[oid] = _other_element(oid, value)
    return out


def _other_element(oid: int, value: str | bytes) -> tuple[int, bytes]:
    if oid in _FIELD_OIDS:
        name = _FIELD_NAMES.get(oid, "content parameter (computed)")
        raise TagDataError(f"OID {oid} is the {name}; it does not belong in ItemData.other")
    if not 7 <= oid <= _MAX_OID:
        raise TagDataError(f"OID {oid} is outside 7..{_MAX_OID}")
    if isinstance(value, bytes):
        return Compaction.OCTET, value
    if isinstance(value, str):
        return _encode_text_element(oid, value)
    raise TagDataError(f"OID {oid} value {value!r} is neither str nor bytes")


def _header(oid: int, scheme: int, length: int, offset: int | None) -> bytes:
    flag = 0x80 if offset is not None else 0
    head = bytearray((flag | (scheme << 4) | min(oid, 15),))
    if oid >= 15:
        head.append(oid - 15)
    if offset is not None:
        head.append(offset)
    head.append(length)
    return bytes(head)


def encode_28560_2(
    item: ItemData,
    *,
    block_size: int = 4,
    locked_oids: frozenset[int] = frozenset(),
    memory_size: int | None = None,
) -> bytes:
    """Encode item data as ISO 28560-2 user memory.

    Elements whose OID is in ``locked_oids`` start and end on ``block_size`` boundaries (OIDs in
    it that the item does not hold are ignored). Without ``memory_size`` the result is the
    elements, the 0x00 terminator and 0x00 up to a whole block; with it, exactly
    ``memory_size`` bytes (no terminator when the elements fill memory exactly). Raise
    TagDataError when a value cannot be encoded or the elements do not fit.
    """
    if not 1 <= block_size <= 256:
        raise TagDataError(f"block size {block_size} is not 1..256 bytes")
    elements = _elements(item)
    cp = content_parameter(elements)
    if cp:
        elements[_CONTENT] = (Compaction.APPLICATION, cp)
    first = [oid for oid in (_PII, _CONTENT) if oid in elements]
    rest = sorted(oid for oid in elements if oid not in first)
    unlocked = [oid for oid in rest if oid not in locked_oids]
    order = first + unlocked + [oid for oid in rest if oid in locked_oids]

    # The offset of an element is None (no offset byte) or its pad count; an unlocked element
    # gains one when the locked element after it must start on a block boundary.
    layout: list[tuple[int, int, bytes]] = []
    offsets: list[int | None] = []
    pos = 0
    for oid in order:
        scheme, data = elements[oid]
        if len(data) > 0xFF:
            raise TagDataError(f"OID {oid} needs {len(data)} bytes; an element holds at most 255")
        locked = oid in locked_oids
        if locked and pos % block_size:
            # Pad the previous (unlocked) element so this one starts on a block boundary.
            pos += 1  # its offset byte
            pad = -pos % block_size
            offsets[-1] = pad
            pos += pad
        size = len(_header(oid, scheme, len(data), 0 if locked else None)) + len(data)
        pad = -(pos + size) % block_size if locked else 0
        layout.append((oid, scheme, data))
        offsets.append(pad if locked else None)
        pos += size + pad

    out = bytearray()
    for (oid, scheme, data), offset in zip(layout, offsets, strict=True):
        out += _header(oid, scheme, len(data), offset)
        out += data
        out += bytes(offset or 0)
    if memory_size is None:
        out.append(0)
        out += bytes(-len(out) % block_size)
        return bytes(out)
    if len(out) > memory_size:
        raise TagDataError(
            f"the item needs {len(out)} bytes of tag memory; the tag has {memory_size}"
        )
    return bytes(out) + bytes(memory_size - len(out))
