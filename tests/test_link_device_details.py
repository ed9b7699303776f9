"""What a device's processes report (reader connected, alarms today) reaches the published status."""

from __future__ import annotations

from edge_agent.api.details import ReportedDetails
from edge_agent.api.models import DeviceDetails
from edge_agent.config import BrokerSettings
from edge_agent.link import AgentLink
from edge_agent.link.options import LinkOptions
from edge_agent.outbox import MemoryOutbox


def test_reported_details_are_merged_into_status_details() -> None:
    """The link's status carries the fields the gate reported, and only those."""
    link = AgentLink(
        LinkOptions("lib", "gate-1", "gate"),  # type: ignore[arg-type]
        BrokerSettings(url="mqtt://127.0.0.1:1"),
        MemoryOutbox(),
    )
    assert link.status_details().reader_connected is None
    store = ReportedDetails()
    store.update(DeviceDetails(reader_connected=False, alarms_today=7))
    link.device_details = store.reported
    details = link.status_details()
    assert details.reader_connected is False
    assert details.alarms_today == 7
    assert details.printer is None
