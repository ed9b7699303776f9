"""Library RFID tag data: ISO 28560-2 and -3 codecs, model detection and the Tag model.

Pure functions over bytes, no I/O: the kiosk, the gate, the FEIG driver's "read everything in
the field" and the reader simulator all use them.

- :func:`decode_tag` turns a UID, user memory and the chip registers into a :class:`Tag`
  (model, item data, security state); it never raises on memory content.
- :func:`decode_28560_2` / :func:`encode_28560_2`, :func:`decode_28560_3` /
  :func:`encode_28560_3` and :func:`encode_item` convert :class:`ItemData` to and from memory.
- :func:`security_state` applies a library's :class:`SecurityConfig` to the AFI and EAS bit.

Errors: :class:`TagDataError` (a ``ValueError``) is the only exception the codecs raise.
"""

from hardware.tags.compaction import Compaction
from hardware.tags.decode import UID_SIZE, decode_tag, detect_model, encode_item
from hardware.tags.isil import decode_isil, encode_isil
from hardware.tags.iso28560_2 import DSFID as DSFID_28560_2
from hardware.tags.iso28560_2 import content_parameter, decode_28560_2, encode_28560_2
from hardware.tags.iso28560_3 import (
    BASIC_BLOCK_SIZE,
    basic_block_crc,
    crc16_ccitt,
    decode_28560_3,
    encode_28560_3,
)
from hardware.tags.model import (
    DataModel,
    ItemData,
    Oid,
    SecurityConfig,
    SecurityState,
    SetInfo,
    Tag,
    TagDataError,
    UsagePrimary,
    security_state,
)

__all__ = [
    "BASIC_BLOCK_SIZE",
    "DSFID_28560_2",
    "UID_SIZE",
    "Compaction",
    "DataModel",
    "ItemData",
    "Oid",
    "SecurityConfig",
    "SecurityState",
    "SetInfo",
    "Tag",
    "TagDataError",
    "UsagePrimary",
    "basic_block_crc",
    "content_parameter",
    "crc16_ccitt",
    "decode_28560_2",
    "decode_28560_3",
    "decode_isil",
    "decode_tag",
    "detect_model",
    "encode_28560_2",
    "encode_28560_3",
    "encode_isil",
    "encode_item",
    "security_state",
]
