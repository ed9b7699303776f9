"""ISO 28560-3: CRC check values, the documented example both ways, extensions and garbage."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware.tags import (
    ItemData,
    SetInfo,
    TagDataError,
    basic_block_crc,
    crc16_ccitt,
    decode_28560_3,
    encode_28560_3,
)

EXAMPLE = bytes.fromhex(
    "11 01 01 31 31 32 32 33 33 34 34 00 00 00 00 00 00 00 00 51 3E 44 45 37 30 35 00 00 00 00 00 00"
)
EXAMPLE_ITEM = ItemData(
    primary_item_id="11223344",
    owner_institution="DE-705",
    set_info=SetInfo(parts=1, part=1),
    type_of_usage=0x10,
)


def crc_bitwise(data: bytes) -> int:
    """CRC-16/CCITT written out bit by bit from its definition (poly 0x1021, preset 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc


def with_crc(block: bytes) -> bytes:
    """Put the CRC of a 32-byte block into bytes 19-20, LSB first (test-side helper)."""
    crc = crc_bitwise(block[:19] + block[21:32] + b"\x00\x00")
    return block[:19] + bytes((crc & 0xFF, crc >> 8)) + block[21:]


@pytest.mark.parametrize(
    ("text", "value"), [(b"123456789", 0x29B1), (b"RFID tag data model", 0x1AEE)]
)
def test_crc_check_values(text: bytes, value: int) -> None:
    """CRC-16/CCITT gives the documented check values (and agrees with a bitwise CRC)."""
    assert crc16_ccitt(text) == value
    assert crc_bitwise(text) == value


def test_example_decodes_to_the_documented_values() -> None:
    """The facts document's example is version 1, circulating, part 1 of 1, 11223344, DE 705."""
    item = decode_28560_3(EXAMPLE)
    assert item == EXAMPLE_ITEM
    assert item.is_circulating


def test_example_encodes_back_to_the_same_bytes() -> None:
    """Encoding the example's item gives the example's 32 bytes, CRC 0x3E51 LSB first."""
    encoded = encode_28560_3(EXAMPLE_ITEM)
    assert encoded == EXAMPLE
    assert basic_block_crc(encoded) == 0x3E51
    assert encoded[19:21] == b"\x51\x3e"


def test_memory_size_pads_and_extension_follows_the_basic_block() -> None:
    """Extension bytes follow byte 31, zeros fill memory, and decoding keeps the extension."""
    memory = encode_28560_3(EXAMPLE_ITEM, extension=b"\x05\x01\x00\x7a", memory_size=112)
    assert len(memory) == 112
    assert memory[:32] == EXAMPLE
    assert memory[32:36] == b"\x05\x01\x00\x7a"
    assert memory[36:] == bytes(76)
    decoded = decode_28560_3(memory)
    assert decoded.extension == b"\x05\x01\x00\x7a"
    assert encode_28560_3(decoded, memory_size=112) == memory


def test_full_isil_is_kept_when_the_danish_layout_cannot_hold_it() -> None:
    """An ISIL whose identifier has a hyphen is written whole and reads back the same."""
    item = ItemData("1", owner_institution="US-InU-Mu", type_of_usage=0x10)
    memory = encode_28560_3(item)
    assert memory[21:30] == b"US-InU-Mu"
    assert decode_28560_3(memory) == item


def test_isil_hyphen_option_writes_the_hyphen() -> None:
    """With isil_hyphen the owner field holds "DE-705", which still reads as DE-705."""
    memory = encode_28560_3(EXAMPLE_ITEM, isil_hyphen=True)
    assert memory[21:27] == b"DE-705"
    assert decode_28560_3(memory) == EXAMPLE_ITEM


def test_no_set_info_and_no_owner() -> None:
    """Set information 00 00 reads as None and an all-NUL owner field as None."""
    memory = with_crc(b"\x18\x00\x00" + b"P0001".ljust(16, b"\x00") + b"\x00\x00" + bytes(11))
    item = decode_28560_3(memory)
    assert item == ItemData("P0001", type_of_usage=0x80)
    assert item.is_patron_card
    assert encode_28560_3(item) == memory


@pytest.mark.parametrize(
    ("memory", "words"),
    [
        (EXAMPLE[:31], "31 bytes"),
        (b"\x21" + EXAMPLE[1:], "version 2"),
        (EXAMPLE[:19] + b"\x52\x3e" + EXAMPLE[21:], "CRC at bytes 19-20 is 0x3E52.*0x3E51"),
        (
            with_crc(b"\x11\x01\x01" + bytes(29)),
            "primary item identifier \\(bytes 3-18\\) is empty",
        ),
        (with_crc(b"\x11\x01\x01\xc3\x28" + bytes(27)), "not valid UTF-8"),
    ],
)
def test_malformed_memory_is_named(memory: bytes, words: str) -> None:
    """Short memory, a wrong version, a wrong CRC or a bad field raise TagDataError naming it."""
    with pytest.raises(TagDataError, match=words):
        decode_28560_3(memory)


@pytest.mark.parametrize(
    ("item", "words"),
    [
        (ItemData("1", type_of_usage=0x13), "secondary qualifier"),
        (ItemData("1"), "needs a type of usage"),
        (ItemData("1", type_of_usage=0x10, title="x"), "cannot hold title"),
        (ItemData("1", type_of_usage=0x10, shelf_location="x"), "shelf location"),
        (ItemData("1", type_of_usage=0x10, other={7: "x"}), "other data elements"),
        (ItemData("12345678901234567", type_of_usage=0x10), "needs 17 bytes"),
        (ItemData("1\x002", type_of_usage=0x10), "NUL"),
        (ItemData("", type_of_usage=0x10), "empty"),
        (ItemData("1", type_of_usage=0x10, owner_institution="DE705"), "not an ISIL"),
        (ItemData("1", type_of_usage=0x10, owner_institution="DE-123456789A"), "needs 12"),
        (ItemData("1", type_of_usage=0x10, set_info=SetInfo(256, 1)), "set information"),
    ],
)
def test_encoder_refuses_what_the_basic_block_cannot_hold(item: ItemData, words: str) -> None:
    """Items the basic block cannot hold exactly raise TagDataError naming the reason."""
    with pytest.raises(TagDataError, match=words):
        encode_28560_3(item)


def test_memory_size_too_small_is_refused() -> None:
    """A basic block does not fit into 28 bytes of memory."""
    with pytest.raises(TagDataError, match=r"needs 32 bytes.*has 28"):
        encode_28560_3(EXAMPLE_ITEM, memory_size=28)


@settings(deadline=None, max_examples=400)
@given(memory=st.binary(min_size=0, max_size=48))
def test_arbitrary_bytes_raise_only_tag_data_error(memory: bytes) -> None:
    """Any byte string decodes or raises TagDataError, including ones given a valid CRC."""
    for candidate in (memory, with_crc(memory) if len(memory) >= 32 else memory):
        try:
            decode_28560_3(candidate)
        except TagDataError:
            continue


def _fits(text: str, size: int) -> bool:
    return len(text.encode("utf-8")) <= size


def _clip(text: str, size: int) -> str:
    """Keep the leading characters of ``text`` that fit in ``size`` bytes of UTF-8."""
    while not _fits(text, size):
        text = text[:-1]
    return text


FIELD_CHARS = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")


@st.composite
def owners(draw: st.DrawFn) -> str:
    """ISILs: prefix-identifier strings of up to 11 bytes (Danish layout or whole)."""
    text = draw(st.text(alphabet=FIELD_CHARS, max_size=10))
    cut = draw(st.integers(0, len(text)))
    owner = text[:cut] + "-" + text[cut:]
    return owner if _fits(owner, 11) else "DK-710100"


@st.composite
def set_infos(draw: st.DrawFn) -> SetInfo:
    parts = draw(st.integers(1, 255))
    return SetInfo(parts, draw(st.integers(1, parts)))


ITEMS = st.builds(
    ItemData,
    primary_item_id=st.text(alphabet=FIELD_CHARS, min_size=1, max_size=16).map(
        lambda t: _clip(t, 16)
    ),
    owner_institution=st.none() | owners(),
    set_info=st.none() | set_infos(),
    type_of_usage=st.integers(0, 15).map(lambda primary: primary << 4),
    extension=st.binary(max_size=40).map(lambda b: b.rstrip(b"\x00")),
)


@settings(deadline=None, max_examples=300)
@given(item=ITEMS, memory_size=st.sampled_from([None, 112, 320]))
def test_any_item_round_trips(item: ItemData, memory_size: int | None) -> None:
    """Any item data an ISO 28560-3 tag can hold decodes back to itself after encoding."""
    memory = encode_28560_3(item, memory_size=memory_size)
    assert crc_bitwise(memory[:19] + memory[21:32] + b"\x00\x00") == memory[19] | memory[20] << 8
    assert decode_28560_3(memory) == item
