"""The demo's gate site, made of the real commands in supervised processes.

``libedge sim gate-traffic --people`` serves two simulated pedestal readers and a people
counter and walks patrons through (some carrying items nobody checked out); once it prints
their URLs, a site configuration naming them is written, and ``libedge agent run`` (the
gate's edge agent) and ``libedge gate run`` (the gate agent, alarm output ``sim:``) start on
it. The gate's backlog is read from its agent's local API (``GET /outbox``).

Stopping is ordered so that nothing is lost: walkers and gate first (the gate commits its
partial visitor count and hands everything to the agent), then the agent once central has
confirmed what it holds (bounded wait).
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from pathlib import Path
from typing import Any

from edge_agent.client import AgentClient
from edge_agent.config import load_config

from .broker import free_port
from .common import ISIL, LIBRARY_ID
from .supervisor import Child, Supervisor

__all__ = ["GateSite", "GateSiteError"]

TOKEN = "demo-gate-token"  # noqa: S105 - a loopback-only demo API's token, not a secret
#: Walkers gate-traffic plans (it exits after the last; at ~1 s each, hours of demo).
PASSAGES = 10_000
#: Longest wait, when stopping, for central to confirm what the gate's agent still holds.
DRAIN_S = 15.0


class GateSiteError(RuntimeError):
    """The gate site could not be started."""


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


class GateSite:
    """Gate traffic, the gate's agent and the gate agent, as three supervised children."""

    def __init__(
        self, supervisor: Supervisor, workdir: Path, broker_url: str, gap_s: float
    ) -> None:
        self.supervisor = supervisor
        self.workdir = workdir
        self.broker_url = broker_url
        self.gap_s = gap_s
        self.api_port = free_port()
        self.readers: list[str] = []
        self.people: str | None = None
        self.traffic_summary: dict[str, Any] = {}
        self._ready = threading.Event()
        self._children: list[Child] = []
        self._client: AgentClient | None = None
        #: The agent's backlog when it was stopped (None: its API did not answer).
        self.final_backlog: int | None = None

    def on_line(self, name: str, line: str) -> None:
        """Take in what gate-traffic prints: the URLs, ``ready``, and its final summary."""
        if name != "gate-traffic":
            return
        if line.startswith("reader: "):
            self.readers.append(line[len("reader: ") :].strip())
        elif line.startswith("people: "):
            self.people = line[len("people: ") :].strip()
        elif line == "ready":
            self._ready.set()
        elif line.startswith("summary: "):
            # A garbled summary is shown (prefixed) anyway; the demo's summary goes without it.
            with contextlib.suppress(ValueError, TypeError):
                self.traffic_summary = dict(json.loads(line[len("summary: ") :]))

    def write_config(self) -> Path:
        """The gate's site configuration, naming the simulated devices."""
        data = self.workdir / "gate"
        data.mkdir(parents=True, exist_ok=True)
        text = f"""# Written by libedge demo for its gate site.
[site]
library_id = "{LIBRARY_ID}"
device_id = "gate-1"
device_kind = "gate"
isil = "{ISIL}"

[devices]
gate_readers = {_toml_list(self.readers)}
alarm_output = "sim:"
people_counter = "{self.people}"

[agent]
database = "{data / "agent.sqlite"}"
api_host = "127.0.0.1"
api_port = {self.api_port}
api_token = "{TOKEN}"
request_timeout_s = 1.0
status_interval_s = 2.0
resend_after_s = 3.0

[agent.broker]
url = "{self.broker_url}"
reconnect_min_s = 0.2
reconnect_max_s = 1.0

[gate]
quiet_time_s = 0.3
alarm_duration_s = 0.5
visitor_interval_s = 20
agent_url = "http://127.0.0.1:{self.api_port}"
data_dir = "{data / "gate"}"
cache_refresh_s = 2.0
health_interval_s = 5.0
antenna_names = ["left", "right"]
"""
        path = data / "site.toml"
        path.write_text(text, encoding="utf-8")
        load_config(path)  # a mistake here is the demo's: say so before starting anything
        return path

    def start(self, timeout: float = 30.0) -> None:
        """Start the walkers, then (with their URLs) the gate's agent and the gate agent."""
        libedge = [sys.executable, "-m", "edge_agent.cli"]
        traffic = [*libedge, "sim", "gate-traffic", "--people", "--isil", ISIL]
        # gate-traffic plans every passage before it starts: enough for hours, made in a second.
        traffic += ["--passages", str(PASSAGES), "--gap", str(self.gap_s), "--wait-for-gate", "120"]
        self._children.append(self.supervisor.start("gate-traffic", traffic))
        if not self._ready.wait(timeout) or len(self.readers) != 2 or self.people is None:
            raise GateSiteError("gate-traffic did not print two readers and a people counter")
        config = str(self.write_config())
        agent = [*libedge, "agent", "run", "--config", config, "--log-level", "WARNING"]
        self._children.append(self.supervisor.start("gate-agent", agent))
        self._children.append(
            self.supervisor.start("gate", [*libedge, "gate", "run", "--config", config])
        )
        self._client = AgentClient(f"http://127.0.0.1:{self.api_port}", token=TOKEN)

    def backlog(self) -> int | None:
        """Events the gate's agent holds unconfirmed (None while its API does not answer)."""
        if self._client is None:
            return None
        try:
            return self._client.outbox().unconfirmed
        except Exception:
            return None  # starting, stopping, or busy: asked again a second later

    def stop(self) -> dict[str, int]:
        """Stop walkers and gate, let the agent deliver (bounded), stop it; return statuses."""
        statuses: dict[str, int] = {}
        # The walkers first, while the gate still polls: the last patron finishes walking
        # out and is seen leaving, so no passage is cut off by the gate going away.
        for name in ("gate-traffic", "gate"):
            for child in self._children:
                if child.name == name:
                    statuses[child.name] = child.stop()
        pause = threading.Event()  # never set: a bounded pause between looks at the outbox
        waited = 0.0
        self.final_backlog = self.backlog()
        while waited < DRAIN_S and (self.final_backlog or 0) > 0:
            pause.wait(0.2)
            waited += 0.2
            self.final_backlog = self.backlog()
        for child in self._children:
            if child.name == "gate-agent":
                statuses[child.name] = child.stop()
        if self._client is not None:
            self._client.close()
            self._client = None
        return statuses
