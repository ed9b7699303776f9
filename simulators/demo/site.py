"""Entry point of the demo's kiosk site in its own process: ``python -m simulators.demo.site``.

``libedge demo`` starts it and reads what it prints; it is not meant to be run by hand,
though it can be, against any broker with central on it. ``--window`` chooses whether the
real Kivy kiosk window shows (offscreen, with screenshots, when there is no display). (The
gate site is made of the real ``libedge`` commands; see :mod:`.gate_site`.)
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from .kiosk_window import MODES, has_display

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the site until SIGTERM/SIGINT or until the parent process goes away.

    With the kiosk window, Kivy runs on this (the main) thread; the stop signals are handled
    here before Kivy is imported, so SDL leaves them to Python.
    """
    parser = argparse.ArgumentParser(prog="python -m simulators.demo.site")
    parser.add_argument("site", choices=["kiosk"])
    parser.add_argument("--broker", required=True, help="mqtt://host:port")
    parser.add_argument("--workdir", type=Path, required=True, help="the site's data directory")
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between patrons")
    parser.add_argument(
        "--window",
        choices=MODES,
        default="auto",
        help="the Kivy kiosk window: on the display if any, else offscreen (auto); off: none",
    )
    parser.add_argument(
        "--screenshot-every",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="offscreen window: save kiosk-latest.png this often (0: never)",
    )
    parser.add_argument("--log-level", default="WARNING", type=str.upper)
    args = parser.parse_args(argv)
    if args.window == "on" and not has_display():
        parser.error("--window on needs a display (DISPLAY or WAYLAND_DISPLAY)")

    from edge_agent.logs import setup_logging

    from .common import stop_event

    setup_logging("human", args.log_level)
    stop = stop_event()
    args.workdir.mkdir(parents=True, exist_ok=True)
    from .kiosk_site import run_kiosk_site

    try:
        return run_kiosk_site(
            args.workdir,
            args.broker,
            stop,
            args.gap,
            window=args.window,
            screenshot_every_s=args.screenshot_every,
            log_level=args.log_level,
        )
    finally:
        # Stopped. The demo asks every child again when it stops them all, which may land
        # while this process exits (Kivy's teardown takes a moment); by then Python has put
        # back the default action, which would kill it mid-exit and report a failure.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)


if __name__ == "__main__":
    sys.exit(main())
