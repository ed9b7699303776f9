"""Receipt printers reached by URL, their status read back, and the errors a kiosk acts on.

URLs (python-escpos does the transport):

``tcp://192.168.1.50:9100``
    A network printer (raw TCP, port 9100 by default).
``usb:04b8:0202`` or ``usb:0416:5011?in_ep=0x81&out_ep=0x03``
    A USB printer by vendor and product id (pyusb, libusb; the user needs access to the
    device); the bulk endpoints default to 0x82 in, 0x01 out (Epson) and vary by maker.
``serial:///dev/ttyUSB1?baud=19200&parity=N``, ``/dev/ttyUSB1``, ``socket://host:port``
    A serial printer, opened with :func:`hardware.ports.open_port` (19200 8N1 by default).
``file:/dev/usb/lp0``
    A device file written blindly: such printers cannot report their status.

Status is read with DLE EOT (real-time status transmission): n=1 printer status (bit 3:
offline), n=2 offline cause (bit 2: cover open, bit 5: stopped at paper end, bit 6: error),
n=4 roll paper sensor (bits 2-3: near end, bits 5-6: paper end). Every status byte has bits 1
and 4 set and bits 0 and 7 clear, which :func:`parse_status` checks, so a garbled answer is
recognised and not read as "all well".

Exceptions (each carries the :class:`PrinterStatus` it was decided from, when there is one)::

    PrinterError              anything that stops a receipt from being printed
    ├── PrinterURLError       the URL is malformed (also a ValueError)
    ├── PrinterUnavailable    cannot be reached or opened, or vanished while printing
    ├── PrinterOutOfPaper     the paper roll is empty
    ├── PrinterCoverOpen      the cover is open
    └── PrinterFault          the printer reports an error (cutter jam, overheated head…)
"""

from __future__ import annotations

import logging
import socket
import threading
import urllib.parse
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from hardware.ports import LineSettings, PortURLError, open_port
from hardware.printer._escpos import Escpos, escpos_printer
from hardware.printer.receipt import Receipt
from hardware.printer.render import PrinterProfile, render_receipt

__all__ = [
    "PrinterCoverOpen",
    "PrinterError",
    "PrinterFault",
    "PrinterOutOfPaper",
    "PrinterProblemKind",
    "PrinterStatus",
    "PrinterURLError",
    "PrinterUnavailable",
    "ReceiptPrinter",
    "StatusFormatError",
    "open_printer",
    "parse_status",
]

log = logging.getLogger(__name__)

PRINTER_LINE = LineSettings(baudrate=19200, parity="N", bytesize=8, stopbits=1)
_DLE_EOT = b"\x10\x04"


class PrinterProblemKind(Enum):
    """What keeps the printer from printing, in terms a kiosk can turn into a message."""

    OFFLINE = "offline"  #: not reachable, not answering, or offline for another reason
    OUT_OF_PAPER = "out_of_paper"
    COVER_OPEN = "cover_open"
    FAULT = "fault"  #: an error the printer reports (cutter, head temperature, …)


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    """What the printer said about itself; ``None`` fields were not reported."""

    reachable: bool
    answered: bool = False  #: whether the printer answered status requests at all
    online: bool | None = None
    cover_open: bool | None = None
    paper: Literal["ok", "near_end", "out"] | None = None
    error: bool | None = None
    detail: str = ""

    @property
    def problem(self) -> PrinterProblemKind | None:
        """The reason this printer cannot print now, or None."""
        if not self.reachable:
            return PrinterProblemKind.OFFLINE
        if self.paper == "out":
            return PrinterProblemKind.OUT_OF_PAPER
        if self.cover_open:
            return PrinterProblemKind.COVER_OPEN
        if self.error:
            return PrinterProblemKind.FAULT
        if self.online is False:
            return PrinterProblemKind.OFFLINE
        return None

    def describe(self) -> str:
        """Plain words for staff: 'ready', 'ready (paper low)', 'out of paper' and so on."""
        if not self.reachable:
            return f"not reachable: {self.detail}" if self.detail else "not reachable"
        words = {
            PrinterProblemKind.OUT_OF_PAPER: "out of paper",
            PrinterProblemKind.COVER_OPEN: "cover open",
            PrinterProblemKind.FAULT: "reports an error",
            PrinterProblemKind.OFFLINE: "offline",
        }
        problem = self.problem
        if problem is not None:
            return words[problem]
        if not self.answered:
            return "reachable (does not report its status)"
        return "ready (paper low)" if self.paper == "near_end" else "ready"


class PrinterError(Exception):
    """A receipt could not be printed; ``kind`` says why, ``status`` what the printer said."""

    kind = PrinterProblemKind.OFFLINE

    def __init__(self, message: str, status: PrinterStatus | None = None) -> None:
        super().__init__(message)
        self.status = status


class PrinterURLError(PrinterError, ValueError):
    """The printer URL is malformed."""


class PrinterUnavailable(PrinterError):  # noqa: N818 - named for the condition
    """The printer cannot be reached or opened, or vanished while printing."""


class PrinterOutOfPaper(PrinterError):  # noqa: N818 - named for the condition
    """The paper roll is empty."""

    kind = PrinterProblemKind.OUT_OF_PAPER


class PrinterCoverOpen(PrinterError):  # noqa: N818 - named for the condition
    """The printer's cover is open."""

    kind = PrinterProblemKind.COVER_OPEN


class PrinterFault(PrinterError):  # noqa: N818 - named for the condition
    """The printer reports an error condition."""

    kind = PrinterProblemKind.FAULT


class _StatusUnknownError(Exception):
    """The printer is reachable but gave no usable status answer (the message says why)."""


class StatusFormatError(ValueError):
    """A status byte whose fixed bits are wrong: not an answer to DLE EOT."""


def parse_status(request: int, value: int) -> dict[str, Any]:
    """Decode the answer to DLE EOT ``request`` (1, 2 or 4) into PrinterStatus fields."""
    if not 0 <= value <= 0xFF:
        raise StatusFormatError(f"a status byte is 0..255, got {value}")
    if value & 0x93 != 0x12:
        raise StatusFormatError(
            f"0x{value:02X} is not a status byte (bits 1 and 4 must be set, 0 and 7 clear)"
        )
    if request == 1:
        return {"online": not value & 0x08}
    if request == 2:
        return {"cover_open": bool(value & 0x04), "error": bool(value & 0x40)} | (
            {"paper": "out"} if value & 0x20 else {}
        )
    if request == 4:
        if value & 0x60 == 0x60:
            return {"paper": "out"}
        return {"paper": "near_end" if value & 0x0C == 0x0C else "ok"}
    raise ValueError(f"DLE EOT {request} is not a status request this driver reads")


class _PortPrinter(Escpos):  # type: ignore[misc]  # python-escpos is untyped
    """A python-escpos printer over a pyserial port from :func:`hardware.ports.open_port`."""

    def __init__(self, port: Any) -> None:
        super().__init__()
        self._device = port

    def _raw(self, msg: bytes) -> None:
        self._device.write(msg)
        self._device.flush()

    def _read(self) -> bytes:
        return bytes(self._device.read(1))

    def close(self) -> None:
        if self._device:
            self._device.close()
            self._device = False


def _parse_url(url: str) -> tuple[str, dict[str, Any]]:
    """Check a printer URL and split it into a transport name and its arguments."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme == "tcp":
        try:
            port = parsed.port or 9100
        except ValueError as exc:
            raise PrinterURLError(f"{url!r}: the port is not a number") from exc
        if not parsed.hostname:
            raise PrinterURLError(
                f"{url!r}: a tcp:// printer URL needs a host, e.g. tcp://10.0.0.9:9100"
            )
        return "tcp", {"host": parsed.hostname, "port": port}
    if parsed.scheme == "usb":
        parts = parsed.path.split(":")
        try:
            endpoints = {
                key: int(value, 0)
                for key, value in urllib.parse.parse_qsl(
                    parsed.query, strict_parsing=bool(parsed.query)
                )
                if key in ("in_ep", "out_ep")
            }
            vendor, product = (int(part, 16) for part in parts)
        except ValueError as exc:
            raise PrinterURLError(
                f"{url!r}: a USB printer is usb:VVVV:PPPP (hex ids), e.g. usb:04b8:0202"
            ) from exc
        return "usb", {"idVendor": vendor, "idProduct": product, **endpoints}
    if parsed.scheme == "file":
        path = url[len("file:") :]
        if path.startswith("//"):
            path = parsed.path
        if not path:
            raise PrinterURLError(
                f"{url!r}: a file printer URL names a path, e.g. file:/dev/usb/lp0"
            )
        return "file", {"devfile": path}
    if parsed.scheme in ("serial", "socket", "rfc2217", "loop", "spy") or url.startswith("/"):
        return "serial", {"url": url}
    raise PrinterURLError(
        f"{url!r}: a printer URL is tcp://HOST:PORT, usb:VVVV:PPPP, serial:///dev/…, or file:/path"
    )


class ReceiptPrinter:
    """One receipt printer: read its status, print receipts. Safe to share between threads."""

    def __init__(
        self,
        url: str,
        profile: PrinterProfile | None = None,
        *,
        timeout: float = 5.0,
        status_timeout: float = 1.0,
    ) -> None:
        self.url = url
        self.profile = profile or PrinterProfile()
        self.timeout = timeout
        self.status_timeout = status_timeout
        self._transport, self._args = _parse_url(url)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ transport
    def _open(self) -> Any:
        try:
            if self._transport == "serial":
                port = open_port(
                    self._args["url"],
                    defaults=PRINTER_LINE,
                    timeout=self.status_timeout,
                    write_timeout=self.timeout,
                )
                return _PortPrinter(port)
            if self._transport == "tcp":
                # Connect here rather than in Network.open(), which leaks the socket (an
                # unclosed-socket warning) when the printer is unreachable.
                sock = socket.create_connection(
                    (self._args["host"], self._args["port"]), timeout=self.timeout
                )
                p = escpos_printer.Network(timeout=self.timeout, **self._args)
                p._device = sock
                return p
            if self._transport == "usb":
                p = escpos_printer.Usb(timeout=int(self.timeout * 1000), **self._args)
            else:
                p = escpos_printer.File(**self._args)
            p.open()
            return p
        except PortURLError as exc:
            raise PrinterURLError(str(exc)) from exc
        except Exception as exc:  # escpos raises its own DeviceNotFoundError, USBNotFoundError…
            raise PrinterUnavailable(f"the printer {self.url!r} cannot be reached: {exc}") from exc

    def _query(self, p: Any) -> PrinterStatus:
        """Ask DLE EOT 1, 2 and 4; a printer that does not answer is 'reachable, unknown'."""
        device = getattr(p, "_device", None)
        if self._transport == "tcp" and device is not None:
            device.settimeout(self.status_timeout)
        try:
            fields = self._ask(p)
        except _StatusUnknownError as exc:
            return PrinterStatus(True, False, detail=str(exc))
        except OSError as exc:
            return PrinterStatus(False, detail=f"connection lost while asking for status: {exc}")
        finally:
            if self._transport == "tcp" and device is not None:
                device.settimeout(self.timeout)
        return PrinterStatus(True, True, **fields)

    @staticmethod
    def _ask(p: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for request in (1, 2, 4):
            try:
                answer = p.query_status(_DLE_EOT + bytes([request]))
            except NotImplementedError as exc:
                raise _StatusUnknownError("this connection cannot read the status") from exc
            except TimeoutError as exc:
                raise _StatusUnknownError("no answer to status requests") from exc
            except OSError:
                raise
            except Exception as exc:  # pyusb raises USBTimeoutError/USBError (not OSError)
                if "timeout" in type(exc).__name__.lower():
                    raise _StatusUnknownError("no answer to status requests") from exc
                raise OSError(f"status request failed: {exc}") from exc
            if not answer:
                raise _StatusUnknownError("no answer to status requests")
            try:
                decoded = parse_status(request, answer[-1])
            except StatusFormatError as exc:
                raise _StatusUnknownError(f"garbled status answer: {exc}") from exc
            if fields.get("paper") == "out":
                decoded.pop("paper", None)  # 'out' from either request wins
            fields.update(decoded)
        return fields

    # ------------------------------------------------------------------ public API
    def status(self) -> PrinterStatus:
        """Connect, ask the printer for its status, disconnect. Never raises for device trouble."""
        with self._lock:
            try:
                p = self._open()
            except PrinterURLError:
                raise
            except PrinterUnavailable as exc:
                return PrinterStatus(False, detail=str(exc))
            try:
                return self._query(p)
            finally:
                p.close()

    def print_receipt(self, receipt: Receipt) -> PrinterStatus:
        """Print one receipt, or raise the :class:`PrinterError` that says why not."""
        data = render_receipt(receipt, self.profile)
        return self.print_raw(data)

    def print_raw(self, data: bytes) -> PrinterStatus:
        """Send ready-made ESC/POS bytes after checking the printer can print them."""
        with self._lock:
            p = self._open()
            try:
                status = self._query(p)
                problem = status.problem
                if problem is PrinterProblemKind.OUT_OF_PAPER:
                    raise PrinterOutOfPaper("the receipt printer is out of paper", status)
                if problem is PrinterProblemKind.COVER_OPEN:
                    raise PrinterCoverOpen("the receipt printer's cover is open", status)
                if problem is PrinterProblemKind.FAULT:
                    raise PrinterFault("the receipt printer reports an error", status)
                if problem is PrinterProblemKind.OFFLINE:
                    raise PrinterUnavailable(
                        f"the receipt printer is offline: {status.detail}", status
                    )
                try:
                    p._raw(data)
                except Exception as exc:  # OSError, serial timeouts, pyusb errors
                    raise PrinterUnavailable(
                        f"the printer {self.url!r} stopped taking data: {exc}", status
                    ) from exc
                return status
            finally:
                try:
                    p.close()
                except Exception as exc:  # closing a vanished device must not hide the real error
                    log.debug("closing printer %s: %s", self.url, exc)


def open_printer(
    url: str, profile: PrinterProfile | None = None, **kwargs: float
) -> ReceiptPrinter:
    """Create the printer a URL names (nothing is opened until status or printing)."""
    return ReceiptPrinter(url, profile, **kwargs)
