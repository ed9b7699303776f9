"""The two ways the simulated reader is plugged in: a pseudo-terminal and a TCP socket.

Both give the driver exactly what a real reader gives it: a serial device path (the pty slave,
opened like ``/dev/ttyUSB0``) or a ``socket://`` endpoint (like a serial-to-Ethernet adapter).
The serving thread in :mod:`simulators.reader.server` owns these objects; nothing here starts a
thread.

On the pty the simulator checks the baud rate the driver configured (both ends share the pty's
termios settings): a FEIG reader only hears a host at its own baud rate, so bytes sent at
another rate are dropped as noise. Parity cannot be checked this way: Linux refuses PARENB on a
pty (tcsetattr fails with EINVAL, and pyserial's request for even parity is silently dropped).
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import termios
import tty
from collections.abc import Callable

__all__ = ["PtyPort", "TcpPort", "send_all"]

_BAUD_CONSTANTS = {
    4800: termios.B4800,
    9600: termios.B9600,
    19200: termios.B19200,
    38400: termios.B38400,
    57600: termios.B57600,
    115200: termios.B115200,
}


def send_all(
    fd: int, data: bytes, write: Callable[[bytes], int], stopping: Callable[[], bool]
) -> bool:
    """Write all of ``data`` to a non-blocking descriptor; False if the peer vanished or we stop."""
    view = memoryview(data)
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    while view:
        if stopping():
            return False
        try:
            sent = write(bytes(view))
        except BlockingIOError:
            poller.poll(100)
            continue
        except OSError:
            return False
        view = view[sent:]
    return True


class PtyPort:
    """A pseudo-terminal whose slave end is the reader's serial device."""

    def __init__(self, *, baudrate: int = 38400) -> None:
        if baudrate not in _BAUD_CONSTANTS:
            raise ValueError(f"baudrate must be one of {sorted(_BAUD_CONSTANTS)}, got {baudrate}")
        self.baudrate = baudrate
        self.master: int | None = None
        self.slave: int | None = None
        self.path = ""

    def open(self) -> str:
        """Create the pty in raw mode at the reader's baud rate; return the slave path."""
        master, slave = os.openpty()
        try:
            tty.setraw(slave)
            attrs = termios.tcgetattr(slave)
            attrs[4] = attrs[5] = _BAUD_CONSTANTS[self.baudrate]
            termios.tcsetattr(slave, termios.TCSANOW, attrs)
            os.set_blocking(master, False)
            path = os.ttyname(slave)
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        # The slave stays open on our side as well: without it the master reads EIO whenever
        # the driver has closed its end, which a real reader never does.
        self.master, self.slave, self.path = master, slave, path
        return path

    @property
    def endpoint(self) -> str:
        """The slave device path."""
        return self.path

    def close(self) -> None:
        """Close both ends: the device node disappears once the driver closes its end too."""
        for fd in (self.master, self.slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master = self.slave = None

    def poll_fds(self) -> list[int]:
        """Descriptors to watch for input."""
        return [self.master] if self.master is not None else []

    def host_baudrate(self) -> int | None:
        """Return the baud rate the host has set on the pty now (-1 if unusual, None if closed)."""
        if self.slave is None:
            return None
        try:
            attrs = termios.tcgetattr(self.slave)
        except termios.error:
            return None
        speeds = {v: k for k, v in _BAUD_CONSTANTS.items()}
        return speeds.get(attrs[5], -1)

    def line_matches(self) -> bool:
        """Whether the host talks at the reader's own baud rate."""
        return self.host_baudrate() == self.baudrate

    def read(self, fd: int) -> bytes | None:
        """Read what the driver wrote; None when nothing was there."""
        try:
            return os.read(fd, 4096)
        except BlockingIOError:
            return None
        except OSError as exc:
            if exc.errno == errno.EIO:
                return None
            raise

    def send(self, data: bytes, stopping: Callable[[], bool]) -> bool:
        """Write a reply to the driver."""
        master = self.master
        if master is None:
            return False
        return send_all(master, data, lambda chunk: os.write(master, chunk), stopping)


class TcpPort:
    """A TCP server on which one client at a time is the reader's host."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.listener: socket.socket | None = None
        self.client: socket.socket | None = None

    def open(self) -> int:
        """Listen (on the same port as before when re-plugged); return the bound port."""
        listener = socket.create_server((self.host, self.port), backlog=4)
        listener.setblocking(False)
        self.listener = listener
        self.port = listener.getsockname()[1]
        return self.port

    @property
    def endpoint(self) -> int:
        """The bound TCP port."""
        return self.port

    def close(self) -> None:
        """Drop the client and stop listening: new connections are refused."""
        self.drop_client()
        if self.listener is not None:
            self.listener.close()
            self.listener = None

    def drop_client(self) -> None:
        """Close the current client connection, if any."""
        if self.client is not None:
            with contextlib.suppress(OSError):
                self.client.shutdown(socket.SHUT_RDWR)
            self.client.close()
            self.client = None

    def poll_fds(self) -> list[int]:
        """The client while one is connected (others wait in the backlog), else the listener."""
        if self.client is not None:
            return [self.client.fileno()]
        return [self.listener.fileno()] if self.listener is not None else []

    def accept(self) -> bool:
        """Accept a waiting client; True if one was accepted."""
        if self.listener is None or self.client is not None:
            return False
        try:
            client, _ = self.listener.accept()
        except BlockingIOError:
            return False
        client.setblocking(False)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client = client
        return True

    def read(self) -> bytes | None:
        """Read from the client; b"" when it hung up, None when nothing was there."""
        if self.client is None:
            return None
        try:
            return self.client.recv(4096)
        except BlockingIOError:
            return None
        except OSError:
            return b""

    def send(self, data: bytes, stopping: Callable[[], bool]) -> bool:
        """Write a reply to the client."""
        client = self.client
        if client is None:
            return False
        return send_all(client.fileno(), data, client.send, stopping)
