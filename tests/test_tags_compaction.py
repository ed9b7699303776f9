"""ISO 28560-2 compaction schemes and ISIL compaction, each checked both ways and with garbage.

Expected bytes are built here from bit strings written out per the facts document, not with the
codec's own packing code.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware.tags import TagDataError
from hardware.tags.compaction import (
    Compaction,
    choose_compaction,
    decode_5bit,
    decode_6bit,
    decode_7bit,
    decode_integer,
    decode_numeric,
    decode_text,
    decode_utf8,
    encode_5bit,
    encode_6bit,
    encode_7bit,
    encode_integer,
    encode_numeric,
    encode_text,
    encode_utf8,
    fits,
)
from hardware.tags.isil import decode_isil, encode_isil, isil_fits


def bits(text: str) -> bytes:
    """Turn a string of 0/1 (spaces allowed) into bytes, MSB first."""
    digits = text.replace(" ", "")
    assert len(digits) % 8 == 0, f"{len(digits)} bits is not whole bytes"
    return int(digits, 2).to_bytes(len(digits) // 8, "big") if digits else b""


def five(text: str) -> str:
    return " ".join(f"{ord(c) & 0x1F:05b}" for c in text)


def six(text: str) -> str:
    return " ".join(f"{ord(c) & 0x3F:06b}" for c in text)


def seven(text: str) -> str:
    return " ".join(f"{ord(c):07b}" for c in text)


# ---------------------------------------------------------------- exact vectors


def test_integer_vector_from_the_facts_document() -> None:
    """Integer compaction stores 123456789012 as 1C BE 99 1A 14 and reads it back."""
    assert encode_integer("123456789012") == bytes.fromhex("1CBE991A14")
    assert decode_integer(bytes.fromhex("1CBE991A14")) == "123456789012"


def test_integer_uses_the_fewest_bytes() -> None:
    """Integer compaction uses one byte for 0 and 255 and two for 256."""
    assert encode_integer("0") == b"\x00"
    assert encode_integer("255") == b"\xff"
    assert encode_integer("256") == b"\x01\x00"
    assert decode_integer(b"\x01\x00") == "256"


def test_numeric_vectors_from_the_facts_document() -> None:
    """Numeric compaction stores 1203 as 12 03 and 010 as 01 0F, and reads both back."""
    assert encode_numeric("1203") == bytes.fromhex("1203")
    assert encode_numeric("010") == bytes.fromhex("010F")
    assert decode_numeric(bytes.fromhex("1203")) == "1203"
    assert decode_numeric(bytes.fromhex("010F")) == "010"


def test_5bit_packs_msb_first_and_pads_with_zero_bits() -> None:
    """5-bit compaction of "AB" is 00001 00010 plus six 0 pad bits, and decodes back."""
    expected = bits(five("AB") + " 000000")
    assert encode_5bit("AB") == expected
    assert decode_5bit(expected) == "AB"


def test_5bit_without_padding_group() -> None:
    """Eight 5-bit characters fill exactly five bytes and decode back."""
    text = "LIBRARY_"
    expected = bits(five(text))
    assert encode_5bit(text) == expected
    assert decode_5bit(expected) == text


def test_6bit_worked_example_shelf_location() -> None:
    """The worked example's shelf location "QA268.L55" is 44 1C B6 E2 E3 35 D6 in 6-bit."""
    data = bytes.fromhex("441CB6E2E335D6")
    assert encode_6bit("QA268.L55") == data
    assert decode_6bit(data) == "QA268.L55"


@pytest.mark.parametrize(
    ("text", "pad"),
    [("A", "10"), ("AB", "1000"), ("ABC", "100000"), ("ABCD", ""), ("AB ", "100000")],
)
def test_6bit_pads_with_leading_bits_of_100000(text: str, pad: str) -> None:
    """6-bit padding is the leading bits of 100000, and a padded final space survives."""
    expected = bits(six(text) + " " + pad)
    assert encode_6bit(text) == expected
    assert decode_6bit(expected) == text


def test_6bit_refuses_a_final_space_that_would_read_as_padding() -> None:
    """Four 6-bit characters ending in a space fill whole bytes, so the space would vanish."""
    assert not fits("ABC ", Compaction.SIX_BIT)
    with pytest.raises(TagDataError, match="final space"):
        encode_6bit("ABC ")
    # And the decoder indeed treats such a final group as padding.
    assert decode_6bit(bits(six("ABC "))) == "ABC"


@pytest.mark.parametrize(("text", "pad"), [("Ab1", "111"), ("library", "1111111")])
def test_7bit_pads_with_one_bits(text: str, pad: str) -> None:
    """7-bit compaction pads with 1 bits; a whole 1111111 group at the end is padding."""
    expected = bits(seven(text) + " " + pad)
    assert encode_7bit(text) == expected
    assert decode_7bit(expected) == text


@pytest.mark.parametrize("title", ["Truyện Kiều", "Dế Mèn phiêu lưu ký"])
def test_utf8_vietnamese_titles_round_trip(title: str) -> None:
    """Vietnamese titles are stored as their UTF-8 bytes and read back unchanged."""
    assert encode_utf8(title) == title.encode("utf-8")
    assert decode_utf8(title.encode("utf-8")) == title


def test_dispatch_by_scheme_number() -> None:
    """encode_text/decode_text route to the scheme given; octet strings are read as UTF-8."""
    assert encode_text("1203", Compaction.NUMERIC) == bytes.fromhex("1203")
    assert decode_text(bytes.fromhex("1203"), 2) == "1203"
    assert decode_text("Hà Nội".encode(), 6) == "Hà Nội"
    with pytest.raises(TagDataError, match="application-defined"):
        decode_text(b"\x01", 0)
    with pytest.raises(TagDataError, match="not a text scheme"):
        encode_text("x", Compaction.APPLICATION)


@pytest.mark.parametrize(
    ("text", "scheme"),
    [
        ("123456789012", Compaction.INTEGER),
        ("0", Compaction.INTEGER),
        ("0123", Compaction.NUMERIC),
        ("ABC", Compaction.FIVE_BIT),
        ("QA268.L55", Compaction.SIX_BIT),
        ("ABC ", Compaction.SEVEN_BIT),
        ("Qa268", Compaction.SEVEN_BIT),
        ("Truyện Kiều", Compaction.UTF8),
        ("", Compaction.UTF8),
    ],
)
def test_choose_compaction_takes_the_first_scheme_that_fits(text: str, scheme: Compaction) -> None:
    """The encoder's choice is integer, numeric, 5-bit, 6-bit, 7-bit, then UTF-8."""
    assert choose_compaction(text) is scheme


# ---------------------------------------------------------------- garbage and errors


@pytest.mark.parametrize(
    ("decoder", "data", "words"),
    [
        (decode_integer, b"\x00\x05", "leading zero"),
        (decode_numeric, bytes.fromhex("1A"), "not a digit"),
        (decode_numeric, bytes.fromhex("F1"), "not a digit"),
        (decode_5bit, bits(five("AB") + " 000001"), "padding bits"),
        (decode_5bit, bits(five("A") + " 00000 00000 0"), "code 0"),
        (decode_6bit, bits(six("A") + " 01"), "padding bits 01"),
        (decode_7bit, bits(seven("Ab1") + " 101"), "padding bits"),
        (decode_7bit, bits("1111111 " + seven("A") + " 11"), "0x7F"),
        (decode_utf8, b"\xc3\x28", "not valid UTF-8 at byte 0"),
    ],
)
def test_decoders_name_what_is_wrong(
    decoder: Callable[[bytes], str], data: bytes, words: str
) -> None:
    """Each decoder rejects malformed data with a TagDataError that says what is wrong."""
    with pytest.raises(TagDataError, match=words):
        decoder(data)


@pytest.mark.parametrize(
    ("encoder", "text"),
    [
        (encode_integer, "012"),
        (encode_integer, "١٢"),  # Arabic-Indic digits are digits to str.isdigit, not to us
        (encode_numeric, "12a"),
        (encode_5bit, "abc"),
        (encode_6bit, "abc"),
        (encode_7bit, "\x7f"),
        (encode_utf8, "\udc80"),
    ],
)
def test_encoders_refuse_text_outside_their_scheme(
    encoder: Callable[[str], bytes], text: str
) -> None:
    """Each encoder refuses characters its scheme cannot hold with a TagDataError."""
    with pytest.raises(TagDataError):
        encoder(text)


# ---------------------------------------------------------------- properties

SCHEMES: list[tuple[Callable[[str], bytes], Callable[[bytes], str], st.SearchStrategy[str]]] = [
    (
        encode_integer,
        decode_integer,
        st.integers(min_value=0, max_value=10**40).map(str),
    ),
    (encode_numeric, decode_numeric, st.text(alphabet="0123456789", max_size=40)),
    (
        encode_5bit,
        decode_5bit,
        st.text(alphabet=st.characters(min_codepoint=0x41, max_codepoint=0x5F), max_size=40),
    ),
    (
        encode_6bit,
        decode_6bit,
        st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x5F), max_size=40).filter(
            lambda t: not (len(t) % 4 == 0 and t.endswith(" "))
        ),
    ),
    (
        encode_7bit,
        decode_7bit,
        st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7E), max_size=40),
    ),
    (
        encode_utf8,
        decode_utf8,
        st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40),
    ),
]
SCHEME_IDS = ["integer", "numeric", "5-bit", "6-bit", "7-bit", "utf-8"]


@pytest.mark.parametrize(("encode", "decode", "texts"), SCHEMES, ids=SCHEME_IDS)
@settings(deadline=None, max_examples=150)
@given(data=st.data())
def test_each_scheme_round_trips_text_it_can_hold(
    encode: Callable[[str], bytes],
    decode: Callable[[bytes], str],
    texts: st.SearchStrategy[str],
    data: st.DataObject,
) -> None:
    """Any text within a scheme's alphabet decodes back to itself after encoding."""
    text = data.draw(texts)
    assert decode(encode(text)) == text


@pytest.mark.parametrize(("encode", "decode", "texts"), SCHEMES, ids=SCHEME_IDS)
@settings(deadline=None, max_examples=300)
@given(raw=st.binary(max_size=24))
def test_each_decoder_is_exact_on_arbitrary_bytes(
    encode: Callable[[str], bytes],
    decode: Callable[[bytes], str],
    texts: st.SearchStrategy[str],
    raw: bytes,
) -> None:
    """Arbitrary bytes either raise TagDataError or are exactly the encoding of what they read as."""
    try:
        text = decode(raw)
    except TagDataError:
        return
    assert encode(text) == raw


# ---------------------------------------------------------------- ISIL


def test_isil_vector_from_the_facts_document() -> None:
    """ISIL compaction of "DE-Heu1" is 21 40 8E 16 BF 1F, and it decodes back."""
    assert encode_isil("DE-Heu1") == bytes.fromhex("21408E16BF1F")
    assert decode_isil(bytes.fromhex("21408E16BF1F")) == "DE-Heu1"


def test_isil_worked_example_owner() -> None:
    """The worked example's owner "US-InU-Mu" is AC C0 9E BA A0 6F 6B (shifts, one pad bit)."""
    assert encode_isil("US-InU-Mu") == bytes.fromhex("ACC09EBAA06F6B")
    assert decode_isil(bytes.fromhex("ACC09EBAA06F6B")) == "US-InU-Mu"


def test_isil_latches_when_the_next_character_also_needs_the_other_mode() -> None:
    """ "ab" latches to lower (28); "aB" shifts (29) because B fits upper; digits shift (31)."""
    assert encode_isil("ab") == bits("11100 00001 00010 1")
    assert encode_isil("aB") == bits("11101 00001 00010 1")
    assert encode_isil("A1") == bits("00001 11111 0001 11")
    assert encode_isil("A12") == bits("00001 11110 0001 0010 111111")


def test_isil_digit_mode_characters() -> None:
    """In digit mode "-" is 10 and ":" is 11; a shift to upper is 13, a latch 12."""
    assert encode_isil("12-:A") == bits("11110 0001 0010 1010 1011 1101 00001 11")
    assert encode_isil("12-:AB") == bits("11110 0001 0010 1010 1011 1100 00001 00010 11111")
    assert decode_isil(bits("11110 0001 0010 1010 1011 1100 00001 00010 11111")) == "12-:AB"


def test_isil_decoder_accepts_a_latch_where_our_encoder_would_shift() -> None:
    """Another writer's valid choice (latch digit before the final 1) reads the same."""
    data = bits("00100 00101 00000 01000 11100 00101 10101 11110 0001 1111")
    assert decode_isil(data) == "DE-Heu1"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (bits("00001 11101 11100 1"), "followed by control code"),
        (bits("00001 11101 111111"), "ends after a shift"),
        (bits("00001 00010 00011 0"), "not padding"),
    ],
)
def test_isil_garbage_is_named(data: bytes, words: str) -> None:
    """A shift followed by a control code, a dangling shift or non-1 padding is an error."""
    with pytest.raises(TagDataError, match=words):
        decode_isil(data)


def test_isil_refuses_characters_outside_its_tables() -> None:
    """A character in no ISIL table (a dot) is refused, naming it and its position."""
    assert not isil_fits("DE.1")
    with pytest.raises(TagDataError, match=r"'\.' at position 2"):
        encode_isil("DE.1")


ISIL_TEXT = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-:/")


@settings(deadline=None, max_examples=300)
@given(text=ISIL_TEXT)
def test_isil_round_trips_any_text_of_its_alphabet(text: str) -> None:
    """Any string of ISIL characters decodes back to itself after ISIL compaction."""
    assert decode_isil(encode_isil(text)) == text


@settings(deadline=None, max_examples=300)
@given(raw=st.binary(max_size=16))
def test_isil_decoder_on_arbitrary_bytes(raw: bytes) -> None:
    """Arbitrary bytes raise TagDataError or read as text that survives a round trip."""
    try:
        text = decode_isil(raw)
    except TagDataError:
        return
    assert decode_isil(encode_isil(text)) == text
