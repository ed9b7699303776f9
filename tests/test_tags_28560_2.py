"""ISO 28560-2: the worked example both ways, lock-aware layout, encoder choices and garbage."""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware.tags import (
    ItemData,
    Oid,
    SetInfo,
    TagDataError,
    content_parameter,
    decode_28560_2,
    encode_28560_2,
)

WORKED = bytes.fromhex(
    "91 00 05 1C BE 99 1A 14"
    "02 01 D0"
    "14 02 04 B3"
    "46 07 44 1C B6 E2 E3 35 D6"
    "83 02 07 AC C0 9E BA A0 6F 6B 00 00"
)
WORKED_ITEM = ItemData(
    primary_item_id="123456789012",
    owner_institution="US-InU-Mu",
    set_info=SetInfo(parts=12, part=3),
    shelf_location="QA268.L55",
)
PII_AND_OWNER = frozenset({Oid.PRIMARY_ITEM_ID, Oid.OWNER_INSTITUTION})


@dataclass
class Element:
    """One element as this test file's own walker sees it."""

    start: int
    oid: int
    scheme: int
    offset: int | None
    data: bytes
    end: int


def walk(memory: bytes) -> list[Element]:
    """Split memory into elements by the facts document's layout (independent of the codec)."""
    out: list[Element] = []
    pos = 0
    while pos < len(memory) and memory[pos] != 0:
        start, precursor = pos, memory[pos]
        pos += 1
        oid = precursor & 0x0F
        if oid == 15:
            oid += memory[pos]
            pos += 1
        offset = None
        if precursor & 0x80:
            offset = memory[pos]
            pos += 1
        length = memory[pos]
        data = memory[pos + 1 : pos + 1 + length]
        pos += 1 + length + (offset or 0)
        out.append(Element(start, oid, (precursor >> 4) & 7, offset, data, pos))
    return out


# ---------------------------------------------------------------- the worked example


def test_worked_example_decodes_to_the_documented_values() -> None:
    """The facts document's worked example decodes to PII, set 12/3, shelf, owner ISIL."""
    assert decode_28560_2(WORKED) == WORKED_ITEM


def test_worked_example_encodes_back_to_the_same_bytes() -> None:
    """With block size 4 and PII and owner locked, the encoder reproduces the example exactly."""
    encoded = encode_28560_2(
        WORKED_ITEM, block_size=4, locked_oids=PII_AND_OWNER, memory_size=len(WORKED)
    )
    assert encoded == WORKED


def test_without_memory_size_the_terminator_and_block_padding_follow() -> None:
    """Without memory_size the elements are followed by 0x00 and zeros up to a whole block."""
    encoded = encode_28560_2(WORKED_ITEM, block_size=4, locked_oids=PII_AND_OWNER)
    assert encoded == WORKED + bytes(4)


def test_worked_example_locks_blocks_0_1_and_6_8() -> None:
    """The locked elements of the example occupy exactly blocks 0-1 and 6-8."""
    elements = {e.oid: e for e in walk(WORKED)}
    assert (elements[1].start, elements[1].end) == (0, 8)
    assert (elements[3].start, elements[3].end) == (24, 36)
    assert elements[1].offset == 0
    assert elements[3].offset == 2


def test_content_parameter_bitmap() -> None:
    """The content parameter for OIDs 3, 4 and 6 is D0; OID 17 sets bit 1 of byte 1."""
    assert content_parameter([1, 3, 4, 6]) == b"\xd0"
    assert content_parameter([1, 17]) == b"\x00\x02"
    assert content_parameter([1]) == b""


def test_only_a_pii_needs_no_content_parameter() -> None:
    """An item with nothing but its identifier is one integer element and the terminator."""
    assert encode_28560_2(ItemData("1234")) == bytes.fromhex("11 02 04 D2 00 00 00 00")


# ---------------------------------------------------------------- encoder choices


def test_title_is_utf8_behind_an_oid_extension_byte() -> None:
    """A title (OID 17) is written as 7F 02 then UTF-8, even when it is plain ASCII."""
    memory = encode_28560_2(ItemData("1", title="ABC"))
    title = next(e for e in walk(memory) if e.oid == 17)
    assert memory[title.start : title.start + 2] == b"\x7f\x02"
    assert title.data == b"ABC"


@pytest.mark.parametrize("title", ["Truyện Kiều", "Dế Mèn phiêu lưu ký"])
def test_vietnamese_titles_round_trip(title: str) -> None:
    """Vietnamese titles are stored in UTF-8 and decode back unchanged."""
    item = ItemData("VN0001", owner_institution="VN-HaNL", title=title)
    memory = encode_28560_2(item)
    assert next(e for e in walk(memory) if e.oid == 17).data == title.encode("utf-8")
    assert decode_28560_2(memory) == item


def test_type_of_usage_is_a_one_byte_octet_string() -> None:
    """Type of usage 0x13 is written as precursor 65, length 1, 13."""
    memory = encode_28560_2(ItemData("1", type_of_usage=0x13))
    usage = next(e for e in walk(memory) if e.oid == 5)
    assert (usage.scheme, usage.data) == (6, b"\x13")
    assert decode_28560_2(memory).type_of_usage == 0x13


def test_owner_institution_uses_isil_compaction() -> None:
    """OID 3 with ISIL characters uses scheme 0 with ISIL compaction ("DE-Heu1")."""
    memory = encode_28560_2(ItemData("1", owner_institution="DE-Heu1"))
    owner = next(e for e in walk(memory) if e.oid == 3)
    assert (owner.scheme, owner.data) == (0, bytes.fromhex("21408E16BF1F"))


def test_ill_institution_uses_isil_and_other_isil_like_oids_do_not() -> None:
    """OID 11 uses ISIL compaction; OID 23 holding the same text takes the general rule."""
    memory = encode_28560_2(ItemData("1", other={11: "DK-710100", 23: "DK-710100"}))
    elements = {e.oid: e for e in walk(memory)}
    assert elements[11].scheme == 0
    assert elements[23].scheme == 4  # 6-bit, the first general scheme that fits
    assert decode_28560_2(memory).other == {11: "DK-710100", 23: "DK-710100"}


def test_owner_with_characters_outside_isil_falls_back_to_the_general_rule() -> None:
    """An owner string ISIL compaction cannot hold is written in the first scheme that fits."""
    item = ItemData("1", owner_institution="VN-Thư viện")
    memory = encode_28560_2(item)
    assert next(e for e in walk(memory) if e.oid == 3).scheme == 7
    assert decode_28560_2(memory) == item


def test_bytes_values_are_octet_strings() -> None:
    """A bytes value in other (media format, OID 19) is written and read as an octet string."""
    item = ItemData("1", other={Oid.MEDIA_FORMAT_OTHER: b"\x02", Oid.LOCAL_DATA_A: b"\x00\xff"})
    memory = encode_28560_2(item)
    elements = {e.oid: e for e in walk(memory)}
    assert elements[19].scheme == 6
    assert memory[elements[15].start : elements[15].start + 2] == b"\x6f\x00"
    assert decode_28560_2(memory) == item


def test_set_info_is_written_with_at_least_two_digits_each() -> None:
    """Part 1 of 1 is written as "0101" (numeric), part 3 of 120 as "120003" (integer)."""
    one = next(e for e in walk(encode_28560_2(ItemData("1", set_info=SetInfo(1, 1)))) if e.oid == 4)
    assert (one.scheme, one.data) == (2, bytes.fromhex("0101"))
    big = encode_28560_2(ItemData("1", set_info=SetInfo(120, 3)))
    assert decode_28560_2(big).set_info == SetInfo(120, 3)


def test_set_info_of_two_digits_decodes() -> None:
    """A set information of two digits ("11") is part 1 of 1."""
    memory = bytes.fromhex("11 01 01 02 01 40 14 01 0B")  # PII 1, CP (OID 4), set info 11
    assert decode_28560_2(memory).set_info == SetInfo(1, 1)


# ---------------------------------------------------------------- layout and memory size


def test_locked_element_after_an_unlocked_one_is_aligned_by_padding_it() -> None:
    """When a locked element follows unlocked ones, the last unlocked one is padded to a block."""
    item = ItemData("1", owner_institution="DE-Heu1", shelf_location="A")
    memory = encode_28560_2(item, block_size=8, locked_oids=frozenset({3}))
    elements = walk(memory)
    assert [e.oid for e in elements] == [1, 2, 6, 3]
    shelf, owner = elements[2], elements[3]
    assert shelf.offset is not None
    assert shelf.end == owner.start
    assert owner.start % 8 == 0
    assert owner.end % 8 == 0
    assert decode_28560_2(memory) == item


def test_memory_size_exactly_filled_has_no_terminator() -> None:
    """Elements that fill memory exactly are not followed by a terminator."""
    memory = encode_28560_2(ItemData("1234"), memory_size=4)
    assert memory == bytes.fromhex("11 02 04 D2")
    assert decode_28560_2(memory) == ItemData("1234")


def test_memory_size_pads_with_zeros_and_refuses_overflow() -> None:
    """A larger memory is filled with 0x00; a smaller one is an error naming both sizes."""
    assert encode_28560_2(ItemData("1234"), memory_size=112) == bytes.fromhex("1102 04D2") + bytes(
        108
    )
    with pytest.raises(TagDataError, match=r"needs 36 bytes.*has 32"):
        encode_28560_2(WORKED_ITEM, locked_oids=PII_AND_OWNER, memory_size=32)


def test_decoding_stops_at_the_terminator() -> None:
    """Stale bytes after the 0x00 terminator are not read."""
    memory = bytes.fromhex("11 02 04 D2 00 46 07 FF FF FF")
    assert decode_28560_2(memory) == ItemData("1234")


@pytest.mark.parametrize(
    ("item", "words"),
    [
        (ItemData(""), "primary item identifier is empty"),
        (ItemData("1", type_of_usage=0x100), "not a byte"),
        (ItemData("1", set_info=SetInfo(2, 3)), "set information"),
        (ItemData("1", set_info=SetInfo(1000, 1)), "set information"),
        (ItemData("1", other={6: "x"}), "shelf location"),
        (ItemData("1", other={2: b"\x10"}), "content parameter"),
        (ItemData("1", other={271: "x"}), "outside 7..270"),
        (ItemData("1", title="x" * 256), "255"),
        (ItemData("1", extension=b"\x01"), "extension"),
    ],
)
def test_encoder_refuses_what_it_cannot_write(item: ItemData, words: str) -> None:
    """Values the encoder cannot write raise TagDataError naming the problem."""
    with pytest.raises(TagDataError, match=words):
        encode_28560_2(item)


# ---------------------------------------------------------------- garbage


@pytest.mark.parametrize(
    ("memory", "words"),
    [
        (bytes.fromhex("00 11 02 04 D2"), "no primary item identifier"),
        (bytes.fromhex("46 01 41"), "first element must be the primary item identifier"),
        (bytes.fromhex("11 02 04 D2 46 07 44"), "byte 4 .*run past the end"),
        (bytes.fromhex("11 02 04 D2 11 01 05"), "OID 1 appears again"),
        (bytes.fromhex("11 02 04 D2 10 01 05"), "OID 0"),
        (bytes.fromhex("11 02 04 D2 14 02 04"), "run past the end"),
        (bytes.fromhex("11 02 04 D2 24 02 01 2F"), "set information '012'"),
        (bytes.fromhex("11 02 04 D2 65 02 10 00"), "type of usage must be one byte"),
        (bytes.fromhex("71 00"), "primary item identifier is empty"),
        (bytes.fromhex("01 01 41"), "application-defined"),
        (bytes.fromhex("11 02 04 D2 7F"), "header runs past the end"),
        (bytes.fromhex("11 02 04 D2 76 02 C3 28"), "byte 4 \\(OID 6, UTF-8\\).*UTF-8"),
    ],
)
def test_malformed_memory_is_named(memory: bytes, words: str) -> None:
    """Each kind of malformed memory raises TagDataError saying what and where."""
    with pytest.raises(TagDataError, match=words):
        decode_28560_2(memory)


@settings(deadline=None, max_examples=400)
@given(memory=st.binary(max_size=64))
def test_arbitrary_bytes_raise_only_tag_data_error(memory: bytes) -> None:
    """Any byte string either decodes to item data or raises TagDataError, nothing else."""
    try:
        item = decode_28560_2(memory)
    except TagDataError:
        return
    assert item.primary_item_id


@settings(deadline=None, max_examples=300)
@given(data=st.data())
def test_damaged_valid_memory_raises_only_tag_data_error(data: st.DataObject) -> None:
    """Valid memory with bytes overwritten or cut short decodes or raises TagDataError."""
    memory = bytearray(encode_28560_2(data.draw(items()), block_size=4))
    for _ in range(data.draw(st.integers(1, 3))):
        memory[data.draw(st.integers(0, len(memory) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(memory)))
    with contextlib.suppress(TagDataError):
        decode_28560_2(bytes(memory[:cut]))


# ---------------------------------------------------------------- round trips

TEXT = st.one_of(
    st.integers(min_value=0, max_value=10**15).map(str),
    st.text(alphabet="0123456789", min_size=1, max_size=16),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_", min_size=1, max_size=16),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x5F), max_size=16),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7E), max_size=16),
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=16),
)
ISIL = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-:/")
OTHER_OIDS = st.sampled_from([7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 19, 20, 21, 22, 25, 26, 40])


@st.composite
def set_infos(draw: st.DrawFn) -> SetInfo:
    parts = draw(st.integers(1, 999))
    return SetInfo(parts, draw(st.integers(1, parts)))


def items() -> st.SearchStrategy[ItemData]:
    """Item data an ISO 28560-2 tag can hold."""
    return st.builds(
        ItemData,
        primary_item_id=TEXT.filter(bool),
        owner_institution=st.none() | ISIL | TEXT,
        set_info=st.none() | set_infos(),
        type_of_usage=st.none() | st.integers(0, 255),
        shelf_location=st.none() | TEXT,
        title=st.none() | TEXT,
        other=st.dictionaries(OTHER_OIDS, TEXT | st.binary(max_size=12), max_size=4),
    )


@settings(deadline=None, max_examples=300)
@given(item=items())
def test_any_item_round_trips(item: ItemData) -> None:
    """Any item data an ISO 28560-2 tag can hold decodes back to itself after encoding."""
    assert decode_28560_2(encode_28560_2(item)) == item


@settings(deadline=None, max_examples=300)
@given(
    item=items(),
    block_size=st.sampled_from([4, 8, 32]),
    locked=st.sets(st.sampled_from([1, 2, 3, 4, 5, 6, 7, 11, 17, 19])),
)
def test_locked_elements_sit_on_block_boundaries(
    item: ItemData, block_size: int, locked: set[int]
) -> None:
    """Locked elements start and end on block boundaries, unlocked ones are packed."""
    memory = encode_28560_2(item, block_size=block_size, locked_oids=frozenset(locked))
    assert len(memory) % block_size == 0
    elements = walk(memory)
    assert elements[0].oid == 1
    assert elements[0].start == 0
    for before, after in itertools.pairwise(elements):
        assert before.end == after.start
    for i, element in enumerate(elements):
        if element.oid in locked:
            assert element.start % block_size == 0, element
            assert element.end % block_size == 0, element
            assert element.offset is not None
        elif element.offset is not None:
            # Only an unlocked element right before a locked one carries padding.
            assert elements[i + 1].oid in locked
            assert element.end % block_size == 0
    assert decode_28560_2(memory) == item
