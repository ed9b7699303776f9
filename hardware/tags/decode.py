"""Tell the data models apart, decode any tag into a :class:`Tag`, and encode by model.

Detection follows the rules libraries' systems use: memory that is all 0x00 or all 0xFF is
BLANK; DSFID 0x06 means ISO 28560-2; a version-1 first byte with a valid CRC at bytes 19-20
means ISO 28560-3; a first byte that is an ISO 28560-2 precursor of the primary item identifier
whose element fits in memory means ISO 28560-2; anything else is UNKNOWN. The CRC check comes
before the precursor check because a -3 first byte (0x11, circulating) is also a valid -2
precursor, while a wrong CRC passing by chance is a 1 in 65,536 event.

:func:`decode_tag` never raises on memory content: a tag that cannot be decoded comes back as
UNKNOWN with its UID and a ``problem`` in words staff understand, never a guess.
"""

from __future__ import annotations

from hardware.tags.iso28560_2 import DSFID as DSFID_28560_2
from hardware.tags.iso28560_2 import decode_28560_2, encode_28560_2
from hardware.tags.iso28560_3 import (
    BASIC_BLOCK_SIZE,
    basic_block_crc,
    decode_28560_3,
    encode_28560_3,
    looks_like_28560_3,
)
from hardware.tags.model import (
    DataModel,
    ItemData,
    SecurityConfig,
    Tag,
    TagDataError,
    security_state,
)

__all__ = ["UID_SIZE", "decode_tag", "detect_model", "encode_item"]

#: Bytes in an ISO 15693 UID.
UID_SIZE = 8
_DEFAULT_SECURITY = SecurityConfig()


def _is_blank(memory: bytes | bytearray) -> bool:
    first = memory[0]
    return first in (0x00, 0xFF) and memory.count(first) == len(memory)


def _looks_like_28560_2(memory: bytes | bytearray) -> bool:
    """Tell whether memory starts with a whole primary-item-identifier element."""
    precursor = memory[0]
    if precursor & 0x0F != 1:
        return False
    header = 3 if precursor & 0x80 else 2
    if len(memory) < header:
        return False
    offset = memory[1] if precursor & 0x80 else 0
    return header + memory[header - 1] + offset <= len(memory)


def detect_model(dsfid: int | None, memory: bytes | bytearray) -> DataModel:
    """Tell which data model a tag's user memory follows, from its DSFID and content."""
    if not memory:
        return DataModel.UNKNOWN
    if _is_blank(memory):
        return DataModel.BLANK
    if dsfid == DSFID_28560_2:
        return DataModel.ISO28560_2
    if looks_like_28560_3(memory):
        return DataModel.ISO28560_3
    if _looks_like_28560_2(memory):
        return DataModel.ISO28560_2
    return DataModel.UNKNOWN


def _first_bytes(memory: bytes) -> str:
    return memory[:8].hex(" ").upper()


def _crc_words(memory: bytes) -> str | None:
    """Describe a wrong -3 checksum, if memory otherwise starts like an ISO 28560-3 block."""
    if len(memory) < BASIC_BLOCK_SIZE or memory[0] >> 4 != 1:
        return None
    stored = memory[19] | (memory[20] << 8)
    computed = basic_block_crc(memory)
    if stored == computed:
        return None
    return f"its checksum is {stored:04X} but its data gives {computed:04X}"


def _problem(dsfid: int | None, memory: bytes, error: TagDataError | None) -> str:
    """Say in plain words why a tag's data could not be read (details for support after)."""
    if not memory:
        return "No data could be read from the tag's memory."
    crc = _crc_words(memory)
    if error is None:
        if crc is not None:
            return (
                "The tag's data is damaged or was only partly written: it looks like "
                f"ISO 28560-3 but {crc}."
            )
        return (
            "The tag holds data in a format this system does not know (neither ISO 28560-2 "
            f"nor ISO 28560-3); its first bytes are {_first_bytes(memory)}."
        )
    if dsfid == DSFID_28560_2:
        hint = (
            " Its data would be valid ISO 28560-3, so its DSFID may be wrong."
            if looks_like_28560_3(memory)
            else ""
        )
        return (
            "The tag's data is damaged or was only partly written: the tag is marked as "
            f"ISO 28560-2, but {error}.{hint}"
        )
    if crc is not None:
        return (
            "The tag's data is damaged or was only partly written: as ISO 28560-2, "
            f"{error}; as ISO 28560-3, {crc}."
        )
    return f"The tag's data is damaged or was only partly written: {error}."


def decode_tag(
    uid: bytes,
    memory: bytes | bytearray,
    *,
    dsfid: int | None,
    afi: int | None,
    eas: bool | None,
    security: SecurityConfig = _DEFAULT_SECURITY,
) -> Tag:
    """Decode what was read from one tag into a :class:`Tag`; never raise on memory content.

    Raise TagDataError only for a caller's mistake: a UID that is not 8 bytes, or an AFI or
    DSFID outside 0-255.
    """
    if len(uid) != UID_SIZE:
        raise TagDataError(f"UID {bytes(uid).hex().upper()} has {len(uid)} bytes, not 8")
    if afi is not None and not 0 <= afi <= 0xFF:
        raise TagDataError(f"AFI {afi!r} is not a byte")
    if dsfid is not None and not 0 <= dsfid <= 0xFF:
        raise TagDataError(f"DSFID {dsfid!r} is not a byte")
    raw = memory if type(memory) is bytes else bytes(memory)
    model = detect_model(dsfid, raw)
    item: ItemData | None = None
    problem: str | None = None
    try:
        if model is DataModel.ISO28560_2:
            item = decode_28560_2(raw)
        elif model is DataModel.ISO28560_3:
            item = decode_28560_3(raw)
        elif model is DataModel.UNKNOWN:
            problem = _problem(dsfid, raw, None)
    except TagDataError as exc:
        model = DataModel.UNKNOWN
        problem = _problem(dsfid, raw, exc)
    return Tag(
        uid=bytes(uid),
        model=model,
        item=item,
        security=security_state(afi, eas, security),
        afi=afi,
        dsfid=dsfid,
        eas=eas,
        raw=raw,
        problem=problem,
    )


def encode_item(
    item: ItemData,
    model: DataModel,
    *,
    block_size: int = 4,
    locked_oids: frozenset[int] = frozenset(),
    memory_size: int | None = None,
    extension: bytes = b"",
    isil_hyphen: bool = False,
) -> bytes:
    """Encode item data in one data model (see the two encoders for the keywords).

    ``block_size`` and ``locked_oids`` shape an ISO 28560-2 layout; ``extension`` and
    ``isil_hyphen`` apply to ISO 28560-3 only, and giving them for -2 raises TagDataError.
    """
    if model == DataModel.ISO28560_2:
        if extension or isil_hyphen:
            raise TagDataError("extension and isil_hyphen apply to ISO 28560-3 only")
        return encode_28560_2(
            item, block_size=block_size, locked_oids=locked_oids, memory_size=memory_size
        )
    if model == DataModel.ISO28560_3:
        return encode_28560_3(
            item, extension=extension, memory_size=memory_size, isil_hyphen=isil_hyphen
        )
    raise TagDataError(f"items cannot be encoded in the {model} data model")
