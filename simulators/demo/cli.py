r"""``libedge demo``: the whole library on one machine, with one Ctrl-C stopping everything.

It starts and supervises an MQTT broker, the central library system simulator (default
seed) with its staff dashboard, a kiosk site (simulated pad reader, edge agent, the Kivy
kiosk app driven by a stream of patrons: checkouts, returns, refusals) and a gate site (two
simulated pedestal readers, people counter, alarm output, edge agent, gate agent, patrons
walking out, some with items they did not check out). Part-way through it stops the broker
for a while (the offline period) and starts it again, so the agents' backlogs drain. At the
end it prints a summary: events per kind, alarms, duplicates dropped, gaps, the backlog.

The kiosk window shows on the display; without one (no ``DISPLAY`` or ``WAYLAND_DISPLAY``)
it is drawn offscreen and saved every few seconds as ``kiosk/screenshots/kiosk-latest.png``
in the work directory. ``--kiosk-window off`` runs the kiosk controller without Kivy.

Broker: the agent needs MQTT v5, which the embedded amqtt broker does not speak (it takes
MQTT 3.1.1 only), so the demo starts a private Mosquitto (Debian package ``mosquitto``) on a
free port, or uses ``--broker mqtt://host:port`` (then there is no offline period, since the
demo cannot stop someone else's broker).
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "run the whole library (broker, central + dashboard, kiosk and gate sites) in one command"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the demo's options."""
    parser.epilog = (
        "The broker is a private Mosquitto the demo starts (the 'mosquitto' binary, installed"
        " by scripts/system-deps.sh): libedge needs MQTT v5 and the embedded amqtt broker"
        " speaks MQTT 3.1.1 only. Use --broker mqtt://host:port for an external v5 broker."
    )
    parser.add_argument(
        "--duration", type=float, default=0.0, help="seconds to run, then stop (0: until Ctrl-C)"
    )
    parser.add_argument(
        "--headless", action="store_true", help="no browser: just serve the dashboard and log"
    )
    parser.add_argument(
        "--broker", default=None, help="an external MQTT v5 broker (default: a private Mosquitto)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="dashboard address (default loopback)")
    parser.add_argument(
        "--port", type=int, default=8088, help="dashboard port (default %(default)s; 0: any free)"
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="keep databases and logs here (default: temp)"
    )
    parser.add_argument(
        "--offline-at", type=float, default=None, help="seconds in when the broker stops"
    )
    parser.add_argument(
        "--offline-for", type=float, default=None, help="seconds the broker stays down"
    )
    parser.add_argument(
        "--gap", type=float, default=1.0, help="seconds between patrons at the kiosk and gate"
    )
    parser.add_argument(
        "--kiosk-window",
        choices=["auto", "on", "off"],
        default="auto",
        help="the kiosk site's Kivy window: on the display, or offscreen with screenshots when"
        " there is none (auto, the default); on: a display is required; off: the kiosk"
        " controller without a window",
    )
    parser.add_argument(
        "--screenshot-every",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="offscreen kiosk window: save WORKDIR/kiosk/screenshots/kiosk-latest.png this"
        " often (default %(default)s; 0: only the first view of each screen)",
    )
    parser.add_argument("--log-level", default="WARNING", type=str.upper)


def run(args: argparse.Namespace) -> int:
    """Run the demo until the duration ends or a signal arrives; print the summary."""
    import logging

    from simulators.central import CentralError

    from .broker import BrokerError
    from .kiosk_window import has_display
    from .runner import DemoOptions, run_demo

    # The central simulator and the dashboard run in this process: their log lines get a
    # prefix like the children's output, so every line says where it came from.
    logging.basicConfig(
        level=args.log_level,
        format="[central] %(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if args.duration < 0 or args.gap < 0 or args.screenshot_every < 0:
        print(
            "libedge demo: --duration, --gap and --screenshot-every must not be negative",
            flush=True,
        )
        return 2
    if args.kiosk_window == "on" and not has_display():
        print(
            "libedge demo: --kiosk-window on needs a display (DISPLAY or WAYLAND_DISPLAY);"
            " auto shows the window offscreen and saves screenshots",
            flush=True,
        )
        return 2
    options = DemoOptions(
        duration_s=args.duration,
        headless=args.headless,
        broker_url=args.broker,
        host=args.host,
        port=args.port,
        workdir=args.workdir,
        offline_at_s=args.offline_at,
        offline_for_s=args.offline_for,
        gap_s=args.gap,
        log_level=args.log_level,
        kiosk_window=args.kiosk_window,
        screenshot_every_s=args.screenshot_every,
    )
    try:
        return run_demo(options)
    except (BrokerError, CentralError) as exc:
        # Nothing was left running: the broker and central stop on the way out.
        print(f"libedge demo: {exc}", flush=True)
        return 1
