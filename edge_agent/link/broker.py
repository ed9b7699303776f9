"""Where the broker is and how to reach it: URL, TLS context, Last Will, connect errors.

Everything here is decided before a connection is tried, or explains why one failed, so
:mod:`edge_agent.link.connection` can stay about keeping the connection up. A setting that
cannot work raises :class:`LinkConfigError` naming the setting when the link is built.
"""

from __future__ import annotations

import socket
import ssl
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from paho.mqtt.properties import Properties

from edge_agent.link.events import ProblemKind

__all__ = [
    "BrokerAddress",
    "LinkConfigError",
    "WillMessage",
    "describe_connect_error",
    "new_properties",
    "tls_context",
]


class LinkConfigError(ValueError):
    """The broker settings cannot work (bad URL, unreadable TLS file); names the setting."""


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Host, port and whether to speak TLS, from an ``mqtt://`` or ``mqtts://`` URL."""

    host: str
    port: int
    tls: bool

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """Parse a broker URL; raise LinkConfigError naming what is wrong."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise LinkConfigError(f"broker url {url!r}: the scheme must be mqtt:// or mqtts://")
        if not parts.hostname:
            raise LinkConfigError(f"broker url {url!r} has no host")
        try:
            port = parts.port
        except ValueError as exc:
            raise LinkConfigError(f"broker url {url!r}: {exc}") from None
        tls = parts.scheme == "mqtts"
        return cls(parts.hostname, port or (8883 if tls else 1883), tls)


@dataclass(frozen=True, slots=True)
class WillMessage:
    """The Last Will the broker publishes when the connection dies without a DISCONNECT."""

    topic: str
    payload: bytes
    retain: bool = True


class _ClosingSSLSocket(ssl.SSLSocket):
    """An SSL socket that closes itself when its handshake fails.

    paho wraps the TCP socket and calls ``do_handshake()``; when the handshake raises
    (untrusted certificate), paho drops the socket without closing it, which leaks a file
    descriptor per attempt and a ResourceWarning. Closing here plugs that leak.
    """

    def do_handshake(self, block: bool = False) -> None:
        """Run the TLS handshake; close the socket if it fails."""
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def tls_context(
    ca_file: Path | None, cert_file: Path | None, key_file: Path | None
) -> ssl.SSLContext:
    """A client TLS context: the given CA (or the system's), optionally a client certificate."""
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise LinkConfigError(f"agent.broker.ca_file {ca_file}: cannot be used: {exc}") from exc
    if cert_file is not None:
        try:
            context.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
        except (OSError, ssl.SSLError) as exc:
            raise LinkConfigError(
                f"agent.broker.cert_file {cert_file} / key_file {key_file}: cannot be used: {exc}"
            ) from exc
    elif key_file is not None:
        raise LinkConfigError("agent.broker.key_file is set but cert_file is not")
    context.sslsocket_class = _ClosingSSLSocket
    return context


#: Connection errors and how staff should read them, most specific first.
_CONNECT_ERRORS: tuple[tuple[type[BaseException], ProblemKind, str], ...] = (
    (
        ssl.SSLCertVerificationError,
        ProblemKind.TLS,
        "TLS to {where}: certificate not accepted: {detail}",
    ),
    (ssl.SSLError, ProblemKind.TLS, "TLS handshake with {where} failed: {detail}"),
    (ssl.CertificateError, ProblemKind.TLS, "TLS to {where}: {detail}"),
    (
        ConnectionRefusedError,
        ProblemKind.UNREACHABLE,
        "broker {where} refused the TCP connection (not running?)",
    ),
    (TimeoutError, ProblemKind.UNREACHABLE, "no TCP connection to broker {where} in time"),
    (socket.gaierror, ProblemKind.UNREACHABLE, "cannot resolve the broker's host name: {detail}"),
    (OSError, ProblemKind.UNREACHABLE, "cannot reach broker {where}: {detail}"),
)


def describe_connect_error(exc: BaseException, address: BrokerAddress) -> tuple[ProblemKind, str]:
    """Classify a failed connection attempt and say what happened in one sentence."""
    where = f"{address.host}:{address.port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or str(exc)
    elif isinstance(exc, ssl.SSLError):
        detail = exc.reason or str(exc)
    elif isinstance(exc, OSError):
        detail = exc.strerror or str(exc)
    else:
        detail = str(exc)
    for kind_of, kind, text in _CONNECT_ERRORS:
        if isinstance(exc, kind_of):
            return kind, text.format(where=where, detail=detail)
    return ProblemKind.PROTOCOL, f"cannot connect to broker {where}: {detail}"


def new_properties(packet_type: int) -> Properties:
    """An empty MQTT v5 property set for one packet type."""
    # paho's Properties constructor carries no type hints.
    return Properties(packet_type)  # type: ignore[no-untyped-call]
