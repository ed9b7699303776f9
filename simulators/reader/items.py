"""Library item data to tag memory, for :meth:`SimTag.from_item`, using :mod:`hardware.tags`.

The ISO 28560 encoders are shared with the rest of libedge on purpose: a virtual tag should
hold exactly what libedge would write to a real one. (The framing and CRC of the reader
protocol, by contrast, are kept apart from the driver; see the package docstring.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hardware.tags import DSFID_28560_2, DataModel, ItemData, SetInfo, encode_item

__all__ = ["DSFID_28560_3", "encode_item_memory"]

#: DSFID given to ISO 28560-3 tags: anything but 0x06, which would announce ISO 28560-2.
DSFID_28560_3 = 0x00

_MODELS = {"2": DataModel.ISO28560_2, "3": DataModel.ISO28560_3}


def _set_info(value: SetInfo | tuple[int, int] | list[int] | str | None) -> SetInfo | None:
    """Accept set information as SetInfo, (parts, part) or ISO digits like "1203"."""
    if value is None or isinstance(value, SetInfo):
        return value
    if isinstance(value, str):
        if len(value) not in (2, 4, 6) or not value.isdigit():
            raise ValueError(f"set_info {value!r} is not 2, 4 or 6 digits like '1203'")
        half = len(value) // 2
        return SetInfo(parts=int(value[:half]), part=int(value[half:]))
    parts, part = value
    return SetInfo(parts=parts, part=part)


def encode_item_memory(
    item_id: str,
    *,
    model: str = "2",
    isil: str | None = None,
    title: str | None = None,
    block_size: int = 4,
    set_info: SetInfo | tuple[int, int] | list[int] | str | None = None,
    type_of_usage: int | None = None,
    shelf_location: str | None = None,
    other: Mapping[int, str | bytes] | None = None,
    **encode_options: Any,
) -> tuple[bytes, int]:
    """Encode an item in ISO 28560-``model``; return (user memory, DSFID).

    ``encode_options`` go to :func:`hardware.tags.encode_item` (``locked_oids``,
    ``memory_size``, ``extension``, ``isil_hyphen``). Raises ValueError (TagDataError included)
    when the item cannot be encoded.
    """
    if model not in _MODELS:
        raise ValueError(f"model must be '2' (ISO 28560-2) or '3' (ISO 28560-3), got {model!r}")
    item = ItemData(
        primary_item_id=item_id,
        owner_institution=isil,
        set_info=_set_info(set_info),
        type_of_usage=type_of_usage,
        shelf_location=shelf_location,
        title=title,
        other=dict(other or {}),
    )
    data_model = _MODELS[model]
    memory = encode_item(item, data_model, block_size=block_size, **encode_options)
    dsfid = DSFID_28560_2 if data_model is DataModel.ISO28560_2 else DSFID_28560_3
    return memory, dsfid
