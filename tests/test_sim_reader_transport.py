"""The simulated reader on its two transports: pty and TCP, stream parsing, garbage, stop."""

from __future__ import annotations

import os
import socket
import termios

import pytest
import serial
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulators.reader import FeigSimulator, RFField
from tests.test_sim_reader_wire import (
    BAUD_REPLY,
    BAUD_REQUEST,
    INVENTORY_REQUEST,
    NO_TAG_REPLY,
    ONE_TAG_REPLY,
    Wire,
    captured_tag,
    request,
    serving,
)


def test_pty_works_with_pyserial_at_the_reader_line_settings() -> None:
    """A pyserial port opened on the pty path at 38400 8E1 gets byte-exact replies."""
    field = RFField([captured_tag()])
    with FeigSimulator(field) as sim:
        path = sim.start_pty()
        assert sim.url == path
        assert path.startswith("/dev/")
        with serial.Serial(path, 38400, parity=serial.PARITY_EVEN, timeout=3) as port:
            port.write(INVENTORY_REQUEST)
            assert port.read(len(ONE_TAG_REPLY)) == ONE_TAG_REPLY


def test_pty_host_at_wrong_baud_rate_is_not_heard() -> None:
    """Bytes sent at 9600 baud are dropped as line noise; at 38400 the reader answers."""
    with serving() as (sim, wire):
        attrs = termios.tcgetattr(wire.fd)
        attrs[4] = attrs[5] = termios.B9600
        termios.tcsetattr(wire.fd, termios.TCSANOW, attrs)
        wire.write(INVENTORY_REQUEST)
        assert sim.wait_until(lambda s: s.line_mismatch_bytes == len(INVENTORY_REQUEST), 5)
        attrs[4] = attrs[5] = termios.B38400
        termios.tcsetattr(wire.fd, termios.TCSANOW, attrs)
        # The first reply to arrive answers the request sent at the right speed.
        assert wire.exchange(BAUD_REQUEST) == BAUD_REPLY
        assert sim.frames_received == 1


def test_tcp_serves_one_client_after_another() -> None:
    """A second client waits while the first is served and is served once it hangs up."""
    with serving(RFField([captured_tag()]), tcp=True) as (sim, first):
        assert sim.url == f"socket://127.0.0.1:{sim.endpoint}"
        second = Wire.tcp(int(sim.endpoint))
        try:
            second.write(BAUD_REQUEST)
            assert first.exchange(INVENTORY_REQUEST) == ONE_TAG_REPLY
            first.close()
            assert second.read_frame() == BAUD_REPLY
            assert second.exchange(INVENTORY_REQUEST) == ONE_TAG_REPLY
            assert sim.connections == 2
        finally:
            second.close()


def test_request_split_into_single_bytes_is_answered_once() -> None:
    """A request written one byte at a time is reassembled and answered once."""
    with serving() as (sim, wire):
        for byte in INVENTORY_REQUEST:
            wire.write(bytes((byte,)))
        assert wire.read_frame() == NO_TAG_REPLY
        assert sim.frames_received == 1
        assert sim.bad_frames == 0


def test_bad_crc_request_gets_no_reply_and_is_counted() -> None:
    """A request with a wrong CRC is dropped silently; the next good one is answered first."""
    with serving() as (sim, wire):
        wire.write(INVENTORY_REQUEST[:-1] + b"\x57")
        assert sim.wait_until(lambda s: s.bad_frames == 1, timeout=5)
        # The first reply to arrive answers the good request.
        assert wire.exchange(BAUD_REQUEST) == BAUD_REPLY
        assert sim.counters()["frames_received"] == 1


def test_several_requests_in_one_write_get_replies_in_order() -> None:
    """Back-to-back requests in one write are answered one after the other."""
    with serving(tcp=True) as (_sim, wire):
        wire.write(BAUD_REQUEST + INVENTORY_REQUEST + request(0x63))
        assert wire.read_frame() == BAUD_REPLY
        assert wire.read_frame() == NO_TAG_REPLY
        assert wire.read_frame() == bytes.fromhex("06 00 63 00 86 07")


@pytest.mark.parametrize("tcp", [False, True], ids=["pty", "tcp"])
def test_garbage_never_kills_the_server(tcp: bool) -> None:
    """Arbitrary bytes never stop the serving thread; a valid request after them is answered."""
    with serving(tcp=tcp, frame_timeout=0.02) as (sim, wire):

        @given(garbage=st.binary(min_size=1, max_size=300))
        @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        def check(garbage: bytes) -> None:
            wire.write(garbage + INVENTORY_REQUEST)
            # Garbage may by chance hold a valid request; ours is answered after its replies.
            for _ in range(10):
                if wire.read_frame() == NO_TAG_REPLY:
                    break
            else:
                pytest.fail("no reply to the inventory sent after the garbage")
            assert sim._thread is not None
            assert sim._thread.is_alive()

        check()
        assert sim.bad_frames > 0


def test_stop_closes_ports() -> None:
    """After stop the pty is gone and the TCP port refuses connections."""
    sim = FeigSimulator(RFField())
    path = sim.start_pty()
    sim.stop()
    assert not os.path.exists(path)
    sim.stop()  # twice is fine
    tcp = FeigSimulator(RFField())
    port = tcp.start_tcp()
    tcp.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_a_simulator_serves_once() -> None:
    """Starting a second port on one simulator is an error that says what to do."""
    with FeigSimulator(RFField()) as sim:
        sim.start_pty()
        with pytest.raises(RuntimeError, match="already serving"):
            sim.start_tcp()
    with pytest.raises(RuntimeError, match="not running"):
        FeigSimulator(RFField()).replug()


def test_settings_are_checked() -> None:
    """Bad reader settings raise errors that name them."""
    with pytest.raises(ValueError, match="address"):
        FeigSimulator(RFField(), address=255)
    with pytest.raises(ValueError, match="buffer_size"):
        FeigSimulator(RFField(), buffer_size=10)
