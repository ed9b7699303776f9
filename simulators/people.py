"""A simulated beam-pair people counter: a TCP server that sends beam changes as text lines.

It plays a networked I/O module in front of two light beams (``a`` outside, ``b`` inside):
each connected client receives lines like ``a 1`` (beam a broken) and ``b 0`` (beam b clear).
:meth:`walk` sends the four changes of one visitor passing in either direction;
:meth:`turn_back` sends a visitor who breaks the outer beam and steps back (not a crossing);
:meth:`garble` sends a line that is not a beam change, for fault tests.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Literal

__all__ = ["SimulatedPeopleCounter"]


class SimulatedPeopleCounter:
    """Serves beam changes to whichever clients are connected."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = socket.create_server((host, port))
        self.host, self.port = self._server.getsockname()[:2]
        self._clients: list[socket.socket] = []
        self._lock = threading.Lock()
        self._client_joined = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="sim-people", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The URL a gate configures for this counter."""
        return f"tcp://{self.host}:{self.port}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self._clients.append(client)
                self._client_joined.notify_all()

    def wait_for_client(self, timeout: float = 5.0) -> None:
        """Wait until a gate is connected (raises TimeoutError otherwise)."""
        with self._client_joined:
            if not self._client_joined.wait_for(lambda: bool(self._clients), timeout):
                raise TimeoutError("no people-counter client connected")

    def _send(self, text: str) -> None:
        data = text.encode("ascii")
        with self._lock:
            for client in list(self._clients):
                try:
                    client.sendall(data)
                except OSError:
                    self._clients.remove(client)
                    client.close()

    def walk(self, direction: Literal["in", "out"]) -> None:
        """One visitor crossing: first beam broken, second broken, first clear, second clear."""
        first, second = ("a", "b") if direction == "in" else ("b", "a")
        self._send(f"{first} 1\n{second} 1\n{first} 0\n{second} 0\n")

    def turn_back(self) -> None:
        """A visitor who breaks the outer beam and steps back out: no crossing."""
        self._send("a 1\na 0\n")

    def garble(self, line: str = "beam? 7") -> None:
        """Send a line that is not a beam change."""
        self._send(line + "\n")

    def disconnect_clients(self) -> None:
        """Drop every connection, as a cable pulled out would."""
        with self._lock:
            for client in self._clients:
                with contextlib.suppress(OSError):
                    client.shutdown(socket.SHUT_RDWR)
                client.close()
            self._clients.clear()

    def close(self) -> None:
        """Stop serving."""
        self._stop.set()
        self.disconnect_clients()
        with contextlib.suppress(OSError):
            # close() alone does not wake a thread blocked in accept(); shutdown() does.
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        self._thread.join(5)

    def __enter__(self) -> SimulatedPeopleCounter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
