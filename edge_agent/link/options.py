"""The link's settings, its status snapshot and its counters (plain data, no threads)."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

from edge_agent.config import LibedgeSettings

__all__ = ["LinkCounters", "LinkOptions", "LinkStatus", "software_version"]


def software_version() -> str:
    """The installed libedge version, for DeviceStatus."""
    try:
        return version("libedge")[:40]
    except PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True, slots=True)
class LinkOptions:
    """Who this device is and how the link paces itself (from ``[site]`` and ``[agent]``)."""

    library_id: str
    device_id: str
    device_kind: str = "kiosk"
    window: int = 64
    receipt_window: int = 2000
    resend_after_s: float = 30.0
    request_timeout_s: float = 3.0
    status_interval_s: float = 60.0
    refused_after: int = 3
    retention_s: float = 7 * 24 * 3600.0
    prune_every_s: float = 3600.0
    #: Look at the outbox at least this often even without a wake-up: another process
    #: (a kiosk writing the file directly) may have appended.
    poll_interval_s: float = 1.0

    @classmethod
    def from_settings(cls, settings: LibedgeSettings) -> LinkOptions:
        """Options from a loaded configuration."""
        site, agent = settings.site, settings.agent
        return cls(
            library_id=site.library_id,
            device_id=site.device_id,
            device_kind=site.device_kind,
            window=agent.inflight_window,
            receipt_window=agent.receipt_window,
            resend_after_s=agent.resend_after_s,
            request_timeout_s=agent.request_timeout_s,
            status_interval_s=agent.status_interval_s,
            retention_s=agent.retention_days * 24 * 3600.0,
        )


@dataclass(frozen=True, slots=True)
class LinkStatus:
    """A snapshot of the link for the staff page and /health."""

    phase: str
    connected: bool
    broker: str
    problem: str | None
    problem_kind: str | None
    problem_at: float | None
    connected_since: float | None
    last_central_contact: float | None
    inflight: int
    awaiting_receipt: int
    probing: bool
    reconnects: int
    last_refusal: str | None
    out_of_service: bool


@dataclass
class LinkCounters:
    """Counts since start, for /metrics (requests by outcome, ignored messages by reason)."""

    requests: dict[str, int] = field(default_factory=dict)
    ignored: dict[str, int] = field(default_factory=dict)
    cache_updates: int = 0
    cache_stale: int = 0
    commands: int = 0
    connections: int = 0
