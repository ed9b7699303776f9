r"""``libedge demo``: the whole library on one machine, with one Ctrl-C stopping everything.

It starts and supervises an MQTT broker, the central library system simulator (default
seed) with its staff dashboard, a kiosk site (simulated pad reader, edge agent, kiosk
controller driven by a stream of patrons: checkouts, returns, refusals) and a gate site (two
simulated pedestal readers, people counter, alarm output, edge agent, gate agent, patrons
walking out, some with items they did not check out). Part-way through it stops the broker
for a while (the offline period) and starts it again, so the agents' backlogs drain. At the
end it prints a summary: events per kind, alarms, duplicates dropped, gaps, the backlog.

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
    parser.add_argument("--log-level", default="WARNING", type=str.upper)


def run(args: argparse.Namespace) -> int:
    """Run the demo until the duration ends or a signal arrives; print the summary."""
    import logging

    from simulators.central import CentralError

    from .broker import BrokerError
    from .runner import DemoOptions, run_demo

    # The central simulator and the dashboard run in this process: their log lines get a
    # prefix like the children's output, so every line says where it came from.
    logging.basicConfig(
        level=args.log_level,
        format="[central] %(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if args.duration < 0 or args.gap < 0:
        print("libedge demo: --duration and --gap must not be negative", flush=True)
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
    )
    try:
        return run_demo(options)
    except (BrokerError, CentralError) as exc:
        # Nothing was left running: the broker and central stop on the way out.
        print(f"libedge demo: {exc}", flush=True)
        return 1
