"""The gate benchmark's rig: simulated readers in a child process, a gate over them, and stats.

The readers run in a process of their own (as real readers are separate hardware), on TCP
loopback; the parent asks it to place tags, clear the field or play traffic through a pipe.
:func:`make_gate` builds a :class:`~gate.service.GateService` over their URLs with a
recording alarm, and :func:`stats_ms` summarises latency samples.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import statistics
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

__all__ = ["OURS", "Readers", "make_gate", "readers_process", "stats_ms"]

#: The library's ISIL in the simulated catalogue.
OURS = "VN-DEMO"


# ---------------------------------------------------------------- the readers' process


def readers_process(conn: Connection, antennas: int, air_time: bool) -> None:
    """Serve simulated gate readers and play what the parent asks for, until told to stop."""
    from simulators.gate_traffic.catalog import Catalog, Kind
    from simulators.gate_traffic.engine import GateReaders, TrafficRunner
    from simulators.gate_traffic.plan import PlanSettings, make_plan

    readers = GateReaders.start(lanes=1, antennas=antennas, air_time=air_time)
    conn.send(readers.urls)
    try:
        while True:
            op, args = conn.recv()
            if op == "stop":
                return
            if op == "place":
                kind = Kind(args.get("kind", "unissued"))
                catalog = Catalog.synthetic(
                    args["count"], own_isil=OURS, seed=args["seed"], mix={kind: 1.0}
                )
                if kind is Kind.FOREIGN:
                    for item in catalog.items:
                        item.tag.afi, item.tag.eas = 0x07, True  # answers the secured scan
                for item in catalog.items:
                    readers.lanes[0].enter(item.tag, 10**9, dwell_s=3600)
                conn.send("placed")
            elif op == "clear":
                readers.lanes[0].clear()
                conn.send("cleared")
            elif op == "traffic":
                mix = {Kind.UNISSUED: 0.5, Kind.ISSUED: 0.5} if args.get("mixed") else None
                catalog = Catalog.synthetic(
                    args["catalog"],
                    own_isil=OURS,
                    seed=args["seed"],
                    mix=mix or {Kind.UNISSUED: 1.0},
                )
                weights = tuple(1.0 if n == args["bag"] else 0.0 for n in range(args["bag"] + 1))
                plan = make_plan(
                    catalog,
                    PlanSettings(
                        passages=args["passages"],
                        seed=args["seed"],
                        bag_weights=weights,
                        read_once_share=0.0,
                        max_reads=args["reads"],
                        reuse_after=args.get("reuse_after", 30),
                    ),
                )
                # Every tag read exactly ``reads`` times.
                plan = [
                    type(p)(
                        p.number,
                        p.direction,
                        p.lane,
                        tuple(type(c)(c.item, args["reads"]) for c in p.carried),
                    )
                    for p in plan
                ]
                runner = TrafficRunner(readers.lanes, dwell_s=5.0, gap_s=args.get("gap", 0.0))
                started = time.perf_counter()
                report = runner.run(plan)
                conn.send(
                    {
                        "reads": report.reads,
                        "seconds": time.perf_counter() - started,
                        "incomplete": report.incomplete,
                        "passages": len(report.results),
                    }
                )
    finally:
        readers.stop()


class Readers:
    """The child process serving the readers, and its pipe."""

    def __init__(self, antennas: int, *, air_time: bool) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=readers_process, args=(child, antennas, air_time), daemon=True
        )
        self.process.start()
        child.close()
        self.urls: list[str] = self.conn.recv()

    def ask(self, op: str, **args: Any) -> Any:
        """Send one request to the readers' process and return its answer."""
        self.conn.send((op, args))
        return self.conn.recv()

    def close(self) -> None:
        """Stop the readers' process (killed if it does not stop within 10 s)."""
        with contextlib.suppress(OSError):
            self.conn.send(("stop", {}))
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()

    def __enter__(self) -> Readers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- helpers


def stats_ms(samples: list[float]) -> dict[str, float]:
    """Count, p50, p90, p99, mean and max of latency samples in milliseconds."""
    if not samples:
        return {"n": 0}
    ordered = sorted(samples)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    return {
        "n": len(ordered),
        "p50_ms": round(pct(0.50), 3),
        "p90_ms": round(pct(0.90), 3),
        "p99_ms": round(pct(0.99), 3),
        "mean_ms": round(statistics.fmean(ordered), 3),
        "max_ms": round(ordered[-1], 3),
    }


def make_gate(urls: list[str], tmp: Path, **options: Any) -> Any:
    """A gate service over ``urls`` (one turn group) and its recording alarm, not started."""
    from edge_agent.outbox import MemoryOutbox
    from gate.agent import OutboxAgent
    from gate.options import GateOptions, ReaderSpec
    from gate.service import GateService
    from hardware.outputs import RecordingAlarm

    settings: dict[str, Any] = {
        "device_id": "gate-bench",
        "readers": tuple(ReaderSpec(f"antenna-{n + 1}", url) for n, url in enumerate(urls)),
        "groups": (tuple(range(len(urls))),),
        "isil": OURS,
        "quiet_time_s": 0.05,
        "alarm_duration_s": 0.002,
        "data_dir": tmp,
        "reader_timeout_s": 1.0,
    }
    settings.update(options)
    alarm = RecordingAlarm()
    service = GateService(
        GateOptions(**settings), agent=OutboxAgent(MemoryOutbox(), None, "gate-bench"), alarm=alarm
    )
    service.core.keep_alarm_log = True
    return service, alarm
