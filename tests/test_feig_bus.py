"""Two FEIG readers on one RS-485 bus: one simulated port, two addresses, two drivers sharing it.

The simulator hosts both readers on one pty or socket, each with a field of its own, and only
the addressed reader answers, as on a real bus. The drivers share the port through
``SharedBus``; the tests check that each hears only its own reader, that the port is opened
once, that a broadcast on a bus of two is a collision rather than an answer, and that a
vanished port is reported by both drivers and reopened once when it returns.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from hardware.feig import FeigReader
from hardware.feig.bus import SharedBus
from hardware.ports import LineSettings
from hardware.reader import FrameError, ReaderDisconnected, ReaderTimeout
from simulators.reader import FeigSimulator, RFField, SimTag
from simulators.reader.model import ReaderModel
from tests.test_feig_fakes import FakeOpener, ScriptedTransport

TIMEOUT = 2.0  # generous: the machine is shared; never waited out when all is well


@dataclass
class Bus:
    """A simulated two-reader bus and a driver for each reader."""

    sim: FeigSimulator
    bus: SharedBus
    url: str
    left: FeigReader
    right: FeigReader
    left_uid: bytes
    right_uid: bytes


def _tag(item: str) -> SimTag:
    return SimTag.from_item(item, isil="VN-HN01")


@pytest.fixture(params=["pty", "tcp"])
def two_readers(request: pytest.FixtureRequest) -> Iterator[Bus]:
    """Readers at addresses 1 and 2 on one simulated port, each with one tag in its field."""
    left_tag, right_tag = _tag("30001000000011"), _tag("30001000000029")
    sim = FeigSimulator(RFField([left_tag]), address=1, air_time=False)
    sim.add_reader(ReaderModel(RFField([right_tag]), address=2))
    try:
        if request.param == "pty":
            url = sim.start_pty()
        else:
            url = f"socket://127.0.0.1:{sim.start_tcp(port=0)}"
        bus = SharedBus()
        left = FeigReader(url, address=1, timeout=TIMEOUT, opener=bus.open)
        right = FeigReader(url, address=2, timeout=TIMEOUT, opener=bus.open)
    except BaseException:
        sim.stop()
        raise
    yield Bus(sim, bus, url, left, right, left_tag.uid, right_tag.uid)
    left.close()
    right.close()
    sim.stop()


def test_each_driver_hears_only_its_own_reader(two_readers: Bus) -> None:
    """Inventories alternate on one port; each returns the tag in its own reader's field."""
    rig = two_readers
    for _ in range(3):
        assert [t.uid for t in rig.left.inventory()] == [rig.left_uid]
        assert [t.uid for t in rig.right.inventory()] == [rig.right_uid]
    assert (rig.left.reader_address, rig.right.reader_address) == (1, 2)
    assert rig.bus.opens == 1
    assert rig.sim.counters()["collisions"] == 0


def test_a_broadcast_on_a_bus_of_two_is_a_collision(two_readers: Bus) -> None:
    """Asking 0xFF makes both readers answer at once: the driver gets no valid reply."""
    rig = two_readers
    anyone = FeigReader(rig.url, timeout=0.3, opener=rig.bus.open)
    with pytest.raises((ReaderTimeout, FrameError)):
        anyone.inventory()
    assert rig.sim.counters()["collisions"] >= 1
    # The readers that are addressed properly are unaffected.
    assert [t.uid for t in rig.left.inventory()] == [rig.left_uid]


def test_an_address_with_no_reader_times_out_and_spares_the_others(two_readers: Bus) -> None:
    """A driver set to an address nobody has times out; the bus goes on serving the others."""
    rig = two_readers
    missing = FeigReader(rig.url, address=7, timeout=0.2, opener=rig.bus.open)
    with pytest.raises(ReaderTimeout, match="no reply"):
        missing.inventory()
    assert [t.uid for t in rig.right.inventory()] == [rig.right_uid]
    assert rig.bus.opens == 1


def test_a_vanished_port_is_lost_by_both_and_reopened_once() -> None:
    """Unplugged, both drivers report the loss; replugged, the first reconnect reopens for all."""
    left_tag, right_tag = _tag("30001000000037"), _tag("30001000000045")
    with FeigSimulator(RFField([left_tag]), address=1, air_time=False) as sim:
        sim.add_reader(ReaderModel(RFField([right_tag]), address=2))
        url = f"socket://127.0.0.1:{sim.start_tcp(port=0)}"
        bus = SharedBus()
        left = FeigReader(url, address=1, timeout=0.5, opener=bus.open, auto_reconnect=False)
        right = FeigReader(url, address=2, timeout=0.5, opener=bus.open, auto_reconnect=False)
        try:
            assert [t.uid for t in left.inventory()] == [left_tag.uid]
            assert [t.uid for t in right.inventory()] == [right_tag.uid]
            sim.unplug()
            with pytest.raises(ReaderDisconnected):
                left.inventory()  # pyserial's socket:// reads the peer's close as an error
            assert not bus.is_open
            with pytest.raises(ReaderDisconnected, match="shared bus port was closed"):
                right.inventory()
            sim.replug()
            left.reconnect(attempts=20)
            right.reconnect(attempts=1)
            assert bus.opens == 2
            assert [t.uid for t in right.inventory()] == [right_tag.uid]
            assert [t.uid for t in left.inventory()] == [left_tag.uid]
        finally:
            left.close()
            right.close()


def test_closing_one_driver_closes_the_port_for_the_bus(two_readers: Bus) -> None:
    """A port given up by one driver is given up for all (until a reconnect reopens it)."""
    rig = two_readers
    rig.left.inventory()
    rig.right.inventory()
    rig.left.close()
    assert not rig.bus.is_open
    with pytest.raises(ReaderDisconnected):
        rig.right.inventory()
    rig.right.reconnect(attempts=1)
    assert [t.uid for t in rig.right.inventory()] == [rig.right_uid]
    assert rig.bus.opens == 2


def test_a_bus_refuses_a_second_port() -> None:
    """One bus is one port: a driver with another URL cannot share it, and nothing opens."""
    opener = FakeOpener(ScriptedTransport())
    bus = SharedBus(opener=opener)
    bus.open("serial:///dev/ttyUSB0", LineSettings(), 0.1)
    with pytest.raises(ValueError, match="cannot share it"):
        bus.open("serial:///dev/ttyUSB1", LineSettings(), 0.1)
    assert [url for url, _, _ in opener.opened] == ["serial:///dev/ttyUSB0"]


def test_two_readers_cannot_share_an_address() -> None:
    """The simulated bus refuses a second reader at an address already taken."""
    sim = FeigSimulator(RFField(), address=3)
    try:
        with pytest.raises(ValueError, match="bus address 3 is taken"):
            sim.add_reader(ReaderModel(RFField(), address=3))
    finally:
        sim.stop()
