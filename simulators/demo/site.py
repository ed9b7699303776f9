"""Entry point of the demo's kiosk site in its own process: ``python -m simulators.demo.site``.

``libedge demo`` starts it and reads what it prints; it is not meant to be run by hand,
though it can be, against any broker with central on it. (The gate site is made of the
real ``libedge`` commands; see :mod:`.gate_site`.)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the site until SIGTERM/SIGINT or until the parent process goes away."""
    parser = argparse.ArgumentParser(prog="python -m simulators.demo.site")
    parser.add_argument("site", choices=["kiosk"])
    parser.add_argument("--broker", required=True, help="mqtt://host:port")
    parser.add_argument("--workdir", type=Path, required=True, help="the site's data directory")
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between patrons")
    parser.add_argument("--log-level", default="WARNING", type=str.upper)
    args = parser.parse_args(argv)

    from edge_agent.logs import setup_logging

    from .common import stop_event

    setup_logging("human", args.log_level)
    stop = stop_event()
    args.workdir.mkdir(parents=True, exist_ok=True)
    from .kiosk_site import run_kiosk_site

    return run_kiosk_site(args.workdir, args.broker, stop, args.gap)


if __name__ == "__main__":
    sys.exit(main())
