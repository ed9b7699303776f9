"""``libedge kiosk``: run the self-checkout kiosk app.

``libedge kiosk run --config FILE [--windowed] [--screenshots DIR]`` opens the devices the
configuration names (pad reader, printer, NFC card reader, barcode scanner, the agent's local
API), starts the controller and shows the Kivy app full-screen (``--windowed``: a 1280x800
window, for development). ``--screenshots DIR`` saves each screen, in each language, the first
time it is shown. Kivy is imported only here, inside :func:`run`.

SIGTERM (systemd's stop) and SIGINT (Ctrl-C) stop the app on its UI thread, so that its
``on_stop`` closes the kiosk (card reader, scanner, worker, journal, agent, pad) and the
command returns 0; a second such signal while stopping ends the process at once.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

__all__ = ["HELP", "STOP_SIGNALS", "configure", "run", "stop_on_signals"]

HELP = "run the self-checkout kiosk app (Kivy)"

#: The signals that stop the kiosk cleanly.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stoppable(Protocol):
    """An app that can be asked, from a signal handler, to stop on its own thread."""

    def request_stop(self, reason: str) -> None:
        """Set a flag the app acts upon soon; no locks, no UI calls."""
        ...


@contextmanager
def stop_on_signals(app: Stoppable) -> Iterator[None]:
    """While inside: SIGTERM and SIGINT ask ``app`` to stop; the handlers are restored after."""
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

    def handler(signum: int, _frame: FrameType | None) -> None:
        # The next one of either signal takes the previous way out (SIGTERM: end at once,
        # SIGINT: KeyboardInterrupt), for a stop that hangs.
        _restore(previous)
        app.request_stop(signal.Signals(signum).name)

    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        _restore(previous)


_Handler = Callable[[int, FrameType | None], Any] | int | None


def _restore(handlers: dict[signal.Signals, _Handler]) -> None:
    for sig, old in handlers.items():
        # None: a handler not installed from Python, which cannot be put back from here.
        if old is not None:
            signal.signal(sig, old)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the kiosk command's arguments."""
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    app = sub.add_parser("run", help="show the kiosk app (full-screen unless --windowed)")
    app.add_argument("--config", type=Path, required=True, help="the site configuration (TOML)")
    app.add_argument("--windowed", action="store_true", help="a 1280x800 window, not full-screen")
    app.add_argument(
        "--screenshots", type=Path, default=None, metavar="DIR", help="save every screen shown"
    )


def run(args: argparse.Namespace) -> int:
    """Load the configuration, then run the app until it is closed."""
    from edge_agent.config import ConfigError, load_config

    try:
        settings = load_config(args.config)
    except ConfigError as exc:
        print(f"libedge kiosk: {exc}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as exc:
        # load_config lets this one through (reported to the lead); name the file here.
        print(f"libedge kiosk: {args.config}: not UTF-8 text: {exc}", file=sys.stderr)
        return 2
    if settings.devices.item_reader is None:
        print("libedge kiosk: devices.item_reader: a kiosk needs its pad reader", file=sys.stderr)
        return 2
    from kiosk.app.kivy_config import configure_kivy

    # [kiosk] fullscreen = false in the file also gives a window (a kiosk on a desktop).
    configure_kivy(windowed=args.windowed or not settings.kiosk.fullscreen)
    from kiosk.app.main import KioskApp
    from kiosk.wiring import KioskRuntime, open_kiosk
    from kiosk.workers import Post

    def opener(post: Post) -> KioskRuntime:
        return open_kiosk(settings, post)

    app = KioskApp(opener, screenshots=args.screenshots)
    try:
        # Installed before the window opens: SDL then leaves SIGTERM and SIGINT to us.
        with stop_on_signals(app):
            app.run()
    except ConfigError as exc:
        print(f"libedge kiosk: {exc}", file=sys.stderr)
        return 2
    return 0
