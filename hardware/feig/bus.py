"""Several FEIG readers on one RS-485 bus: one port, shared by their drivers in turn.

A gate's pedestal readers often hang on one pair of RS-485 wires, each at a bus address of
its own (COM-ADR, set in the reader's configuration). The host speaks to one reader at a time
and only the addressed reader answers, so the readers of one bus must take turns, which the
gate's turn groups already do. A port can be opened only once, though, so the
:class:`~hardware.feig.FeigReader` of each reader gets its port from one :class:`SharedBus`:

    bus = SharedBus()
    left = FeigReader("serial:///dev/ttyUSB0", address=1, opener=bus.open)
    right = FeigReader("serial:///dev/ttyUSB0", address=2, opener=bus.open)

Every driver holds a *handle* on the one open port. When a driver gives its port up (the
adapter vanished, or the driver is closed) the port is closed for all: a port that failed
for one reader failed for every reader on it. The other handles then raise
``serial.SerialException`` on their next use, so their drivers report the loss and reconnect
as they would alone, and the first reconnect opens the port again. A reader that merely
stops answering (powered off, wrong address) costs only its own timeouts.

The handles do not serialise exchanges: all readers of one bus must be driven from one
thread, one exchange at a time (a gate turn group), as the half-duplex bus itself demands.
"""

from __future__ import annotations

import threading

import serial

from hardware.feig.transport import PortOpener, Transport, close_transport, open_serial_transport
from hardware.ports import LineSettings

__all__ = ["SharedBus"]


class SharedBus:
    """One port that several readers' drivers share (see the module docstring).

    :meth:`open` is a :data:`~hardware.feig.PortOpener`; pass it as each driver's ``opener``.
    ``opener`` opens the real port (the serial one by default). ``opens`` counts the times
    the real port was opened, for health reports and tests.
    """

    def __init__(self, opener: PortOpener = open_serial_transport) -> None:
        self._opener = opener
        self._lock = threading.Lock()
        self._port: Transport | None = None
        self._url: str | None = None
        self._generation = 0
        self.opens = 0

    @property
    def is_open(self) -> bool:
        """True while the real port is open."""
        return self._port is not None

    def open(self, url: str, line: LineSettings, timeout: float) -> Transport:
        """A handle on the bus's port, opening the port first if it is not open."""
        with self._lock:
            if self._url is None:
                self._url = url
            elif url != self._url:
                # Two URLs are two ports, or one port at two line settings: either way they
                # cannot be one bus. The gate's options refuse this before it gets here.
                raise ValueError(f"this bus is {self._url!r}; {url!r} cannot share it")
            if self._port is None:
                self._port = self._opener(url, line, timeout)
                self._generation += 1
                self.opens += 1
            return _BusHandle(self, self._port, self._generation)

    def _give_up(self, generation: int) -> None:
        """A handle of ``generation`` is done with the port: close it unless reopened since."""
        with self._lock:
            if generation != self._generation:
                return
            port, self._port = self._port, None
        if port is not None:
            close_transport(port)

    def _current(self, generation: int) -> bool:
        return self._port is not None and generation == self._generation


class _BusHandle:
    """One driver's view of the shared port; fails once the port it was given is closed."""

    def __init__(self, bus: SharedBus, port: Transport, generation: int) -> None:
        self._bus = bus
        self._port = port
        self._generation = generation
        self._closed = False

    def _live(self) -> Transport:
        if self._closed or not self._bus._current(self._generation):
            raise serial.SerialException(
                "the shared bus port was closed (it failed for another reader on the bus, "
                "or that reader was closed); reconnect to reopen it"
            )
        return self._port

    @property
    def timeout(self) -> float | None:
        """Read timeout in seconds (of the shared port: each driver sets its own per exchange)."""
        return self._live().timeout

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        self._live().timeout = value

    @property
    def in_waiting(self) -> int:
        """Bytes received and not yet read."""
        return self._live().in_waiting

    def read(self, size: int = 1, /) -> bytes:
        """Read up to ``size`` bytes from the bus."""
        return self._live().read(size)

    def write(self, data: bytes, /) -> int | None:
        """Write all of ``data`` to the bus."""
        return self._live().write(data)

    def reset_input_buffer(self) -> None:
        """Discard received bytes not yet read (a neighbour's late reply, say)."""
        self._live().reset_input_buffer()

    def close(self) -> None:
        """Give the port up: it closes for every reader on the bus (see the module doc)."""
        if not self._closed:
            self._closed = True
            self._bus._give_up(self._generation)
