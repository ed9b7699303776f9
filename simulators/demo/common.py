"""What both demo sites share: agent settings, progress reports, watching the parent.

A site runs in a child process of ``libedge demo``. It prints one ``report {json}`` line a
second (its agent's outbox backlog and its own counts), which the supervisor reads for the
summary, and stops when told (SIGTERM/SIGINT) or when its parent has gone, so that a demo
killed without warning leaves no site running.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from edge_agent.config import LibedgeSettings
from edge_agent.outbox import EventState
from edge_agent.service import AgentService

__all__ = [
    "LIBRARY_ID",
    "REPORT_PREFIX",
    "agent_settings",
    "backlog",
    "drain",
    "every",
    "report",
    "stop_event",
]

#: The demo library (the central simulator's default seed).
LIBRARY_ID = "demo-library"
#: The ISIL the demo's tags and gate use.
ISIL = "VN-DEMO"
#: Lines a site prints for the supervisor start with this.
REPORT_PREFIX = "report "


def agent_settings(
    workdir: Path, broker_url: str, device_id: str, kind: str, token: str, **extra: Any
) -> LibedgeSettings:
    """A site's edge agent: its own database, an API on a free port, quick reconnects."""
    data: dict[str, Any] = {
        "site": {
            "library_id": LIBRARY_ID,
            "device_id": device_id,
            "device_kind": kind,
            "isil": ISIL,
        },
        "agent": {
            "database": str(workdir / f"{device_id}-agent.sqlite"),
            "api_port": 0,
            "api_token": token,
            "request_timeout_s": 1.0,
            # Short so the dashboard shows the outbox depth during the offline period.
            "status_interval_s": 2.0,
            # Events sent just before the broker stopped are re-sent soon after it is back.
            "resend_after_s": 3.0,
            "broker": {"url": broker_url, "reconnect_min_s": 0.2, "reconnect_max_s": 1.0},
        },
    }
    for section, values in extra.items():
        data.setdefault(section, {}).update(values)
    return LibedgeSettings.model_validate(data)


def backlog(agent: AgentService) -> int:
    """Events the agent has not had confirmed by central yet (pending + sent)."""
    outbox = agent.outbox
    if outbox is None:
        return 0
    counts = outbox.stats().counts
    return int(counts[EventState.PENDING] + counts[EventState.SENT])


def drain(agent: AgentService, stop_waiting: float) -> int:
    """Wait (bounded) until central confirmed everything the agent holds; return what is left."""
    waited = threading.Event()  # never set: a bounded pause between looks at the outbox
    left = backlog(agent)
    remaining = stop_waiting
    while left and remaining > 0:
        waited.wait(0.1)
        remaining -= 0.1
        left = backlog(agent)
    return left


def report(site: str, **values: Any) -> None:
    """Print one progress line for the supervisor."""
    print(REPORT_PREFIX + json.dumps({"site": site, **values}, sort_keys=True), flush=True)


def stop_event() -> threading.Event:
    """An event set by SIGTERM, SIGINT, or the parent process going away."""
    stop = threading.Event()
    parent = os.getppid()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)

    def watch_parent() -> None:
        # Re-parented (to init or a subreaper) means the demo died without stopping us.
        while not stop.wait(0.5):
            if os.getppid() != parent:
                stop.set()

    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()
    return stop


def every(stop: threading.Event, interval: float, action: Callable[[], None]) -> threading.Thread:
    """Run ``action`` every ``interval`` seconds until ``stop`` is set, on a daemon thread."""

    def loop() -> None:
        while not stop.wait(interval):
            try:
                action()
            except Exception as exc:
                # A report that fails (the agent stopping under it) must not end the reports.
                print(f"report failed: {exc}", flush=True)

    thread = threading.Thread(target=loop, name="report", daemon=True)
    thread.start()
    return thread
