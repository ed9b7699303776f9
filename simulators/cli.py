"""``libedge sim …``: start a simulated device or the simulated central library system."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from edge_agent.cli import dispatch

HELP = "run a simulated device or the simulated central library system"

#: Simulators: name -> command module (see edge_agent.cli for the module contract).
SIMULATORS: Mapping[str, str] = {
    "reader": "simulators.reader.cli",
    "central": "simulators.central.cli",
    "card": "simulators.card",
    "gate-traffic": "simulators.gate_traffic",
    "printer": "simulators.printer.cli",
    "scanner": "simulators.scanner",
}


def configure(parser: argparse.ArgumentParser) -> None:
    """Take the simulator's name and pass the rest of the line to it."""
    parser.add_argument("argv", nargs=argparse.REMAINDER, help="SIMULATOR [options]")


def run(args: argparse.Namespace) -> int:
    """Run the chosen simulator."""
    return dispatch("libedge sim", HELP, SIMULATORS, args.argv)
