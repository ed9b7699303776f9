"""Open a serial-style device port from a URL, so hardware vs simulator is a configuration string.

Accepted forms (everything pyserial's ``serial_for_url`` knows, plus one of ours):

``serial:///dev/ttyUSB0?baud=38400&parity=E&bytesize=8&stopbits=1``
    A local serial device with its line settings in the URL (our scheme).
``/dev/ttyUSB0``, ``/dev/pts/5``, ``COM3``
    A bare device path; line settings come from the caller's defaults.
``socket://127.0.0.1:7001``, ``rfc2217://host:port``, ``loop://``
    pyserial's own handlers: a TCP socket, a network serial server, a loopback.
``spy://URL?file=/tmp/trace.txt``
    pyserial's hex dump of all traffic, wrapped around any of the above (field debugging).

Line settings in a ``serial://`` query override the caller's defaults; a setting this module
does not know is an error that names it, so a typo in a configuration file is not ignored.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

import serial

__all__ = ["LineSettings", "PortURLError", "open_port", "parse_line_settings"]

_PARITIES = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD}
_STOPBITS = {
    "1": serial.STOPBITS_ONE,
    "1.5": serial.STOPBITS_ONE_POINT_FIVE,
    "2": serial.STOPBITS_TWO,
}
_BYTESIZES = {"7": serial.SEVENBITS, "8": serial.EIGHTBITS}


class PortURLError(ValueError):
    """A device URL is malformed or names a line setting that does not exist."""


@dataclass(frozen=True, slots=True)
class LineSettings:
    """Serial line settings; defaults are those of a FEIG reader (38400 baud, 8E1)."""

    baudrate: int = 38400
    parity: str = "E"
    bytesize: int = 8
    stopbits: float = 1


def parse_line_settings(url: str, defaults: LineSettings) -> tuple[str, LineSettings]:
    """Split a ``serial://`` URL into the pyserial port name and its line settings.

    Any other URL is returned unchanged with the defaults.
    """
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme != "serial":
        return url, defaults
    if not parsed.path:
        raise PortURLError(
            f"{url!r}: a serial:// URL needs a device path, e.g. serial:///dev/ttyUSB0"
        )
    baudrate, parity = defaults.baudrate, defaults.parity
    bytesize, stopbits = defaults.bytesize, defaults.stopbits
    for key, values in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items():
        value = values[-1]
        if key in ("baud", "baudrate"):
            if not value.isdigit():
                raise PortURLError(f"{url!r}: baud must be a whole number, got {value!r}")
            baudrate = int(value)
        elif key == "parity":
            if value.upper() not in _PARITIES:
                raise PortURLError(f"{url!r}: parity must be N, E or O, got {value!r}")
            parity = value.upper()
        elif key == "bytesize":
            if value not in _BYTESIZES:
                raise PortURLError(f"{url!r}: bytesize must be 7 or 8, got {value!r}")
            bytesize = int(value)
        elif key == "stopbits":
            if value not in _STOPBITS:
                raise PortURLError(f"{url!r}: stopbits must be 1, 1.5 or 2, got {value!r}")
            stopbits = float(value)
        else:
            raise PortURLError(f"{url!r}: unknown serial setting {key!r}")
    return parsed.path, LineSettings(baudrate, parity, bytesize, stopbits)


def open_port(
    url: str,
    *,
    defaults: LineSettings | None = None,
    timeout: float = 0.5,
    write_timeout: float = 1.0,
) -> serial.SerialBase:
    """Open the port a URL names, with read and write timeouts so no call blocks forever.

    Raises :class:`PortURLError` for a bad URL and ``serial.SerialException`` (an ``OSError``
    on most platforms) when the device cannot be opened.
    """
    port_name, line = parse_line_settings(url, defaults or LineSettings())
    try:
        port = serial.serial_for_url(port_name, do_not_open=True)
    except (ValueError, serial.SerialException) as exc:
        # pyserial says "invalid URL" for an unknown scheme; name the URL we were given.
        raise PortURLError(f"{url!r}: {exc}") from exc
    port.baudrate = line.baudrate
    port.parity = _PARITIES[line.parity]
    port.bytesize = line.bytesize
    port.stopbits = line.stopbits
    port.timeout = timeout
    port.write_timeout = write_timeout
    port.open()
    return port
