"""What the staff dashboard shows, as plain JSON-ready dicts built from the simulator's queries.

Kept apart from the web app so that it can be read and tested without a server: one
:func:`snapshot` is everything the page draws (devices, the live feed, hourly charts, gaps and
duplicates), and the page redraws itself from each snapshot the server streams.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from simulators.central.queries import CentralStats, DeviceInfo, Gap, StoredEvent

__all__ = ["DashboardSource", "device_view", "event_view", "hourly", "snapshot"]

#: How many events the live feed shows, newest first.
FEED_LENGTH = 50


class DashboardSource(Protocol):
    """The part of :class:`~simulators.central.CentralSimulator` the dashboard reads."""

    tz: ZoneInfo

    def stats(self) -> CentralStats:
        """Counts over the whole database."""

    def events(self, device_id: str | None = None, kind: str | None = None) -> list[StoredEvent]:
        """Stored events."""

    def gaps(self, device_id: str | None = None) -> list[Gap]:
        """Open sequence gaps."""

    def devices(self) -> list[DeviceInfo]:
        """Known devices."""

    def today(self) -> dt.date:
        """Today in the library's time zone."""


def _local_time(text: str | None, tz: ZoneInfo) -> str | None:
    """An ISO timestamp as the library's wall-clock time (HH:MM:SS), for people to read."""
    if text is None:
        return None
    try:
        return dt.datetime.fromisoformat(text).astimezone(tz).strftime("%H:%M:%S")
    except ValueError:
        return text  # shown as stored rather than hidden


def device_view(device: DeviceInfo, tz: ZoneInfo) -> dict[str, Any]:
    """One row of the devices table: online state and outbox depth."""
    details = device.status.details if device.status is not None else None
    return {
        "device_id": device.device_id,
        "kind": device.kind,
        # Never heard from is neither online nor offline: the page shows it as "unknown".
        "online": device.online,
        "last_seen": device.last_seen,
        "last_seen_local": _local_time(device.last_seen, tz),
        "outbox_pending": details.outbox_pending if details else None,
        "outbox_unconfirmed": details.outbox_unconfirmed if details else None,
        "outbox_dead": details.outbox_dead if details else None,
        "out_of_service": details.out_of_service if details else False,
    }


def _describe(event: StoredEvent) -> str:
    """One human line for the feed; alarms name the items that set the gate off."""
    p = event.envelope.payload
    offline = " (offline)" if getattr(p, "offline", False) else ""
    text: str = p.type
    match p.type:
        case "checkout":
            text = f"checkout of {p.item_id} to {p.patron_id}, due {p.due_date}{offline}"
        case "checkin":
            hold = ", to the hold shelf" if p.hold_alert else ""
            text = f"return of {p.item_id}{hold}{offline}"
        case "renewal":
            text = f"renewal of {p.item_id} for {p.patron_id}, due {p.due_date}{offline}"
        case "refusal":
            what = f" of {p.item_id}" if p.item_id else ""
            text = f"refused {p.action}{what}: {p.reason}{offline}"
        case "security_write_failure":
            text = f"security write failed on {p.item_id or p.tag_uid} (wanted {p.wanted})"
        case "gate_alarm":
            names = ", ".join(
                f"{i.item_id or i.tag_uid}" + (f" “{i.title}”" if i.title else "") for i in p.items
            )
            text = f"ALARM: {names}"
        case "visitor_count":
            text = f"visitors: {p.entered} in, {p.exited} out"
    return text


def event_view(event: StoredEvent, tz: ZoneInfo) -> dict[str, Any]:
    """One line of the live feed (times also as the library's wall-clock time)."""
    return {
        "key": f"{event.device_id}:{event.seq}",
        "device_id": event.device_id,
        "seq": event.seq,
        "kind": event.kind,
        "outcome": event.outcome,
        "time": event.envelope.time.isoformat(),
        "local_time": event.envelope.time.astimezone(tz).strftime("%H:%M:%S"),
        "received_at": event.received_at,
        "text": _describe(event),
    }


def hourly(events: list[StoredEvent], tz: ZoneInfo, day: dt.date) -> dict[str, list[int]]:
    """Visitors (people who came in) and checkouts per hour of ``day``, in the library's zone."""
    visitors = [0] * 24
    checkouts = [0] * 24
    for event in events:
        p = event.envelope.payload
        if p.type == "visitor_count":
            start = p.interval_start.astimezone(tz)
            if start.date() == day:
                visitors[start.hour] += p.entered
        elif p.type == "checkout":
            when = event.envelope.time.astimezone(tz)
            if when.date() == day:
                checkouts[when.hour] += 1
    return {"visitors": visitors, "checkouts": checkouts}


def snapshot(source: DashboardSource, feed_length: int = FEED_LENGTH) -> dict[str, Any]:
    """Everything the page shows, in one JSON-ready dict."""
    stats = source.stats()
    events = source.events()
    newest = sorted(events, key=lambda e: (e.received_at, e.device_id, e.seq), reverse=True)
    return {
        "devices": [device_view(d, source.tz) for d in source.devices()],
        "feed": [event_view(e, source.tz) for e in newest[:feed_length]],
        "charts": hourly(events, source.tz, source.today()),
        "gaps": [
            {"device_id": g.device_id, "first": g.first, "last": g.last, "size": g.size}
            for g in source.gaps()
        ],
        "totals": {
            "events": stats.events,
            "by_kind": dict(sorted(stats.by_kind.items())),
            "duplicates": stats.duplicates_total,
            "duplicates_by_device": dict(sorted(stats.duplicates.items())),
            "open_gaps": stats.open_gaps,
            "missing": stats.missing,
            "gaps_filled": stats.gaps_filled,
            "rejected": stats.rejected_total,
            "exceptions_open": stats.exceptions_open,
        },
    }
