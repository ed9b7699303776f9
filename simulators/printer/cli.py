"""``libedge sim printer``: a receipt printer on TCP (or reading a file) that renders to PNG."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

HELP = "a simulated ESC/POS receipt printer that renders each receipt to PNG and text"


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the simulator's options."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--tcp", type=int, metavar="PORT", help="listen on this TCP port (0: any)")
    source.add_argument("--file", type=Path, help="render a file of ESC/POS bytes and exit")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--out", type=Path, required=True, help="directory for receipt-NNNN.png/.txt"
    )
    parser.add_argument("--width", type=int, choices=[384, 576], default=576, help="dots per line")
    parser.add_argument("--paper-out", action="store_true", help="report an empty paper roll")
    parser.add_argument(
        "--paper-near-end", action="store_true", help="report the roll nearly empty"
    )
    parser.add_argument("--cover-open", action="store_true", help="report the cover open")
    parser.add_argument("--error", action="store_true", help="report an error condition")
    parser.add_argument("--no-status", action="store_true", help="ignore status requests")


def run(args: argparse.Namespace) -> int:
    """Render a file, or serve until end of input (Ctrl-D) or Ctrl-C."""
    from simulators.printer.server import PrinterSimulator

    simulator = PrinterSimulator(
        args.out,
        width=args.width,
        paper_out=args.paper_out,
        paper_near_end=args.paper_near_end,
        cover_open=args.cover_open,
        error=args.error,
        answer_status=not args.no_status,
    )
    with simulator:
        if args.file is not None:
            try:
                pages = simulator.feed_file(args.file)
            except OSError as exc:
                print(f"libedge sim printer: {args.file}: {exc.strerror or exc}", file=sys.stderr)
                return 2
            for page in pages:
                print(page.png)
            return 0
        try:
            port = simulator.start_tcp(args.host, args.tcp)
        except OSError as exc:
            print(
                f"libedge sim printer: cannot listen on {args.host}:{args.tcp}: {exc}",
                file=sys.stderr,
            )
            return 2
        print(f"tcp://{args.host}:{port}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while sys.stdin.readline():
                pass
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run as ``python -m simulators.printer`` (what ``libedge sim printer`` dispatches to)."""
    parser = argparse.ArgumentParser(prog="libedge sim printer", description=HELP)
    configure(parser)
    return run(parser.parse_args(argv))
