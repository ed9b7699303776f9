"""The figures of ``docs/benchmarks.md``: where each lives in a benchmark's JSON, and its target.

One table row per :class:`Figure`, per benchmark (:data:`FIGURES`); :mod:`benchmarks.report`
runs the benchmarks, extracts these and renders the page. The targets are the issues'.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["FIGURES", "Figure", "Target"]


@dataclass(frozen=True)
class Target:
    """A figure's target: ``on`` (our figure or the ratio to the baseline) ``op`` ``value``."""

    on: Literal["ours", "ratio"]
    op: Literal[">=", "<="]
    value: float


@dataclass(frozen=True)
class Figure:
    """Where one table row's numbers live in a benchmark's JSON (dotted paths).

    ``label`` may name JSON values in braces (``{drain.events}``). ``ratio`` is the path of
    the ratio the benchmark computed itself (e.g. a median of per-round ratios, which is
    what its target is judged on); without one, the row shows ours / baseline.
    """

    label: str
    unit: str
    ours: str
    baseline: str | None = None
    baseline_is: str = ""
    ratio: str | None = None
    target: Target | None = None


def _ge(value: float, on: Literal["ours", "ratio"] = "ours") -> Target:
    return Target(on, ">=", value)


def _le(value: float, on: Literal["ours", "ratio"] = "ours") -> Target:
    return Target(on, "<=", value)


#: What each raw baseline is, in words (the page lists them under each table).
HEX = "bytes.hex() + int.from_bytes() over the same tag buffers"
PTY = "raw pty echo of the same 7/107 bytes, no protocol"
BARE_GATE = "bare driver polling the same readers under the same traffic, alarm on each new UID"
DRIVER_LOOP = "bare FeigReader.inventory() loop on the same readers and tags"
READER_ONLY = "the reader alone: read the 10 tags and switch each with read-back"
BARE_KIVY = "a bare Kivy app showing one label"
PAHO = "raw paho QoS 1 publish loop, same window (best round); ratio: median per round"
D3, D2, DT = "decode.decode_28560_3.", "decode.decode_28560_2.", "decode.decode_tag."
TP, LAT = "outbox.throughput.", "outbox.latency."
LI, LB = "latency_inventory.", "latency_baseline_bare_driver."

#: The rows of each benchmark's table. Figures without a target give context.
#: Laid out by hand, one figure per stanza: a table reads better than one argument per line.
# fmt: off
FIGURES: dict[str, tuple[Figure, ...]] = {
    "rfid": (
        Figure("ISO 28560-3 decode", "tags/s", D3 + "tags_per_s", D3 + "baseline_ops_per_s",
               HEX, D3 + "ratio", _ge(100_000)),
        Figure("ISO 28560-2 decode", "tags/s", D2 + "tags_per_s", D2 + "baseline_ops_per_s",
               HEX, D2 + "ratio", _ge(30_000)),
        Figure("decode_tag, mixed -2/-3/blank/damaged tags", "tags/s", DT + "tags_per_s",
               DT + "baseline_ops_per_s", HEX, DT + "ratio"),
        Figure("Inventory of 10 tags, driver over a pty to the simulator, p99", "ms",
               "driver_inventory_10.p99_ms", "raw_pty_echo.p99_ms", PTY, target=_le(2.0)),
        Figure("Inventory of 10 tags, p50", "ms",
               "driver_inventory_10.p50_ms", "raw_pty_echo.p50_ms", PTY),
        Figure("Driver CPU per inventory (in-memory port), p99", "ms",
               "driver_cpu_inventory_10.p99_ms"),
    ),
    "agent": (
        Figure("Durable append throughput ({outbox.throughput.threads} threads)", "events/s",
               TP + "ours_events_per_s", TP + "raw_minimal_events_per_s",
               "raw sqlite3 batched inserts replaying our batch sizes; ratio: median per slice",
               TP + "ratio", _ge(0.8, "ratio")),
        Figure("Machine: thread wake-up round trip, before the throughput slices", "µs",
               TP + "machine.thread_round_trip_us"),
        Figure("Machine: share of CPU stolen by the hypervisor during those slices", "",
               TP + "machine.cpu_steal_fraction"),
        Figure("Single-event append p99 at {outbox.latency.rate_per_s} ev/s", "ms",
               LAT + "ours.p99_ms", LAT + "raw_single_commit.p99_ms",
               "raw sqlite3 INSERT + COMMIT per event, same pace",
               LAT + "p99_ratio", _le(3.0, "ratio")),
        Figure("Drain of a {drain.events}-event backlog (best round)", "events/s",
               "drain.agent_drain_events_per_s", "drain.raw_paho_qos1_events_per_s",
               PAHO,
               "drain.drain_to_raw_ratio", _ge(0.7, "ratio")),
        Figure("Agent peak RSS draining a {drain.rss_backlog_events}-event backlog", "MB",
               "drain.peak_rss_mb", "drain.baseline_bare_python_rss_mb",
               "a bare Python that imported sqlite3 and paho", target=_le(80.0)),
        Figure("Drain end to end via the central simulator in its own process "
               "({drain.central_simulator_events}, best round)", "events/s",
               "drain.central_simulator_drain_events_per_s",
               "drain.central_raw_paho_qos1_events_per_s", PAHO,
               "drain.central_drain_to_raw_ratio"),
    ),
    "gate": (
        Figure("Inventory-to-alarm latency p99 (decided from the inventory)", "ms",
               LI + "decided_from_inventory.p99_ms", LB + "decided_from_inventory.p99_ms",
               BARE_GATE, target=_le(5.0)),
        Figure("Tag read rate during that latency run", "reads/s",
               LI + "tag_reads_per_s", LB + "tag_reads_per_s", BARE_GATE, target=_ge(200)),
        Figure("Alarm latency p99, identify first, after the identifying read", "ms",
               "latency_identify_first.decided_after_identifying_read.p99_ms"),
        Figure("Capacity, {capacity.tags_in_field} tags on two antennas", "reads/s",
               "capacity.reads_per_s", "capacity.baseline_driver_only_reads_per_s",
               DRIVER_LOOP, "capacity.ratio_to_baseline", _ge(10_000)),
        Figure("Capacity under churn (visitors, bags of five)", "reads/s",
               "capacity_churn.reads_per_s"),
        Figure("`libedge gate run` peak RSS under traffic", "MB", "rss.gate_peak_rss_mb",
               "rss.baseline_bare_python_rss_mb", "a bare Python interpreter",
               target=_le(60.0)),
    ),
    "kiosk": (
        Figure("10-item checkout p95 (stock)", "ms", "stock.checkout.p95_ms",
               "stock.baseline_read_and_switch.p95_ms", READER_ONLY, target=_le(300.0)),
        Figure("10-item checkout p95 (TCP_NODELAY on broker and central)", "ms",
               "nodelay.checkout.p95_ms", "nodelay.baseline_read_and_switch.p95_ms",
               READER_ONLY, target=_le(300.0)),
        Figure("10-item checkin p95 (stock)", "ms", "stock.checkin.p95_ms",
               "stock.baseline_read_and_switch.p95_ms", READER_ONLY),
        Figure("Reading the 10 tags alone p95 (read_field)", "ms",
               "stock.baseline_read_field.p95_ms"),
        Figure("Kiosk app cold start, worst of {app.kiosk.cold_start.runs}", "ms",
               "app.kiosk.cold_start.max_ms", "app.bare.cold_start.max_ms", BARE_KIVY,
               target=_le(2000.0)),
        Figure("Kiosk app RSS, worst run", "MB", "app.kiosk.rss_mb_max", "app.bare.rss_mb_max",
               BARE_KIVY, target=_le(200.0)),
    ),
}
# fmt: on
