"""What ``libedge demo`` does: start everything, run the timeline, stop in order, summarise.

Order of starting: broker, central simulator (in this process, so the summary reads its
database), staff dashboard, then the two sites as supervised child processes. Order of
stopping is the reverse; the sites first deliver what their agents hold (bounded), so the
summary's counts are final. One SIGINT or SIGTERM ends the run early, the same way.
"""

from __future__ import annotations

import json
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from simulators.central import CentralSimulator
from simulators.central.dashboard import DashboardError, DashboardServer

from .broker import DemoBroker
from .common import REPORT_PREFIX
from .gate_site import GateSite, GateSiteError
from .kiosk_window import has_display
from .summary import summarise
from .supervisor import Supervisor

__all__ = ["DemoOptions", "Progress", "run_demo"]

SITES = ("kiosk", "gate")
#: A site counts as drained at this backlog or below: the ongoing traffic itself keeps an
#: event or two waiting for central's receipt at any moment.
DRAINED_AT = 2


@dataclass(frozen=True)
class DemoOptions:
    """Everything ``libedge demo`` was asked for."""

    duration_s: float = 0.0
    headless: bool = True
    broker_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8088
    workdir: Path | None = None
    offline_at_s: float | None = None
    offline_for_s: float | None = None
    gap_s: float = 1.0
    log_level: str = "WARNING"
    #: The Kivy kiosk window: ``auto`` (on the display, else offscreen), ``on``, ``off``.
    kiosk_window: str = "auto"
    #: Offscreen kiosk window: seconds between two ``kiosk-latest.png`` (0: none).
    screenshot_every_s: float = 5.0

    def outage(self) -> tuple[float, float] | None:
        """When the broker stops and for how long (None: no offline period)."""
        if self.broker_url is not None:
            return None  # someone else's broker: not ours to stop
        if self.duration_s > 0:
            at = self.offline_at_s if self.offline_at_s is not None else self.duration_s * 0.35
            length = self.offline_for_s
            if length is None:
                length = min(max(self.duration_s * 0.2, 3.0), 30.0)
        else:
            # Early enough that a first look (a minute) sees the outage and its drain.
            at = self.offline_at_s if self.offline_at_s is not None else 25.0
            length = self.offline_for_s if self.offline_for_s is not None else 15.0
        return (at, length) if length > 0 else None


@dataclass
class Progress:
    """What the sites reported, and the backlog around the offline period."""

    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    peak_backlog: dict[str, int] = field(default_factory=dict)
    offline_since: float | None = None
    restored_at: float | None = None
    drained_after_s: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_line(self, _name: str, line: str) -> None:
        """Take in one line a child printed (only report lines matter)."""
        if not line.startswith(REPORT_PREFIX):
            return
        try:
            values = json.loads(line[len(REPORT_PREFIX) :])
            site = str(values["site"])
        except (ValueError, KeyError, TypeError):
            return  # a garbled line is shown (prefixed) but not counted
        self.record(site, values)

    def record(self, site: str, values: dict[str, Any]) -> None:
        """Take in a site's state: its backlog (required, an integer) and its counts."""
        depth = values.get("backlog")
        if not isinstance(depth, int) or isinstance(depth, bool):
            return
        now = time.monotonic()
        with self.lock:
            self.latest[site] = {**self.latest.get(site, {}), **values}
            if self.offline_since is not None and self.drained_after_s is None:
                self.peak_backlog[site] = max(self.peak_backlog.get(site, 0), depth)
            if (
                self.restored_at is not None
                and self.drained_after_s is None
                and all(
                    self.latest.get(s, {}).get("backlog", DRAINED_AT + 1) <= DRAINED_AT
                    for s in SITES
                )
            ):
                self.drained_after_s = round(now - self.restored_at, 1)


@contextmanager
def _signals(stop: threading.Event) -> Iterator[None]:
    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def _broker_stopped_at_exit(broker: DemoBroker | None) -> Iterator[None]:
    """Stop the private broker however the run ends (even if central never started)."""
    try:
        yield
    finally:
        if broker is not None:
            broker.stop()


def _kiosk_argv(broker_url: str, workdir: Path, options: DemoOptions) -> list[str]:
    return [
        sys.executable,
        "-m",
        "simulators.demo.site",
        "kiosk",
        "--broker",
        broker_url,
        "--workdir",
        str(workdir / "kiosk"),
        "--gap",
        str(options.gap_s),
        "--window",
        options.kiosk_window,
        "--screenshot-every",
        str(options.screenshot_every_s),
        "--log-level",
        options.log_level,
    ]


def run_demo(options: DemoOptions) -> int:
    """Run the demo; return 0 when everything ran and stopped cleanly with no gaps."""
    with tempfile.TemporaryDirectory(prefix="libedge-demo-") as temp:
        workdir = options.workdir or Path(temp)
        workdir.mkdir(parents=True, exist_ok=True)
        return _run(options, workdir)


def _run(options: DemoOptions, workdir: Path) -> int:
    stop = threading.Event()
    progress = Progress()
    gate: GateSite | None = None

    def on_line(name: str, line: str) -> None:
        progress.on_line(name, line)
        if gate is not None:
            gate.on_line(name, line)

    supervisor = Supervisor(on_line)
    broker = DemoBroker(workdir / "broker") if options.broker_url is None else None
    failures: list[str] = []
    with _signals(stop), _broker_stopped_at_exit(broker):
        if broker is not None:
            broker.start()
            supervisor.say(f"private Mosquitto on {broker.url} (pid {broker.pid})")
        url = broker.url if broker is not None else str(options.broker_url)
        central = CentralSimulator(url, workdir / "central.sqlite", cache_interval_s=1.0)
        central.start(timeout=20)
        dashboard: DashboardServer | None = None
        try:
            dashboard = DashboardServer(central, host=options.host, port=options.port).start()
            supervisor.say(f"staff dashboard: {dashboard.url}")
            if not options.headless and has_display():
                import webbrowser

                # Only with a display: without one, webbrowser falls back to a console
                # browser (w3m, lynx) that would take over the demo's terminal.
                webbrowser.open(dashboard.url)
            supervisor.start("kiosk", _kiosk_argv(url, workdir, options))
            if options.kiosk_window != "off" and options.workdir is None and not has_display():
                supervisor.say(
                    "the kiosk window's screenshots go to a temporary directory removed at"
                    " the end; --workdir DIR keeps them"
                )
            gate = GateSite(supervisor, workdir, url, options.gap_s)
            gate.start()
            failures = _timeline(
                options,
                stop=stop,
                supervisor=supervisor,
                broker=broker,
                progress=progress,
                gate=gate,
            )
        except (GateSiteError, DashboardError) as exc:
            failures.append(str(exc))
        finally:
            if broker is not None and not broker.running:
                broker.start()  # stopped early in the offline period: the backlog still drains
            statuses = _stop_sites(supervisor, gate, progress)
            failures += [f"{n} exited with status {s}" for n, s in statuses.items() if s != 0]
            summary = summarise(central, progress, failures)
            if dashboard is not None:
                dashboard.stop()
            central.stop()
            if broker is not None:
                broker.stop()
    print(summary.text(), flush=True)
    return 0 if summary.ok else 1


def _stop_sites(
    supervisor: Supervisor, gate: GateSite | None, progress: Progress
) -> dict[str, int]:
    """Stop the kiosk and the gate (each delivers its backlog first); return exit statuses."""
    statuses: dict[str, int] = {}
    for child in supervisor.children:
        if child.name == "kiosk":
            child.terminate()  # it delivers its backlog while the gate winds down
    if gate is not None:
        statuses.update(gate.stop())
        final = gate.final_backlog
        gate_state: dict[str, Any] = {"site": "gate", **gate.traffic_summary}
        if final is not None:
            gate_state["backlog"] = final
        with progress.lock:
            progress.latest["gate"] = {**progress.latest.get("gate", {}), **gate_state}
    statuses.update(supervisor.stop_all())
    return statuses


def _timeline(
    options: DemoOptions,
    *,
    stop: threading.Event,
    supervisor: Supervisor,
    broker: DemoBroker | None,
    progress: Progress,
    gate: GateSite,
) -> list[str]:
    """Wait out the duration (or a signal), taking the broker down and up on schedule."""
    started = time.monotonic()
    next_look = started
    outage = options.outage()
    end = started + options.duration_s if options.duration_s > 0 else None
    while not stop.is_set():
        now = time.monotonic()
        if end is not None and now >= end:
            break
        dead = supervisor.failed()
        if dead:
            return [f"{c.name} exited early with status {c.proc.returncode}" for c in dead]
        if broker is not None and outage is not None:
            at, length = outage
            if broker.running and progress.offline_since is None and now - started >= at:
                broker.stop()
                with progress.lock:
                    progress.offline_since = now
                supervisor.say(f"offline period: broker stopped for {length:g} s")
            elif not broker.running and now - started >= at + length:
                broker.start()
                with progress.lock:
                    progress.restored_at = time.monotonic()
                supervisor.say("offline period over: broker back, backlogs draining")
        if now >= next_look:
            next_look = now + 1.0
            depth = gate.backlog()
            if depth is not None:
                progress.record("gate", {"site": "gate", "backlog": depth})
        # Woken at once by a signal; otherwise a look at the timeline every 0.2 s.
        stop.wait(0.2)
    if stop.is_set():
        supervisor.say("signal received: stopping everything")
    return []
