"""The gate through the agent's local API: item states page by page, its health into the status."""

from __future__ import annotations

import datetime as dt
import queue
from collections.abc import Iterator
from pathlib import Path

import pytest

import gate.agent
from edge_agent.contract import CacheUpdate, ItemState, ItemStates
from edge_agent.contract.central import StatusDetails
from gate.agent import AgentPort, HandoverEvent, HttpAgent
from gate.errors import AgentUnavailable
from gate.options import GateOptions, ReaderSpec
from gate.service import GateService
from hardware.outputs import RecordingAlarm
from simulators.gate_traffic.engine import GateReaders
from tests.test_api_events import TOKEN, Api, build, close

WAIT = 10.0  # upper bound for anything to arrive; never reached when things work


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    built = build(tmp_path)
    yield built
    close(built)


def load_items(api: Api, count: int) -> None:
    """Put ``count`` item states into the agent's cache (as central would)."""
    assert api.service.caches is not None
    items = [ItemState(item_id=f"B{i:03d}", state="on_shelf") for i in range(count)]
    api.service.caches.apply(
        CacheUpdate(
            library_id="demo-library",
            version=5,
            time=dt.datetime.now(dt.UTC),
            body=ItemStates(items=items),
        )
    )


def test_item_states_are_read_page_by_page_through_the_client(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With pages of 2, all 5 item states arrive in order through AgentClient.item_states."""
    monkeypatch.setattr(gate.agent, "_PAGE", 2)
    load_items(api, 5)
    agent = HttpAgent(api.service.api_url or "", token=TOKEN)
    try:
        assert agent.item_states_version() == 5
        assert list(agent.item_states()) == [(f"B{i:03d}", "on_shelf") for i in range(5)]
    finally:
        agent.close()


def test_item_states_with_a_wrong_token_or_a_stopped_agent_are_unavailable(api: Api) -> None:
    """A wrong token and a vanished agent both end the listing with AgentUnavailable."""
    stranger = HttpAgent(api.service.api_url or "", token="wrong", timeout_s=2)
    try:
        with pytest.raises(AgentUnavailable, match="401"):
            list(stranger.item_states())
    finally:
        stranger.close()
    url = api.service.api_url or ""
    api.service.stop()
    gone = HttpAgent(url, token=TOKEN, timeout_s=0.5)
    try:
        with pytest.raises(AgentUnavailable):
            list(gone.item_states())
        with pytest.raises(AgentUnavailable):
            gone.report_details(StatusDetails(reader_connected=True))
    finally:
        gone.close()


def test_report_details_reaches_the_agent_without_the_gates_outbox_figure(api: Api) -> None:
    """The gate's reader and alarm figures are kept by the agent; its hand-over count is not."""
    agent = HttpAgent(api.service.api_url or "", token=TOKEN)
    try:
        agent.report_details(
            StatusDetails(reader_connected=False, alarms_today=7, outbox_pending=3)
        )
    finally:
        agent.close()
    assert api.ctx.device_details.reported() == {"reader_connected": False, "alarms_today": 7}


class RecordingAgent:
    """An agent port that passes everything on and queues each status report once it is made."""

    def __init__(self, inner: AgentPort) -> None:
        self.inner = inner
        self.reports: queue.Queue[StatusDetails] = queue.Queue()

    def append_event(self, event: HandoverEvent) -> None:
        self.inner.append_event(event)

    def item_states_version(self) -> int | None:
        return self.inner.item_states_version()

    def item_states(self) -> Iterator[tuple[str, str]]:
        return self.inner.item_states()

    def item_title(self, item_id: str) -> str | None:
        return self.inner.item_title(item_id)

    def report_details(self, details: StatusDetails) -> None:
        self.inner.report_details(details)
        self.reports.put(details)

    def close(self) -> None:
        self.inner.close()


def test_the_gate_reports_its_health_to_the_agent_every_interval(api: Api, tmp_path: Path) -> None:
    """A running gate sends reader_connected and alarms_today to the agent, again and again."""
    readers = GateReaders.start(lanes=1, antennas=1, tcp=True)
    agent = RecordingAgent(HttpAgent(api.service.api_url or "", token=TOKEN))
    try:
        service = GateService(
            GateOptions(
                device_id="gate-1",
                readers=(ReaderSpec("antenna-1", readers.urls[0]),),
                groups=((0,),),
                isil="VN-DEMO",
                data_dir=tmp_path / "gate",
                timezone="Asia/Ho_Chi_Minh",
                health_interval_s=0.05,
            ),
            agent=agent,
            alarm=RecordingAlarm(),
        )
        service.start()
        try:
            assert readers.wait_polled(WAIT)
            reports = [agent.reports.get(timeout=WAIT)]
            while reports[-1].reader_connected is not True:
                reports.append(agent.reports.get(timeout=WAIT))
            reports.append(agent.reports.get(timeout=WAIT))  # and it keeps reporting
            held = api.ctx.device_details.reported()
        finally:
            service.stop()
    finally:
        readers.stop()
    assert reports[-1].alarms_today == 0
    assert held == {"reader_connected": True, "alarms_today": 0}
