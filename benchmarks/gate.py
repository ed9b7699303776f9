"""Gate benchmark: alarm latency, sustained read capacity and memory of the gate agent.

The simulated readers run in a child process (as real readers are separate hardware), on
TCP loopback; the gate runs in this process, or as ``libedge gate run`` for the memory
figure. Figures, all measured in this run:

* ``latency_inventory``: air time on, single unissued items passing one after another past
  two antennas that poll at the same time (each its own group), with three secured foreign
  items resting in the field: at least 200 tag reads/s in all (one antenna alone is bound by
  air time, 4.6 ms per UID, to under ~217/s and reaches ~150/s). ``tag_reads_per_s`` is the
  rate measured in the run, every read of every antenna over the traffic's run time. Per
  alarm, from the moment the inventory reply's last byte was read (``TimedPort``) to the
  moment ``RecordingAlarm`` switched the output on (both ``perf_counter_ns``), with
  ``identify_before_alarm = false``: the decision is taken from the inventory (AFI) alone.
  Target: p99 <= 5 ms. ``latency_inventory_one_antenna`` is the same on one antenna, the
  earlier (air-time bound) setting, for comparison. ``latency_baseline_bare_driver``: the
  raw floor in the same run, the bare driver polling the same readers under the same traffic
  and switching the alarm for every new UID, with no gate in between.
* ``latency_identify_first``: the same with ``identify_before_alarm = true`` (the default):
  a secured tag the gate does not know is read before the alarm, so foreign items, patron
  cards and unswitched loans stay silent. ``from_inventory`` includes that read's exchange
  (its air time is the simulator's sleep); ``software`` is measured from the read's reply.
* ``capacity``: air time off, 40 secured tags in the field of two antennas that take turns;
  tag reads merged per second over the run, with the gate's own figures showing it kept up
  (every reply handled before the next request, no exchange failed, no notices waiting).
  Baseline in the same run: a bare ``FeigReader.inventory()`` loop on the same readers and
  tags (driver only). Target: >= 10,000 reads/s. ``capacity_churn``: visitors with bags of
  five, every tag read 20 times, new passes, probes and identifying reads included; the rate
  is over the traffic's run time, so the simulator's own pace (one visitor after another)
  limits it as much as the gate does.
* ``rss``: ``libedge gate run`` as its own process polling two simulated antennas under
  traffic: VmRSS and VmHWM from /proc, beside a bare interpreter's. Target: <= 60 MB.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.gate_rig import OURS, Readers, make_gate, stats_ms
from benchmarks.memory import bare_python_mb, memory_mb

TARGET_P99_MS = 5.0
#: The read rate the latency target is stated at (the issue: "at 200 tag reads/s").
TARGET_LATENCY_READS_PER_S = 200
TARGET_READS_PER_S = 10_000
TARGET_RSS_MB = 60.0


def _latency(
    passages: int, *, identify_first: bool, reads: int = 10, antennas: int = 2
) -> dict[str, Any]:
    with Readers(antennas, air_time=True) as readers, tempfile.TemporaryDirectory() as tmp:
        service, alarm = make_gate(
            readers.urls,
            Path(tmp),
            identify_before_alarm=identify_first,
            full_scan_every=0,
            # Long enough that no pause between two reads of a passing tag splits its pass.
            quiet_time_s=0.2,
            # Each antenna its own group: they poll at the same time, so the gate takes in
            # the reads of both (a group's antennas take turns, and would share one air time).
            groups=tuple((n,) for n in range(antennas)),
        )
        service.start()
        try:
            # Three foreign items with the secured AFI stay in the field: with the passing items
            # they keep every antenna at its air-time limit. Without identify_first they alarm
            # once each, before the measurement starts.
            readers.ask("place", count=3, seed=99, kind="foreign")
            service.wait_health(lambda h: h.reads_total >= 50, 30)
            first_mark, first_change = len(service.core.alarm_log), len(alarm.changes)
            reads_before = service.core.reads_total
            # One unissued item at a time, read ``reads`` times, 10 ms apart so that the (2 ms)
            # alarm is off again and every alarm switches the output on.
            done = readers.ask(
                "traffic", passages=passages, reads=reads, bag=1, catalog=passages, seed=7, gap=0.01
            )
            service.wait_health(lambda h: h.open_passes <= 1, 30)
            total = service.core.reads_total - reads_before
        finally:
            service.stop()
        marks = sorted(service.core.alarm_log[first_mark:], key=lambda m: m.switched_ns)
        switched_on = [c.at_ns for c in alarm.changes[first_change:] if c.on]
        from_inventory: list[float] = []
        after_read: list[float] = []
        software: list[float] = []
        index = 0
        for at_ns in switched_on:
            # The alarm that switched the output on: the first whose trigger returned after it.
            while index < len(marks) and marks[index].switched_ns < at_ns:
                index += 1
            if index == len(marks):
                break
            mark = marks[index]
            software.append((at_ns - mark.reply_ns) / 1e6)
            if mark.reply_ns == mark.inventory_ns:
                from_inventory.append((at_ns - mark.inventory_ns) / 1e6)
            else:
                after_read.append((at_ns - mark.inventory_ns) / 1e6)
        result: dict[str, Any] = {
            "antennas_polling_at_once": antennas,
            "alarms": len(marks),
            "outputs_switched_on": len(switched_on),
            "tag_reads_per_s": round(total / done["seconds"], 1),
            "decided_from_inventory": stats_ms(from_inventory),
        }
        if identify_first:
            # Tags the gate read before (they passed earlier) are decided from the inventory.
            result["decided_after_identifying_read"] = stats_ms(after_read)
            result["software_from_last_reply"] = stats_ms(software)
        return result


def _latency_baseline(passages: int, *, reads: int, antennas: int = 2) -> dict[str, Any]:
    """The floor under ``latency_inventory``: the bare driver, no gate, same readers and traffic.

    One thread per antenna polls ``inventory(afi=0x07)`` (air time on, as the gate's secured
    scans) through the same timing port wrapper, and triggers a ``RecordingAlarm`` for every
    UID not seen in the last 0.2 s (the gate's quiet time here): no passes, decisions, events
    or outbox. Measured the same way, from the reply's last byte read to the output on.
    """
    from gate.timing import TimedPort, timed_opener
    from hardware.feig import FeigReader
    from hardware.outputs import RecordingAlarm

    alarm = RecordingAlarm()
    last_seen: dict[bytes, float] = {}
    samples: list[float] = []
    lock = threading.Lock()
    warm = threading.Condition(lock)
    stop = threading.Event()
    reads_total = [0]
    failures: list[BaseException] = []

    def poll(url: str) -> None:
        ports: list[TimedPort] = []
        try:
            with FeigReader(url, opener=timed_opener(ports.append)) as reader:
                while not stop.is_set():
                    entries = reader.inventory(afi=0x07)
                    reply_ns = ports[-1].last_read_ns
                    with lock:
                        reads_total[0] += len(entries)
                        now = time.monotonic()
                        new = [e.uid for e in entries if now - last_seen.get(e.uid, -1.0) > 0.2]
                        last_seen.update((e.uid, now) for e in entries)
                        if new:
                            before = len(alarm.changes)
                            alarm.trigger(0.002)
                            if len(alarm.changes) > before and alarm.changes[before].on:
                                samples.append((alarm.changes[before].at_ns - reply_ns) / 1e6)
                        warm.notify_all()
        except BaseException as exc:  # reported by the caller, not lost with the thread
            with lock:
                failures.append(exc)
                warm.notify_all()
            raise

    with Readers(antennas, air_time=True) as readers:
        readers.ask("place", count=3, seed=99, kind="foreign")
        threads = [threading.Thread(target=poll, args=(url,), daemon=True) for url in readers.urls]
        for thread in threads:
            thread.start()
        try:
            with warm:
                if not warm.wait_for(lambda: reads_total[0] >= 50 or bool(failures), 30):
                    raise RuntimeError("latency baseline: the readers did not answer")
                if failures:
                    raise RuntimeError(f"latency baseline: polling failed: {failures[0]!r}")
                del samples[:]  # the foreign items resting in the field: not measured
                reads_before = reads_total[0]
            done = readers.ask(
                "traffic", passages=passages, reads=reads, bag=1, catalog=passages, seed=7, gap=0.01
            )
        finally:
            stop.set()
            for thread in threads:
                thread.join(10)
            alarm.close()
    if failures:
        raise RuntimeError(f"latency baseline: a polling thread failed: {failures[0]!r}")
    return {
        "antennas_polling_at_once": antennas,
        "tag_reads_per_s": round((reads_total[0] - reads_before) / done["seconds"], 1),
        "decided_from_inventory": stats_ms(samples),
    }


def _capacity(seconds: float) -> dict[str, Any]:
    from gate.timing import timed_opener
    from hardware.feig import FeigReader

    with Readers(2, air_time=False) as readers, tempfile.TemporaryDirectory() as tmp:
        readers.ask("place", count=40, seed=3)
        # Baseline: the driver alone, polling the same two readers in turn (through the same
        # timing port wrapper the gate uses).
        opener = timed_opener(lambda port: None)
        with (
            FeigReader(readers.urls[0], opener=opener) as left,
            FeigReader(readers.urls[1], opener=opener) as right,
        ):
            reads = 0
            end = time.perf_counter() + seconds
            started = time.perf_counter()
            while time.perf_counter() < end:
                reads += len(left.inventory(afi=0x07)) + len(right.inventory(afi=0x07))
            baseline = reads / (time.perf_counter() - started)
        service, _ = make_gate(readers.urls, Path(tmp), full_scan_every=4, quiet_time_s=2.0)
        service.start()
        try:
            service.wait_health(lambda h: h.reads_total >= 400, 30)  # warmed up, all decided
            before = service.health()
            started = time.perf_counter()
            time.sleep(seconds)  # a measurement window, not synchronisation
            after = service.health()
            elapsed = time.perf_counter() - started
            backlog = service.builder.backlog
        finally:
            service.stop()
        polls = sum(a.polls for a in after.antennas) - sum(a.polls for a in before.antennas)
        failed = sum(a.garbled + a.errors for a in after.antennas)
        rate = (after.reads_total - before.reads_total) / elapsed
        return {
            "tags_in_field": 40,
            "antennas": 2,
            "reads_per_s": round(rate, 0),
            "inventories_per_s": round(polls / elapsed, 0),
            "failed_exchanges": failed,
            "open_passes": after.open_passes,
            "event_notices_waiting": backlog,
            "baseline_driver_only_reads_per_s": round(baseline, 0),
            "ratio_to_baseline": round(rate / baseline, 3),
        }


def _capacity_churn(passages: int) -> dict[str, Any]:
    with Readers(2, air_time=False) as readers, tempfile.TemporaryDirectory() as tmp:
        service, _ = make_gate(readers.urls, Path(tmp), full_scan_every=2, quiet_time_s=0.2)
        service.start()
        try:
            before = service.core.reads_total
            done = readers.ask(
                "traffic",
                passages=passages,
                reads=20,
                bag=5,
                catalog=max(400, passages),
                seed=9,
                mixed=True,
                reuse_after=60,
            )
            service.wait_health(lambda h: h.open_passes == 0, 60)
            counters = service.core.counters
            reads = service.core.reads_total - before
        finally:
            service.stop()
        return {
            "passages": done["passages"],
            "tag_reads": reads,
            "reads_per_s": round(reads / done["seconds"], 0),
            "alarms": counters.alarms,
            "identifications": counters.identifications,
            "probes": counters.probes,
            "incomplete_passages": done["incomplete"],
        }


def _rss(seconds: float) -> dict[str, Any]:
    libedge = str(Path(sys.executable).with_name("libedge"))
    baseline = bare_python_mb()
    with Readers(2, air_time=False) as readers, tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "gate.toml"
        urls = ", ".join(f'"{u}"' for u in readers.urls)
        config.write_text(
            f'[site]\ndevice_id = "gate-1"\ndevice_kind = "gate"\nisil = "{OURS}"\n'
            f'[devices]\ngate_readers = [{urls}]\nalarm_output = "sim:"\n'
            f'[gate]\nquiet_time_s = 0.2\nagent_url = "sqlite://{tmp}/agent.sqlite"\n'
            f'data_dir = "{tmp}/gate"\n',
            encoding="utf-8",
        )
        gate = subprocess.Popen(
            [libedge, "gate", "run", "--config", str(config)],
            stderr=subprocess.DEVNULL,
        )
        samples: list[dict[str, float]] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.2):
                try:
                    samples.append(memory_mb(gate.pid))
                except OSError:
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            done = readers.ask(
                "traffic",
                passages=int(seconds * 40),
                reads=10,
                bag=3,
                catalog=300,
                seed=5,
                mixed=True,
                gap=0.02,
            )
            final = memory_mb(gate.pid)
        finally:
            stop.set()
            sampler.join(5)
            gate.send_signal(signal.SIGTERM)
            gate.wait(20)
    peak = max([final.get("VmHWM", 0.0)] + [s.get("VmHWM", 0.0) for s in samples])
    return {
        "gate_rss_mb": final.get("VmRSS"),
        "gate_peak_rss_mb": peak,
        "traffic_passages": done["passages"],
        "baseline_bare_python_rss_mb": baseline.get("VmRSS"),
        "target_mb": TARGET_RSS_MB,
        "meets_target": peak <= TARGET_RSS_MB,
    }


def run(quick: bool) -> dict[str, Any]:
    """Measure latency, capacity and memory; quick mode keeps the whole run under 60 s."""
    passages, reads = (60, 6) if quick else (1000, 10)
    seconds = 2.0 if quick else 10.0
    latency = _latency(passages, identify_first=False, reads=reads)
    one_antenna = _latency(passages, identify_first=False, reads=reads, antennas=1)
    identify = _latency(passages, identify_first=True, reads=reads)
    latency_baseline = _latency_baseline(passages, reads=reads)
    capacity = _capacity(seconds)
    churn = _capacity_churn(60 if quick else 1000)
    rss = _rss(3.0 if quick else 15.0)
    p99 = latency["decided_from_inventory"].get("p99_ms", float("inf"))
    return {
        "description": "gate agent: alarm latency at >= 200 tag reads/s (two antennas, air "
        "time on; the measured rate is tag_reads_per_s), sustained reads/s (air time off), "
        "RSS of `libedge gate run`",
        "latency_inventory": latency,
        "latency_inventory_one_antenna": one_antenna,
        "latency_baseline_bare_driver": latency_baseline,
        "latency_at_target_rate": latency["tag_reads_per_s"] >= TARGET_LATENCY_READS_PER_S,
        "latency_identify_first": identify,
        "latency_target_p99_ms": TARGET_P99_MS,
        "latency_meets_target": p99 <= TARGET_P99_MS,
        "capacity": capacity,
        "capacity_churn": churn,
        "capacity_target_reads_per_s": TARGET_READS_PER_S,
        "capacity_meets_target": capacity["reads_per_s"] >= TARGET_READS_PER_S,
        "rss": rss,
        "cpu_count": os.cpu_count(),
    }
