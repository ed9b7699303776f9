"""The demo's private MQTT broker: a Mosquitto process on a free loopback port.

libedge's agent needs MQTT v5 (response topics and correlation data for requests, shared
subscriptions for central), and the embedded amqtt broker refuses anything but MQTT 3.1.1
(``amqtt.mqtt.protocol.broker_handler`` answers protocol level 5 with "unacceptable protocol
version"), so the demo runs the Debian ``mosquitto`` binary (``scripts/system-deps.sh``
installs it) or uses an external broker given with ``--broker``.

The broker persists to its own directory, so stopping it for the demo's offline period and
starting it again on the same port keeps every device's session and queued messages.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import threading
from pathlib import Path

from .supervisor import orphan_guard

__all__ = ["BrokerError", "DemoBroker", "free_port", "mosquitto_binary"]


class BrokerError(RuntimeError):
    """A broker could not be started or did not listen (the tests' brokers use this too)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mosquitto_binary() -> str | None:
    """The mosquitto executable (Debian puts it in /usr/sbin, often not on a user's PATH)."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def wait_listening(host: str, port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Return once ``port`` accepts connections; raise BrokerError if ``proc`` dies or time ends."""
    pause = threading.Event()  # never set: a bounded wait between connection attempts
    waited = 0.0
    while True:
        if proc.poll() is not None:
            raise BrokerError(f"broker exited with status {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        if waited > timeout:
            raise BrokerError(f"broker did not listen on {host}:{port} within {timeout} s")
        pause.wait(0.05)
        waited += 0.05


def stop_process(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM a broker process (it saves its state on the way out), SIGKILL it if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


class DemoBroker:
    """One private Mosquitto, restartable on the same port (for the offline period)."""

    host = "127.0.0.1"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise BrokerError(
                "no mosquitto binary: install the Debian package 'mosquitto'"
                " (scripts/system-deps.sh) or give --broker mqtt://host:port"
            )
        self.binary = binary
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.log_file = workdir / "mosquitto.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The broker's URL, as libedge's configuration takes it."""
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs."""
        return self._proc.pid if self.running and self._proc is not None else None

    def _write_config(self) -> Path:
        config = self.workdir / "mosquitto.conf"
        lines = [
            # As root, mosquitto would drop to the 'mosquitto' user, who cannot write here.
            f"user {getpass.getuser()}",
            f"listener {self.port} {self.host}",
            f"log_dest file {self.log_file}",
            "allow_anonymous true",
            # A backlog built during the offline period must not be capped silently.
            "max_queued_messages 0",
            "set_tcp_nodelay true",
            "persistence true",
            f"persistence_location {self.workdir}/",
            "autosave_interval 1",
        ]
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return config

    def start(self, timeout: float = 15.0) -> None:
        """Start the broker and return once it accepts connections."""
        if self.running:
            return
        config = self._write_config()
        # Its own session: a Ctrl-C in the terminal reaches the demo, which stops it in order.
        # Behind the orphan guard: a demo killed outright (SIGKILL) takes its broker along.
        self._proc = subprocess.Popen(  # noqa: S603 - a fixed argv, no shell
            orphan_guard([self.binary, "-c", str(config)]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_listening(self.host, self.port, self._proc, timeout)
        except BrokerError as exc:
            self.stop()
            raise BrokerError(f"{exc}; see {self.log_file}") from exc

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the broker gracefully (it saves its persistence file first)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process(proc, timeout)
