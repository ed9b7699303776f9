"""The simulated reader's command set, spoken to over a real pty with raw bytes."""

from __future__ import annotations

import pytest

from simulators.reader import RFField, SimTag
from tests.test_sim_reader_wire import (
    ADVANCED_INVENTORY_REQUEST,
    BAUD_REPLY,
    BAUD_REQUEST,
    CAPTURED_UID,
    CPU_RESET_REPLY,
    CPU_RESET_REQUEST,
    EAS_ALARM_REQUEST,
    INVENTORY_REQUEST,
    LENGTH_ERROR_REPLY,
    NO_TAG_REPLY,
    ONE_TAG_REPLY,
    SET_EAS_REQUEST,
    VERSION_REPLY,
    advanced_reply,
    captured_tag,
    data_of,
    iso,
    reply,
    request,
    serving,
    status_of,
)

UID_A = bytes.fromhex("E0 04 01 00 00 00 00 0A")
UID_B = bytes.fromhex("E0 04 01 00 00 00 00 0B")
MEMORY = bytes(range(1, 113))  # 28 blocks of 4 bytes, every byte different


def tag(uid: bytes = UID_A, **kwargs: object) -> SimTag:
    return SimTag(uid=uid, memory=bytearray(MEMORY), **kwargs)  # type: ignore[arg-type]


def uids_of(inventory_data: bytes) -> list[bytes]:
    count = inventory_data[0]
    return [inventory_data[1 + 10 * i + 2 : 1 + 10 * i + 10] for i in range(count)]


# ---------------------------------------------------------------- captured exchanges


def test_captured_inventory_replies_are_byte_exact() -> None:
    """The captured inventory request gets the captured no-tag and one-tag replies."""
    field = RFField()
    with serving(field) as (_sim, wire):
        assert wire.exchange(INVENTORY_REQUEST) == NO_TAG_REPLY
        field.place(captured_tag())
        assert wire.exchange(INVENTORY_REQUEST) == ONE_TAG_REPLY


def test_captured_reader_control_replies_are_byte_exact() -> None:
    """Baud detection, CPU reset and software version answer with the captured frames."""
    with serving() as (_sim, wire):
        assert wire.exchange(BAUD_REQUEST) == BAUD_REPLY
        assert wire.exchange(CPU_RESET_REQUEST) == CPU_RESET_REPLY
        assert wire.exchange(request(0x65)) == VERSION_REPLY


def test_advanced_request_gets_advanced_reply() -> None:
    """The computed advanced inventory request is answered in an advanced frame."""
    with serving(RFField([captured_tag()])) as (_sim, wire):
        expected = advanced_reply(0xB0, 0x00, b"\x01\x03\x00" + CAPTURED_UID)
        assert wire.exchange(ADVANCED_INVENTORY_REQUEST) == expected


def test_reader_answers_broadcast_and_own_address_but_not_others() -> None:
    """A reader at address 3 answers FF and 03 from 03 and ignores a request to 05."""
    with serving(address=3) as (sim, wire):
        assert wire.exchange(request(0x52, b"\x00", address=0xFF)) == reply(0x52, 0, address=3)
        wire.write(request(0x52, b"\x00", address=5))
        assert wire.exchange(request(0x63, address=3)) == reply(0x63, 0, address=3)
        assert sim.frames_ignored == 1


def test_unknown_commands_and_lengths() -> None:
    """Unknown commands get 0x80, malformed lengths 0x81 (byte-exact for 0xB0)."""
    with serving() as (_sim, wire):
        assert wire.exchange(request(0x71)) == reply(0x71, 0x80)
        assert wire.exchange(request(0xB0)) == LENGTH_ERROR_REPLY
        assert wire.exchange(request(0xB0, b"\x01\x00\x00")) == LENGTH_ERROR_REPLY
        assert wire.exchange(request(0xB0, b"\x7e\x00")) == reply(0xB0, 0x80)
        assert wire.exchange(request(0x52)) == reply(0x52, 0x81)
        assert wire.exchange(request(0x63, b"\x00")) == reply(0x63, 0x81)
        assert wire.exchange(iso(0x23, uid=UID_A[:4])) == LENGTH_ERROR_REPLY
        assert wire.exchange(iso(0x23, mode=0x03, rest=b"\x00\x01")) == reply(0xB0, 0x11)


# ---------------------------------------------------------------- inventory


def test_inventory_reports_every_tag_with_dsfid() -> None:
    """Each tag in the field is one data set: TR-TYPE 03, DSFID, UID MSB first."""
    field = RFField([tag(UID_A, dsfid=0x06), tag(UID_B, dsfid=0x00)])
    with serving(field) as (_sim, wire):
        got = wire.exchange(INVENTORY_REQUEST)
        assert status_of(got) == 0x00
        assert data_of(got) == b"\x02\x03\x06" + UID_A + b"\x03\x00" + UID_B


def test_inventory_afi_filter() -> None:
    """MODE bit 4 adds an AFI byte: equal AFI, AFI 0 and a family X0 select tags ISO-style."""
    field = RFField([tag(UID_A, afi=0x07), tag(UID_B, afi=0xC2)])
    with serving(field) as (_sim, wire):
        assert uids_of(data_of(wire.exchange(iso(0x01, 0x10, rest=b"\x07")))) == [UID_A]
        assert uids_of(data_of(wire.exchange(iso(0x01, 0x10, rest=b"\xc2")))) == [UID_B]
        assert uids_of(data_of(wire.exchange(iso(0x01, 0x10, rest=b"\xc0")))) == [UID_B]
        assert uids_of(data_of(wire.exchange(iso(0x01, 0x10, rest=b"\x00")))) == [UID_A, UID_B]
        assert wire.exchange(iso(0x01, 0x10, rest=b"\x21")) == NO_TAG_REPLY
        assert wire.exchange(iso(0x01, 0x10)) == LENGTH_ERROR_REPLY


def test_inventory_more_data_continuation() -> None:
    """With a small buffer, 12 tags come as 5 + 5 (status 0x94) + 2 (status 0x00) via MORE."""
    tags = [tag(bytes.fromhex(f"E0040100000001{i:02X}")) for i in range(12)]
    with serving(RFField(tags), buffer_size=64) as (_sim, wire):
        first = wire.exchange(INVENTORY_REQUEST)
        second = wire.exchange(iso(0x01, 0x80))
        third = wire.exchange(iso(0x01, 0x80))
        assert [status_of(f) for f in (first, second, third)] == [0x94, 0x94, 0x00]
        assert [data_of(f)[0] for f in (first, second, third)] == [5, 5, 2]
        got = uids_of(data_of(first)) + uids_of(data_of(second)) + uids_of(data_of(third))
        assert got == [t.uid for t in tags]
        assert wire.exchange(iso(0x01, 0x80)) == NO_TAG_REPLY


def test_inventory_of_many_tags_comes_in_an_advanced_frame() -> None:
    """30 tags do not fit 255 bytes, so a standard request gets an advanced reply."""
    tags = [tag(bytes.fromhex(f"E0040100000002{i:02X}")) for i in range(30)]
    with serving(RFField(tags)) as (_sim, wire):
        got = wire.exchange(INVENTORY_REQUEST)
        records = b"".join(b"\x03\x06" + t.uid for t in tags)
        assert got == advanced_reply(0xB0, 0x00, bytes((30,)) + records)


# ---------------------------------------------------------------- blocks


def test_read_blocks_reversed_with_sec_status_byte() -> None:
    """Blocks travel reversed; SEC-STATUS is 00 unless MODE bit 3 asks for the lock state."""
    field = RFField([tag(locked_blocks={1})])
    with serving(field) as (_sim, wire):
        got = wire.exchange(iso(0x23, uid=UID_A, rest=b"\x00\x02"))
        assert got == reply(0xB0, 0x00, bytes.fromhex("02 04 00 04 03 02 01 00 08 07 06 05"))
        secured = wire.exchange(iso(0x23, mode=0x08, uid=UID_A, rest=b"\x00\x02"))
        assert data_of(secured) == bytes.fromhex("02 04 00 04 03 02 01 01 08 07 06 05")


def test_read_blocks_reader_settings() -> None:
    """block_order_reversed=False keeps memory order; sec_status_always=False drops the byte."""
    options = {"block_order_reversed": False, "sec_status_always": False}
    with serving(RFField([tag()]), **options) as (_sim, wire):
        got = wire.exchange(iso(0x23, uid=UID_A, rest=b"\x01\x02"))
        assert data_of(got) == bytes.fromhex("02 04 05 06 07 08 09 0A 0B 0C")


def test_read_blocks_errors() -> None:
    """Past the end: 0x95/0x10; DB-N 0 or more than the buffer holds: 0x11; no tag: 0x01."""
    with serving(RFField([tag()]), buffer_size=64) as (_sim, wire):
        assert wire.exchange(iso(0x23, uid=UID_A, rest=b"\x1b\x02")) == reply(0xB0, 0x95, b"\x10")
        assert wire.exchange(iso(0x23, uid=UID_A, rest=b"\x00\x00")) == reply(0xB0, 0x11)
        assert wire.exchange(iso(0x23, uid=UID_A, rest=b"\x00\x0b")) == reply(0xB0, 0x11)
        assert status_of(wire.exchange(iso(0x23, uid=UID_A, rest=b"\x00\x0a"))) == 0x00
        assert wire.exchange(iso(0x23, uid=UID_B, rest=b"\x00\x01")) == NO_TAG_REPLY


def test_non_addressed_commands_collide_with_two_tags() -> None:
    """Non-addressed read works with one tag and gets status 0x0B with two."""
    field = RFField([tag(UID_A)])
    with serving(field) as (_sim, wire):
        assert status_of(wire.exchange(iso(0x23, rest=b"\x00\x01"))) == 0x00
        field.place(tag(UID_B))
        assert wire.exchange(iso(0x23, rest=b"\x00\x01")) == reply(0xB0, 0x0B)


def test_write_blocks_then_read_back() -> None:
    """Written blocks (sent reversed) land in tag memory in order and read back the same."""
    sim_tag = tag()
    with serving(RFField([sim_tag])) as (_sim, wire):
        payload = bytes.fromhex("44 33 22 11 88 77 66 55")
        assert wire.exchange(iso(0x24, uid=UID_A, rest=b"\x02\x02\x04" + payload)) == reply(
            0xB0, 0x00
        )
        assert sim_tag.memory[8:16] == bytes.fromhex("11 22 33 44 55 66 77 88")
        back = wire.exchange(iso(0x23, uid=UID_A, rest=b"\x02\x02"))
        assert data_of(back) == b"\x02\x04\x00" + payload[:4] + b"\x00" + payload[4:]


def test_write_blocks_stops_at_a_locked_block() -> None:
    """Blocks before a locked one are written; the reply is 0x95, ISO 0x12, block address."""
    sim_tag = tag(locked_blocks={3})
    with serving(RFField([sim_tag])) as (_sim, wire):
        frame = iso(0x24, uid=UID_A, rest=b"\x02\x02\x04" + bytes(8))
        assert wire.exchange(frame) == reply(0xB0, 0x95, b"\x12\x03")
        assert sim_tag.memory[8:12] == bytes(4)
        assert sim_tag.memory[12:16] == MEMORY[12:16]


def test_write_blocks_errors() -> None:
    """Wrong data length 0x81; wrong block size 0x95/0x0F; past the end 0x95/0x10."""
    with serving(RFField([tag()])) as (_sim, wire):
        short = iso(0x24, uid=UID_A, rest=b"\x00\x02\x04" + bytes(7))
        assert wire.exchange(short) == LENGTH_ERROR_REPLY
        wrong_size = iso(0x24, uid=UID_A, rest=b"\x00\x01\x08" + bytes(8))
        assert wire.exchange(wrong_size) == reply(0xB0, 0x95, b"\x0f\x00")
        past_end = iso(0x24, uid=UID_A, rest=b"\x1b\x02\x04" + bytes(8))
        assert wire.exchange(past_end) == reply(0xB0, 0x95, b"\x10\x1c")


def test_lock_blocks_and_security_status() -> None:
    """0x22 locks blocks for good; 0x2C reports them; locking again is ISO error 0x11."""
    sim_tag = tag()
    with serving(RFField([sim_tag])) as (_sim, wire):
        assert wire.exchange(iso(0x22, uid=UID_A, rest=b"\x04\x02")) == reply(0xB0, 0x00)
        assert sim_tag.locked_blocks == {4, 5}
        got = wire.exchange(iso(0x2C, uid=UID_A, rest=b"\x03\x04"))
        assert got == reply(0xB0, 0x00, bytes.fromhex("04 00 01 01 00"))
        assert wire.exchange(iso(0x22, uid=UID_A, rest=b"\x05\x01")) == reply(
            0xB0, 0x95, b"\x11\x05"
        )
        assert wire.exchange(iso(0x2C, uid=UID_A, rest=b"\x1b\x02")) == reply(0xB0, 0x95, b"\x10")


# ---------------------------------------------------------------- registers


def test_system_information_layout() -> None:
    """0x2B answers DSFID, UID, AFI, MEM-SIZE (block size - 1, blocks - 1), IC-REF."""
    with serving(RFField([tag(afi=0xC2, dsfid=0x06, ic_ref=0x01)])) as (_sim, wire):
        got = wire.exchange(iso(0x2B, uid=UID_A))
        assert got == reply(0xB0, 0x00, b"\x06" + UID_A + bytes.fromhex("C2 03 1B 01"))


def test_write_and_lock_afi() -> None:
    """Write AFI changes it; after Lock AFI a write is ISO error 0x12, a second lock 0x11."""
    sim_tag = tag(afi=0x07)
    with serving(RFField([sim_tag])) as (_sim, wire):
        assert wire.exchange(iso(0x27, uid=UID_A, rest=b"\xc2")) == reply(0xB0, 0x00)
        assert sim_tag.afi == 0xC2
        assert wire.exchange(iso(0x28, uid=UID_A)) == reply(0xB0, 0x00)
        assert wire.exchange(iso(0x27, uid=UID_A, rest=b"\x07")) == reply(0xB0, 0x95, b"\x12")
        assert wire.exchange(iso(0x28, uid=UID_A)) == reply(0xB0, 0x95, b"\x11")
        assert sim_tag.afi == 0xC2
        assert sim_tag.afi_locked


def test_write_and_lock_dsfid() -> None:
    """Write DSFID changes it; Lock DSFID takes an optional DSFID byte; then writes fail."""
    sim_tag = tag(dsfid=0x00)
    with serving(RFField([sim_tag])) as (_sim, wire):
        assert wire.exchange(iso(0x29, uid=UID_A, rest=b"\x06")) == reply(0xB0, 0x00)
        assert sim_tag.dsfid == 0x06
        assert wire.exchange(iso(0x2A, uid=UID_A, rest=b"\x06")) == reply(0xB0, 0x00)
        assert wire.exchange(iso(0x29, uid=UID_A, rest=b"\x00")) == reply(0xB0, 0x95, b"\x12")
        assert wire.exchange(iso(0x2A, uid=UID_A)) == reply(0xB0, 0x95, b"\x11")
        assert sim_tag.dsfid == 0x06


def test_non_addressed_write_reaches_every_tag_and_collides() -> None:
    """A non-addressed Write AFI is carried out by both tags, whose answers collide (0x0B)."""
    a, b = tag(UID_A, afi=0x07), tag(UID_B, afi=0x07)
    with serving(RFField([a, b])) as (_sim, wire):
        assert wire.exchange(iso(0x27, rest=b"\xc2")) == reply(0xB0, 0x0B)
        assert (a.afi, b.afi) == (0xC2, 0xC2)


# ---------------------------------------------------------------- ISO states


def test_stay_quiet_select_and_reset_to_ready() -> None:
    """Quiet tags ignore non-addressed commands; select enables selected mode; reset wakes."""
    field = RFField([tag(UID_A)])
    read_one = b"\x00\x01"
    with serving(field) as (_sim, wire):
        assert wire.exchange(iso(0x02, uid=UID_A)) == reply(0xB0, 0x00)
        assert wire.exchange(iso(0x23, rest=read_one)) == NO_TAG_REPLY
        assert status_of(wire.exchange(iso(0x23, uid=UID_A, rest=read_one))) == 0x00
        assert wire.exchange(iso(0x23, mode=0x02, rest=read_one)) == NO_TAG_REPLY
        assert wire.exchange(iso(0x25, uid=UID_A)) == reply(0xB0, 0x00)
        assert status_of(wire.exchange(iso(0x23, mode=0x02, rest=read_one))) == 0x00
        assert wire.exchange(iso(0x26, mode=0x02)) == reply(0xB0, 0x00)
        assert wire.exchange(iso(0x23, mode=0x02, rest=read_one)) == NO_TAG_REPLY
        assert status_of(wire.exchange(iso(0x23, rest=read_one))) == 0x00


def test_select_moves_the_selection_and_must_be_addressed() -> None:
    """Selecting a second tag deselects the first; non-addressed select/quiet get 0x11."""
    field = RFField([tag(UID_A), tag(UID_B)])
    with serving(field) as (_sim, wire):
        wire.exchange(iso(0x25, uid=UID_A))
        wire.exchange(iso(0x25, uid=UID_B))
        info = wire.exchange(iso(0x2B, mode=0x02))
        assert data_of(info)[1:9] == UID_B
        assert wire.exchange(iso(0x25)) == reply(0xB0, 0x11)
        assert wire.exchange(iso(0x02)) == reply(0xB0, 0x11)
        assert wire.exchange(iso(0x25, uid=bytes(8))) == NO_TAG_REPLY


def test_new_inventory_resets_quiet_tags_when_ont_is_off() -> None:
    """With ONT off a quiet tag is reported by the next inventory (RF reset first)."""
    with serving(RFField([captured_tag()])) as (_sim, wire):
        wire.exchange(iso(0x02, uid=CAPTURED_UID))
        assert wire.exchange(INVENTORY_REQUEST) == ONE_TAG_REPLY


def test_only_new_tags_mode() -> None:
    """With ONT on a tag is reported once, then again after leaving the field or an RF reset."""
    sim_tag = captured_tag()
    field = RFField([sim_tag])
    with serving(field, only_new_tags=True) as (_sim, wire):
        assert wire.exchange(INVENTORY_REQUEST) == ONE_TAG_REPLY
        assert wire.exchange(INVENTORY_REQUEST) == NO_TAG_REPLY
        field.remove(CAPTURED_UID)
        field.place(sim_tag)
        assert wire.exchange(INVENTORY_REQUEST) == ONE_TAG_REPLY
        assert wire.exchange(request(0x69)) == reply(0x69, 0x00)
        assert wire.exchange(INVENTORY_REQUEST) == ONE_TAG_REPLY


def test_rf_off_silences_tags() -> None:
    """RF off: no tag answers; RF on: they are back; a bad RF value is 0x11."""
    with serving(RFField([captured_tag()])) as (_sim, wire):
        assert wire.exchange(request(0x6A, b"\x00")) == reply(0x6A, 0x00)
        assert wire.exchange(INVENTORY_REQUEST) == NO_TAG_REPLY
        assert wire.exchange(iso(0x2B, uid=CAPTURED_UID)) == NO_TAG_REPLY
        assert wire.exchange(request(0x6A, b"\x01")) == reply(0x6A, 0x00)
        assert wire.exchange(INVENTORY_REQUEST) == ONE_TAG_REPLY
        assert wire.exchange(request(0x6A, b"\x07")) == reply(0x6A, 0x11)
        assert wire.exchange(request(0x6A, b"\x01", address=0)) == reply(0x6A, 0x00)


# ---------------------------------------------------------------- NXP EAS


@pytest.mark.parametrize(("eas", "status"), [(True, 0x00), (False, 0x01)])
def test_eas_alarm_captured_request(eas: bool, status: int) -> None:
    """The computed EAS Alarm request answers 00 for an armed tag and 01 for a disarmed one."""
    with serving(RFField([captured_tag(eas=eas)])) as (_sim, wire):
        assert wire.exchange(EAS_ALARM_REQUEST) == reply(0xB1, status)


def test_eas_alarm_with_several_tags_does_not_collide() -> None:
    """Armed tags all send the same EAS sequence: one armed among many is status 00."""
    field = RFField([tag(UID_A, eas=False), tag(UID_B, eas=True)])
    with serving(field) as (_sim, wire):
        assert wire.exchange(EAS_ALARM_REQUEST) == reply(0xB1, 0x00)
        assert wire.exchange(request(0xB1, b"\x04\xa5\x01" + UID_A)) == reply(0xB1, 0x01)


def test_set_reset_and_lock_eas() -> None:
    """The computed addressed Set EAS arms the tag; A3 disarms; after A4 changes fail."""
    sim_tag = captured_tag(eas=False)
    with serving(RFField([sim_tag])) as (_sim, wire):
        assert wire.exchange(SET_EAS_REQUEST) == reply(0xB1, 0x00)
        assert sim_tag.describe()["eas"] is True
        assert wire.exchange(request(0xB1, b"\x04\xa3\x01" + CAPTURED_UID)) == reply(0xB1, 0)
        assert sim_tag.describe()["eas"] is False
        assert wire.exchange(request(0xB1, b"\x04\xa4\x01" + CAPTURED_UID)) == reply(0xB1, 0)
        assert wire.exchange(SET_EAS_REQUEST) == reply(0xB1, 0x95, b"\x12")
        assert wire.exchange(request(0xB1, b"\x04\xa4\x01" + CAPTURED_UID)) == reply(
            0xB1, 0x95, b"\x11"
        )
        assert not sim_tag.eas
        assert sim_tag.eas_locked


def test_nxp_command_errors() -> None:
    """Other manufacturers or sub-commands get 0x80; non-NXP chips stay silent (0x01)."""
    with serving(RFField([captured_tag(nxp_custom=False)])) as (_sim, wire):
        assert wire.exchange(request(0xB1, b"\x16\xa5\x00")) == reply(0xB1, 0x80)
        assert wire.exchange(request(0xB1, b"\x04\xa6\x00")) == reply(0xB1, 0x80)
        assert wire.exchange(request(0xB1, b"\x04")) == reply(0xB1, 0x81)
        assert wire.exchange(SET_EAS_REQUEST) == reply(0xB1, 0x01)
        assert wire.exchange(EAS_ALARM_REQUEST) == reply(0xB1, 0x01)


def test_cpu_reset_wakes_quiet_tags() -> None:
    """After a CPU reset a tag that was told to stay quiet answers non-addressed again."""
    with serving(RFField([tag()])) as (_sim, wire):
        wire.exchange(iso(0x02, uid=UID_A))
        assert wire.exchange(iso(0x2B)) == NO_TAG_REPLY
        assert wire.exchange(CPU_RESET_REQUEST) == CPU_RESET_REPLY
        assert status_of(wire.exchange(iso(0x2B))) == 0x00
