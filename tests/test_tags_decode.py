"""Model detection, decode_tag on any bytes, security state and the item/tag helpers."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware.tags import (
    DataModel,
    ItemData,
    SecurityConfig,
    SecurityState,
    SetInfo,
    Tag,
    TagDataError,
    decode_28560_2,
    decode_28560_3,
    decode_tag,
    detect_model,
    encode_28560_2,
    encode_28560_3,
    encode_item,
    security_state,
)

UID = bytes.fromhex("E016800000000001")
WORKED_2 = bytes.fromhex(
    "91 00 05 1C BE 99 1A 14 02 01 D0 14 02 04 B3 46 07 44 1C B6 E2 E3 35 D6"
    "83 02 07 AC C0 9E BA A0 6F 6B 00 00"
)
EXAMPLE_3 = bytes.fromhex(
    "11 01 01 31 31 32 32 33 33 34 34 00 00 00 00 00 00 00 00 51 3E 44 45 37 30 35 00 00 00 00 00 00"
)
SECURED, UNSECURED, UNKNOWN = SecurityState.SECURED, SecurityState.UNSECURED, SecurityState.UNKNOWN


def damage_crc(memory: bytes) -> bytes:
    """Return memory with the -3 CRC's low byte changed."""
    return memory[:19] + bytes(((memory[19] + 1) & 0xFF,)) + memory[20:]


# ---------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("dsfid", "memory", "model"),
    [
        (0x06, bytes(112), DataModel.BLANK),
        (0x00, b"\xff" * 112, DataModel.BLANK),
        (0x06, WORKED_2, DataModel.ISO28560_2),
        (0x00, WORKED_2, DataModel.ISO28560_2),
        (None, WORKED_2 + bytes(76), DataModel.ISO28560_2),
        (0x00, EXAMPLE_3, DataModel.ISO28560_3),
        (0x3E, EXAMPLE_3 + bytes(80), DataModel.ISO28560_3),
        (0x06, EXAMPLE_3, DataModel.ISO28560_2),  # the DSFID wins; decoding will then fail
        (0x00, b"\x3a\x7f" * 16, DataModel.UNKNOWN),
        (0x00, b"", DataModel.UNKNOWN),
        (0x00, bytes.fromhex("11 09 01"), DataModel.UNKNOWN),  # PII element longer than memory
    ],
)
def test_detect_model(dsfid: int | None, memory: bytes, model: DataModel) -> None:
    """Blank memory, DSFID 0x06, a valid -3 CRC and a -2 PII precursor are told apart."""
    assert detect_model(dsfid, memory) is model


def test_a_3_block_with_a_wrong_crc_is_not_taken_for_3() -> None:
    """Without a valid CRC a -3 looking block is not -3 (here its 0x11 reads as a -2 PII)."""
    assert detect_model(0, damage_crc(EXAMPLE_3)) is not DataModel.ISO28560_3


# ---------------------------------------------------------------- decode_tag


def test_decode_tag_iso28560_2() -> None:
    """A -2 tag decodes to its item, with UID, registers, raw memory and security state."""
    memory = WORKED_2 + bytes(76)
    tag = decode_tag(UID, memory, dsfid=0x06, afi=0x07, eas=True)
    assert tag.model is DataModel.ISO28560_2
    assert tag.item == decode_28560_2(WORKED_2)
    assert tag.primary_item_id == "123456789012"
    assert tag.security is SECURED
    assert (tag.uid, tag.afi, tag.dsfid, tag.eas, tag.raw) == (UID, 0x07, 0x06, True, memory)
    assert tag.uid_hex == "E016800000000001"
    assert tag.problem is None


def test_decode_tag_iso28560_3() -> None:
    """A -3 tag decodes to its item; the on-loan AFI makes it unsecured."""
    tag = decode_tag(UID, bytearray(EXAMPLE_3), dsfid=0, afi=0xC2, eas=None)
    assert tag.model is DataModel.ISO28560_3
    assert tag.item == decode_28560_3(EXAMPLE_3)
    assert tag.security is UNSECURED
    assert type(tag.raw) is bytes


def test_decode_tag_blank() -> None:
    """A blank tag has no item and no problem, but still a security state."""
    tag = decode_tag(UID, bytes(112), dsfid=0, afi=0x07, eas=None)
    assert (tag.model, tag.item, tag.problem, tag.security) == (
        DataModel.BLANK,
        None,
        None,
        SECURED,
    )


@pytest.mark.parametrize(
    ("dsfid", "memory", "words"),
    [
        (0, b"", "No data could be read"),
        (0, b"\x3a\x7f" * 16, "format this system does not know.*3A 7F 3A 7F"),
        (0x06, WORKED_2[:20], "marked as ISO 28560-2.*byte 15"),
        (0x06, EXAMPLE_3, "DSFID may be wrong"),
        (0, damage_crc(EXAMPLE_3), "as ISO 28560-3, its checksum is 3E52 but its data gives 3E51"),
        (0, b"\x1f" + damage_crc(EXAMPLE_3)[1:], "looks like ISO 28560-3 but its checksum"),
        (0, bytes.fromhex("11 02 04 D2 11 01 05"), "damaged.*OID 1 appears again"),
    ],
)
def test_undecodable_tags_are_unknown_with_a_problem(dsfid: int, memory: bytes, words: str) -> None:
    """A tag that cannot be decoded is UNKNOWN, keeps its UID and says why in plain words."""
    tag = decode_tag(UID, memory, dsfid=dsfid, afi=0x07, eas=None)
    assert tag.model is DataModel.UNKNOWN
    assert tag.item is None
    assert tag.uid == UID
    assert tag.security is SECURED
    assert tag.problem is not None
    assert tag.problem[0].isupper()
    assert tag.problem.endswith(".")
    assert re.search(words, tag.problem), tag.problem


@pytest.mark.parametrize(
    ("uid", "afi", "dsfid", "words"),
    [
        (UID[:7], 0x07, 0, "has 7 bytes"),
        (UID, 0x100, 0, "AFI 256"),
        (UID, 0x07, -1, "DSFID -1"),
    ],
)
def test_decode_tag_refuses_caller_mistakes(uid: bytes, afi: int, dsfid: int, words: str) -> None:
    """A UID that is not 8 bytes or registers outside 0-255 are the caller's error."""
    with pytest.raises(TagDataError, match=words):
        decode_tag(uid, EXAMPLE_3, dsfid=dsfid, afi=afi, eas=None)


REGISTER = st.none() | st.integers(0, 255)


@settings(deadline=None, max_examples=500)
@given(memory=st.binary(max_size=120), dsfid=REGISTER, afi=REGISTER, eas=st.none() | st.booleans())
def test_decode_tag_survives_any_bytes(
    memory: bytes, dsfid: int | None, afi: int | None, eas: bool | None
) -> None:
    """decode_tag never raises on memory content; an UNKNOWN tag always says why."""
    tag = decode_tag(UID, memory, dsfid=dsfid, afi=afi, eas=eas)
    assert isinstance(tag, Tag)
    assert tag.raw == memory
    assert (tag.item is None) == (tag.model in (DataModel.BLANK, DataModel.UNKNOWN))
    assert (tag.problem is not None) == (tag.model is DataModel.UNKNOWN)


@settings(deadline=None, max_examples=300)
@given(data=st.data())
def test_decode_tag_survives_damaged_real_tags(data: st.DataObject) -> None:
    """Real -2 and -3 memory with bytes overwritten is decoded or reported, never a crash."""
    base = data.draw(st.sampled_from([WORKED_2 + bytes(76), EXAMPLE_3 + bytes(80)]))
    memory = bytearray(base)
    for _ in range(data.draw(st.integers(1, 4))):
        memory[data.draw(st.integers(0, 40))] = data.draw(st.integers(0, 255))
    tag = decode_tag(UID, bytes(memory), dsfid=data.draw(REGISTER), afi=None, eas=None)
    assert (tag.problem is not None) == (tag.model is DataModel.UNKNOWN)


# ---------------------------------------------------------------- security state


@pytest.mark.parametrize(
    ("afi", "eas", "config", "state"),
    [
        (0x07, None, SecurityConfig(), SECURED),
        (0xC2, None, SecurityConfig(), UNSECURED),
        (0x00, None, SecurityConfig(), UNKNOWN),
        (None, None, SecurityConfig(), UNKNOWN),
        (0x21, None, SecurityConfig(unsecured_afi=0x21), UNSECURED),
        (0xDA, True, SecurityConfig(secured_afi=0xDA, unsecured_afi=0xD7), SECURED),
        (None, True, SecurityConfig(use_afi=False, use_eas=True), SECURED),
        (0x07, False, SecurityConfig(use_afi=False, use_eas=True), UNSECURED),
        (0x07, None, SecurityConfig(use_afi=False, use_eas=True), UNKNOWN),
        (0xC2, False, SecurityConfig(use_eas=True), UNSECURED),
        (0xC2, True, SecurityConfig(use_eas=True), SECURED),
        (0x07, False, SecurityConfig(use_eas=True), SECURED),
        (0x00, False, SecurityConfig(use_eas=True), UNKNOWN),
        (0x07, True, SecurityConfig(use_afi=False), UNKNOWN),
    ],
)
def test_security_state(
    afi: int | None, eas: bool | None, config: SecurityConfig, state: SecurityState
) -> None:
    """AFI and EAS give the security state under each library's configuration."""
    assert security_state(afi, eas, config) is state


def test_security_config_is_checked() -> None:
    """Equal secured and unsecured AFIs, or an AFI over 255, are refused."""
    with pytest.raises(ValueError, match="both 0x07"):
        SecurityConfig(unsecured_afi=0x07)
    with pytest.raises(ValueError, match="not a byte"):
        SecurityConfig(secured_afi=0x107)


def test_decode_tag_uses_the_given_security_config() -> None:
    """decode_tag applies the library's configuration, here the Danish 0x07/0x21 pair."""
    danish = SecurityConfig(unsecured_afi=0x21)
    tag = decode_tag(UID, EXAMPLE_3, dsfid=0, afi=0x21, eas=None, security=danish)
    assert tag.security is UNSECURED


# ---------------------------------------------------------------- item helpers and encode_item


@pytest.mark.parametrize(
    ("usage", "flags"),
    [
        (0x10, {"is_circulating"}),
        (0x13, {"is_circulating", "not_for_offline_issue"}),
        (0x14, {"is_circulating", "not_for_offline_return"}),
        (0x15, {"is_circulating", "not_for_offline_issue", "not_for_offline_return"}),
        (0x20, {"is_not_for_circulation"}),
        (0x23, {"is_not_for_circulation"}),  # secondary 3 means nothing outside circulation
        (0x70, {"is_discarded"}),
        (0x81, {"is_patron_card"}),
        (0x90, {"is_library_equipment"}),
        (None, set()),
    ],
)
def test_type_of_usage_helpers(usage: int | None, flags: set[str]) -> None:
    """The type-of-usage helpers read the primary (high) and secondary (low) nibble."""
    names = {
        "is_circulating",
        "is_not_for_circulation",
        "is_patron_card",
        "is_library_equipment",
        "is_discarded",
        "not_for_offline_issue",
        "not_for_offline_return",
    }
    item = ItemData("1", type_of_usage=usage)
    assert {name for name in names if getattr(item, name)} == flags


def test_item_data_and_tags_are_hashable() -> None:
    """Items (despite their mapping of other elements) and tags can go into sets."""
    a = ItemData("1", other={7: "BA"})
    b = ItemData("1", other={7: "BA"})
    assert len({a, b}) == 1
    tag = decode_tag(UID, EXAMPLE_3, dsfid=0, afi=7, eas=None)
    assert tag in {tag}


def test_set_info_reads_naturally() -> None:
    """SetInfo prints as "part 3 of 12"."""
    assert str(SetInfo(parts=12, part=3)) == "part 3 of 12"


def test_encode_item_dispatches_by_model() -> None:
    """encode_item gives the same bytes as the model's own encoder, and refuses the rest."""
    item = ItemData("11223344", owner_institution="DE-705", type_of_usage=0x10)
    assert encode_item(item, DataModel.ISO28560_2, memory_size=40) == encode_28560_2(
        item, memory_size=40
    )
    assert encode_item(item, DataModel.ISO28560_3, extension=b"\x01") == encode_28560_3(
        item, extension=b"\x01"
    )
    with pytest.raises(TagDataError, match="blank"):
        encode_item(item, DataModel.BLANK)
    with pytest.raises(TagDataError, match="ISO 28560-3 only"):
        encode_item(item, DataModel.ISO28560_2, extension=b"\x01")
