"""When did the reply arrive? A reader port that notes the time of every read that got bytes.

Alarm latency is measured from the moment the reader's reply was read off the line, not from
when the driver finished with it, so the driver's own work counts too. :class:`TimedPort`
wraps whatever port :func:`hardware.feig.driver.open_serial_transport` opens and records
``time.perf_counter_ns()`` (the clock :class:`hardware.outputs.RecordingAlarm` uses) after
each ``read`` that returned data: after an exchange, :attr:`TimedPort.last_read_ns` is when
the reply's last byte was read. :func:`timed_opener` plugs it into ``FeigReader(opener=…)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from hardware.feig import PortOpener, Transport
from hardware.feig.transport import close_transport, open_serial_transport
from hardware.ports import LineSettings

__all__ = ["TimedPort", "timed_opener"]


class TimedPort:
    """A :class:`~hardware.feig.Transport` that notes when bytes were last read."""

    def __init__(self, port: Transport) -> None:
        self._port = port
        self.last_read_ns = 0
        #: Bytes read in total (for the health snapshot).
        self.bytes_read = 0

    @property
    def timeout(self) -> float | None:
        """Read timeout in seconds."""
        return self._port.timeout

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        self._port.timeout = value

    @property
    def in_waiting(self) -> int:
        """Bytes received and not yet read."""
        return self._port.in_waiting

    def read(self, size: int = 1, /) -> bytes:
        """Read, and note the time if anything arrived."""
        data = self._port.read(size)
        if data:
            self.last_read_ns = time.perf_counter_ns()
            self.bytes_read += len(data)
        return data

    def write(self, data: bytes, /) -> int | None:
        """Write all of ``data``."""
        return self._port.write(data)

    def reset_input_buffer(self) -> None:
        """Discard received bytes not yet read."""
        self._port.reset_input_buffer()

    def close(self) -> None:
        """Close the port without raising or leaking (it may already be broken).

        The driver's own safe close cannot see through this wrapper, so it is done here.
        """
        close_transport(self._port)

    @property
    def wrapped(self) -> Transport:
        """The port underneath."""
        return self._port


def timed_opener(
    on_open: Callable[[TimedPort], None], opener: PortOpener = open_serial_transport
) -> PortOpener:
    """An opener for ``FeigReader`` that wraps each port it opens and reports the wrapper."""

    def open_timed(url: str, line: LineSettings, timeout: float) -> Transport:
        port = TimedPort(opener(url, line, timeout))
        on_open(port)
        return port

    return open_timed
