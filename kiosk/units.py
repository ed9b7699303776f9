"""What lies on the pad, as the patron sees it: items (sets counted once), cards, unreadables.

A multi-part item (a book with a CD, a boxed set) carries the same primary item identifier
on every part's tag, with set information "part p of n" (ISO 28560-1 OID 4). The kiosk lends
or takes back such an item only when every part is on the pad; :func:`group_tags` turns the
tags read into :class:`Unit` values — one per item, per patron card, or per tag that holds
no readable library data — each with a stable ``key`` that names its line on the screen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from hardware.tags import DataModel, ItemData, Tag

__all__ = ["Unit", "UnitKind", "group_tags", "is_foreign"]


class UnitKind(StrEnum):
    """What a unit on the pad is."""

    ITEM = "item"  # a library item, every part present
    INCOMPLETE_SET = "incomplete_set"  # a multi-part item with parts missing
    PATRON_CARD = "patron_card"  # a library card put on the pad
    UNREADABLE = "unreadable"  # a tag with no library data the kiosk can read


@dataclass(frozen=True, slots=True)
class Unit:
    """One thing on the pad: its tags, its item data (first part's), and set completeness."""

    key: str
    kind: UnitKind
    tags: tuple[Tag, ...]
    item: ItemData | None = None
    parts: int = 1
    found: int = 1
    foreign: bool = False

    @property
    def item_id(self) -> str | None:
        """The primary item identifier, when the unit is an item or a card."""
        return None if self.item is None else self.item.primary_item_id

    @property
    def title(self) -> str | None:
        """The title stored on the tag, if any."""
        return None if self.item is None else self.item.title

    @property
    def uids(self) -> tuple[bytes, ...]:
        """The UIDs of the unit's tags."""
        return tuple(tag.uid for tag in self.tags)


def is_foreign(item: ItemData, home_isil: str | None) -> bool:
    """Whether an item belongs to another library (its owner ISIL differs from ours)."""
    if home_isil is None or not item.owner_institution:
        return False
    # ISILs are compared without regard to case: a few encoders upper-case them.
    return item.owner_institution.casefold() != home_isil.casefold()


def _item_key(item: ItemData) -> str:
    return f"item:{item.owner_institution or ''}/{item.primary_item_id}"


def group_tags(tags: Iterable[Tag], *, home_isil: str | None) -> list[Unit]:
    """Group the tags read from the pad into units, in the order their first tag was read."""
    order: list[str] = []
    groups: dict[str, list[Tag]] = {}
    singles: dict[str, Unit] = {}
    for tag in tags:
        item = tag.item
        if item is None or tag.model in (DataModel.BLANK, DataModel.UNKNOWN):
            key = f"tag:{tag.uid_hex}"
            singles[key] = Unit(key, UnitKind.UNREADABLE, (tag,))
        elif item.is_patron_card:
            key = f"card:{item.primary_item_id}"
            known = singles.get(key)
            tags_of_card = (*known.tags, tag) if known is not None else (tag,)
            singles[key] = Unit(key, UnitKind.PATRON_CARD, tags_of_card, item)
        else:
            key = _item_key(item)
            if key not in groups:
                groups[key] = []
            groups[key].append(tag)
        if key not in order:
            order.append(key)
    units: list[Unit] = []
    for key in order:
        if key in singles:
            units.append(singles[key])
            continue
        parts_tags = groups[key]
        first = min(parts_tags, key=_part_number)
        assert first.item is not None  # grouped tags all carry item data
        parts = max((_parts_of(t) for t in parts_tags), default=1)
        found = len({_part_number(t) for t in parts_tags if 1 <= _part_number(t) <= parts})
        if parts <= 1:
            found = parts = 1
        kind = UnitKind.ITEM if found >= parts else UnitKind.INCOMPLETE_SET
        units.append(
            Unit(
                key,
                kind,
                tuple(sorted(parts_tags, key=_part_number)),
                first.item,
                parts=parts,
                found=found,
                foreign=is_foreign(first.item, home_isil),
            )
        )
    return units


def _parts_of(tag: Tag) -> int:
    info = tag.item.set_info if tag.item is not None else None
    return info.parts if info is not None else 1


def _part_number(tag: Tag) -> int:
    info = tag.item.set_info if tag.item is not None else None
    return info.part if info is not None else 1
