"""FeigReader on a real pseudo-terminal with a scripted peer: real pyserial, real file descriptors."""

from __future__ import annotations

import os
import queue
import select
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from hardware.feig import FeigReader
from hardware.feig.transport import open_serial_transport
from hardware.ports import LineSettings
from hardware.reader import ReaderDisconnected, ReaderTimeout
from tests.test_feig_fakes import (
    CAPTURED_INVENTORY_REQUEST,
    CAPTURED_ONE_TAG,
    CAPTURED_UID,
    h,
)

WAIT = 5.0  # upper bound for a peer step; never reached when things work


class Peer:
    """The master side of a pty, run by a thread that follows a script of steps."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.path = os.ttyname(self.slave)
        self.received: queue.Queue[bytes] = queue.Queue()
        self._thread: threading.Thread | None = None

    def read_request(self, size: int) -> bytes:
        """Read exactly ``size`` bytes the driver wrote (called from the peer thread)."""
        data = b""
        while len(data) < size:
            ready, _, _ = select.select([self.master], [], [], WAIT)
            if not ready:
                break
            data += os.read(self.master, size - len(data))
        self.received.put(data)
        return data

    def run(self, script: Callable[[Peer], None]) -> None:
        self._thread = threading.Thread(target=script, args=(self,), daemon=True)
        self._thread.start()

    def close_master(self) -> None:
        if self.master >= 0:
            os.close(self.master)
            self.master = -1

    def finish(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=WAIT)
        self.close_master()
        if self.slave >= 0:
            os.close(self.slave)
            self.slave = -1


@contextmanager
def peer() -> Iterator[Peer]:
    p = Peer()
    try:
        yield p
    finally:
        p.finish()


def test_inventory_over_a_real_pty() -> None:
    """The driver writes the captured request on a pty and decodes the captured reply."""
    with peer() as p:

        def script(pp: Peer) -> None:
            pp.read_request(7)
            os.write(pp.master, h(CAPTURED_ONE_TAG))

        p.run(script)
        with FeigReader(p.path, timeout=WAIT) as reader:
            assert [t.uid for t in reader.inventory()] == [CAPTURED_UID]
        assert p.received.get(timeout=WAIT) == h(CAPTURED_INVENTORY_REQUEST)


def test_reply_split_with_garbage_over_a_real_pty() -> None:
    """Noise, then the reply in two writes, is read as one reply."""
    with peer() as p:
        reply = h(CAPTURED_ONE_TAG)

        def script(pp: Peer) -> None:
            pp.read_request(7)
            os.write(pp.master, b"\x00\xff\x3a" + reply[:9])
            os.write(pp.master, reply[9:])

        p.run(script)
        with FeigReader(p.path, timeout=WAIT) as reader:
            assert [t.uid for t in reader.inventory()] == [CAPTURED_UID]


def test_silent_peer_times_out() -> None:
    """A peer that reads the request and never answers makes the driver raise ReaderTimeout."""
    with peer() as p:
        p.run(lambda pp: pp.read_request(7) and None)
        with (
            FeigReader(p.path, timeout=0.1) as reader,
            pytest.raises(ReaderTimeout, match="nothing received"),
        ):
            reader.inventory()
        assert p.received.get(timeout=WAIT) == h(CAPTURED_INVENTORY_REQUEST)


def test_peer_closing_the_pty_is_a_disconnect() -> None:
    """When the other side of the pty closes mid-exchange, the driver raises ReaderDisconnected."""
    with peer() as p:

        def script(pp: Peer) -> None:
            pp.read_request(7)
            pp.close_master()

        with FeigReader(p.path, timeout=WAIT) as reader:
            os.close(p.slave)  # only the driver holds the slave now, as with a real adapter
            p.slave = -1
            p.run(script)
            with pytest.raises(ReaderDisconnected, match="failed while"):
                reader.inventory()
            assert not reader.is_open
            # The device node is gone: the automatic reopen fails the same way.
            with pytest.raises(ReaderDisconnected, match="cannot open"):
                reader.inventory()


def test_pty_opens_repeatedly_without_parity() -> None:
    """A pty is opened without parity, so opening it again works (kernels refuse parity)."""
    with peer() as p:
        for url in (p.path, f"serial://{p.path}?parity=E&baud=38400"):
            port = open_serial_transport(url, LineSettings(parity="E"), 0.1)
            try:
                assert getattr(port, "parity", None) == "N"
            finally:
                port.close()
