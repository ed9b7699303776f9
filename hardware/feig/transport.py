"""The byte pipe under the FEIG driver: what it needs from a port, and how a real one is opened.

Like nfcpy's ``transport.py``: the driver speaks the protocol over a :class:`Transport` and does
not care whether that is a USB-serial adapter, an RS-485 line, a TCP serial server or a test's
scripted fake. Real ports come from :func:`hardware.ports.open_port` (pyserial URL handlers).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import termios
from collections.abc import Callable
from typing import Protocol, cast

import serial

from hardware.ports import LineSettings, open_port, parse_line_settings

__all__ = ["PORT_ERRORS", "PortOpener", "Transport", "close_transport", "open_serial_transport"]

log = logging.getLogger(__name__)

#: What a pyserial port raises when its device misbehaves or vanishes. termios.error is not an
#: OSError, and pyserial lets it through from tcsetattr/tcflush (e.g. on a pty the kernel
#: refuses parity on, or a USB adapter that was just unplugged).
PORT_ERRORS = (serial.SerialException, OSError, termios.error)


class Transport(Protocol):
    """The part of a pyserial port the driver uses (a test may supply its own)."""

    @property
    def timeout(self) -> float | None:
        """Read timeout in seconds."""
        ...

    @timeout.setter
    def timeout(self, value: float | None) -> None: ...

    @property
    def in_waiting(self) -> int:
        """Bytes received and not yet read."""
        ...

    def read(self, size: int = 1, /) -> bytes:
        """Read up to ``size`` bytes; fewer (possibly none) when the timeout passes."""
        ...

    def write(self, data: bytes, /) -> int | None:
        """Write all of ``data``."""
        ...

    def reset_input_buffer(self) -> None:
        """Discard received bytes not yet read."""
        ...

    def close(self) -> None:
        """Close the port."""
        ...


#: Opens a port: (url, line settings, read timeout) -> transport.
PortOpener = Callable[[str, LineSettings, float], Transport]


def _is_pty(port_name: str) -> bool:
    """Tell whether a device path is a pseudo-terminal (also through a symlink)."""
    return os.path.realpath(port_name).startswith("/dev/pts/")


def open_serial_transport(url: str, line: LineSettings, timeout: float) -> Transport:
    """Open a real port through :func:`hardware.ports.open_port`.

    A pseudo-terminal (a simulated reader) is opened without parity: a pty carries none, and
    some kernels refuse the setting (tcsetattr fails with EINVAL on a second open).
    """
    port_name, settings = parse_line_settings(url, line)
    if _is_pty(port_name) and settings.parity != "N":
        url, line = port_name, dataclasses.replace(settings, parity="N")
    # pyserial's stubs leave in_waiting/reset_input_buffer to the concrete classes, which all
    # have them; the cast states that every port open_port returns is one of those.
    return cast(Transport, open_port(url, defaults=line, timeout=timeout))


def close_transport(port: Transport) -> None:
    """Close a port that may already be broken, without raising and without leaking."""
    # pyserial's socket:// handler skips socket.close() when shutdown() fails on a
    # connection the peer already dropped, leaking the socket; close it ourselves too.
    sock = getattr(port, "_socket", None)
    try:
        port.close()
    except PORT_ERRORS as exc:
        # The port is already gone; closing it can only fail the same way.
        log.debug("closing a broken port failed: %s", exc)
    finally:
        if isinstance(sock, socket.socket):
            sock.close()
