"""AgentClient, the kiosk's and gate's view of the agent, over TCP and a unix socket."""

from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from pathlib import Path

import pytest

from edge_agent.client import (
    AgentClient,
    AgentUnauthorized,
    AgentUnavailable,
    OutboxFullError,
)
from edge_agent.config import AgentSettings, BrokerSettings, LibedgeSettings, SiteSettings
from edge_agent.contract import (
    Checkin,
    Checkout,
    CheckoutAuth,
    PatronAnswer,
    PatronLookup,
    RefusalReason,
    Response,
)
from edge_agent.link import Offline
from edge_agent.outbox import EventState, OutboxLimits, SqliteOutbox
from edge_agent.service import AgentService
from simulators.central import CentralSimulator
from tests.support.broker import MosquittoBroker, free_port

TOKEN = "client-token"


def settings(tmp_path: Path, broker_url: str, device_id: str, **agent: object) -> LibedgeSettings:
    return LibedgeSettings(
        site=SiteSettings(library_id="demo-library", device_id=device_id),
        agent=AgentSettings(
            database=tmp_path / "agent.sqlite",
            api_port=0,
            api_token=TOKEN,  # type: ignore[arg-type]
            request_timeout_s=5.0,
            broker=BrokerSettings(url=broker_url, reconnect_min_s=0.1, reconnect_max_s=1),
            **agent,  # type: ignore[arg-type]
        ),
    )


@pytest.mark.broker
def test_the_client_appends_asks_and_central_confirms_end_to_end(
    broker: MosquittoBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Through the client: central answers a lookup, refuses a wrong PIN, and confirms events."""
    caplog.set_level(logging.DEBUG)
    device_id = f"kiosk-{uuid.uuid4().hex[:6]}"
    with (
        CentralSimulator(broker.url, tmp_path / "central.sqlite", instance="c1") as central,
        AgentService(settings(tmp_path, broker.url, device_id)) as service,
        AgentClient(service.api_url, token=TOKEN) as client,
    ):
        assert service.link is not None
        assert service.link.wait_for(lambda: service.link.status().connected, 10)  # type: ignore[union-attr]
        answer = client.ask(PatronLookup(patron_id="P0001", pin="1234"))
        assert isinstance(answer, Response)
        assert answer.outcome == "ok"
        assert isinstance(answer.body, PatronAnswer)
        assert answer.body.may_borrow
        wrong = client.ask(PatronLookup(patron_id="P0001", pin="9999"))
        assert isinstance(wrong, Response)
        assert wrong.reason == RefusalReason.WRONG_PIN
        blocked = client.ask(CheckoutAuth(patron_id="P0002", item_id="31000001"))
        assert isinstance(blocked, Response)
        assert blocked.outcome == "refused"
        due = dt.date.today() + dt.timedelta(days=14)
        stored = [
            client.append(Checkout(patron_id="P0007", item_id=f"ITEM-{i}", due_date=due))
            for i in range(3)
        ]
        stored.append(client.append(Checkin(item_id="ITEM-0")))
        assert [s.seq for s in stored] == [1, 2, 3, 4]
        events = central.wait_for_events(4, device_id=device_id)
        assert [e.seq for e in events] == [1, 2, 3, 4]
        assert [str(e.envelope.event_id) for e in events] == [str(s.event_id) for s in stored]
        assert service.link.wait_for(  # type: ignore[union-attr]
            lambda: client.outbox().counts["confirmed"] == 4, 10
        )
        assert client.health().status == "ok"
    # The PINs typed above went to central on the wire only: no log line holds them.
    for pin in ("1234", "9999"):
        assert not re.search(rf"(?<![0-9A-Za-z]){pin}(?![0-9A-Za-z])", caplog.text)
    assert (tmp_path / "agent.sqlite").read_bytes().find(b"9999") == -1


def test_the_client_works_over_a_unix_socket_and_raises_typed_errors(tmp_path: Path) -> None:
    """Over a unix socket: appends work, a wrong token and a full outbox raise typed errors."""
    sock = tmp_path / "run" / "agent.sock"
    config = settings(tmp_path, "mqtt://127.0.0.1:1", "kiosk-uds", api_socket=sock)
    outbox = SqliteOutbox(tmp_path / "agent.sqlite", limits=OutboxLimits(max_rows=2))
    with AgentService(config, outbox=outbox) as service:
        assert service.api_url == f"unix:{sock}"
        with AgentClient.from_settings(config) as client:
            first = client.append(Checkin(item_id="A"), clock_trusted=False)
            event_id = uuid.uuid4()
            second = client.append(Checkin(item_id="B"), event_id=event_id)
            assert client.append(Checkin(item_id="B"), event_id=event_id) == second  # a retry
            assert (first.seq, second.seq) == (1, 2)
            with pytest.raises(OutboxFullError) as full:
                client.append(Checkin(item_id="C"))
            assert full.value.status == 507
            assert "2 of 2 events" in full.value.message
            assert client.item_state("A") is None
            assert client.loan_policy() is None
            assert client.patron_block("P1").blocked is False
            assert client.outbox().counts["pending"] == 2
            assert [d.seq for d in client.dead_letters()] == []
            offline = client.ask(CheckoutAuth(patron_id="P", item_id="I"))
            assert isinstance(offline, Offline)
            assert offline.kind == "link_down"
        with AgentClient(f"unix:{sock}", token="wrong") as intruder:
            with pytest.raises(AgentUnauthorized) as denied:
                intruder.append(Checkin(item_id="D"))
            assert "wrong bearer token" in str(denied.value)
            assert intruder.health().device_id == "kiosk-uds"  # health needs no token
    assert not sock.exists()  # removed on a clean stop
    reopened = SqliteOutbox(tmp_path / "agent.sqlite")
    assert reopened.stats().counts[EventState.PENDING] == 2
    reopened.close()


def test_an_unreachable_agent_is_agent_unavailable_and_ask_answers_offline() -> None:
    """No agent listening: appends raise AgentUnavailable, ask returns Offline(agent_unreachable)."""
    with AgentClient(f"http://127.0.0.1:{free_port()}", token=TOKEN, timeout_s=2) as client:
        with pytest.raises(AgentUnavailable, match="cannot reach the agent"):
            client.append(Checkin(item_id="A"))
        answer = client.ask(CheckoutAuth(patron_id="P", item_id="I"))
        assert isinstance(answer, Offline)
        assert answer.kind == "agent_unreachable"
