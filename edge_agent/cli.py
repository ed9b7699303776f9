"""The ``libedge`` command: a thin dispatcher over commands that live in their own packages.

This module is the composition root of the command line. Each command is a module that
exposes three names::

    HELP: str                                    # one line for ``libedge --help``
    def configure(parser: argparse.ArgumentParser) -> None
    def run(args: argparse.Namespace) -> int     # the process exit status

Commands are named here as module *strings* and imported only when they run, so that
``libedge --version`` never pays for Kivy or FastAPI and so that the layer contract
(hardware knows nothing of edge_agent, edge_agent nothing of kiosk or gate) holds for the
code that does the work. A command group (``libedge sim …``) is a command whose ``run``
dispatches again with :func:`dispatch` over its own table.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from types import ModuleType
from typing import Protocol, cast

#: Top-level commands: name -> module implementing it.
COMMANDS: Mapping[str, str] = {
    "agent": "edge_agent.commands.agent_cmd",
    "config": "edge_agent.commands.config_cmd",
    "contract": "edge_agent.commands.contract_cmd",
    "demo": "simulators.demo.cli",
    "gate": "gate.cli",
    "hw": "edge_agent.commands.hw_cmd",
    "kiosk": "kiosk.cli",
    "rfid": "hardware.rfid_cli",
    "sim": "simulators.cli",
}


class Command(Protocol):
    """What a command module provides (checked when it is loaded)."""

    HELP: str

    def configure(self, parser: argparse.ArgumentParser) -> None:
        """Add the command's arguments to its parser."""

    def run(self, args: argparse.Namespace) -> int:
        """Carry the command out and return the exit status."""


class CommandLoadError(RuntimeError):
    """A command module named in a table is missing or lacks HELP/configure/run."""


def load_command(module_name: str) -> Command:
    """Import one command module and check that it has the three required names."""
    try:
        module: ModuleType = importlib.import_module(module_name)
    except ImportError as exc:
        raise CommandLoadError(f"command module {module_name!r} cannot be imported: {exc}") from exc
    missing = [n for n in ("HELP", "configure", "run") if not hasattr(module, n)]
    if missing:
        raise CommandLoadError(f"command module {module_name!r} lacks {', '.join(missing)}")
    return cast(Command, module)


def libedge_version() -> str:
    """Return the installed distribution's version (or 'unknown' from a bare checkout)."""
    try:
        return version("libedge")
    except PackageNotFoundError:
        return "unknown"


def dispatch(
    prog: str,
    description: str,
    table: Mapping[str, str],
    argv: Sequence[str],
    *,
    with_version: bool = False,
) -> int:
    """Parse ``argv`` against a table of commands, load only the chosen one, and run it."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    if with_version:
        parser.add_argument("--version", action="version", version=f"libedge {libedge_version()}")
    parser.add_argument("command", choices=sorted(table), metavar="COMMAND", nargs="?")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    ns = parser.parse_args(list(argv))
    if ns.command is None:
        # Listing the commands loads each module for its one-line HELP; that cost is only
        # paid here, when a person asked for the list.
        lines = [parser.format_usage(), description, "", "commands:"]
        for name in sorted(table):
            lines.append(f"  {name:<10} {load_command(table[name]).HELP}")
        print("\n".join(lines))
        return 2
    command = load_command(table[ns.command])
    sub = argparse.ArgumentParser(prog=f"{prog} {ns.command}", description=command.HELP)
    command.configure(sub)
    return command.run(sub.parse_args(ns.rest))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``libedge`` console script."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        return dispatch(
            "libedge",
            "libedge: the self-service edge of a public library.",
            COMMANDS,
            args,
            with_version=True,
        )
    except CommandLoadError as exc:
        print(f"libedge: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover - exercised through the console script
    raise SystemExit(main())
