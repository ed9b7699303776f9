"""What patrons carry through a gate: library items, loans, foreign items, patron cards.

Each :class:`CatalogItem` is a virtual tag (:class:`~simulators.reader.SimTag`) with a
:class:`Kind` that fixes both how its tag looks and whether a correct gate must alarm for it:

===================  ==========================================  =========================
kind                 tag                                         alarm?
===================  ==========================================  =========================
unissued             our ISIL, secured AFI and EAS               yes
issued               our ISIL, on-loan AFI, EAS off              no
issued_unswitched    secured (checkout could not switch it),     no (the cache knows better)
                     the cache says on loan
returned_unsecured   on-loan AFI, the cache says on the shelf    yes (the cache knows better)
foreign              another library's ISIL, secured or not      no
patron_card          type of usage 8, usually the on-loan AFI    no
unreadable_secured   memory no data model decodes, secured       yes
unreadable_unsecured memory no data model decodes, on-loan AFI   no
===================  ==========================================  =========================

The two cache kinds only make sense when the gate's edge agent holds the matching item
states; :meth:`Catalog.from_states` builds them from the states central pushes.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hardware.tags import DataModel, decode_tag
from simulators.reader.tags import SimTag, nxp_uid

__all__ = ["ALARMING", "Catalog", "CatalogItem", "Kind"]


class Kind(enum.StrEnum):
    """What an item is, as far as the gate is concerned (see the module docstring)."""

    UNISSUED = "unissued"
    ISSUED = "issued"
    ISSUED_UNSWITCHED = "issued_unswitched"
    RETURNED_UNSECURED = "returned_unsecured"
    FOREIGN = "foreign"
    PATRON_CARD = "patron_card"
    UNREADABLE_SECURED = "unreadable_secured"
    UNREADABLE_UNSECURED = "unreadable_unsecured"


#: Kinds a correct gate alarms for.
ALARMING = frozenset({Kind.UNISSUED, Kind.RETURNED_UNSECURED, Kind.UNREADABLE_SECURED})

#: Default share of each kind in a synthetic catalog (no cache kinds: they need central).
DEFAULT_MIX: Mapping[Kind, float] = {
    Kind.UNISSUED: 0.15,
    Kind.ISSUED: 0.55,
    Kind.FOREIGN: 0.12,
    Kind.PATRON_CARD: 0.12,
    Kind.UNREADABLE_SECURED: 0.03,
    Kind.UNREADABLE_UNSECURED: 0.03,
}

_TITLES = (
    "Truyện Kiều",
    "Dế Mèn phiêu lưu ký",
    "Số đỏ",
    "Tắt đèn",
    "Matilda",
    "The Little Prince",
    "Harry Potter và Hòn đá Phù thủy",
    "Nhà giả kim",
    "Cho tôi xin một vé đi tuổi thơ",
    "A Brief History of Time",
)


@dataclass(eq=False)
class CatalogItem:
    """One carried thing: its id, its kind, its virtual tag."""

    item_id: str
    kind: Kind
    tag: SimTag
    title: str | None = None

    @property
    def alarms(self) -> bool:
        """Whether a correct gate alarms when this passes."""
        return self.kind in ALARMING

    @property
    def uid_hex(self) -> str:
        """The tag's UID as 16 upper-case hex digits."""
        return self.tag.uid.hex().upper()


def _unreadable(
    item_id: str, rng: random.Random, *, secured: bool, afis: tuple[int, int]
) -> SimTag:
    """A tag whose memory no data model decodes (checked, so it never decodes by chance)."""
    uid = nxp_uid("unreadable:" + item_id)
    while True:
        # 0x5A: high nibble 5 is no ISO 28560-3 version, low nibble A no -2 item id precursor.
        memory = bytes([0x5A]) + rng.randbytes(31)
        if decode_tag(uid, memory, dsfid=0, afi=None, eas=None).model is DataModel.UNKNOWN:
            break
    return SimTag(
        uid=uid,
        memory=bytearray(memory),
        afi=afis[0] if secured else afis[1],
        dsfid=0x00,
        eas=secured,
    )


class Catalog:
    """The items a traffic run draws from, by kind."""

    def __init__(self, items: Iterable[CatalogItem]) -> None:
        self.items = list(items)
        if not self.items:
            raise ValueError("a traffic catalog needs at least one item")
        self.by_kind: dict[Kind, list[CatalogItem]] = {}
        for item in self.items:
            self.by_kind.setdefault(item.kind, []).append(item)
        self.by_uid = {item.tag.uid: item for item in self.items}
        if len(self.by_uid) != len(self.items):
            raise ValueError("two catalog items share a tag UID")

    def __len__(self) -> int:
        return len(self.items)

    @staticmethod
    def make(
        item_id: str,
        kind: Kind,
        *,
        own_isil: str,
        foreign_isil: str = "VN-KHAC",
        title: str | None = None,
        rng: random.Random | None = None,
        model: str = "2",
        secured_afi: int = 0x07,
        unsecured_afi: int = 0xC2,
    ) -> CatalogItem:
        """Build one item of a kind, its tag encoded in ISO 28560-``model``."""
        rng = rng or random.Random(item_id)
        afis = (secured_afi, unsecured_afi)
        if kind in (Kind.UNREADABLE_SECURED, Kind.UNREADABLE_UNSECURED):
            tag = _unreadable(item_id, rng, secured=kind is Kind.UNREADABLE_SECURED, afis=afis)
            return CatalogItem(item_id, kind, tag, None)
        if kind is Kind.PATRON_CARD:
            # A card usually carries the on-loan AFI; a few were tagged with the secured one.
            secured, usage, isil, title = rng.random() < 0.2, 0x80, own_isil, None
        else:
            secured = {
                Kind.UNISSUED: True,
                Kind.ISSUED: False,
                Kind.ISSUED_UNSWITCHED: True,
                Kind.RETURNED_UNSECURED: False,
                Kind.FOREIGN: rng.random() < 0.5,
            }[kind]
            usage = 0x10
            isil = foreign_isil if kind is Kind.FOREIGN else own_isil
        tag = SimTag.from_item(
            item_id,
            model=model,
            isil=isil,
            # An ISO 28560-3 basic block has no room for a title; the catalog keeps it.
            title=title if model == "2" else None,
            type_of_usage=usage,
            secured=secured,
            secured_afi=secured_afi,
            unsecured_afi=unsecured_afi,
        )
        return CatalogItem(item_id, kind, tag, title)

    @classmethod
    def synthetic(
        cls,
        size: int,
        *,
        own_isil: str,
        seed: int = 0,
        mix: Mapping[Kind, float] = DEFAULT_MIX,
        secured_afi: int = 0x07,
        unsecured_afi: int = 0xC2,
    ) -> Catalog:
        """A catalog of ``size`` made-up items in the proportions of ``mix``.

        Every kind in ``mix`` gets at least one item; models alternate between -2 and -3.
        """
        if size < len(mix):
            raise ValueError(f"a catalog of {size} items cannot hold {len(mix)} kinds")
        rng = random.Random(seed)
        total = sum(mix.values())
        kinds: list[Kind] = []
        for kind, share in mix.items():
            kinds += [kind] * max(1, round(size * share / total))
        kinds = kinds[:size]
        rng.shuffle(kinds)
        items = []
        for number, kind in enumerate(kinds):
            prefix = "P" if kind is Kind.PATRON_CARD else "S"
            items.append(
                cls.make(
                    f"{prefix}{seed % 1000:03d}{number:06d}",
                    kind,
                    own_isil=own_isil,
                    title=rng.choice(_TITLES),
                    rng=rng,
                    model="2" if number % 2 else "3",
                    secured_afi=secured_afi,
                    unsecured_afi=unsecured_afi,
                )
            )
        return cls(items)

    @classmethod
    def from_states(
        cls,
        states: Iterable[tuple[str, str, str | None]],
        *,
        own_isil: str,
        seed: int = 0,
        unswitched_share: float = 0.1,
        returned_share: float = 0.1,
        extras: Mapping[Kind, int] | None = None,
    ) -> Catalog:
        """A catalog of real items (id, cache state, title) plus made-up foreign items and cards.

        Items on loan become ``issued`` (a share ``issued_unswitched``); items on the shelf
        become ``unissued`` (a share ``returned_unsecured``). ``extras`` adds made-up items
        of the kinds the cache does not hold (foreign, patron cards, unreadable tags).
        """
        rng = random.Random(seed)
        items = []
        for number, (item_id, state, title) in enumerate(states):
            if state == "on_loan":
                kind = Kind.ISSUED_UNSWITCHED if rng.random() < unswitched_share else Kind.ISSUED
            elif state == "on_shelf":
                roll = rng.random() < returned_share
                kind = Kind.RETURNED_UNSECURED if roll else Kind.UNISSUED
            else:
                continue  # on hold / missing: not part of the traffic
            model = "2" if number % 2 else "3"
            items.append(
                cls.make(item_id, kind, own_isil=own_isil, title=title, rng=rng, model=model)
            )
        for group, (kind, count) in enumerate((extras or {}).items()):
            for number in range(count):
                prefix = "P" if kind is Kind.PATRON_CARD else "X"
                item_id = f"{prefix}{group:02d}{number:05d}"
                items.append(cls.make(item_id, kind, own_isil=own_isil, rng=rng))
        return cls(items)
