"""Grouping the tags on the pad into units: sets counted once, cards, unreadables, foreign items."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hardware.tags import DataModel, ItemData, SecurityState, SetInfo, Tag
from kiosk.units import UnitKind, group_tags, is_foreign

HOME = "VN-HaNL"


def tag(n: int, item: ItemData | None, model: DataModel = DataModel.ISO28560_2) -> Tag:
    return Tag(
        uid=bytes([0xE0, 0x04, 0x01, 0, 0, 0, n >> 8, n & 0xFF]),
        model=model if item is not None else DataModel.BLANK,
        item=item,
        security=SecurityState.SECURED,
        afi=0x07,
        dsfid=0x06,
        eas=None,
        raw=b"",
    )


def test_complete_and_incomplete_sets() -> None:
    """All parts present make one ITEM unit; missing parts make an INCOMPLETE_SET unit."""
    full = [tag(i, ItemData("S1", set_info=SetInfo(3, i))) for i in (3, 1, 2)]
    partial = [tag(10 + i, ItemData("S2", set_info=SetInfo(4, i))) for i in (1, 4, 4)]
    units = group_tags([*full, *partial], home_isil=HOME)
    assert [(u.key, u.kind, u.parts, u.found) for u in units] == [
        ("item:/S1", UnitKind.ITEM, 3, 3),
        ("item:/S2", UnitKind.INCOMPLETE_SET, 4, 2),
    ]
    assert [t.item.set_info.part for t in units[0].tags if t.item and t.item.set_info] == [1, 2, 3]


def test_cards_blank_tags_and_foreign_items() -> None:
    """A patron card, a blank tag and another library's item are told apart."""
    units = group_tags(
        [
            tag(1, ItemData("P0001", type_of_usage=0x80)),
            tag(2, None),
            tag(3, ItemData("X1", owner_institution="DK-710100")),
            tag(4, ItemData("X2", owner_institution="vn-hanl")),
            tag(5, ItemData("X3")),
        ],
        home_isil=HOME,
    )
    kinds = {u.key: (u.kind, u.foreign) for u in units}
    assert kinds == {
        "card:P0001": (UnitKind.PATRON_CARD, False),
        "tag:E00401000000000" + "2": (UnitKind.UNREADABLE, False),
        "item:DK-710100/X1": (UnitKind.ITEM, True),
        "item:vn-hanl/X2": (UnitKind.ITEM, False),
        "item:/X3": (UnitKind.ITEM, False),
    }
    assert not is_foreign(ItemData("X", owner_institution="DK-1"), None)


items = st.builds(
    ItemData,
    primary_item_id=st.sampled_from(["A", "B", "C", "P1"]),
    owner_institution=st.sampled_from([None, HOME, "DK-710100"]),
    set_info=st.one_of(
        st.none(),
        st.integers(1, 5).flatmap(lambda n: st.builds(SetInfo, st.just(n), st.integers(0, 7))),
    ),
    type_of_usage=st.sampled_from([None, 0x10, 0x13, 0x20, 0x80]),
)


@given(st.lists(st.one_of(st.none(), items), max_size=16))
def test_every_tag_lands_in_exactly_one_unit(contents: list[ItemData | None]) -> None:
    """Whatever is on the pad, each tag is in one unit, keys are unique, counts add up."""
    tags = [tag(i, item) for i, item in enumerate(contents)]
    units = group_tags(tags, home_isil=HOME)
    keys = [u.key for u in units]
    assert len(keys) == len(set(keys))
    uids = [uid for u in units for uid in u.uids]
    assert sorted(uids) == sorted(t.uid for t in tags)
    for unit in units:
        assert 1 <= unit.found <= unit.parts or unit.kind is not UnitKind.ITEM
        if unit.kind is UnitKind.ITEM:
            assert unit.found == unit.parts
        if unit.kind is UnitKind.INCOMPLETE_SET:
            assert unit.found < unit.parts
