"""The gate's health: readers, last read, alarms today, what waits for the edge agent.

:class:`GateHealth` is one snapshot, built by the service from its parts. It is written as
JSON to ``health.json`` in the gate's data directory (atomically: a new file renamed over
the old), which ``libedge gate status`` prints and any supervisor can read, and it maps onto
the contract's :class:`~edge_agent.contract.StatusDetails` (``reader_connected``,
``alarms_today``, ``outbox_pending``) for the device status the edge agent publishes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_agent.contract import StatusDetails
from gate.handover import HandoverStatus
from gate.poller import AntennaHealth

__all__ = ["HEALTH_FILE", "GateHealth", "read_health", "write_health"]

HEALTH_FILE = "health.json"


def _iso(when: float | None) -> str | None:
    if when is None:
        return None
    return dt.datetime.fromtimestamp(when, dt.UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class GateHealth:
    """Everything staff need to see of a gate, at one moment."""

    device_id: str
    running: bool
    time: float
    started: float
    antennas: tuple[AntennaHealth, ...]
    alarms_today: int
    alarms_total: int
    last_alarm: float | None
    open_passes: int
    reads_total: int
    passes_total: int
    output_errors: int
    handover: HandoverStatus
    people_counter: str | None
    people_counter_problem: str | None
    people_counter_last_problem: str | None
    people_counter_problems: int
    visitors_in: int
    visitors_out: int
    item_states_version: int | None
    problems: tuple[str, ...]

    @property
    def readers_connected(self) -> bool:
        """Whether every reader is connected and answering."""
        return bool(self.antennas) and all(a.answering for a in self.antennas)

    @property
    def last_read(self) -> float | None:
        """The latest read on any antenna."""
        reads = [a.last_read for a in self.antennas if a.last_read is not None]
        return max(reads) if reads else None

    @property
    def ok(self) -> bool:
        """No problem to report."""
        return not self.problems

    def status_details(self) -> StatusDetails:
        """The parts of the contract's device status that a gate fills in."""
        return StatusDetails(
            reader_connected=self.readers_connected,
            alarms_today=self.alarms_today,
            outbox_pending=self.handover.pending + self.handover.held_in_memory,
        )

    def as_json(self) -> dict[str, Any]:
        """Plain data for the health file (times as ISO 8601, UTC)."""
        antennas = []
        for antenna in self.antennas:
            data = dataclasses.asdict(antenna)
            data["last_read"] = _iso(antenna.last_read)
            antennas.append(data)
        return {
            "device_id": self.device_id,
            "running": self.running,
            "ok": self.ok,
            "problems": list(self.problems),
            "time": _iso(self.time),
            "started": _iso(self.started),
            "readers_connected": self.readers_connected,
            "last_read": _iso(self.last_read),
            "antennas": antennas,
            "alarms_today": self.alarms_today,
            "alarms_total": self.alarms_total,
            "last_alarm": _iso(self.last_alarm),
            "open_passes": self.open_passes,
            "reads_total": self.reads_total,
            "passes_total": self.passes_total,
            "output_errors": self.output_errors,
            "handover": dataclasses.asdict(self.handover),
            "people_counter": self.people_counter,
            "people_counter_problem": self.people_counter_problem,
            "people_counter_last_problem": self.people_counter_last_problem,
            "people_counter_problems": self.people_counter_problems,
            "visitors_in": self.visitors_in,
            "visitors_out": self.visitors_out,
            "item_states_version": self.item_states_version,
        }


def write_health(directory: Path, health: GateHealth) -> Path:
    """Write the snapshot to ``directory/health.json`` atomically; return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / HEALTH_FILE
    fd, tmp = tempfile.mkstemp(prefix=".health-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(health.as_json(), handle, ensure_ascii=False, indent=2)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def read_health(directory: Path) -> dict[str, Any]:
    """Read the last snapshot written to ``directory`` (raises OSError/ValueError)."""
    with (directory / HEALTH_FILE).open(encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict):
        raise ValueError(f"{directory / HEALTH_FILE} does not hold a health snapshot")
    return data
