"""``libedge sim reader``: serve a simulated FEIG reader until SIGINT or SIGTERM.

On start it prints, one line each and flushed at once so a parent process can read them::

    pty: /dev/pts/7          (or "tcp: 7001" with --tcp)
    control: 7002            (with --control)

and prints the ``pty:`` line again whenever the reader is re-plugged (a new pty has a new path).
Reader settings on the command line override those of the scenario file.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import TypeVar

_T = TypeVar("_T")

HELP = "simulated FEIG ISO 15693 reader on a pty or TCP port"


def _first(*values: _T | None, default: _T) -> _T:
    """Return the first value that is not None (command line before scenario before default)."""
    return next((v for v in values if v is not None), default)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's options."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--pty", action="store_true", help="serve on a new pty (the default)")
    where.add_argument("--tcp", type=int, metavar="PORT", help="serve on TCP (0 = any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="TCP address (default %(default)s)")
    parser.add_argument("--scenario", metavar="FILE", help="YAML or TOML scenario to play")
    parser.add_argument(
        "--control", type=int, metavar="PORT", help="JSON-lines control socket on 127.0.0.1"
    )
    parser.add_argument("--address", type=int, metavar="N", help="reader bus address 0..254")
    parser.add_argument(
        "--air-time", action="store_true", default=None, help="take ISO 15693 air time"
    )
    parser.add_argument("--seed", type=int, help="random seed for the fault switches")
    parser.add_argument("--log-level", default="WARNING", help="default %(default)s")


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; 0 on a clean stop, 2 on bad input."""
    from simulators.reader.control import ControlServer
    from simulators.reader.faults import Faults
    from simulators.reader.scenario import Scenario, ScenarioError, ScenarioRunner, load_scenario
    from simulators.reader.server import FeigSimulator
    from simulators.reader.specs import SpecError
    from simulators.reader.tags import RFField

    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        scenario = load_scenario(args.scenario) if args.scenario else Scenario()
        field, faults = RFField(), Faults()
        settings = scenario.reader

        address = _first(args.address, settings.address, default=0)
        if not 0 <= address <= 254:
            raise ValueError(f"--address must be 0..254, got {address}")

        def announce(endpoint: str | int) -> None:
            kind = "pty" if isinstance(endpoint, str) else "tcp"
            print(f"{kind}: {endpoint}", flush=True)

        sim = FeigSimulator(
            field,
            address=address,
            air_time=_first(args.air_time, settings.air_time, default=False),
            faults=faults,
            buffer_size=settings.buffer_size or 1024,
            block_order_reversed=_first(settings.block_order_reversed, default=True),
            only_new_tags=_first(settings.only_new_tags, default=False),
            seed=args.seed if args.seed is not None else settings.seed,
            on_replug=lambda endpoint: announce(endpoint) if isinstance(endpoint, str) else None,
        )
        runner = ScenarioRunner(scenario, field, faults, unplug=sim.unplug, replug=sim.replug)
    except (ScenarioError, SpecError, ValueError) as exc:
        print(f"libedge sim reader: {exc}", file=sys.stderr)
        return 2

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    control: ControlServer | None = None
    try:
        # The field is ready before the port is announced, so the first poll already sees it.
        runner.prepare()
        announce(sim.start_tcp(args.host, args.tcp) if args.tcp is not None else sim.start_pty())
        if args.control is not None:
            control = ControlServer(field, faults, sim, port=args.control)
            print(f"control: {control.start()}", flush=True)
        runner.start()
        stop.wait()
    except OSError as exc:
        print(f"libedge sim reader: {exc}", file=sys.stderr)
        return 1
    finally:
        runner.stop()
        if control is not None:
            control.stop()
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command outside the ``libedge`` dispatcher (``python -m simulators.reader``)."""
    parser = argparse.ArgumentParser(prog="python -m simulators.reader", description=HELP)
    configure(parser)
    return run(parser.parse_args(argv))
