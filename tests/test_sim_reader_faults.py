"""Every fault switch of the simulated reader, and its ISO 15693 air time."""

from __future__ import annotations

import errno
import os
import socket
import threading

import pytest

from simulators.reader import AirTiming, Faults, RFField, SimTag
from tests.test_sim_reader_wire import (
    CAPTURED_UID,
    INVENTORY_REQUEST,
    NO_TAG_REPLY,
    ONE_TAG_REPLY,
    RF_ERROR_REPLY,
    Wire,
    captured_tag,
    data_of,
    iso,
    reply,
    request,
    serving,
    status_of,
)

UID = bytes.fromhex("E0 04 01 00 00 00 00 0A")


class GatedSleep:
    """A stand-in for time.sleep that records each wait and holds it until released."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.entered.set()
        self.release.wait(10)


def test_faults_are_off_by_default_and_validated() -> None:
    """All switches start off; update names a bad switch or value and changes nothing."""
    faults = Faults()
    assert not any(
        v for k, v in faults.as_dict().items() if k not in ("collision_miss", "split_gap")
    )
    with pytest.raises(ValueError, match="unknown fault 'corupt_crc'"):
        faults.update(corupt_crc=0.5)
    with pytest.raises(ValueError, match="probability"):
        faults.update(drop_byte=0.1, corrupt_crc=1.5)
    assert faults.drop_byte == 0.0
    with pytest.raises(ValueError, match="switch"):
        faults.update(split_reply="yes")
    with pytest.raises(ValueError, match="probability"):
        Faults(collision_miss=-0.1)


def test_corrupt_crc() -> None:
    """With corrupt_crc=1 every reply has the right body and a wrong CRC."""
    with serving(faults=Faults(corrupt_crc=1.0)) as (_sim, wire):
        wire.write(INVENTORY_REQUEST)
        got = wire.read_exact(len(NO_TAG_REPLY))
        assert got[:-2] == NO_TAG_REPLY[:-2]
        assert got[-2:] != NO_TAG_REPLY[-2:]


def test_drop_byte() -> None:
    """With drop_byte=1 a reply arrives one byte short, the rest in order."""
    with serving(RFField([captured_tag()]), faults=Faults(drop_byte=1.0), seed=3) as (sim, wire):
        wire.write(INVENTORY_REQUEST)
        assert sim.wait_until(lambda s: s.replies_sent == 1, timeout=5)
        got = wire.available()
        assert len(got) == len(ONE_TAG_REPLY) - 1
        assert any(ONE_TAG_REPLY[:i] + ONE_TAG_REPLY[i + 1 :] == got for i in range(len(got) + 1))


def test_split_reply() -> None:
    """With split_reply the first half arrives, then after split_gap the second half."""
    sleep = GatedSleep()
    faults = Faults(split_reply=True, split_gap=0.2)
    with serving(RFField([captured_tag()]), faults=faults, sleep=sleep) as (_sim, wire):
        wire.write(INVENTORY_REQUEST)
        assert sleep.entered.wait(5)
        half = len(ONE_TAG_REPLY) // 2
        assert wire.read_exact(half) == ONE_TAG_REPLY[:half]
        assert wire.available() == b""
        assert sleep.calls == [0.2]
        sleep.release.set()
        assert wire.read_exact(len(ONE_TAG_REPLY) - half) == ONE_TAG_REPLY[half:]


def test_reply_delay() -> None:
    """With reply_delay nothing is sent until the delay has passed, then the whole reply."""
    sleep = GatedSleep()
    with serving(faults=Faults(reply_delay=0.25), sleep=sleep) as (_sim, wire):
        wire.write(INVENTORY_REQUEST)
        assert sleep.entered.wait(5)
        assert wire.available() == b""
        assert sleep.calls == [0.25]
        sleep.release.set()
        assert wire.read_frame() == NO_TAG_REPLY


def test_collisions_with_every_tag_missed_is_the_captured_rf_error() -> None:
    """A round that misses the only tag answers the captured RF communication error frame."""
    faults = Faults(collisions=True, collision_miss=1.0)
    with serving(RFField([captured_tag()]), faults=faults) as (_sim, wire):
        assert wire.exchange(INVENTORY_REQUEST) == RF_ERROR_REPLY


def test_collisions_miss_some_tags_per_round() -> None:
    """Rounds report status 0x83 with a subset of the tags; over rounds every tag shows up."""
    tags = [SimTag(uid=bytes.fromhex(f"E00401000000AA{i:02X}")) for i in range(20)]
    faults = Faults(collisions=True, collision_miss=0.5)
    with serving(RFField(tags), faults=faults, seed=11) as (sim, wire):
        seen: set[bytes] = set()
        for _ in range(10):
            got = wire.exchange(INVENTORY_REQUEST)
            assert status_of(got) == 0x83
            data = data_of(got)
            assert 0 <= data[0] < 20
            seen.update(data[1 + 10 * i + 2 : 1 + 10 * i + 10] for i in range(data[0]))
        assert seen == {t.uid for t in tags}
        sim.faults.collisions = False
        assert data_of(wire.exchange(INVENTORY_REQUEST))[0] == 20


def test_tag_leaves_mid_write() -> None:
    """A 4-block write stops after 2 blocks with status 0x03 + next block; the tag is gone."""
    sim_tag = SimTag(uid=UID, memory=bytearray(b"\xee" * 112))
    field = RFField([sim_tag])
    with serving(field, faults=Faults(tag_leaves_mid_write=True)) as (_sim, wire):
        frame = iso(0x24, uid=UID, rest=b"\x04\x04\x04" + bytes(16))
        assert wire.exchange(frame) == reply(0xB0, 0x03, b"\x06")
        assert sim_tag.memory[16:24] == bytes(8)
        assert sim_tag.memory[24:32] == b"\xee" * 8
        assert field.get(UID) is None
        assert wire.exchange(INVENTORY_REQUEST) == NO_TAG_REPLY
        field.place(sim_tag)
        assert wire.exchange(iso(0x27, uid=UID, rest=b"\xc2")) == NO_TAG_REPLY
        assert sim_tag.afi == 0x07
        assert len(field) == 0


def test_write_does_not_stick() -> None:
    """Writes are acknowledged, but memory, AFI, DSFID and EAS keep their old values."""
    sim_tag = SimTag(uid=UID, memory=bytearray(b"\xee" * 112), afi=0x07, dsfid=0x06, eas=True)
    faults = Faults(write_does_not_stick=True)
    with serving(RFField([sim_tag]), faults=faults) as (_sim, wire):
        ok = reply(0xB0, 0x00)
        assert wire.exchange(iso(0x24, uid=UID, rest=b"\x00\x01\x04" + bytes(4))) == ok
        assert wire.exchange(iso(0x27, uid=UID, rest=b"\xc2")) == ok
        assert wire.exchange(iso(0x29, uid=UID, rest=b"\x00")) == ok
        assert wire.exchange(request(0xB1, b"\x04\xa3\x01" + UID)) == reply(0xB1, 0x00)
        assert sim_tag.memory == b"\xee" * 112
        assert (sim_tag.afi, sim_tag.dsfid, sim_tag.eas) == (0x07, 0x06, True)


def test_unplugged_pty_disappears_and_comes_back() -> None:
    """Unplugging closes the pty (the host sees a hang-up); replug gives a working new pty."""
    with serving(RFField([captured_tag()])) as (sim, wire):
        path = sim.endpoint
        assert isinstance(path, str)
        sim.unplug()
        assert not sim.plugged
        assert sim.faults.unplugged
        # The host sees a hang-up, as with a pulled USB cable: end of file, and writes fail.
        assert os.read(wire.fd, 16) == b""
        with pytest.raises(OSError, match="Input/output error") as hung_up:
            os.write(wire.fd, INVENTORY_REQUEST)
        assert hung_up.value.errno == errno.EIO
        wire.close()
        assert not os.path.exists(path)
        new_path = sim.replug()
        assert isinstance(new_path, str)
        assert os.path.exists(new_path)
        again = Wire.pty(new_path)
        try:
            assert again.exchange(INVENTORY_REQUEST) == ONE_TAG_REPLY
        finally:
            again.close()


def test_unplugged_tcp_refuses_until_replugged() -> None:
    """Unplugging drops the client and refuses connections; replug listens on the same port."""
    with serving(tcp=True) as (sim, wire):
        port = sim.endpoint
        assert isinstance(port, int)
        sim.unplug()
        assert wire.sock is not None
        wire.sock.settimeout(5)
        assert wire.sock.recv(16) == b""  # the reader hung up on its client
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        assert sim.replug() == port
        again = Wire.tcp(port)
        try:
            assert again.exchange(INVENTORY_REQUEST) == NO_TAG_REPLY
        finally:
            again.close()


def test_unplugged_switch_set_directly_is_noticed() -> None:
    """Setting faults.unplugged by hand unplugs and re-plugs the port, as the methods do."""
    with serving(tcp=True) as (sim, _wire):
        sim.faults.unplugged = True
        assert sim.wait_until(lambda s: not s.plugged, timeout=5)
        sim.faults.unplugged = False
        assert sim.wait_until(lambda s: s.plugged, timeout=5)
        again = Wire.tcp(int(sim.endpoint))
        try:
            assert again.exchange(INVENTORY_REQUEST) == NO_TAG_REPLY
        finally:
            again.close()


def test_air_time_waits_per_uid_and_per_byte() -> None:
    """With air_time each exchange waits its ISO 15693 time before the reply is sent."""
    calls: list[float] = []
    timing = AirTiming(per_uid=0.01, per_read_byte=0.001, per_write_block=0.1)
    tags = [SimTag(uid=bytes.fromhex(f"E00401000000BB{i:02X}")) for i in range(3)]
    with serving(RFField(tags), air_time=True, timing=timing, sleep=calls.append) as (_s, wire):
        wire.exchange(INVENTORY_REQUEST)
        wire.exchange(iso(0x23, uid=tags[0].uid, rest=b"\x00\x08"))
        wire.exchange(iso(0x24, uid=tags[0].uid, rest=b"\x00\x02\x04" + bytes(8)))
    assert calls == pytest.approx([0.03, 0.032, 0.2])


def test_no_air_time_by_default() -> None:
    """Without air_time the simulator never waits."""
    calls: list[float] = []
    with serving(RFField([captured_tag()]), sleep=calls.append) as (_sim, wire):
        wire.exchange(INVENTORY_REQUEST)
        wire.exchange(iso(0x23, uid=CAPTURED_UID, rest=b"\x00\x08"))
    assert calls == []
