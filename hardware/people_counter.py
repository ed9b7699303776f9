"""People counter: a pair of light beams across the gate gives the direction of each visitor.

Beam ``a`` is on the outside, beam ``b`` on the inside. A visitor walking in breaks ``a``,
then ``b``, then clears ``a``, then ``b``; walking out is the mirror image. A visitor who
breaks one beam and steps back, or who lingers between the beams and turns round, is not
counted. :class:`BeamPair` is that logic as a pure state machine over beam changes.

Inputs, opened from a URL:

``gpio:A,B``      two beam receivers on Raspberry Pi GPIO (BCM pins), through gpiozero
                  (imported only for such a URL)
``tcp://H:P``     a networked I/O module (or the simulator) sending one line per change:
                  ``a 1`` beam a broken, ``a 0`` beam a clear, likewise ``b``

A vanished input is reported through ``on_problem`` and reopened with backoff; a garbled
line is reported and skipped. The reading thread never dies silently.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "BeamPair",
    "Crossing",
    "Direction",
    "PeopleCounterError",
    "SocketBeamInput",
    "open_people_counter",
]

log = logging.getLogger(__name__)


class PeopleCounterError(RuntimeError):
    """A people-counter URL is malformed or its input cannot be used."""


class Direction(StrEnum):
    """Which way a visitor crossed."""

    IN = "in"
    OUT = "out"


@dataclass(frozen=True, slots=True)
class Crossing:
    """One visitor through the gate."""

    direction: Direction
    at: float  # time.time() of the last beam clearing


class BeamPair:
    """Turns beam changes into crossings; one instance per gate lane."""

    def __init__(self) -> None:
        self._broken: dict[str, bool] = {"a": False, "b": False}
        self._first: str | None = None  # the beam broken first in the current passage
        self._both = False  # both beams were broken at once during it

    def change(self, beam: str, broken: bool, at: float) -> Crossing | None:
        """Feed one beam change; return a crossing when a visitor has fully passed."""
        if beam not in self._broken:
            raise ValueError(f"unknown beam {beam!r}; beams are 'a' (outside) and 'b' (inside)")
        if self._broken[beam] == broken:
            return None  # a repeated state, e.g. after a reconnect: nothing changed
        self._broken[beam] = broken
        if broken:
            if self._first is None:
                self._first = beam
            if all(self._broken.values()):
                self._both = True
            return None
        if any(self._broken.values()):
            return None
        # Both clear: a passage ended. It counts if both beams were broken together and the
        # beam cleared last is not the one broken first (the visitor did not turn back).
        first, both = self._first, self._both
        self._first, self._both = None, False
        if not both or first is None or first == beam:
            return None
        return Crossing(Direction.IN if first == "a" else Direction.OUT, at)


OnCrossing = Callable[[Crossing], None]
OnProblem = Callable[[str], None]


class SocketBeamInput:
    """Reads beam changes as text lines from a TCP socket, in a thread of its own."""

    def __init__(
        self,
        host: str,
        port: int,
        on_crossing: OnCrossing,
        on_problem: OnProblem,
        *,
        max_backoff_s: float = 5.0,
    ) -> None:
        self.host, self.port = host, port
        self._on_crossing, self._on_problem = on_crossing, on_problem
        self._max_backoff = max_backoff_s
        self._pair = BeamPair()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self.connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"beams-{port}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                with socket.create_connection((self.host, self.port), timeout=2) as sock:
                    self._sock = sock
                    sock.settimeout(None)
                    self.connected.set()
                    backoff = 0.1
                    self._read(sock)
            except OSError as exc:
                if not self._stop.is_set():
                    self._on_problem(f"people counter {self.host}:{self.port} unreachable: {exc}")
            finally:
                self._sock = None
                self.connected.clear()
            if self._stop.wait(backoff):
                return
            backoff = min(backoff * 2, self._max_backoff)

    def _read(self, sock: socket.socket) -> None:
        buffer = b""
        while not self._stop.is_set():
            chunk = sock.recv(4096)
            if not chunk:
                if not self._stop.is_set():
                    self._on_problem(
                        f"people counter {self.host}:{self.port} closed the connection"
                    )
                return
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            if len(buffer) > 256:  # a line that never ends is garbage, not a slow sender
                self._on_problem(f"people counter sent an over-long line: {buffer[:40]!r}…")
                buffer = b""
            for line in lines:
                self._line(line.strip())

    def _line(self, line: bytes) -> None:
        parts = line.split()
        if len(parts) != 2 or parts[0] not in (b"a", b"b") or parts[1] not in (b"0", b"1"):
            if line:
                self._on_problem(f"people counter sent a garbled line: {line[:40]!r}")
            return
        crossing = self._pair.change(parts[0].decode(), parts[1] == b"1", time.time())
        if crossing is not None:
            try:
                self._on_crossing(crossing)
            except Exception:  # the caller's bug must not stop the counting
                log.exception("people counter callback failed")

    def close(self) -> None:
        """Stop reading and wait for the thread."""
        self._stop.set()
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)


class GpioBeamInput:
    """Two beam receivers on GPIO pins, pulled up; a receiver that sees its beam pulls low.

    That is the usual open-collector (NPN, "light-on") receiver: while the light arrives
    it sinks the pin to ground, and a person in the beam releases it to the pull-up. So
    low (gpiozero's "active" with ``pull_up=True``) is a clear beam and high is broken;
    a "dark-on" receiver must be switched to light-on mode.
    """

    def __init__(self, pin_a: int, pin_b: int, on_crossing: OnCrossing) -> None:
        try:
            import gpiozero  # only on a Pi, and only when configured
        except ImportError as exc:
            raise PeopleCounterError("gpio: inputs need the 'gpiozero' package") from exc
        self._pair = BeamPair()
        self._lock = threading.Lock()
        self._on_crossing = on_crossing
        self._inputs: list[Any] = []
        for name, pin in (("a", pin_a), ("b", pin_b)):
            device = gpiozero.DigitalInputDevice(pin, pull_up=True)
            device.when_activated = lambda n=name: self._change(n, False)
            device.when_deactivated = lambda n=name: self._change(n, True)
            self._inputs.append(device)

    def _change(self, beam: str, broken: bool) -> None:
        with self._lock:
            crossing = self._pair.change(beam, broken, time.time())
        if crossing is not None:
            self._on_crossing(crossing)

    def close(self) -> None:
        """Release the pins."""
        for device in self._inputs:
            device.close()


def open_people_counter(
    url: str, on_crossing: OnCrossing, on_problem: OnProblem
) -> SocketBeamInput | GpioBeamInput:
    """Open the beam-pair input a URL names; crossings and problems arrive by callback."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme == "tcp":
        if not parsed.hostname or not parsed.port:
            raise PeopleCounterError(f"{url!r}: expected tcp://HOST:PORT")
        return SocketBeamInput(parsed.hostname, parsed.port, on_crossing, on_problem)
    if parsed.scheme == "gpio":
        pins = url.partition(":")[2].split(",")
        if len(pins) != 2 or not all(p.strip().isdigit() for p in pins):
            raise PeopleCounterError(f"{url!r}: expected gpio:PIN_A,PIN_B (BCM numbers)")
        return GpioBeamInput(int(pins[0]), int(pins[1]), on_crossing)
    raise PeopleCounterError(f"{url!r}: unknown people counter (use tcp://HOST:PORT or gpio:A,B)")
