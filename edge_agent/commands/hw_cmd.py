"""``libedge hw diagnose``: list the configured devices and whether each one answers.

For every device in the ``[devices]`` section it opens the device, asks for its status or
version where the device can say (a FEIG reader's firmware, a printer's paper and cover, an
NFC reader's chipset) and reports ``OK`` or the problem in plain words. A barcode scanner
cannot be asked anything, so "its port opens" is all that can be said; outputs and the
people counter are checked as far as that is safe without switching anything on.

Exit status: 0 when every configured device answers, 1 when one does not, 2 when the
configuration cannot be read.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import sys
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

HELP = "check the configured devices: does each one answer? (libedge hw diagnose)"


@dataclass(frozen=True, slots=True)
class DeviceCheck:
    """The result for one configured device."""

    role: str
    url: str | None
    ok: bool | None  #: None: not configured
    summary: str


def _check_item_reader(url: str, address: int) -> tuple[bool, str]:
    from hardware.feig import FeigReader
    from hardware.reader import ReaderError

    try:
        with FeigReader(url, address=address, timeout=0.5, auto_reconnect=False) as reader:
            info = reader.reader_info()
    except ReaderError as exc:
        return False, f"no answer from the RFID reader: {exc}"
    except OSError as exc:
        return False, f"the RFID reader's port cannot be opened: {exc}"
    at = "" if address == 0xFF else f" at bus address {address}"
    return True, (
        f"FEIG reader{at}, firmware {info.software_version}, "
        f"hardware type 0x{info.hardware_type:02X}"
    )


def _check_card_reader(url: str) -> tuple[bool, str]:
    from hardware.nfc_card import CardReaderURLError, probe_card_reader

    try:
        description = probe_card_reader(url)
    except CardReaderURLError as exc:
        return False, str(exc)
    except Exception as exc:  # nfcpy raises IOError, ValueError, usb1 errors…
        return False, f"the NFC reader cannot be opened: {exc or type(exc).__name__}"
    return True, f"NFC reader: {description}"


def _check_scanner(url: str) -> tuple[bool, str]:
    from hardware.ports import PortURLError, open_port
    from hardware.scanner import (
        SCANNER_LINE,
        ScannerUnavailableError,
        ScannerURLError,
        open_scanner,
    )

    try:
        open_scanner(url)  # checks the URL and, for evdev:, that evdev is installed
    except (ScannerURLError, ScannerUnavailableError) as exc:
        return False, str(exc)
    if url.startswith("evdev:"):
        path = url[len("evdev:") :]
        if not Path(path).exists():
            return False, f"the input device {path} does not exist (unplugged?)"
        return True, f"input device {path} present (a scanner cannot be asked for its status)"
    try:
        port = open_port(url, defaults=SCANNER_LINE, timeout=0.1)
    except (OSError, PortURLError) as exc:
        return False, f"the scanner's port cannot be opened: {exc}"
    port.close()
    return True, "its port opens (a scanner cannot be asked for its status)"


def _check_printer(url: str, width_mm: int) -> tuple[bool, str]:
    from hardware.printer import PrinterProfile, PrinterURLError, open_printer

    try:
        printer = open_printer(url, PrinterProfile(paper_width_mm=58 if width_mm == 58 else 80))
        status = printer.status()
    except PrinterURLError as exc:
        return False, str(exc)
    return status.problem is None, f"receipt printer {status.describe()}"


def _check_tcp(host: str, port: int) -> tuple[bool, str]:
    try:
        with socket.create_connection((host, port), timeout=2.0):
            return True, f"answers on {host}:{port}"
    except OSError as exc:
        return False, f"nothing answers on {host}:{port}: {exc.strerror or exc}"


def _check_gpio() -> tuple[bool, str]:
    import importlib.util

    if importlib.util.find_spec("gpiozero") is None:
        return False, "GPIO needs the Python package 'gpiozero', which is not installed"
    chips = sorted(Path("/dev").glob("gpiochip*"))
    if not chips:
        return False, "this machine has no GPIO controller (/dev/gpiochip*)"
    return True, f"GPIO available ({', '.join(c.name for c in chips)}); not switched"


def _check_simple_output(url: str) -> tuple[bool, str]:
    """Outputs and counters: check what can be checked without switching anything."""
    parsed = urllib.parse.urlsplit(url)
    scheme = parsed.scheme or url.split(":", 1)[0]
    if scheme in ("sim", "none"):
        return True, "simulated or absent by configuration (nothing to check)"
    if scheme == "tcp":
        if not parsed.hostname or parsed.port is None:
            return False, f"{url!r}: a tcp URL needs a host and a port"
        return _check_tcp(parsed.hostname, parsed.port)
    if scheme == "gpio":
        return _check_gpio()
    return False, f"{url!r}: unknown kind of device URL"


def diagnose(settings: Any) -> list[DeviceCheck]:
    """Check every device in ``settings.devices``; never raises for a device's trouble."""
    devices = settings.devices
    plan: list[tuple[str, str | None, Callable[[str], tuple[bool, str]]]] = [
        (
            "item_reader",
            devices.item_reader,
            lambda u: _check_item_reader(u, devices.item_reader_address),
        ),
        ("card_reader", devices.card_reader, _check_card_reader),
        ("scanner", devices.scanner, _check_scanner),
        ("printer", devices.printer, lambda u: _check_printer(u, devices.printer_width_mm)),
    ]
    addresses = list(devices.gate_reader_addresses)
    addresses += [0xFF] * (len(devices.gate_readers) - len(addresses))
    for index, (url, address) in enumerate(zip(devices.gate_readers, addresses, strict=False)):
        # Readers on one RS-485 bus repeat its URL: each is asked at its own address, and one
        # after another, so the port is never open twice at once.
        plan.append((f"gate_reader[{index}]", url, partial(_check_item_reader, address=address)))
    plan.append(("alarm_output", devices.alarm_output, _check_simple_output))
    plan.append(("people_counter", devices.people_counter, _check_simple_output))
    results = []
    for role, url, check in plan:
        if not url:
            results.append(DeviceCheck(role, None, None, "not configured"))
            continue
        try:
            ok, summary = check(url)
        except Exception as exc:  # a bug in one check must not hide the others' results
            ok, summary = False, f"check failed: {type(exc).__name__}: {exc}"
        results.append(DeviceCheck(role, url, ok, summary))
    return results


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``diagnose`` action and its options."""
    parser.add_argument("action", choices=["diagnose"])
    parser.add_argument("--config", help="TOML file (default: $LIBEDGE_CONFIG or /etc/libedge)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def run(args: argparse.Namespace) -> int:
    """Load the configuration, check the devices, print the results."""
    from edge_agent.config import ConfigError, load_config

    try:
        settings = load_config(args.config)
    except ConfigError as exc:
        print(f"libedge: configuration error: {exc}", file=sys.stderr)
        return 2
    results = diagnose(settings)
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2, ensure_ascii=False))
    else:
        width = max(len(r.role) for r in results)
        for r in results:
            state = "-" if r.ok is None else ("OK" if r.ok else "PROBLEM")
            print(f"{r.role:<{width}}  {state:<7}  {r.url or '':<40}  {r.summary}")
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()
    return 1 if any(r.ok is False for r in results) else 0
