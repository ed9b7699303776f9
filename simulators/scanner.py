r"""A simulated serial barcode scanner on a pseudo-terminal.

The scanner end of a pty pair stays in this process; the other end's path (``/dev/pts/N``) is
what a kiosk configures as its scanner URL, so the real serial driver runs against it. Each
scan is written as the text followed by the line end a real scanner is configured to send
(CR LF by default, or CR, or LF). Faults are just bytes: :meth:`SimulatedScanner.send_raw`
writes anything (line noise, a scan without a line end), and :meth:`SimulatedScanner.close`
makes the device vanish.

``libedge sim scanner`` prints the pty path, then sends each line typed on standard input as a
scan; ``--script FILE`` sends a file's lines instead (after ``--delay`` seconds, ``--interval``
apart). In both, ``\\xNN`` escapes stand for raw bytes (``21234\\x07000``) and a line starting
with ``#`` is a comment.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import os
import sys
import threading
import tty
from pathlib import Path
from typing import Literal

__all__ = ["HELP", "SimulatedScanner", "Terminator", "configure", "decode_escapes", "main", "run"]

HELP = "a simulated serial barcode scanner on a pty (sends each input line as a scan)"

Terminator = Literal["crlf", "cr", "lf"]
_TERMINATORS: dict[str, bytes] = {"crlf": b"\r\n", "cr": b"\r", "lf": b"\n"}


def decode_escapes(line: str) -> bytes:
    r"""Turn a typed line into bytes: ASCII text with ``\xNN`` (and ``\r``, ``\n``) escapes."""
    decoded, _ = codecs.escape_decode(line.encode("latin-1", "backslashreplace"))
    return bytes(decoded)


class SimulatedScanner:
    """A pty pair: the scanner writes to the master, the driver opens :attr:`path`."""

    def __init__(self, terminator: Terminator = "crlf") -> None:
        self.terminator = _TERMINATORS[terminator]
        self._master, self._slave = os.openpty()
        # Raw mode: the line discipline must not turn CR into LF or echo bytes back.
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self._lock = threading.Lock()
        self._closed = False

    @property
    def url(self) -> str:
        """The scanner URL for the driver (a bare pty path; scanners default to 9600 8N1)."""
        return self.path

    def scan(self, text: str) -> None:
        """Send one scan: the text and the line end."""
        self.send_raw(text.encode("ascii") + self.terminator)

    def send_raw(self, data: bytes) -> None:
        """Send bytes exactly as given."""
        with self._lock:
            if self._closed:
                raise OSError("the simulated scanner was closed")
            os.write(self._master, data)

    def close(self) -> None:
        """Unplug: close both ends, so a reader of the pty sees the device vanish."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            os.close(self._master)
            os.close(self._slave)

    def __enter__(self) -> SimulatedScanner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the simulator's options."""
    parser.add_argument("--script", type=Path, help="send this file's lines instead of stdin's")
    parser.add_argument("--delay", type=float, default=1.0, help="seconds before a script starts")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between script lines")
    parser.add_argument("--terminator", choices=sorted(_TERMINATORS), default="crlf")


def _lines(args: argparse.Namespace) -> list[str] | None:
    if args.script is None:
        return None
    try:
        text = args.script.read_text(encoding="utf-8")
    except OSError as exc:
        raise SystemExit(f"libedge sim scanner: {args.script}: {exc.strerror or exc}") from exc
    return [line for line in text.splitlines() if not line.startswith("#")]


def run(args: argparse.Namespace) -> int:
    """Print the pty path, then send scans until the input (or script) ends."""
    stop = threading.Event()
    script = _lines(args)
    with SimulatedScanner(args.terminator) as scanner:
        print(scanner.path, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            if script is not None:
                # A person starts the reader after seeing the path; give them a moment.
                stop.wait(args.delay)
                for line in script:
                    scanner.send_raw(decode_escapes(line) + scanner.terminator)
                    stop.wait(args.interval)
                # Keep the device present until told to go, so the reader sees no unplug.
                while sys.stdin.readline():
                    pass
            else:
                while line := sys.stdin.readline():
                    line = line.rstrip("\n")
                    if line and not line.startswith("#"):
                        scanner.send_raw(decode_escapes(line) + scanner.terminator)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run as ``python -m simulators.scanner`` (what ``libedge sim scanner`` dispatches to)."""
    parser = argparse.ArgumentParser(prog="libedge sim scanner", description=HELP)
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
