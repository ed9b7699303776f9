"""``libedge sim gate-traffic``: readers, a people counter and visitors for a gate to watch.

On start it prints, one line each and flushed so a parent process can read them::

    reader: socket://127.0.0.1:40111      (one line per antenna, lane by lane;
                                           with --shared-bus: ``… address=N``)
    people: tcp://127.0.0.1:40115         (with --people)
    ready

then waits for the gate to poll every reader and to listen to the people counter
(``--wait-for-gate`` seconds), plays the passages and prints a JSON summary line
(``summary: {...}``). ``--truth FILE`` writes one JSON line per passage with every carried
item, its kind, how often it was read and whether a correct gate alarms for it. Tags stay in
the field for at most ``--field-depth / --walking-speed`` seconds. SIGINT/SIGTERM stop the
run after the current passage.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "visitors carrying tagged items through simulated gate readers"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the traffic options."""
    parser.add_argument("--passages", type=int, default=100, help="visitors (default %(default)s)")
    parser.add_argument("--lanes", type=int, default=1, help="gate lanes (default %(default)s)")
    parser.add_argument(
        "--antennas", type=int, default=2, choices=(1, 2), help="readers per lane (default 2)"
    )
    parser.add_argument("--pty", action="store_true", help="serve the readers on ptys, not TCP")
    parser.add_argument(
        "--shared-bus",
        action="store_true",
        help="a lane's readers share one port, an RS-485 bus, at addresses 1, 2",
    )
    parser.add_argument("--air-time", action="store_true", help="take ISO 15693 air time")
    parser.add_argument("--people", action="store_true", help="run a simulated people counter")
    parser.add_argument("--catalog", type=int, default=300, help="items to draw from")
    parser.add_argument("--isil", default="VN-DEMO", help="the library's ISIL (site.isil)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--walking-speed", type=float, default=1.3, help="visitors' speed, m/s (default 1.3)"
    )
    parser.add_argument(
        "--field-depth", type=float, default=0.9, help="depth of the antennas' field, m"
    )
    parser.add_argument(
        "--dwell", type=float, help="longest time a tag stays (default: field depth / speed)"
    )
    parser.add_argument("--gap", type=float, default=0.5, help="seconds between visitors")
    parser.add_argument(
        "--reuse-gap",
        type=float,
        default=5.0,
        help="seconds before an item may pass again (keep above the gate's quiet time)",
    )
    parser.add_argument("--stagger", type=float, default=0.1, help="seconds between bag items")
    parser.add_argument(
        "--wait-for-gate", type=float, default=60.0, help="seconds to wait for the gate to poll"
    )
    parser.add_argument("--truth", type=Path, help="write what must alarm here (JSON lines)")


def run(args: argparse.Namespace) -> int:
    """Serve the readers, play the traffic, print the summary."""
    import json
    import signal
    import sys
    import threading
    from types import FrameType

    from simulators.gate_traffic.catalog import Catalog
    from simulators.gate_traffic.engine import GateReaders, PassageResult, TrafficRunner
    from simulators.gate_traffic.plan import PlanSettings, make_plan
    from simulators.people import SimulatedPeopleCounter

    if args.passages < 0 or args.lanes < 1 or args.catalog < 10 or args.walking_speed <= 0:
        print(
            "gate-traffic: --passages >= 0, --lanes >= 1, --catalog >= 10, --walking-speed > 0",
            file=sys.stderr,
        )
        return 2
    # A tag is in the field while its carrier walks through it (unless read enough before).
    dwell = args.dwell if args.dwell is not None else args.field_depth / args.walking_speed
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    catalog = Catalog.synthetic(args.catalog, own_isil=args.isil, seed=args.seed)
    plan = make_plan(
        catalog, PlanSettings(passages=args.passages, lanes=args.lanes, seed=args.seed)
    )
    people = SimulatedPeopleCounter() if args.people else None
    truth = args.truth.open("w", encoding="utf-8") if args.truth else None
    try:
        with GateReaders.start(
            lanes=args.lanes,
            antennas=args.antennas,
            tcp=not args.pty,
            air_time=args.air_time,
            shared_bus=args.shared_bus,
        ) as readers:
            for url, address in zip(readers.urls, readers.addresses, strict=True):
                at = f" address={address}" if args.shared_bus else ""
                print(f"reader: {url}{at}", flush=True)
            if people is not None:
                print(f"people: {people.url}", flush=True)
            print("ready", flush=True)
            if not readers.wait_polled(args.wait_for_gate):
                print("gate-traffic: no gate polled every reader in time", file=sys.stderr)
                return 1
            if people is not None:
                # Visitors walking before the gate listens would not be counted.
                try:
                    people.wait_for_client(args.wait_for_gate)
                except TimeoutError:
                    print("gate-traffic: no gate connected to the people counter", file=sys.stderr)
                    return 1

            def record(result: PassageResult) -> None:
                if truth is None:
                    return
                line = {
                    "passage": result.passage.number,
                    "direction": result.passage.direction,
                    "lane": result.passage.lane,
                    "items": [
                        {
                            "item_id": c.item.item_id,
                            "uid": c.item.uid_hex,
                            "kind": c.item.kind.value,
                            "planned_reads": c.reads,
                            "reads": result.reads.get(c.item.tag.uid, 0),
                            "alarm": c.item in result.expected_alarms,
                        }
                        for c in result.passage.carried
                    ],
                }
                truth.write(json.dumps(line, ensure_ascii=False) + "\n")
                truth.flush()

            runner = TrafficRunner(
                readers.lanes,
                people=people,
                dwell_s=dwell,
                gap_s=args.gap,
                reuse_gap_s=args.reuse_gap,
                stagger_s=args.stagger,
                stop=stop,
            )
            report = runner.run(plan, record)
    finally:
        if people is not None:
            people.close()
        if truth is not None:
            truth.close()
    summary = {
        "passages": len(report.results),
        "reads": report.reads,
        "expected_alarms": len(report.expected_alarms),
        "incomplete_passages": report.incomplete,
        "seconds": round(report.finished - report.started, 2),
    }
    print("summary: " + json.dumps(summary), flush=True)
    return 0
