"""Private MQTT brokers for the tests: a real Mosquitto process per need, on a free loopback port.

Nothing here relies on a broker already running on the machine. :class:`MosquittoBroker`
writes its own configuration file (listener on 127.0.0.1, optional password file, ACL
file, TLS files, on-disk persistence) into a temporary directory, starts the Debian
``mosquitto`` binary on it, and can be stopped, killed and started again on the same port
to test outages. When no ``mosquitto`` binary exists, :class:`AmqttBroker` runs the embedded
amqtt broker instead (MQTT 3.1.1 only; pytest's header says which one is in use).
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from simulators.demo.broker import (
    BrokerError,
    free_port,
    mosquitto_binary,
    stop_process,
    wait_listening,
)

__all__ = [
    "AmqttBroker",
    "BrokerError",
    "MosquittoBroker",
    "TlsFiles",
    "broker_kind",
    "free_port",
    "mosquitto_binary",
    "mosquitto_version",
]


def mosquitto_version(binary: str) -> str:
    """The version line mosquitto prints for ``-h`` (e.g. 'mosquitto version 2.0.11')."""
    proc = subprocess.run([binary, "-h"], capture_output=True, text=True, timeout=10, check=False)
    for line in (proc.stdout + proc.stderr).splitlines():
        if "version" in line:
            return line.strip()
    return "mosquitto (version unknown)"


def broker_kind() -> str:
    """'mosquitto' when the binary exists, else 'amqtt'."""
    return "mosquitto" if mosquitto_binary() else "amqtt"


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for a TLS listener."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    require_certificate: bool = False
    use_identity_as_username: bool = False


class MosquittoBroker:
    """One private Mosquitto process, restartable on the same port."""

    host = "127.0.0.1"

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        passwords: dict[str, str] | None = None,
        acl_file: Path | None = None,
        tls: TlsFiles | None = None,
        persistence: bool = True,
    ) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise BrokerError("no mosquitto binary: install the Debian package 'mosquitto'")
        self.binary = binary
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.passwords = passwords
        self.acl_file = acl_file
        self.tls = tls
        self.persistence = persistence
        self.log_file = workdir / "mosquitto.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The broker's URL as libedge configuration takes it."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def _write_config(self) -> Path:
        lines = [
            # Run as whoever runs the tests: as root, mosquitto would otherwise drop to the
            # 'mosquitto' user, which cannot write this private directory.
            f"user {getpass.getuser()}",
            f"listener {self.port} {self.host}",
            f"log_dest file {self.log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            # Large in-flight windows and backlogs are what the tests exercise; no silent caps.
            "max_queued_messages 0",
            "max_inflight_messages 0",
            # Small request/response packets would otherwise wait ~40 ms for delayed ACKs.
            "set_tcp_nodelay true",
        ]
        if self.persistence:
            lines += [
                "persistence true",
                f"persistence_location {self.workdir}/",
                "autosave_interval 1",
            ]
        else:
            lines.append("persistence false")
        if self.passwords is not None:
            password_file = self.workdir / "passwords"
            password_file.write_text("")
            tool = shutil.which("mosquitto_passwd") or str(
                Path(self.binary).with_name("mosquitto_passwd")
            )
            tool = tool if os.access(tool, os.X_OK) else "/usr/bin/mosquitto_passwd"
            for user, password in self.passwords.items():
                subprocess.run(
                    [tool, "-b", str(password_file), user, password], check=True, timeout=10
                )
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        else:
            lines.append("allow_anonymous true")
        if self.acl_file is not None:
            lines.append(f"acl_file {self.acl_file}")
        if self.tls is not None:
            lines += [
                f"cafile {self.tls.ca_file}",
                f"certfile {self.tls.cert_file}",
                f"keyfile {self.tls.key_file}",
                f"require_certificate {'true' if self.tls.require_certificate else 'false'}",
            ]
            if self.tls.use_identity_as_username:
                lines.append("use_identity_as_username true")
        config = self.workdir / "mosquitto.conf"
        config.write_text("\n".join(lines) + "\n")
        return config

    def start(self, timeout: float = 15.0) -> None:
        """Start the broker and return once it accepts connections."""
        if self.running:
            return
        config = self._write_config()
        self._proc = subprocess.Popen(
            [self.binary, "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_listening(self.host, self.port, self._proc, timeout)
        except BrokerError as exc:
            self.stop()
            raise BrokerError(f"{exc}; log: {self.log_tail()}") from exc

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the broker gracefully (it saves its persistence file on the way out)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process(proc, timeout)

    def kill(self) -> None:
        """Kill the broker without warning, as a power cut would."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)

    def restart(self) -> None:
        """Stop and start again on the same port."""
        self.stop()
        self.start()

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the broker's log, for failure messages."""
        try:
            return " | ".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> MosquittoBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class AmqttBroker:
    """The embedded amqtt broker in a child process: the fallback when mosquitto is missing."""

    host = "127.0.0.1"

    def __init__(self, workdir: Path, *, port: int | None = None, **unsupported: object) -> None:
        if any(value is not None and value is not True for value in unsupported.values()):
            raise BrokerError(
                f"amqtt fallback cannot provide {sorted(unsupported)}: install mosquitto"
            )
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.log_file = workdir / "amqtt.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The broker's URL."""
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 20.0) -> None:
        """Start amqtt with a minimal configuration."""
        if self.running:
            return
        config = self.workdir / "amqtt.yaml"
        config.write_text(
            "listeners:\n  default:\n    type: tcp\n"
            f"    bind: {self.host}:{self.port}\n"
            "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
            "    allow_anonymous: true\n"
        )
        binary = Path(sys.executable).with_name("amqtt")
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen([str(binary), "-c", str(config)], stdout=log, stderr=log)
        wait_listening(self.host, self.port, self._proc, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the broker."""
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process(proc, timeout)

    kill = stop

    def restart(self) -> None:
        """Stop and start again on the same port."""
        self.stop()
        self.start()

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the broker's log."""
        try:
            return " | ".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
