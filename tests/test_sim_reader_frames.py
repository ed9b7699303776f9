"""The simulated reader's own framing: CRC, reply building and the stream parser."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.reader.frames import FrameParser, Request, build_reply, crc16
from tests.test_sim_reader_wire import (
    ADVANCED_INVENTORY_REQUEST,
    BAUD_REPLY,
    CAPTURED_UID,
    CPU_RESET_REPLY,
    INVENTORY_REQUEST,
    LENGTH_ERROR_REPLY,
    NO_TAG_REPLY,
    ONE_TAG_REPLY,
    RF_ERROR_REPLY,
    VERSION_REPLY,
    advanced_request,
    crc_bitwise,
    request,
)


def test_crc16_check_values() -> None:
    """crc16 gives the reference check values and zero over a whole captured frame."""
    assert crc16(b"123456789") == 0x6F91
    assert crc16(bytes.fromhex("0D 00 65 00 03 03 00 44 53 0D 30")) == 0x0933
    for frame in (INVENTORY_REQUEST, NO_TAG_REPLY, ONE_TAG_REPLY, VERSION_REPLY):
        assert crc16(frame) == 0


@given(st.binary(max_size=300))
def test_crc16_agrees_with_bitwise_crc(data: bytes) -> None:
    """The table-driven CRC equals the bit-by-bit one on any input."""
    assert crc16(data) == crc_bitwise(data)


def test_build_reply_reproduces_captured_replies() -> None:
    """Replies built from status and data are byte-exact with the captured ones."""
    assert build_reply(0, 0xB0, 0x01) == NO_TAG_REPLY
    assert build_reply(0, 0xB0, 0x00, b"\x01\x03\x00" + CAPTURED_UID) == ONE_TAG_REPLY
    assert build_reply(0, 0xB0, 0x83, b"\x00") == RF_ERROR_REPLY
    assert build_reply(0, 0xB0, 0x81) == LENGTH_ERROR_REPLY
    assert build_reply(0, 0x52, 0x00) == BAUD_REPLY
    assert build_reply(0, 0x63, 0x00) == CPU_RESET_REPLY
    assert build_reply(0, 0x65, 0x00, bytes.fromhex("03 03 00 44 53 0D 30")) == VERSION_REPLY


def test_build_reply_switches_to_advanced_frame_above_255_bytes() -> None:
    """A reply of 250 data bytes needs 256 bytes, so it goes out as an advanced frame."""
    fits = build_reply(0, 0xB0, 0x00, bytes(249))
    assert fits[0] == 255
    assert len(fits) == 255
    big = build_reply(0, 0xB0, 0x00, bytes(250))
    assert big[:6] == bytes((0x02, 0x01, 0x02, 0x00, 0xB0, 0x00))
    assert len(big) == 0x102
    assert crc_bitwise(big[:-2]).to_bytes(2, "little") == big[-2:]


def test_build_reply_advanced_crc_order_is_switchable() -> None:
    """With crc_high_first the advanced frame's CRC is sent high byte first."""
    low = build_reply(0, 0xB0, 0x01, advanced=True)
    high = build_reply(0, 0xB0, 0x01, advanced=True, crc_high_first=True)
    assert low[:-2] == high[:-2]
    assert low[-2:] == high[-2:][::-1]


def test_parser_reads_standard_and_advanced_requests() -> None:
    """Captured standard and advanced requests parse to the same command and data."""
    parser = FrameParser()
    found = parser.feed(INVENTORY_REQUEST + ADVANCED_INVENTORY_REQUEST)
    assert found == [
        Request(address=0xFF, command=0xB0, data=b"\x01\x00", advanced=False),
        Request(address=0xFF, command=0xB0, data=b"\x01\x00", advanced=True),
    ]
    assert parser.frames == 2
    assert parser.bad_frames == 0
    assert parser.pending == 0


def test_parser_waits_for_the_rest_of_a_split_frame() -> None:
    """A frame arriving byte by byte is returned once, when its last byte comes."""
    parser = FrameParser()
    for byte in INVENTORY_REQUEST[:-1]:
        assert parser.feed(bytes((byte,))) == []
    assert len(parser.feed(INVENTORY_REQUEST[-1:])) == 1


def test_parser_drops_a_bad_crc_frame_and_counts_it() -> None:
    """A frame with a wrong CRC is dropped (one bad frame) and the next good one is found."""
    parser = FrameParser()
    bad = INVENTORY_REQUEST[:-1] + b"\x00"
    assert parser.feed(bad) == []
    assert parser.bad_frames == 1
    assert parser.feed(INVENTORY_REQUEST) == []  # held behind a stray length byte...
    assert [r.command for r in parser.flush()] == [0xB0]  # ...until the line goes idle
    assert parser.bad_frames == 1
    assert parser.pending == 0


def test_parser_advanced_crc_order_setting() -> None:
    """With crc_high_first, a low-byte-first advanced request is rejected and vice versa."""
    swapped = ADVANCED_INVENTORY_REQUEST[:-2] + ADVANCED_INVENTORY_REQUEST[-2:][::-1]
    high_first = FrameParser(crc_high_first=True)
    assert high_first.feed(swapped)[0].advanced
    assert high_first.flush() == []
    low_first = FrameParser()
    assert low_first.feed(swapped) == []
    assert low_first.flush() == []
    assert low_first.bad_frames == 1


def test_parser_refuses_lengths_beyond_its_buffer() -> None:
    """An advanced frame claiming more than max_frame_len is dropped at once, not awaited."""
    parser = FrameParser(max_frame_len=64)
    assert parser.feed(b"\x02\xff\xff" + INVENTORY_REQUEST) != []
    assert parser.discarded_bytes == 3


@given(garbage=st.binary(max_size=200), frames=st.lists(st.binary(max_size=40), max_size=4))
@settings(max_examples=300)
def test_parser_finds_a_valid_frame_after_any_garbage(garbage: bytes, frames: list[bytes]) -> None:
    """Arbitrary garbage never raises, and valid frames sent after it are all found, in order."""
    parser = FrameParser(max_frame_len=1024)
    sent = [request(0x10 + i, data) for i, data in enumerate(frames)] + [INVENTORY_REQUEST]
    found = parser.feed(garbage)
    for frame in sent:
        found += parser.feed(frame)
    found += parser.flush()
    commands = [r.command for r in found]
    # Garbage may by chance hold a valid frame of its own; ours must all be there, in order.
    tail = commands[-len(sent) :]
    assert tail == [0x10 + i for i in range(len(frames))] + [0xB0]
    assert parser.pending == 0


@given(st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=300), st.booleans())))
def test_parser_round_trips_any_request_sequence(items: list[tuple[int, bytes, bool]]) -> None:
    """Any sequence of well-formed requests, standard or advanced, parses back exactly."""
    stream = b""
    expected = []
    for command, data, advanced in items:
        use_advanced = advanced or len(data) > 250
        frame = advanced_request(command, data) if use_advanced else request(command, data)
        stream += frame
        expected.append(Request(0xFF, command, data, use_advanced))
    parser = FrameParser()
    assert parser.feed(stream) == expected
    assert parser.bad_frames == 0
