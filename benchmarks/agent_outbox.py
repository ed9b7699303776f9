"""Outbox benchmark: durable appends through SqliteOutbox beside raw sqlite3, on one disk.

(a) Throughput. Eight threads append in a closed loop through ``SqliteOutbox`` (WAL,
    synchronous=FULL, group commit), and every commit's batch size is recorded. Right after
    each slice of that, a raw ``sqlite3`` loop replays exactly those batch sizes — BEGIN
    IMMEDIATE, ``executemany`` of the same rows (fresh UUIDs and timestamps), COMMIT — with
    the same PRAGMAs, into

    * ``raw_minimal``: a table with the same columns and the two unique keys only, and
    * ``raw_same_schema``: a file migrated to the outbox's own schema (its partial indexes
      and counter tables included), so that ratio isolates the writer's own overhead
      (threads, group commit, bookkeeping) from the cost of the schema.

    Slices alternate so that both sides see the same disk weather (a shared VM disk varies
    by a factor of several within seconds). ``ratio`` is the median of the per-slice
    ratios, which one stalled fsync cannot swing; the pooled ratio (total events over total
    time) is given too. Target: ratio (ours / raw_minimal) >= 0.8.

(b) Latency. One producer appends at a steady 500 events/s, timing each append from call to
    return (= its commit). The raw figure is one INSERT + COMMIT per event with
    synchronous=FULL, at the same pace. Chunks of both alternate, as above. Target: our p99
    <= 3 x raw p99.

All files live in one temporary directory, so on one disk.

The throughput report also says what the machine did meanwhile (see benchmarks.machine): a
thread-to-thread wake-up round trip measured before the slices, and the CPU share the
hypervisor stole during them.
"""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from benchmarks.machine import cpu_times, steal_fraction, thread_round_trip_us
from edge_agent.outbox import GroupCommitPolicy, OutboxLimits, SqliteOutbox
from edge_agent.outbox.migrations import migrate

PAYLOAD = '{"item":"30001000123456","patron":"hashed:4f2a","branch":"central","ok":true}'
THREADS = 8
RATE = 500.0
TARGET_THROUGHPUT_RATIO = 0.8
TARGET_P99_RATIO = 3.0

MINIMAL_SCHEMA = """
CREATE TABLE outbox_events (
    id INTEGER PRIMARY KEY, device_id TEXT NOT NULL, seq INTEGER NOT NULL,
    event_id TEXT NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL,
    event_time REAL NOT NULL, clock_trusted INTEGER NOT NULL, state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL, sent_at REAL,
    confirmed_at REAL, dead_reason TEXT, discarded_at REAL
) STRICT;
CREATE UNIQUE INDEX outbox_events_device_seq ON outbox_events(device_id, seq);
CREATE UNIQUE INDEX outbox_events_event_id ON outbox_events(event_id);
"""
INSERT = (
    "INSERT INTO outbox_events(device_id, seq, event_id, kind, payload, event_time,"
    " clock_trusted, state, attempts, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?)"
)


class RawWriter:
    """The hand-written baseline: one connection, the outbox's PRAGMAs, plain inserts."""

    def __init__(self, path: Path, *, same_schema: bool) -> None:
        self.conn = sqlite3.connect(str(path), isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        if same_schema:
            migrate(self.conn)
        else:
            self.conn.executescript(MINIMAL_SCHEMA)
        self.seq = 0

    def batch(self, size: int) -> None:
        now = time.time()
        rows = []
        for _ in range(size):
            self.seq += 1
            rows.append(("bench-0", self.seq, str(uuid.uuid4()), "loan", PAYLOAD, now, 1, now))
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.executemany(INSERT, rows)
        self.conn.execute("COMMIT")

    def replay(self, sizes: list[int]) -> float:
        """Commit batches of these sizes; return the seconds it took."""
        began = time.perf_counter()
        for size in sizes:
            self.batch(size)
        return time.perf_counter() - began

    def close(self) -> None:
        self.conn.close()


class Appenders:
    """THREADS threads appending to one outbox, run slice by slice."""

    def __init__(self, outbox: SqliteOutbox) -> None:
        self.outbox = outbox
        self.go = threading.Barrier(THREADS + 1)
        self.done = threading.Barrier(THREADS + 1)
        self.stop = threading.Event()
        self.quit = False
        self.counts = [0] * THREADS
        self.threads = [threading.Thread(target=self._work, args=(i,)) for i in range(THREADS)]
        for thread in self.threads:
            thread.start()

    def _work(self, index: int) -> None:
        device = f"bench-{index % 2}"
        while True:
            self.go.wait()
            if self.quit:
                return
            while not self.stop.is_set():
                self.outbox.append(device, "loan", PAYLOAD)
                self.counts[index] += 1
            self.done.wait()

    def run(self, seconds: float) -> tuple[int, float]:
        """Let the threads append for ``seconds``; return (events, elapsed seconds)."""
        before = sum(self.counts)
        self.stop.clear()
        self.go.wait()
        began = time.perf_counter()
        self.stop.wait(seconds)  # the length of the slice, not synchronisation
        self.stop.set()
        self.done.wait()
        return sum(self.counts) - before, time.perf_counter() - began

    def close(self) -> None:
        self.quit = True
        self.go.wait()
        for thread in self.threads:
            thread.join()


def throughput(base: Path, slices: int, slice_s: float, budget_s: float) -> dict[str, object]:
    sizes: list[int] = []
    outbox = SqliteOutbox(
        base / "ours.sqlite",
        limits=OutboxLimits(max_rows=None, max_bytes=None),
        group_commit=GroupCommitPolicy(),
        on_commit=sizes.append,
    )
    minimal = RawWriter(base / "raw-minimal.sqlite", same_schema=False)
    same = RawWriter(base / "raw-same-schema.sqlite", same_schema=True)
    appenders = Appenders(outbox)
    all_sizes: list[int] = []
    ours_t = minimal_t = same_t = 0.0
    events = 0
    slice_ratios: list[float] = []
    slice_same: list[float] = []
    try:
        appenders.run(0.2)  # warm up: caches, WAL, thread start
        minimal.replay(sizes)
        same.replay(sizes)
        round_trip_us = thread_round_trip_us()
        cpu_before = cpu_times()
        began = time.perf_counter()
        for done in range(slices):
            if done >= 4 and time.perf_counter() - began > budget_s:
                break  # a slow disk stretches the replays; keep the run inside its budget
            sizes.clear()
            n, elapsed = appenders.run(slice_s)
            assert sum(sizes) == n, (sum(sizes), n)
            m = minimal.replay(sizes)
            s = same.replay(sizes)
            ours_t, minimal_t, same_t, events = (
                ours_t + elapsed,
                minimal_t + m,
                same_t + s,
                events + n,
            )
            slice_ratios.append(m / elapsed)
            slice_same.append(s / elapsed)
            all_sizes += sizes
        steal = steal_fraction(cpu_before, cpu_times())
    finally:
        appenders.close()
        outbox.close()
        minimal.close()
        same.close()
    ratio = statistics.median(slice_ratios)
    return {
        "threads": THREADS,
        "slices": len(slice_ratios),
        "events": events,
        "commits": len(all_sizes),
        "mean_batch": round(statistics.fmean(all_sizes), 2),
        "max_batch": max(all_sizes),
        "ours_events_per_s": round(events / ours_t),
        "raw_minimal_events_per_s": round(events / minimal_t),
        "raw_same_schema_events_per_s": round(events / same_t),
        "ratio": round(ratio, 3),
        "ratio_pooled": round(minimal_t / ours_t, 3),
        "ratio_vs_same_schema": round(statistics.median(slice_same), 3),
        "ratio_vs_same_schema_pooled": round(same_t / ours_t, 3),
        "target_ratio": TARGET_THROUGHPUT_RATIO,
        "meets_target": ratio >= TARGET_THROUGHPUT_RATIO,
        "machine": {"thread_round_trip_us": round_trip_us, "cpu_steal_fraction": steal},
    }


def paced(count: int, one: Callable[[], object]) -> list[float]:
    """Call ``one()`` ``count`` times at RATE per second; return each call's duration (s)."""
    out: list[float] = []
    t0 = time.perf_counter()
    for i in range(count):
        delay = t0 + i / RATE - time.perf_counter()
        if delay > 0:
            time.sleep(delay)  # pacing the load, not synchronisation
        began = time.perf_counter()
        one()
        out.append(time.perf_counter() - began)
    return out


def percentiles(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49] * 1e3, 3),
        "p99_ms": round(cuts[98] * 1e3, 3),
        "max_ms": round(max(samples) * 1e3, 3),
    }


def latency(base: Path, chunks: int, chunk: int, budget_s: float) -> dict[str, object]:
    outbox = SqliteOutbox(base / "ours-latency.sqlite")
    raw = RawWriter(base / "raw-latency.sqlite", same_schema=False)
    ours: list[float] = []
    theirs: list[float] = []
    try:
        paced(50, lambda: outbox.append("bench-0", "loan", PAYLOAD))  # warm-up
        paced(50, lambda: raw.batch(1))
        began = time.perf_counter()
        for done in range(chunks):
            if done >= 2 and time.perf_counter() - began > budget_s:
                break
            ours += paced(chunk, lambda: outbox.append("bench-0", "loan", PAYLOAD))
            theirs += paced(chunk, lambda: raw.batch(1))
    finally:
        outbox.close()
        raw.close()
    mine, base_p = percentiles(ours), percentiles(theirs)
    ratio = mine["p99_ms"] / base_p["p99_ms"]
    return {
        "rate_per_s": RATE,
        "events_each": len(ours),
        "ours": mine,
        "raw_single_commit": base_p,
        "p99_ratio": round(ratio, 3),
        "target_p99_ratio": TARGET_P99_RATIO,
        "meets_target": ratio <= TARGET_P99_RATIO,
    }


def run(quick: bool) -> dict[str, object]:
    """Measure both figures; quick=True finishes in about 15 s."""
    with tempfile.TemporaryDirectory(prefix="libedge-bench-outbox-") as tmp:
        base = Path(tmp)
        tp = throughput(base, slices=12 if quick else 40, slice_s=0.25, budget_s=9 if quick else 60)
        lat = latency(base, chunks=6 if quick else 20, chunk=250, budget_s=6 if quick else 40)
    return {"sqlite_version": sqlite3.sqlite_version, "throughput": tp, "latency": lat}


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True), indent=2))
