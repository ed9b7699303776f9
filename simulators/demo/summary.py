"""The summary ``libedge demo`` prints at the end, from central's database and the sites."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from simulators.central import CentralSimulator

if TYPE_CHECKING:
    from .runner import Progress

__all__ = ["Summary", "summarise"]


@dataclass
class Summary:
    """Counts for the end of the demo; ``ok`` when nothing failed and no gap is open."""

    events_by_kind: dict[str, int]
    alarms: int
    alarm_items: list[str]
    duplicates_dropped: int
    open_gaps: int
    missing: int
    gaps_filled: int
    rejected: int
    sites: dict[str, dict[str, Any]]
    peak_backlog: dict[str, int]
    drained_after_s: float | None
    offline: bool
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Everything ran, stopped cleanly, and central has every sequence number."""
        return not self.failures and self.open_gaps == 0

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data."""
        return {
            "events_by_kind": self.events_by_kind,
            "alarms": self.alarms,
            "alarm_items": self.alarm_items,
            "duplicates_dropped": self.duplicates_dropped,
            "open_gaps": self.open_gaps,
            "missing": self.missing,
            "gaps_filled": self.gaps_filled,
            "rejected": self.rejected,
            "sites": self.sites,
            "peak_backlog": self.peak_backlog,
            "drained_after_s": self.drained_after_s,
            "offline_period": self.offline,
            "failures": self.failures,
            "ok": self.ok,
        }

    def text(self) -> str:
        """Human lines, then one ``summary {json}`` line for scripts."""
        kinds = ", ".join(f"{k} {n}" for k, n in self.events_by_kind.items()) or "none"
        lines = [
            "=== libedge demo: summary ===",
            f"events by kind:      {kinds}",
            f"gate alarms:         {self.alarms}"
            + (f" ({', '.join(self.alarm_items[:10])})" if self.alarm_items else ""),
            f"duplicates dropped:  {self.duplicates_dropped}",
            f"sequence gaps open:  {self.open_gaps} ({self.missing} missing;"
            f" {self.gaps_filled} filled) - zero expected",
        ]
        if self.offline:
            drained = (
                f"drained {self.drained_after_s:g} s after the broker came back"
                if self.drained_after_s is not None
                else "not seen to drain while running"
            )
            peaks = ", ".join(f"{s} {n}" for s, n in sorted(self.peak_backlog.items())) or "none"
            lines.append(f"offline backlog:     peak {peaks}; {drained}")
        for site, values in sorted(self.sites.items()):
            shown = {k: v for k, v in values.items() if k not in ("site", "final")}
            lines.append(f"{site + ':':<21}{json.dumps(shown, sort_keys=True)}")
        for failure in self.failures:
            lines.append(f"FAILED: {failure}")
        lines.append("summary " + json.dumps(self.as_dict(), sort_keys=True, ensure_ascii=False))
        return "\n".join(lines)


def summarise(central: CentralSimulator, progress: Progress, failures: list[str]) -> Summary:
    """Read central's final counts and the sites' last reports."""
    stats = central.stats()
    alarm_items: list[str] = []
    alarms = central.events(kind="gate_alarm")
    for event in alarms:
        payload = event.envelope.payload
        if payload.type == "gate_alarm":
            alarm_items += [i.item_id or i.tag_uid for i in payload.items]
    with progress.lock:
        return Summary(
            events_by_kind=dict(sorted(stats.by_kind.items())),
            alarms=len(alarms),
            alarm_items=alarm_items,
            duplicates_dropped=stats.duplicates_total,
            open_gaps=stats.open_gaps,
            missing=stats.missing,
            gaps_filled=stats.gaps_filled,
            rejected=stats.rejected_total,
            sites=dict(progress.latest),
            peak_backlog=dict(progress.peak_backlog),
            drained_after_s=progress.drained_after_s,
            offline=progress.offline_since is not None,
            failures=list(failures),
        )
