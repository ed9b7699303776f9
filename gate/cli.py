"""``libedge gate run|status``: run the security gate agent, or show its last health snapshot.

``libedge gate run --config FILE`` polls the readers in ``devices.gate_readers`` until
SIGTERM/SIGINT. ``libedge gate status --config FILE [--json]`` prints the health the running
gate last wrote to ``gate.data_dir/health.json`` (exit status 1 when it reports a problem,
3 when there is no snapshot).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "run the RFID security gate agent, or show its health"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add ``run`` and ``status`` with their options."""
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    run = sub.add_parser("run", help="poll the gate readers until stopped")
    status = sub.add_parser("status", help="print the last health snapshot")
    for each in (run, status):
        each.add_argument("--config", type=Path, default=None, help="site configuration (TOML)")
    run.add_argument(
        "--log-format", choices=("human", "json"), default="human", help="log line format"
    )
    status.add_argument("--json", action="store_true", help="print the snapshot as JSON")


def run(args: argparse.Namespace) -> int:
    """Carry out the chosen action."""
    from edge_agent.config import ConfigError, load_config
    from gate.errors import GateError

    try:
        settings = load_config(args.config)
    except ConfigError as exc:
        print(f"libedge gate: {exc}", file=sys.stderr)
        return 2
    if args.action == "status":
        return _status(settings.gate.data_dir, as_json=args.json)
    from edge_agent.logs import setup_logging
    from gate.options import GateOptions
    from gate.service import GateService
    from hardware.outputs import OutputError
    from hardware.people_counter import PeopleCounterError

    setup_logging(args.log_format)
    # What a wrong device URL or an unusable data directory raises: said in one line.
    unusable = (GateError, ValueError, OSError, OutputError, PeopleCounterError)
    try:
        service = GateService(GateOptions.from_settings(settings))
    except unusable as exc:
        print(f"libedge gate: {exc}", file=sys.stderr)
        return 2
    try:
        return service.run_until_signalled()
    except unusable as exc:
        print(f"libedge gate: {exc}", file=sys.stderr)
        return 2


def _status(data_dir: Path, *, as_json: bool) -> int:
    from gate.health import read_health

    try:
        health = read_health(data_dir)
    except (OSError, ValueError) as exc:
        print(f"libedge gate: no health snapshot in {data_dir}: {exc}", file=sys.stderr)
        return 3
    if as_json:
        print(json.dumps(health, ensure_ascii=False, indent=2))
    else:
        print(_describe(health))
    return 0 if health.get("ok") else 1


def _describe(health: dict[str, object]) -> str:
    lines = [
        f"gate {health.get('device_id')} at {health.get('time')}: "
        + ("ok" if health.get("ok") else "PROBLEMS"),
    ]
    problems = health.get("problems")
    if isinstance(problems, list):
        lines += [f"  ! {problem}" for problem in problems]
    antennas = health.get("antennas")
    if isinstance(antennas, list):
        for antenna in antennas:
            if isinstance(antenna, dict):
                state = "answering" if antenna.get("answering") else "DOWN"
                lines.append(
                    f"  reader {antenna.get('name')} ({antenna.get('url')}): {state}, "
                    f"{antenna.get('reads')} reads, last {antenna.get('last_read')}, "
                    f"{antenna.get('garbled')} garbled, {antenna.get('reconnects')} reconnects"
                )
    handover = health.get("handover")
    pending = handover.get("pending") if isinstance(handover, dict) else "?"
    lines.append(
        f"  alarms today {health.get('alarms_today')}, last {health.get('last_alarm')}; "
        f"visitors in {health.get('visitors_in')} out {health.get('visitors_out')}; "
        f"events waiting for the agent {pending}"
    )
    return "\n".join(lines)
