"""The real driver and item operations against the simulated FEIG reader, over a pty and TCP.

The simulator is written independently of the driver (own framing and CRC), so agreement here
is evidence that both follow the protocol, not that they share a bug.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from hardware.feig import FeigReader
from hardware.reader import ReaderDisconnected, ReaderTimeout
from hardware.rfid_ops import read_field, set_security
from hardware.tags import DataModel, SecurityConfig, SecurityState
from simulators.reader import FeigSimulator, RFField, SimTag

CONFIG = SecurityConfig(secured_afi=0x07, unsecured_afi=0xC2)
CONFIG_EAS = SecurityConfig(secured_afi=0x07, unsecured_afi=0xC2, use_eas=True)
TIMEOUT = 2.0  # generous: the machine is shared; a test never waits this long when all is well


@dataclass
class Rig:
    """A simulated reader, its field, and a driver connected to it."""

    field: RFField
    sim: FeigSimulator
    reader: FeigReader
    transport: str


def _start(sim: FeigSimulator, transport: str) -> str:
    if transport == "pty":
        return sim.start_pty()
    return f"socket://127.0.0.1:{sim.start_tcp(port=0)}"


@pytest.fixture(params=["pty", "tcp"])
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    """A simulator with an empty field on a pty or TCP, and a FeigReader opened on it."""
    field = RFField()
    sim = FeigSimulator(field, air_time=False)
    try:
        url = _start(sim, request.param)
        reader = FeigReader(url, timeout=TIMEOUT)
    except BaseException:
        sim.stop()
        raise
    yield Rig(field, sim, reader, request.param)
    reader.close()
    sim.stop()


def test_reader_info_is_the_simulated_firmware(rig: Rig) -> None:
    """The software version reply decodes to the simulated reader's firmware 3.3."""
    info = rig.reader.reader_info()
    assert info.software_version == "3.3"
    assert rig.reader.reader_address == rig.sim.address


def test_inventory_lists_every_tag_placed(rig: Rig) -> None:
    """Tags placed in the field come back from the inventory with their UIDs and DSFIDs."""
    tags = [SimTag.from_item(f"3900000{i}", model="2") for i in range(5)]
    rig.field.place(*tags)
    entries = rig.reader.inventory()
    assert sorted(e.uid for e in entries) == sorted(t.uid for t in tags)
    assert {e.dsfid for e in entries} == {0x06}


def test_empty_field_inventory_is_empty(rig: Rig) -> None:
    """An empty field gives an empty inventory, not an error."""
    assert rig.reader.inventory() == ()


def test_afi_filtered_inventory(rig: Rig) -> None:
    """An inventory filtered on the secured AFI returns only secured items."""
    secured = SimTag.from_item("100", secured=True)
    lent = SimTag.from_item("200", secured=False)
    rig.field.place(secured, lent)
    assert [e.uid for e in rig.reader.inventory(afi=0x07)] == [secured.uid]


def test_read_field_decodes_both_data_models(rig: Rig) -> None:
    """read_field decodes an ISO 28560-2 and an ISO 28560-3 item with their security state."""
    two = SimTag.from_item("12345", model="2", isil="DE-Heu1", title="Ha Noi", secured=True)
    three = SimTag.from_item(
        "11223344", model="3", isil="DE-705", secured=False, type_of_usage=0x10
    )
    rig.field.place(two, three)
    reading = read_field(rig.reader, CONFIG)
    assert reading.lost == ()
    by_uid = {t.uid: t for t in reading.tags}
    assert by_uid[two.uid].model is DataModel.ISO28560_2
    assert by_uid[two.uid].primary_item_id == "12345"
    assert by_uid[two.uid].item is not None
    assert by_uid[two.uid].item.title == "Ha Noi"
    assert by_uid[two.uid].security is SecurityState.SECURED
    assert by_uid[three.uid].model is DataModel.ISO28560_3
    assert by_uid[three.uid].primary_item_id == "11223344"
    assert by_uid[three.uid].security is SecurityState.UNSECURED
    assert by_uid[two.uid].raw == bytes(two.memory)


def test_many_tags_use_the_more_data_continuation(rig: Rig) -> None:
    """More tags than one reply holds are all collected through status 0x94."""
    small = FeigSimulator(rig.field, air_time=False, buffer_size=128)
    try:
        url = _start(small, rig.transport)
        with FeigReader(url, timeout=TIMEOUT) as reader:
            tags = [SimTag.from_item(f"77{i:04d}") for i in range(30)]
            rig.field.place(*tags)
            entries = reader.inventory()
    finally:
        small.stop()
    assert sorted(e.uid for e in entries) == sorted(t.uid for t in tags)


def test_unsecure_then_secure_is_verified_and_sticks(rig: Rig) -> None:
    """Checkout then check-in switch AFI and EAS on the simulated tag, verified each time."""
    tag = SimTag.from_item("5555", secured=True)
    rig.field.place(tag)
    out = set_security(rig.reader, tag.uid, secured=False, security=CONFIG_EAS)
    assert out.verified, out.error
    assert (out.afi_before, out.afi_after) == (0x07, 0xC2)
    assert (out.eas_before, out.eas_after) == (True, False)
    assert (tag.afi, tag.eas) == (0xC2, False)
    back = set_security(rig.reader, tag.uid, secured=True, security=CONFIG_EAS)
    assert back.verified, back.error
    assert (tag.afi, tag.eas) == (0x07, True)
    assert not tag.afi_locked
    assert not tag.eas_locked


def test_write_that_does_not_stick_is_not_verified(rig: Rig) -> None:
    """With the simulator acknowledging writes without keeping them, nothing is verified."""
    tag = SimTag.from_item("6666", secured=True)
    rig.field.place(tag)
    rig.sim.faults.write_does_not_stick = True
    result = set_security(rig.reader, tag.uid, secured=False, security=CONFIG, retries=2)
    assert not result.verified
    assert result.attempts == 3
    assert result.afi_after == 0x07
    assert result.error is not None
    assert "expected 0xC2" in result.error
    assert tag.afi == 0x07


def test_tag_leaving_during_the_write_is_not_verified(rig: Rig) -> None:
    """A tag that leaves the field during the AFI write gives an unverified result."""
    tag = SimTag.from_item("7777", secured=True)
    rig.field.place(tag)
    rig.sim.faults.tag_leaves_mid_write = True
    result = set_security(rig.reader, tag.uid, secured=False, security=CONFIG, retries=1)
    assert not result.verified
    assert result.error is not None
    assert "no transponder" in result.error


def test_blocks_written_are_read_back_in_memory_order(rig: Rig) -> None:
    """write_blocks then read_blocks round-trips, and the tag memory holds the bytes in order."""
    tag = SimTag.from_item("8888")
    rig.field.place(tag)
    rig.reader.write_blocks(tag.uid, 20, [b"ABCD", b"EFGH"])
    assert tag.memory[80:88] == bytearray(b"ABCDEFGH")
    assert rig.reader.read_blocks(tag.uid, 20, 2).data == b"ABCDEFGH"


def test_corrupted_replies_time_out_naming_the_crc(rig: Rig) -> None:
    """Replies with a bad CRC are skipped; the timeout names the CRC problem; then it recovers."""
    rig.field.place(SimTag.from_item("9999"))
    rig.reader.timeout = 0.3  # the reply is known to be bad: no need to wait long
    rig.sim.faults.corrupt_crc = 1.0
    with pytest.raises(ReaderTimeout, match="bad CRC"):
        rig.reader.inventory()
    rig.sim.faults.corrupt_crc = 0.0
    rig.reader.timeout = TIMEOUT
    assert len(rig.reader.inventory()) == 1


def test_split_replies_are_reassembled(rig: Rig) -> None:
    """Replies that arrive in two pieces are reassembled."""
    rig.field.place(SimTag.from_item("1212"))
    rig.sim.faults.split_reply = True
    assert len(read_field(rig.reader, CONFIG).tags) == 1


def test_unplugged_reader_raises_disconnected(rig: Rig) -> None:
    """When the simulated reader is unplugged, the next exchange raises ReaderDisconnected."""
    rig.field.place(SimTag.from_item("1313"))
    assert len(rig.reader.inventory()) == 1
    rig.sim.unplug()
    with pytest.raises(ReaderDisconnected):
        rig.reader.inventory()
    assert not rig.reader.is_open


def test_tcp_reader_reconnects_after_replug() -> None:
    """Over TCP, reconnect() succeeds once the simulated reader is plugged in again."""
    field = RFField([SimTag.from_item("1414")])
    with FeigSimulator(field, air_time=False) as sim:
        port = sim.start_tcp(port=0)
        reader = FeigReader(f"socket://127.0.0.1:{port}", timeout=TIMEOUT, backoff_initial=0.01)
        with reader:
            sim.unplug()
            with pytest.raises(ReaderDisconnected):
                reader.inventory()
            sim.replug()
            reader.reconnect()
            assert len(reader.inventory()) == 1
