r"""``libedge sim central``: run the simulated central library system, or send one staff command.

Serving (until SIGTERM or Ctrl-C)::

    libedge sim central --broker mqtt://127.0.0.1:1883 --db var/central.sqlite \\
        [--seed my-library.toml] [--instance central-2] [--library hn-pl]

Once subscribed it prints one line starting with ``ready`` on stdout, so scripts can wait for
it. Start several with different ``--instance`` names and the same ``--db`` to share the load.

Sending a command to a device, then exiting::

    libedge sim central --broker mqtt://127.0.0.1:1883 \\
        --command kiosk-1 '{"command": "out_of_service", "reason": "maintenance"}'

The broker password, when one is needed, comes from ``LIBEDGE_CENTRAL_PASSWORD`` (never from
the command line, where other users of the machine could read it).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import uuid
from pathlib import Path
from types import FrameType

HELP = "the simulated central library system (stores events, answers requests, pushes caches)"

PASSWORD_ENV = "LIBEDGE_CENTRAL_PASSWORD"  # noqa: S105 - a variable name, not a secret


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's options."""
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="mqtt[s]://host:port")
    parser.add_argument(
        "--db", type=Path, default=Path("var/central.sqlite"), help="SQLite file (shareable)"
    )
    parser.add_argument(
        "--seed", type=Path, default=None, help="JSON or TOML seed (default: the packaged one)"
    )
    parser.add_argument("--instance", default="central-1", help="this instance's name")
    parser.add_argument("--library", default=None, help="library id served (default: the seed's)")
    parser.add_argument("--username", default=None, help=f"broker user; password in {PASSWORD_ENV}")
    parser.add_argument("--ca-file", type=Path, default=None, help="CA for mqtts://")
    parser.add_argument(
        "--cache-interval", type=float, default=1.0, help="seconds between pushes of one cache"
    )
    parser.add_argument(
        "--command",
        nargs=2,
        metavar=("DEVICE", "JSON"),
        help="send one staff command (a Command body as JSON) to DEVICE and exit",
    )
    parser.add_argument("--log-format", choices=["human", "json"], default="human")
    parser.add_argument("--log-level", default="INFO", type=str.upper)


def run(args: argparse.Namespace) -> int:
    """Serve until a signal arrives, or send one command."""
    from edge_agent.logs import setup_logging

    from .errors import CentralError

    setup_logging(args.log_format, args.log_level)
    try:
        return _send_command(args) if args.command else _serve(args)
    except CentralError as exc:
        print(f"libedge sim central: {exc}", file=sys.stderr)
        return 1


def _serve(args: argparse.Namespace) -> int:
    from .simulator import CentralSimulator

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        sim = CentralSimulator(
            args.broker,
            args.db,
            seed=args.seed,
            instance=args.instance,
            library_id=args.library,
            username=args.username,
            password=os.environ.get(PASSWORD_ENV),
            ca_file=args.ca_file,
            cache_interval_s=args.cache_interval,
        )
        with sim:
            print(
                f"ready: central {sim.instance} serving library {sim.library_id}"
                f" on {sim.address.url}, database {sim.db_path}",
                flush=True,
            )
            # Woken by the signal handler; the timeout only bounds each wait.
            while not stop.wait(1.0):
                pass
        print(f"stopped: central {sim.instance}", flush=True)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _send_command(args: argparse.Namespace) -> int:
    import datetime as dt

    from pydantic import TypeAdapter, ValidationError

    from edge_agent.contract import Command
    from edge_agent.contract.base import describe_errors
    from edge_agent.contract.central import CommandBody
    from edge_agent.contract.topics import command_topic

    from .errors import CentralError
    from .mqtt import parse_broker_url, publish_once
    from .seed import load_seed

    device_id, text = args.command
    try:
        body = TypeAdapter(CommandBody).validate_json(text)
    except ValidationError as exc:
        print(f"libedge sim central: bad command: {describe_errors(exc)}", file=sys.stderr)
        return 2
    library_id = args.library or load_seed(args.seed).library_id
    try:
        topic = command_topic(library_id, device_id)
    except ValueError as exc:
        raise CentralError(str(exc)) from exc
    command = Command(command_id=uuid.uuid4(), time=dt.datetime.now(dt.UTC), body=body)
    publish_once(
        f"libedge-{args.instance}-cmd-{uuid.uuid4().hex[:8]}",
        parse_broker_url(args.broker),
        topic,
        command.model_dump_json().encode(),
        username=args.username,
        password=os.environ.get(PASSWORD_ENV),
        ca_file=args.ca_file,
    )
    print(command.model_dump_json(), flush=True)
    return 0
