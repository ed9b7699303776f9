"""FeigReader against a scripted fake port: requests written, replies and failures handled."""

from __future__ import annotations

import pytest
import serial

from hardware.feig import BlockOrder, FeigReader
from hardware.ports import LineSettings
from hardware.reader import (
    FrameLengthError,
    InventoryEntry,
    ReaderDisconnected,
    ReaderError,
    ReaderStatusError,
    ReaderTimeout,
    ReaderUsageError,
    TagError,
    TagNotFound,
    UnexpectedReplyError,
)
from tests.test_feig_fakes import (
    CAPTURED_INVENTORY_REQUEST,
    CAPTURED_LENGTH_ERROR,
    CAPTURED_NO_TAG,
    CAPTURED_ONE_TAG,
    CAPTURED_RF_ERROR,
    CAPTURED_UID,
    CAPTURED_VERSION,
    FakeOpener,
    Script,
    ScriptedTransport,
    advanced_reply,
    h,
    inventory_data,
    reply_frame,
    request_frame,
    uid_n,
)

UID = CAPTURED_UID


def make_reader(*script: Script, **options: object) -> tuple[FeigReader, ScriptedTransport]:
    port = ScriptedTransport(script)
    reader = FeigReader("fake://reader", opener=FakeOpener(port), **options)  # type: ignore[arg-type]
    return reader, port


# ---------------------------------------------------------------- inventory


def test_inventory_sends_the_captured_request_and_decodes_one_tag() -> None:
    """Inventory writes 07 FF B0 01 00 1C 56 and returns the captured tag."""
    reader, port = make_reader(h(CAPTURED_ONE_TAG))
    assert reader.inventory() == (InventoryEntry(uid=UID, dsfid=0x00),)
    assert port.writes == [h(CAPTURED_INVENTORY_REQUEST)]
    assert reader.reader_address == 0x00


def test_inventory_with_no_tag_is_empty() -> None:
    """Status 0x01 (no transponder) to an inventory means an empty field, not an error."""
    reader, _ = make_reader(h(CAPTURED_NO_TAG))
    assert reader.inventory() == ()


def test_inventory_fetches_the_rest_after_more_data() -> None:
    """Status 0x94 makes the driver ask again with MODE bit 7 until status 0x00; all tags kept."""
    first = [(uid_n(i), 0x06) for i in range(24)]
    rest = [(uid_n(i), 0x06) for i in range(24, 30)]
    reader, port = make_reader(
        reply_frame(0x00, 0xB0, 0x94, inventory_data(*first)),
        reply_frame(0x00, 0xB0, 0x00, inventory_data(*rest)),
    )
    tags = reader.inventory()
    assert [t.uid for t in tags] == [uid_n(i) for i in range(30)]
    assert port.writes == [
        request_frame(0xFF, 0xB0, h("01 00")),
        request_frame(0xFF, 0xB0, h("01 80")),
    ]


def test_inventory_more_data_is_bounded() -> None:
    """A reader that always says "more data" makes the driver give up with a ReaderError."""
    more = reply_frame(0x00, 0xB0, 0x94, inventory_data((uid_n(1), 0x00)))
    reader, port = make_reader(*([more] * 5), max_more_data=5)
    with pytest.raises(ReaderError, match="more data after 5 requests"):
        reader.inventory()
    assert len(port.writes) == 5


def test_inventory_with_afi_filter_sends_the_afi() -> None:
    """An AFI-filtered inventory sets MODE bit 4 and appends the AFI byte."""
    reader, port = make_reader(h(CAPTURED_NO_TAG))
    reader.inventory(afi=0x07)
    assert port.writes == [request_frame(0xFF, 0xB0, h("01 10 07"))]


def test_inventory_rf_error_keeps_the_tags_that_were_read() -> None:
    """Status 0x83 carries data: the tags in it are returned (here the captured empty set)."""
    reader, _ = make_reader(h(CAPTURED_RF_ERROR))
    assert reader.inventory() == ()
    reader2, _ = make_reader(reply_frame(0x00, 0xB0, 0x83, inventory_data((UID, 0x06))))
    assert [t.uid for t in reader2.inventory()] == [UID]


def test_inventory_protocol_length_error_is_a_reader_status_error() -> None:
    """The captured status 0x81 raises ReaderStatusError naming the status."""
    reader, _ = make_reader(h(CAPTURED_LENGTH_ERROR))
    with pytest.raises(ReaderStatusError, match="0x81 \\(protocol length error\\)") as info:
        reader.inventory()
    assert info.value.status == 0x81


def test_inventory_reply_with_wrong_record_count_is_a_frame_error() -> None:
    """An inventory that announces 2 tags but carries 1 raises FrameLengthError."""
    data = b"\x02" + inventory_data((UID, 0))[1:]
    reader, _ = make_reader(reply_frame(0x00, 0xB0, 0x00, data))
    with pytest.raises(FrameLengthError, match="2 data sets"):
        reader.inventory()


# ---------------------------------------------------------------- blocks


def test_read_blocks_addressed_reverses_each_block_by_default() -> None:
    """Addressed read writes MODE 01 + UID and returns each block un-reversed to memory order."""
    wire = h("04 03 02 01 08 07 06 05")
    reader, port = make_reader(reply_frame(0x00, 0xB0, 0x00, h("02 04") + wire))
    result = reader.read_blocks(UID, 3, 2)
    assert port.writes == [request_frame(0xFF, 0xB0, h("23 01") + UID + h("03 02"))]
    assert result.blocks == (h("01 02 03 04"), h("05 06 07 08"))
    assert result.data == h("01 02 03 04 05 06 07 08")
    assert (result.first_block, result.block_size) == (3, 4)


def test_read_blocks_in_memory_order_when_configured() -> None:
    """With block_order=memory, bytes are taken as they come; non-addressed MODE is 00."""
    reader, port = make_reader(
        reply_frame(0x00, 0xB0, 0x00, h("01 04 01 02 03 04")), block_order="memory"
    )
    assert reader.read_blocks(None, 0, 1).data == h("01 02 03 04")
    assert port.writes == [request_frame(0xFF, 0xB0, h("23 00 00 01"))]
    assert reader.block_order is BlockOrder.MEMORY


def test_read_blocks_with_a_security_byte_before_each_block() -> None:
    """Replies with a SEC-STATUS byte before every block (FEIG manuals) are understood too."""
    wire = h("00 04 03 02 01 01 08 07 06 05")
    reader, _ = make_reader(reply_frame(0x00, 0xB0, 0x00, h("02 04") + wire))
    result = reader.read_blocks(UID, 0, 2)
    assert result.data == h("01 02 03 04 05 06 07 08")
    assert result.security_status == (0x00, 0x01)


def test_read_blocks_reply_of_impossible_length_is_a_frame_error() -> None:
    """Block data that fits neither layout raises FrameLengthError naming both lengths."""
    reader, _ = make_reader(reply_frame(0x00, 0xB0, 0x00, h("02 04 01 02 03")))
    with pytest.raises(FrameLengthError, match=r"10 bytes, or 12 with security status"):
        reader.read_blocks(UID, 0, 2)


def test_read_blocks_iso_error_is_a_tag_error_with_the_iso_code() -> None:
    """Status 0x95 + ISO error 0x10 raises TagError carrying both codes and their names."""
    reader, _ = make_reader(reply_frame(0x00, 0xB0, 0x95, b"\x10"))
    with pytest.raises(TagError) as info:
        reader.read_blocks(UID, 40, 1)
    assert (info.value.status, info.value.iso_error) == (0x95, 0x10)
    assert info.value.iso_error_name == "block not available"
    assert "block not available" in str(info.value)


def test_read_blocks_from_a_tag_that_left_is_tag_not_found() -> None:
    """Status 0x01 to an addressed read raises TagNotFound."""
    reader, _ = make_reader(reply_frame(0x00, 0xB0, 0x01))
    with pytest.raises(TagNotFound, match="no transponder"):
        reader.read_blocks(UID, 0, 4)


def test_read_blocks_count_mismatch_is_unexpected() -> None:
    """A reply with fewer blocks than asked raises UnexpectedReplyError."""
    reader, _ = make_reader(reply_frame(0x00, 0xB0, 0x00, h("01 04 01 02 03 04")))
    with pytest.raises(UnexpectedReplyError, match="asked for 2 blocks"):
        reader.read_blocks(UID, 0, 2)


def test_write_blocks_sends_reversed_blocks() -> None:
    """Write Multiple Blocks sends DB-ADR, DB-N, DB-SIZE and each block reversed."""
    reader, port = make_reader(reply_frame(0x00, 0xB0, 0x00))
    reader.write_blocks(UID, 2, [h("11 22 33 44"), h("55 66 77 88")])
    expected = h("24 01") + UID + h("02 02 04 44 33 22 11 88 77 66 55")
    assert port.writes == [request_frame(0xFF, 0xB0, expected)]


def test_write_blocks_failure_names_the_block() -> None:
    """Status 0x95 with ISO error 0x12 and block 5 raises TagError naming block 5."""
    reader, _ = make_reader(reply_frame(0x00, 0xB0, 0x95, h("12 05")))
    with pytest.raises(TagError, match="at block 5") as info:
        reader.write_blocks(UID, 4, [bytes(4), bytes(4)])
    assert (info.value.iso_error, info.value.block) == (0x12, 5)


def test_write_blocks_of_unequal_size_is_refused_before_sending() -> None:
    """Blocks of different sizes raise ReaderUsageError and nothing is written."""
    reader, port = make_reader()
    with pytest.raises(ReaderUsageError, match="same size"):
        reader.write_blocks(UID, 0, [bytes(4), bytes(3)])
    assert port.writes == []


def test_max_blocks_per_read_follows_the_tx_buffer() -> None:
    """Blocks per read is (TX-BUF - 10) / (DB-SIZE + 1)."""
    reader, _ = make_reader(tx_buffer=256)
    assert reader.max_blocks_per_read(4) == 49
    small, _ = make_reader(tx_buffer=60)
    assert small.max_blocks_per_read(4) == 10


# ---------------------------------------------------------------- registers and EAS


def test_system_info_is_parsed() -> None:
    """Get System Information returns DSFID, UID, AFI, block size/count (minus one) and IC ref."""
    data = h("06") + UID + h("07 03 1B 01")
    reader, port = make_reader(reply_frame(0x00, 0xB0, 0x00, data))
    info = reader.system_info(UID)
    assert port.writes == [request_frame(0xFF, 0xB0, h("2B 01") + UID)]
    assert (info.uid, info.dsfid, info.afi) == (UID, 0x06, 0x07)
    assert (info.block_size, info.block_count, info.ic_reference) == (4, 28, 0x01)
    assert info.memory_size == 112


def test_write_afi_sends_the_value() -> None:
    """Write AFI sends sub-command 27, MODE 01, UID and the AFI."""
    reader, port = make_reader(reply_frame(0x00, 0xB0, 0x00))
    reader.write_afi(UID, 0xC2)
    assert port.writes == [request_frame(0xFF, 0xB0, h("27 01") + UID + h("C2"))]


def test_set_eas_matches_the_computed_frame() -> None:
    """Addressed Set EAS is exactly 10 FF B1 04 A2 01 E0 16 80 FF 08 00 50 24 A4 FB."""
    reader, port = make_reader(reply_frame(0x00, 0xB1, 0x00))
    reader.set_eas(UID)
    assert port.writes == [h("10 FF B1 04 A2 01 E0 16 80 FF 08 00 50 24 A4 FB")]


def test_reset_eas_on_absent_tag_is_tag_not_found() -> None:
    """Reset EAS answered 0x01 raises TagNotFound (the tag is gone)."""
    reader, port = make_reader(reply_frame(0x00, 0xB1, 0x01))
    with pytest.raises(TagNotFound):
        reader.reset_eas(UID)
    assert port.writes == [request_frame(0xFF, 0xB1, h("04 A3 01") + UID)]


def test_eas_alarm_reads_status_00_and_01() -> None:
    """EAS Alarm: status 00 means armed, 01 means not armed (or no tag)."""
    reader, port = make_reader(
        reply_frame(0x00, 0xB1, 0x00, bytes(4)), reply_frame(0x00, 0xB1, 0x01)
    )
    assert reader.eas_alarm() is True
    assert reader.eas_alarm() is False
    assert port.writes[0] == h("08 FF B1 04 A5 00 73 13")


def test_reader_info_and_control_commands() -> None:
    """Software version, baud detection, CPU reset and RF reset send their captured frames."""
    reader, port = make_reader(
        h(CAPTURED_VERSION), h("06 00 52 00 FC A8"), h("06 00 63 00 86 07"), reply_frame(0, 0x69, 0)
    )
    assert reader.reader_info().software_revision == 0x0303
    reader.ping()
    reader.cpu_reset()
    reader.rf_reset()
    assert port.writes == [
        request_frame(0xFF, 0x65),
        h("06 FF 52 00 0F 6E"),
        h("05 FF 63 D3 AE"),
        request_frame(0xFF, 0x69),
    ]


def test_rf_reset_refused_is_a_status_error() -> None:
    """A reader answering 0x80 (unknown command) raises ReaderStatusError."""
    reader, _ = make_reader(reply_frame(0, 0x69, 0x80))
    with pytest.raises(ReaderStatusError, match="unknown command"):
        reader.rf_reset()


# ---------------------------------------------------------------- framing on the line


def test_garbage_before_the_reply_is_skipped() -> None:
    """Noise bytes ahead of the reply do not stop the driver from reading it."""
    reader, _ = make_reader([h("FF 00 C8 13"), h(CAPTURED_ONE_TAG)])
    assert [t.uid for t in reader.inventory()] == [UID]


def test_reply_in_many_small_chunks_is_assembled() -> None:
    """A reply arriving one byte at a time is assembled."""
    reader, _ = make_reader([bytes([b]) for b in h(CAPTURED_ONE_TAG)])
    assert [t.uid for t in reader.inventory()] == [UID]


def test_advanced_reply_to_a_standard_request_is_accepted() -> None:
    """A reader may answer with an advanced frame; the driver takes it."""
    tags = [(uid_n(i), 0x06) for i in range(40)]
    reader, _ = make_reader(advanced_reply(0x00, 0xB0, 0x00, inventory_data(*tags)))
    assert len(reader.inventory()) == 40


def test_advanced_requests_and_high_first_crc_when_configured() -> None:
    """With advanced frames and high-first CRC on, both directions use that byte order."""
    reader, port = make_reader(
        advanced_reply(0x00, 0xB0, 0x01, high_first=True),
        advanced_requests=True,
        advanced_crc_high_first=True,
    )
    assert reader.inventory() == ()
    assert port.writes == [h("02 00 09 FF B0 01 00 43 18")]


def test_reply_from_another_address_is_skipped_and_named_on_timeout() -> None:
    """Asking 0x03 and hearing only 0x05 times out naming both: a neighbour's reply is not ours."""
    reader, _ = make_reader(reply_frame(0x05, 0xB0, 0x01), address=0x03, timeout=0.05)
    with pytest.raises(ReaderTimeout, match=r"bus address 0x05 \(this reader is 0x03\)"):
        reader.inventory()


def test_a_neighbours_late_reply_ahead_of_ours_is_skipped() -> None:
    """On a shared bus, another reader's late reply to the same command is passed over."""
    neighbour = reply_frame(0x05, 0xB0, 0x00, inventory_data((uid_n(9), 0x06)))
    ours = reply_frame(0x03, 0xB0, 0x00, inventory_data((uid_n(1), 0x06)))
    reader, _ = make_reader([neighbour, ours], address=0x03)
    assert [t.uid for t in reader.inventory()] == [uid_n(1)]
    assert reader.reader_address == 0x03


def test_broadcast_accepts_the_readers_own_address() -> None:
    """Asking 0xFF, a reply from address 0x2A is taken and the address remembered."""
    reader, _ = make_reader(reply_frame(0x2A, 0xB0, 0x01))
    reader.inventory()
    assert reader.reader_address == 0x2A


def test_late_reply_to_another_command_is_skipped() -> None:
    """A stale reply for another command ahead of ours is ignored."""
    reader, _ = make_reader([h(CAPTURED_VERSION), h(CAPTURED_ONE_TAG)])
    assert [t.uid for t in reader.inventory()] == [UID]


def test_echo_of_the_request_is_ignored() -> None:
    """A local echo of the request (RS-485 adapters) is skipped; the reply after it is used."""
    reader, _ = make_reader([h(CAPTURED_INVENTORY_REQUEST), h(CAPTURED_ONE_TAG)])
    assert [t.uid for t in reader.inventory()] == [UID]


def test_echo_alone_times_out_saying_so() -> None:
    """If only the echo comes back, the timeout message says the echo was ignored."""
    reader, _ = make_reader(h(CAPTURED_INVENTORY_REQUEST))
    with pytest.raises(ReaderTimeout, match="ignored an echo of the request"):
        reader.inventory()


# ---------------------------------------------------------------- timeouts and vanished ports


def test_silent_reader_times_out() -> None:
    """No reply raises ReaderTimeout naming the command and that nothing came."""
    reader, _ = make_reader(None)
    with pytest.raises(ReaderTimeout, match=r"command 0xB0.*nothing received"):
        reader.inventory()


def test_incomplete_reply_times_out_with_the_bytes_seen() -> None:
    """A reply cut short raises ReaderTimeout that shows the partial bytes."""
    reader, _ = make_reader(h(CAPTURED_ONE_TAG)[:7])
    with pytest.raises(ReaderTimeout, match="7 bytes of an incomplete frame: 11 00 B0"):
        reader.inventory()


def test_corrupted_reply_times_out_saying_what_was_skipped() -> None:
    """A reply with a bad CRC is skipped; the timeout says so."""
    bad = bytearray(h(CAPTURED_ONE_TAG))
    bad[-2] ^= 0x55
    reader, _ = make_reader(bytes(bad))
    with pytest.raises(ReaderTimeout, match=r"skipped as garbage.*bad CRC"):
        reader.inventory()


def test_timeout_then_next_exchange_works() -> None:
    """After a timeout the driver carries on with the next request."""
    reader, _ = make_reader(None, h(CAPTURED_ONE_TAG))
    with pytest.raises(ReaderTimeout):
        reader.inventory()
    assert len(reader.inventory()) == 1


def test_vanished_port_raises_disconnected_and_auto_reconnects() -> None:
    """A read failure raises ReaderDisconnected, closes the port; the next call reopens it."""
    first = ScriptedTransport([serial.SerialException("read failed: [Errno 5] I/O error")])
    second = ScriptedTransport([h(CAPTURED_ONE_TAG)])
    opener = FakeOpener(first, second)
    reader = FeigReader("fake://r", opener=opener)
    with pytest.raises(ReaderDisconnected, match="Errno 5"):
        reader.inventory()
    assert first.closed
    assert not reader.is_open
    assert len(reader.inventory()) == 1
    assert len(opener.opened) == 2


def test_write_failure_raises_disconnected() -> None:
    """An OSError on write raises ReaderDisconnected."""
    reader, port = make_reader()
    port.write_error = OSError(5, "Input/output error")
    with pytest.raises(ReaderDisconnected, match="writing"):
        reader.inventory()


def test_write_timeout_is_a_reader_timeout() -> None:
    """A pyserial write timeout raises ReaderTimeout, not ReaderDisconnected."""
    reader, port = make_reader()
    port.write_error = serial.SerialTimeoutException("Write timeout")
    with pytest.raises(ReaderTimeout, match="writing"):
        reader.inventory()
    assert reader.is_open


def test_without_auto_reconnect_a_lost_port_stays_lost() -> None:
    """With auto_reconnect off, calls after a disconnect raise until reconnect()."""
    first = ScriptedTransport([OSError(5, "gone")])
    second = ScriptedTransport([h(CAPTURED_NO_TAG)])
    reader = FeigReader("fake://r", opener=FakeOpener(first, second), auto_reconnect=False)
    with pytest.raises(ReaderDisconnected):
        reader.inventory()
    with pytest.raises(ReaderDisconnected, match="call reconnect"):
        reader.inventory()
    reader.reconnect()
    assert reader.inventory() == ()


def test_reconnect_backs_off_exponentially_and_gives_up() -> None:
    """Reconnect sleeps 0.1, 0.2, 0.4 (capped at max) between failed opens, then raises."""
    sleeps: list[float] = []
    fail = serial.SerialException("could not open port /dev/ttyUSB0")
    opener = FakeOpener(ScriptedTransport(), fail, fail, fail, fail)
    reader = FeigReader(
        "fake://r", opener=opener, sleep=sleeps.append, backoff_initial=0.1, backoff_max=0.3
    )
    with pytest.raises(ReaderDisconnected, match=r"gave up after 4 attempts.*ttyUSB0"):
        reader.reconnect(attempts=4)
    assert sleeps == [0.1, 0.2, 0.3]


def test_reconnect_succeeds_on_a_later_attempt() -> None:
    """Reconnect returns once an attempt opens the port."""
    sleeps: list[float] = []
    good = ScriptedTransport([h(CAPTURED_NO_TAG)])
    opener = FakeOpener(ScriptedTransport(), OSError(2, "No such file"), good)
    reader = FeigReader("fake://r", opener=opener, sleep=sleeps.append)
    reader.reconnect()
    assert sleeps == [0.1]
    assert reader.inventory() == ()


def test_closed_reader_refuses_calls() -> None:
    """After close(), calls raise ReaderDisconnected even with auto_reconnect on."""
    reader, port = make_reader(h(CAPTURED_NO_TAG))
    with reader:
        pass
    assert port.closed
    with pytest.raises(ReaderDisconnected, match="closed"):
        reader.inventory()


def test_unopenable_port_raises_disconnected() -> None:
    """A port that cannot be opened raises ReaderDisconnected naming the URL."""
    with pytest.raises(ReaderDisconnected, match="fake://nowhere"):
        FeigReader("fake://nowhere", opener=FakeOpener(OSError(2, "No such file")))


def test_bad_url_is_a_usage_error() -> None:
    """A malformed serial:// URL raises ReaderUsageError naming the bad setting."""
    with pytest.raises(ReaderUsageError, match="unknown serial setting 'speed'"):
        FeigReader("serial:///dev/ttyUSB0?speed=9600")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"address": 256}, "bus address 256"),
        ({"timeout": 0}, "timeout must be positive"),
        ({"block_order": "sideways"}, "block order 'sideways'"),
    ],
)
def test_bad_options_are_usage_errors(options: dict[str, object], message: str) -> None:
    """Out-of-range settings raise ReaderUsageError naming the setting."""
    with pytest.raises(ReaderUsageError, match=message):
        FeigReader("fake://r", opener=FakeOpener(ScriptedTransport()), **options)  # type: ignore[arg-type]


def test_opener_receives_line_settings_and_timeout() -> None:
    """The driver opens its port with the configured line settings and timeout."""
    opener = FakeOpener(ScriptedTransport())
    FeigReader("fake://r", opener=opener, line=LineSettings(baudrate=19200), timeout=0.2)
    assert opener.opened == [("fake://r", LineSettings(baudrate=19200), 0.2)]


def test_uid_of_wrong_length_is_refused() -> None:
    """A 7-byte UID raises ReaderUsageError before anything is sent."""
    reader, port = make_reader()
    with pytest.raises(ReaderUsageError, match="7 bytes"):
        reader.system_info(UID[:7])
    assert port.writes == []
