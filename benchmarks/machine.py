"""What the machine itself did during a benchmark: thread hand-off cost and CPU steal.

A group commit hands every event from a caller's thread to the writer's and back, while the
raw baselines run in one thread. On a virtual machine whose idle vCPUs halt (no halt
polling), waking a thread on the other vCPU can cost a good part of an fsync, and a host
that is busy steals time from the guest. Both move the outbox's ratio without any change to
our code, so the throughput report carries them, measured in the same run.
"""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

__all__ = ["CpuTimes", "cpu_times", "parse_cpu_line", "steal_fraction", "thread_round_trip_us"]

PROC_STAT = Path("/proc/stat")


def thread_round_trip_us(rounds: int = 2000) -> float:
    """Median microseconds for one thread to wake another and be woken back (two hand-offs).

    Two bare locks pass a baton, the way the outbox's writer and its callers do.
    """
    ping, pong = threading.Lock(), threading.Lock()
    ping.acquire()
    pong.acquire()

    def partner() -> None:
        for _ in range(rounds):
            ping.acquire()
            pong.release()

    thread = threading.Thread(target=partner, name="bench-round-trip")
    thread.start()
    samples: list[float] = []
    for _ in range(rounds):
        began = time.perf_counter()
        ping.release()
        pong.acquire()
        samples.append(time.perf_counter() - began)
    thread.join()
    return round(statistics.median(samples) * 1e6, 1)


CpuTimes = tuple[int, int]  # (all ticks, steal ticks)


def parse_cpu_line(text: str) -> CpuTimes:
    """(all, steal) clock ticks from the aggregate ``cpu`` line of a /proc/stat text."""
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            ticks = [int(value) for value in fields[1:]]
            # user nice system idle iowait irq softirq steal [guest guest_nice]; guest time
            # is already counted in user, so only the first eight fields add up.
            steal = ticks[7] if len(ticks) > 7 else 0
            return sum(ticks[:8]), steal
    raise ValueError("no aggregate 'cpu' line in /proc/stat")


def cpu_times() -> CpuTimes | None:
    """The machine's (all, steal) ticks now; None where /proc/stat cannot be read."""
    try:
        return parse_cpu_line(PROC_STAT.read_text(encoding="ascii"))
    except (OSError, ValueError):
        return None


def steal_fraction(before: CpuTimes | None, after: CpuTimes | None) -> float | None:
    """The share of CPU time the hypervisor took between two readings (None if unknown)."""
    if before is None or after is None or after[0] <= before[0]:
        return None
    return round((after[1] - before[1]) / (after[0] - before[0]), 3)
