"""CRC, framing and the resynchronising decoder of the FEIG ISO Host protocol."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hardware.feig import commands as cmd
from hardware.feig.crc import crc16
from hardware.feig.frames import FrameDecoder, Reply, encode_request, parse_reply
from hardware.feig.status import STATUS_NAMES, iso_error_name, status_error, status_name
from hardware.reader import (
    FrameCRCError,
    FrameError,
    FrameLengthError,
    FrameTruncatedError,
    ReaderStatusError,
    ReaderUsageError,
    TagError,
    TagNotFound,
)
from tests.test_feig_fakes import (
    CAPTURED_INVENTORY_REQUEST,
    CAPTURED_LENGTH_ERROR,
    CAPTURED_NO_TAG,
    CAPTURED_ONE_TAG,
    CAPTURED_RF_ERROR,
    CAPTURED_UID,
    CAPTURED_VERSION,
    advanced_reply,
    bit_crc,
    h,
    reply_frame,
)

# ---------------------------------------------------------------- CRC


def test_crc_check_values_from_the_facts_doc() -> None:
    """The CRC gives 0x6F91 for "123456789" and 0x0933 for the captured version reply body."""
    assert crc16(b"123456789") == 0x6F91
    assert crc16(h("0D 00 65 00 03 03 00 44 53 0D 30")) == 0x0933


@given(st.binary(max_size=300))
def test_crc_table_agrees_with_bitwise_crc(data: bytes) -> None:
    """The table-driven CRC equals a bit-by-bit CRC for any input."""
    assert crc16(data) == bit_crc(data)


@given(st.binary(max_size=300), st.binary(max_size=300))
def test_crc_continues_across_chunks(first: bytes, second: bytes) -> None:
    """Feeding the CRC in two pieces gives the CRC of the whole."""
    assert crc16(second, crc16(first)) == crc16(first + second)


@given(st.binary(max_size=300))
def test_crc_over_frame_with_its_crc_is_zero(data: bytes) -> None:
    """Appending the CRC low byte first makes the CRC of the whole zero (the receive check)."""
    crc = crc16(data)
    assert crc16(data + bytes([crc & 0xFF, crc >> 8])) == 0


# ---------------------------------------------------------------- captured frames


@pytest.mark.parametrize(
    ("address", "command", "data", "expected"),
    [
        (0xFF, 0xB0, cmd.inventory_request(), CAPTURED_INVENTORY_REQUEST),
        (0xFF, 0x52, b"\x00", "06 FF 52 00 0F 6E"),
        (0xFF, 0x63, b"", "05 FF 63 D3 AE"),
        (0xFF, 0xB1, cmd.custom_request(cmd.NxpCommand.EAS_ALARM, None), "08 FF B1 04 A5 00 73 13"),
        (
            0xFF,
            0xB1,
            cmd.custom_request(cmd.NxpCommand.SET_EAS, CAPTURED_UID),
            "10 FF B1 04 A2 01 E0 16 80 FF 08 00 50 24 A4 FB",
        ),
    ],
)
def test_requests_match_captured_and_computed_frames(
    address: int, command: int, data: bytes, expected: str
) -> None:
    """Each request the driver encodes is byte-for-byte the frame in the facts doc."""
    assert encode_request(address, command, data) == h(expected)


def test_advanced_inventory_request_matches_the_computed_frame() -> None:
    """An advanced inventory request is 02 00 09 FF B0 01 00 18 43 (CRC low byte first)."""
    frame = encode_request(0xFF, 0xB0, cmd.inventory_request(), advanced=True)
    assert frame == h("02 00 09 FF B0 01 00 18 43")


def test_advanced_request_crc_can_be_sent_high_byte_first() -> None:
    """With the switch set, the advanced frame's CRC bytes are swapped and nothing else."""
    frame = encode_request(0xFF, 0xB0, cmd.inventory_request(), advanced=True, crc_high_first=True)
    assert frame == h("02 00 09 FF B0 01 00 43 18")


def test_request_longer_than_a_standard_frame_goes_advanced() -> None:
    """A request of more than 255 bytes is sent as an advanced frame with a 2-byte length."""
    data = bytes(300)
    frame = encode_request(0x01, 0xB0, data)
    assert frame[0] == 0x02
    assert (frame[1] << 8 | frame[2]) == len(frame) == 300 + 7
    assert bit_crc(frame) == 0


def test_request_with_bad_address_is_refused() -> None:
    """A bus address above 255 is a usage error naming the address."""
    with pytest.raises(ReaderUsageError, match="300"):
        encode_request(300, 0xB0)


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (CAPTURED_NO_TAG, Reply(0x00, 0xB0, 0x01, b"")),
        (CAPTURED_ONE_TAG, Reply(0x00, 0xB0, 0x00, h("01 03 00") + CAPTURED_UID)),
        (CAPTURED_RF_ERROR, Reply(0x00, 0xB0, 0x83, b"\x00")),
        (CAPTURED_LENGTH_ERROR, Reply(0x00, 0xB0, 0x81, b"")),
        ("06 00 52 00 FC A8", Reply(0x00, 0x52, 0x00, b"")),
        ("06 00 63 00 86 07", Reply(0x00, 0x63, 0x00, b"")),
        (CAPTURED_VERSION, Reply(0x00, 0x65, 0x00, h("03 03 00 44 53 0D 30"))),
    ],
)
def test_captured_replies_parse(frame: str, expected: Reply) -> None:
    """Every captured reply parses into its address, command, status and data."""
    assert parse_reply(h(frame)) == expected


def test_captured_one_tag_inventory_decodes_to_its_uid() -> None:
    """The captured one-tag reply is one ISO 15693 tag, DSFID 00, UID E0 16 80 FF 08 00 50 24."""
    entries = cmd.parse_inventory(parse_reply(h(CAPTURED_ONE_TAG)).data)
    assert [(e.uid_hex, e.dsfid, e.transponder_type) for e in entries] == [
        ("E01680FF08005024", 0x00, 0x03)
    ]


def test_captured_version_reply_decodes() -> None:
    """The captured software version reply is revision 3.3, HW type 0x44, SW type 0x53."""
    info = cmd.parse_reader_info(parse_reply(h(CAPTURED_VERSION)).data)
    assert info.software_version == "3.3"
    assert (info.driver_revision, info.hardware_type, info.software_type) == (0x00, 0x44, 0x53)
    assert info.transponder_types == 0x0D30


# ---------------------------------------------------------------- errors that name the problem


def test_bad_crc_names_both_values() -> None:
    """A corrupted CRC is reported with the received and the computed value."""
    frame = bytearray(h(CAPTURED_ONE_TAG))
    frame[-1] ^= 0xFF
    with pytest.raises(FrameCRCError) as info:
        parse_reply(bytes(frame))
    assert info.value.received == 0x8A80
    assert info.value.computed == 0x7580
    assert "0x8A80" in str(info.value)
    assert "0x7580" in str(info.value)


def test_truncated_frame_says_how_many_bytes_came() -> None:
    """A frame cut short is reported with the announced and the received length."""
    with pytest.raises(FrameTruncatedError, match="announces 17 bytes but only 10 arrived"):
        parse_reply(h(CAPTURED_ONE_TAG)[:10])


def test_length_out_of_range_is_named() -> None:
    """A length byte below the smallest reply is reported with its value and the range."""
    with pytest.raises(FrameLengthError, match=r"0x03 \(3\) is out of range 6\.\.255"):
        parse_reply(h("03 00 B0"))


def test_trailing_bytes_are_a_length_error() -> None:
    """A frame followed by extra bytes is reported with the count of trailing bytes."""
    with pytest.raises(FrameLengthError, match="2 trailing"):
        parse_reply(h(CAPTURED_NO_TAG) + b"\x00\x00")


def test_advanced_reply_parses_in_either_crc_order() -> None:
    """An advanced reply parses with its CRC low-first by default and high-first when switched."""
    data = bytes(range(250)) * 2
    low = advanced_reply(0x00, 0xB0, 0x00, data)
    high = advanced_reply(0x00, 0xB0, 0x00, data, high_first=True)
    assert parse_reply(low) == Reply(0x00, 0xB0, 0x00, data, advanced=True)
    assert parse_reply(high, crc_high_first=True) == Reply(0x00, 0xB0, 0x00, data, advanced=True)
    with pytest.raises(FrameCRCError):
        parse_reply(high)


def test_advanced_header_cut_short_is_truncated() -> None:
    """Two bytes starting with STX are a truncated advanced header."""
    with pytest.raises(FrameTruncatedError, match="header"):
        parse_reply(b"\x02\x00")


@given(st.binary(max_size=600))
def test_parse_reply_raises_only_frame_errors(data: bytes) -> None:
    """Any byte string either parses or raises a FrameError, never anything else."""
    try:
        reply = parse_reply(data)
    except FrameError:
        return
    assert bit_crc(data) == 0
    assert len(reply.data) == len(data) - (8 if reply.advanced else 6)


# ---------------------------------------------------------------- the stream decoder


def test_decoder_returns_nothing_until_the_frame_is_complete() -> None:
    """A frame fed byte by byte comes out once, when its last byte arrives."""
    decoder = FrameDecoder()
    frame = h(CAPTURED_ONE_TAG)
    for byte in frame[:-1]:
        decoder.feed(bytes([byte]))
        assert decoder.next_frame() is None
    decoder.feed(frame[-1:])
    assert decoder.next_frame() == parse_reply(frame)
    assert decoder.pending == b""
    assert decoder.discarded == 0


def test_decoder_skips_noise_that_announces_a_long_frame() -> None:
    """A stray byte announcing a long frame does not hide the valid frame behind it."""
    decoder = FrameDecoder()
    decoder.feed(b"\xc8" + h(CAPTURED_NO_TAG))
    assert decoder.next_frame() == parse_reply(h(CAPTURED_NO_TAG))
    assert decoder.discarded == 1


def test_decoder_skips_a_frame_with_a_bad_crc() -> None:
    """A corrupted frame is dropped, counted and explained; the next good frame comes out."""
    bad = bytearray(h(CAPTURED_ONE_TAG))
    bad[5] ^= 0x01
    decoder = FrameDecoder()
    decoder.feed(bytes(bad) + h(CAPTURED_NO_TAG))
    assert decoder.next_frame() == parse_reply(h(CAPTURED_NO_TAG))
    assert decoder.discarded == len(bad)
    assert isinstance(decoder.last_problem, FrameCRCError)


def test_decoder_hands_out_back_to_back_frames_in_order() -> None:
    """Two frames in one chunk come out one after the other."""
    decoder = FrameDecoder()
    decoder.feed(h(CAPTURED_NO_TAG) + h(CAPTURED_VERSION))
    assert decoder.next_frame() == parse_reply(h(CAPTURED_NO_TAG))
    assert decoder.next_frame() == parse_reply(h(CAPTURED_VERSION))
    assert decoder.next_frame() is None


def test_decoder_describes_an_incomplete_frame() -> None:
    """describe() names the buffered bytes of a frame that never completed."""
    decoder = FrameDecoder()
    decoder.feed(h(CAPTURED_ONE_TAG)[:5])
    assert decoder.next_frame() is None
    assert "5 bytes of an incomplete frame: 11 00 B0 00 01" in decoder.describe()


def test_decoder_accepts_advanced_frames_among_standard_ones() -> None:
    """An advanced frame between standard frames is found like any other."""
    decoder = FrameDecoder()
    adv = advanced_reply(0x00, 0xB0, 0x00, bytes(300))
    decoder.feed(h(CAPTURED_NO_TAG) + adv + h(CAPTURED_VERSION))
    assert decoder.next_frame() == parse_reply(h(CAPTURED_NO_TAG))
    reply = decoder.next_frame()
    assert reply is not None
    assert reply.advanced
    assert reply.data == bytes(300)
    assert decoder.next_frame() == parse_reply(h(CAPTURED_VERSION))


def test_decoder_bounds_its_buffer() -> None:
    """A babbling line cannot grow the buffer beyond its limit."""
    decoder = FrameDecoder(max_buffer=64)
    decoder.feed(b"\xfe" * 1000)
    assert len(decoder.pending) <= 64
    assert decoder.discarded >= 1000 - 64


@given(st.lists(st.binary(min_size=1, max_size=40), max_size=30))
def test_decoder_fed_arbitrary_bytes_returns_only_valid_frames(chunks: list[bytes]) -> None:
    """Whatever bytes arrive, the decoder only ever returns frames whose CRC checks out."""
    decoder = FrameDecoder()
    for chunk in chunks:
        decoder.feed(chunk)
        while (reply := decoder.next_frame()) is not None:
            assert isinstance(reply, Reply)


@given(
    st.binary(max_size=60),
    st.integers(0, 255),
    st.integers(0, 255),
    st.binary(max_size=40),
    st.integers(1, 7),
)
def test_decoder_finds_a_frame_after_any_garbage(
    garbage: bytes, status: int, address: int, data: bytes, chunk: int
) -> None:
    """A valid frame behind arbitrary garbage is found, however the bytes are chunked."""
    frame = reply_frame(address, 0x65, status, data)
    stream = garbage + frame
    decoder = FrameDecoder()
    found = []
    for start in range(0, len(stream), chunk):
        decoder.feed(stream[start : start + chunk])
        while (reply := decoder.next_frame()) is not None:
            found.append(reply)
    assert Reply(address, 0x65, status, data) in found


# ---------------------------------------------------------------- status codes


def test_every_documented_status_has_a_name() -> None:
    """All status codes of the facts doc's table are named."""
    documented = [*range(0x00, 0x0D), 0x0E, 0x0F, 0x10, 0x11, 0x13, 0x14, 0x15, 0x16]
    documented += [0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x90, 0x92, 0x93, 0x94, 0x95, 0x96]
    documented += [0xF1, 0xF2]
    assert set(documented) <= set(STATUS_NAMES)
    assert status_name(0x81) == "protocol length error"
    assert status_name(0x77) == "unknown status 0x77"


def test_iso_errors_are_named() -> None:
    """ISO 15693 error codes get their names; custom and reserved codes say so."""
    assert iso_error_name(0x12) == "block locked, cannot change"
    assert iso_error_name(0xB3) == "custom error 0xB3"
    assert iso_error_name(0x55) == "reserved error 0x55"


def test_status_errors_split_reader_from_tag() -> None:
    """Reader-level statuses raise ReaderStatusError; tag statuses TagError with ISO details."""
    reader = status_error(0x81, action="inventory")
    assert isinstance(reader, ReaderStatusError)
    assert (reader.status, reader.status_name) == (0x81, "protocol length error")
    assert "inventory" in str(reader)
    tag = status_error(0x95, action="write blocks", iso_error=0x12, block=4)
    assert isinstance(tag, TagError)
    assert (tag.status, tag.iso_error, tag.block) == (0x95, 0x12, 4)
    assert tag.iso_error_name == "block locked, cannot change"
    assert "block 4" in str(tag)
    assert isinstance(status_error(0x01, action="read"), TagNotFound)
