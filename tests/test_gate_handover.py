"""The gate's durable hand-over queue (gate.handover) and its two agent adapters (gate.agent)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.caches import CacheStore
from edge_agent.config import LibedgeSettings
from edge_agent.contract import CacheUpdate, ItemState, ItemStates, VisitorCount
from edge_agent.contract.central import StatusDetails
from edge_agent.outbox import EventState, InvalidArgument, OutboxLimits, SqliteOutbox
from edge_agent.service import AgentService
from gate.agent import HandoverEvent, HttpAgent, OutboxAgent, open_agent
from gate.errors import AgentRejected, AgentUnavailable, GateConfigError
from gate.handover import Handover


def visitors(n: int) -> str:
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=n)
    return VisitorCount(
        interval_start=start, interval_end=start + dt.timedelta(hours=1), entered=n, exited=0
    ).model_dump_json()


class SwitchableAgent:
    """The real outbox behind a switch that makes the agent unreachable, as a stopped one is."""

    def __init__(self, inner: OutboxAgent) -> None:
        self.inner = inner
        self.down = False
        self.lose_answers = 0  # commits, then fails as if the answer got lost on the way

    def append_event(self, event: HandoverEvent) -> None:
        if self.down:
            raise AgentUnavailable("connection refused")
        self.inner.append_event(event)
        if self.lose_answers:
            self.lose_answers -= 1
            raise AgentUnavailable("the answer was lost")

    def item_states_version(self) -> int | None:
        return self.inner.item_states_version()

    def item_states(self) -> Iterator[tuple[str, str]]:
        return self.inner.item_states()

    def item_title(self, item_id: str) -> str | None:
        return self.inner.item_title(item_id)

    def report_details(self, details: StatusDetails) -> None:
        self.inner.report_details(details)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[SwitchableAgent]:
    inner = OutboxAgent.open(tmp_path / "agent.sqlite", "gate-1")
    yield SwitchableAgent(inner)
    inner.close()


def stored(agent: SwitchableAgent) -> list[int]:
    """The 'entered' figure of every event in the agent's outbox, in seq order."""
    events = agent.inner.outbox.due("gate-1", 100_000, resend_after=1e9)
    return [json.loads(e.payload)["entered"] for e in events]


def put(handover: Handover, n: int) -> bool:
    return handover.put("visitor_count", visitors(n), event_time=1.0 + n, clock_trusted=True)


def test_events_reach_the_agent_in_order(tmp_path: Path, agent: SwitchableAgent) -> None:
    """Committed events are handed over oldest first and leave the gate's queue."""
    handover = Handover(tmp_path / "gate.sqlite", "gate-1", agent)
    handover.start()
    try:
        for n in range(20):
            assert put(handover, n)
        assert handover.wait_idle(10)
        status = handover.status()
    finally:
        handover.stop()
    assert stored(agent) == list(range(20))
    assert (status.pending, status.handed_over, status.agent_ok) == (0, 20, True)


def test_agent_down_keeps_everything_and_a_restart_delivers_it(
    tmp_path: Path, agent: SwitchableAgent
) -> None:
    """With the agent down events wait on disk, survive a gate restart, and arrive once each."""
    agent.down = True
    first = Handover(tmp_path / "gate.sqlite", "gate-1", agent, backoff_max_s=0.05)
    first.start()
    for n in range(30):
        put(first, n)
    assert not first.wait_idle(0.3)
    status = first.status()
    assert status.pending == 30
    assert status.agent_ok is False
    assert "refused" in (status.last_error or "")
    first.stop()
    agent.down = False
    second = Handover(tmp_path / "gate.sqlite", "gate-1", agent)
    second.start()
    try:
        put(second, 30)
        assert second.wait_idle(10)
    finally:
        second.stop()
    assert stored(agent) == list(range(31))


def test_a_lost_answer_does_not_store_an_event_twice(
    tmp_path: Path, agent: SwitchableAgent
) -> None:
    """An event the agent stored but whose answer was lost is handed over again and kept once."""
    agent.lose_answers = 1
    handover = Handover(tmp_path / "gate.sqlite", "gate-1", agent, backoff_max_s=0.05)
    handover.start()
    try:
        put(handover, 1)
        put(handover, 2)
        assert handover.wait_idle(10)
    finally:
        handover.stop()
    assert stored(agent) == [1, 2]


def test_a_refused_event_is_dead_lettered_and_the_rest_go_on(tmp_path: Path) -> None:
    """An event the agent can never accept is kept for staff, never dropped, never blocking."""
    # This agent refuses payloads over 200 bytes for good, as it would a contract violation.
    strict = OutboxAgent(
        SqliteOutbox(tmp_path / "agent.sqlite", limits=OutboxLimits(max_payload_bytes=200)),
        None,
        "gate-1",
        owns=True,
    )
    handover = Handover(tmp_path / "gate.sqlite", "gate-1", strict)
    big = json.dumps({"type": "visitor_count", "padding": "x" * 300})
    handover.put("visitor_count", big, event_time=1.0, clock_trusted=True)
    put(handover, 5)
    with pytest.raises(InvalidArgument):
        handover.put("visitor_count", "{broken", event_time=1.0, clock_trusted=True)
    handover.start()
    try:
        assert handover.wait_idle(10)
        status = handover.status()
    finally:
        handover.stop()
        held = strict.outbox.due("gate-1", 10, resend_after=1e9)
        strict.close()
    assert [json.loads(e.payload)["entered"] for e in held] == [5]
    assert status.dead == 1
    gate_store = SqliteOutbox(tmp_path / "gate.sqlite")
    try:
        dead = gate_store.dead_letters()
    finally:
        gate_store.close()
    assert [e.payload for e in dead] == [big]
    assert "refused by the edge agent" in (dead[0].dead_reason or "")


def test_a_full_queue_holds_events_in_memory_and_drains_in_order(
    tmp_path: Path, agent: SwitchableAgent
) -> None:
    """At the cap events are held in memory and flagged; nothing is lost or reordered."""
    agent.down = True
    handover = Handover(tmp_path / "gate.sqlite", "gate-1", agent, max_events=100)
    handover.start()
    try:
        on_disk = [put(handover, n) for n in range(130)]
        assert on_disk == [True] * 100 + [False] * 30
        status = handover.status()
        assert status.full
        assert status.held_in_memory == 30
        agent.down = False
        assert handover.wait_idle(20)
        assert not handover.status().full
    finally:
        handover.stop()
    assert stored(agent) == list(range(130))


def test_outbox_agent_reads_the_agents_caches(tmp_path: Path) -> None:
    """Item states, their version and titles come from the agent's cache tables."""
    path = tmp_path / "agent.sqlite"
    caches = CacheStore(path)
    items = [ItemState(item_id=f"I{n:04d}", state="on_loan", title=f"T{n}") for n in range(2500)]
    caches.apply(
        CacheUpdate(
            library_id="demo-library",
            version=7,
            time=dt.datetime.now(dt.UTC),
            body=ItemStates(items=items),
        )
    )
    caches.close()
    agent = open_agent(f"sqlite://{path}", device_id="gate-1", token=None)
    try:
        assert agent.item_states_version() == 7
        listed = list(agent.item_states())
        assert len(listed) == 2500
        assert listed[0] == ("I0000", "on_loan")
        assert agent.item_title("I0042") == "T42"
        assert agent.item_title("nope") is None
    finally:
        agent.close()


def test_open_agent_names_a_url_it_cannot_use() -> None:
    """An agent URL of an unknown kind is a configuration error that names the key."""
    with pytest.raises(GateConfigError, match=r"gate\.agent_url"):
        open_agent("ftp://x", device_id="gate-1", token=None)


def test_http_agent_against_the_real_local_api(tmp_path: Path) -> None:
    """The gate hands events to a running edge agent's API and reads its caches; a stopped one is unavailable."""
    settings = LibedgeSettings.model_validate(
        {
            "site": {"device_id": "gate-1", "device_kind": "gate"},
            "agent": {
                "database": str(tmp_path / "agent.sqlite"),
                "api_port": 0,
                "api_token": "secret-token",
                # Nothing listens here: the link retries in the background, the API works.
                "broker": {"url": "mqtt://127.0.0.1:9", "reconnect_min_s": 5.0},
            },
        }
    )
    service = AgentService(settings)
    service.start()
    try:
        assert service.caches is not None
        service.caches.apply(
            CacheUpdate(
                library_id="demo-library",
                version=3,
                time=dt.datetime.now(dt.UTC),
                body=ItemStates(items=[ItemState(item_id="B1", state="on_shelf", title="Số đỏ")]),
            )
        )
        agent = HttpAgent(service.api_url, token="secret-token")
        try:
            event = HandoverEvent(
                "6f1c1e7e-1d2b-4c39-9a4b-3f0d2d5e7a11", "visitor_count", visitors(4), 5.0, False
            )
            agent.append_event(event)
            agent.append_event(event)  # a retry: stored once
            with pytest.raises(AgentRejected):
                agent.append_event(HandoverEvent(event.event_id[:-1] + "2", "x", "{}", 5.0, True))
            assert agent.item_states_version() == 3
            assert list(agent.item_states()) == [("B1", "on_shelf")]
            assert agent.item_title("B1") == "Số đỏ"
            assert agent.item_title("nope") is None
        finally:
            agent.close()
        assert service.outbox is not None
        held = service.outbox.due("gate-1", 10, resend_after=1e9)
        assert [(e.event_id, e.state) for e in held] == [(event.event_id, EventState.PENDING)]
        assert held[0].clock_trusted is False
        url = service.api_url
    finally:
        service.stop()
    agent = HttpAgent(url, token="secret-token", timeout_s=0.5)
    try:
        with pytest.raises(AgentUnavailable):
            agent.append_event(event)
        with pytest.raises(AgentUnavailable):
            agent.item_states_version()
    finally:
        agent.close()
