"""``libedge kiosk``: run the self-checkout kiosk app.

``libedge kiosk run --config FILE [--windowed] [--screenshots DIR]`` opens the devices the
configuration names (pad reader, printer, the agent's local API), starts the controller and
shows the Kivy app full-screen (``--windowed``: a 1280x800 window, for development).
``--screenshots DIR`` saves each screen, in each language, the first time it is shown.
Kivy is imported only here, inside :func:`run`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["HELP", "configure", "run"]

HELP = "run the self-checkout kiosk app (Kivy)"


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

    try:
        KioskApp(opener, screenshots=args.screenshots).run()
    except ConfigError as exc:
        print(f"libedge kiosk: {exc}", file=sys.stderr)
        return 2
    return 0
