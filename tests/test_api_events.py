"""POST /events and POST /ask over a real loopback socket: auth, validation, commit, refusals."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from edge_agent.api.app import ApiContext
from edge_agent.config import AgentSettings, BrokerSettings, LibedgeSettings, SiteSettings
from edge_agent.outbox import EventState, OutboxLimits, SqliteOutbox
from edge_agent.service import AgentService

TOKEN = "s3cret-token"
DEV = "kiosk-api"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Api:
    client: httpx.Client
    outbox: SqliteOutbox
    service: AgentService

    @property
    def ctx(self) -> ApiContext:
        assert self.service.context is not None
        return self.service.context


def settings_for(tmp_path: Path, broker_url: str = "mqtt://127.0.0.1:1") -> LibedgeSettings:
    return LibedgeSettings(
        site=SiteSettings(library_id="lib", device_id=DEV),
        agent=AgentSettings(
            database=tmp_path / "agent.sqlite",
            api_port=0,
            api_token=TOKEN,  # type: ignore[arg-type]
            request_timeout_s=0.5,
            broker=BrokerSettings(url=broker_url, reconnect_min_s=0.2, reconnect_max_s=1),
        ),
    )


def build(
    tmp_path: Path,
    broker_url: str = "mqtt://127.0.0.1:1",
    *,
    max_rows: int | None = None,
    max_db_bytes: int | None = None,
) -> Api:
    """The agent service on a free loopback port, with an outbox of the test's choosing."""
    outbox = SqliteOutbox(
        tmp_path / "agent.sqlite",
        limits=OutboxLimits(max_rows=max_rows),
        max_db_bytes=max_db_bytes,
    )
    service = AgentService(settings_for(tmp_path, broker_url), outbox=outbox)
    service.start()
    return Api(httpx.Client(base_url=service.api_url, timeout=10), outbox, service)


def close(api: Api) -> None:
    api.client.close()
    api.service.stop()
    api.outbox.close()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    built = build(tmp_path)
    yield built
    close(built)


CHECKOUT = {
    "type": "checkout",
    "patron_id": "P0001",
    "item_id": "VN-000123",
    "due_date": "2025-03-15",
    "tag_uid": "E004015012345678",
}


def test_append_answers_201_with_seq_after_the_commit(api: Api) -> None:
    """A valid event is committed (visible in the outbox file) and answered with its seq."""
    when = "2025-03-01T09:30:00+07:00"
    first = api.client.post(
        "/events", json={"payload": CHECKOUT, "time": when, "clock_trusted": False}, headers=AUTH
    )
    second = api.client.post(
        "/events", json={"payload": {"type": "checkin", "item_id": "X"}}, headers=AUTH
    )
    assert (first.status_code, second.status_code) == (201, 201)
    body = first.json()
    assert body["seq"] == 1
    assert second.json()["seq"] == 2
    assert body["device_id"] == DEV
    stored = api.outbox.get(DEV, 1)
    assert stored is not None
    assert stored.event_id == body["event_id"]
    assert stored.kind == "checkout"
    assert stored.state == EventState.PENDING
    assert json.loads(stored.payload)["item_id"] == "VN-000123"
    assert stored.event_time == dt.datetime.fromisoformat(when).timestamp()
    assert stored.clock_trusted is False
    assert api.ctx.counters["append_ok"] == 2


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing Authorization: Bearer token"),
        ({"Authorization": "Bearer nope"}, "wrong bearer token"),
        ({"Authorization": TOKEN}, "wrong bearer token"),
    ],
)
def test_a_missing_or_wrong_token_is_401_json_before_the_body_is_read(
    api: Api, headers: dict[str, str], message: str
) -> None:
    """No token or a wrong one gives 401 with a JSON error, even for a malformed body."""
    for body in ({"payload": CHECKOUT}, "{not json"):
        kwargs = {"json": body} if isinstance(body, dict) else {"content": body}
        response = api.client.post("/events", headers=headers, **kwargs)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"] == "unauthorized"
        assert message in response.json()["message"]
    assert api.outbox.stats().counts[EventState.PENDING] == 0
    for path in ("/dead-letters", "/caches", "/commands"):
        assert api.client.get(path, headers=headers).status_code == 401
    assert api.client.post("/dead-letters/x/1/retry", headers=headers).status_code == 401


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        ({"payload": {**CHECKOUT, "item_id": None}}, "payload.checkout.item_id", "string"),
        (
            {"payload": {"type": "checkout", "patron_id": "P"}},
            "payload.checkout.item_id",
            "required",
        ),
        ({"payload": {**CHECKOUT, "due_date": "soon"}}, "payload.checkout.due_date", "date"),
        ({"payload": {"type": "teleport"}}, "payload", "does not match"),
        ({"payload": CHECKOUT, "extra": 1}, "extra", "Extra inputs"),
        ({"payload": CHECKOUT, "time": "2025-03-01T09:00:00"}, "time", "timezone"),
        ({}, "payload", "required"),
    ],
)
def test_a_malformed_event_is_422_naming_the_field(
    api: Api, body: dict[str, object], field: str, problem: str
) -> None:
    """Each wrong field is named in the 422 answer; nothing is stored."""
    response = api.client.post("/events", json=body, headers=AUTH)
    assert response.status_code == 422
    answer = response.json()
    assert answer["error"] == "invalid_request"
    fields = {f["field"]: f["problem"] for f in answer["fields"]}
    assert field in fields, answer
    assert problem.lower() in fields[field].lower()
    assert field in answer["message"]
    assert "Traceback" not in response.text
    assert api.outbox.stats().counts[EventState.PENDING] == 0


def test_a_body_that_is_not_json_is_422_saying_so(api: Api) -> None:
    """Broken JSON and a form-encoded body are refused with a sentence a developer understands."""
    broken = api.client.post(
        "/events",
        content=b'{"payload": {"type"',
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert broken.status_code == 422
    assert "not valid JSON" in broken.json()["message"]
    form = api.client.post("/events", data={"payload": "x"}, headers=AUTH)
    assert form.status_code == 422
    assert "application/json" in form.json()["message"]


def test_the_same_event_id_is_stored_once_and_a_different_event_with_it_is_409(api: Api) -> None:
    """A retried append (same event_id, same event) returns the stored event; a clash is 409."""
    event_id = str(uuid.uuid4())
    body = {"payload": CHECKOUT, "event_id": event_id, "time": "2025-03-01T02:00:00+00:00"}
    first = api.client.post("/events", json=body, headers=AUTH)
    again = api.client.post("/events", json=body, headers=AUTH)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    clash = {**body, "payload": {**CHECKOUT, "item_id": "OTHER"}}
    response = api.client.post("/events", json=clash, headers=AUTH)
    assert response.status_code == 409
    assert response.json()["error"] == "event_id_conflict"
    assert api.outbox.stats().counts[EventState.PENDING] == 1


def test_a_full_outbox_refuses_with_507_and_keeps_what_it_had(tmp_path: Path) -> None:
    """At the cap appends get 507 naming the cap; committed events stay; confirming frees room."""
    api = build(tmp_path, max_rows=3)
    try:
        for _ in range(3):
            assert (
                api.client.post("/events", json={"payload": CHECKOUT}, headers=AUTH).status_code
                == 201
            )
        refused = api.client.post("/events", json={"payload": CHECKOUT}, headers=AUTH)
        assert refused.status_code == 507
        assert refused.json()["error"] == "outbox_full"
        assert "3 of 3 events" in refused.json()["message"]
        assert [api.outbox.get(DEV, s) is not None for s in (1, 2, 3)] == [True, True, True]
        api.outbox.mark_confirmed(DEV, [1])
        accepted = api.client.post("/events", json={"payload": CHECKOUT}, headers=AUTH)
        assert accepted.status_code == 201
        assert accepted.json()["seq"] == 4
        assert api.ctx.counters["append_outbox_full"] == 1
    finally:
        close(api)


def big_alarm(n: int) -> dict[str, object]:
    item = {
        "tag_uid": "E004015012345678",
        "title": "Dế Mèn phiêu lưu ký " * 20,
        "security": "secured",
        "data_model": "iso28560-2",
        "antenna": "A1",
    }
    return {"type": "gate_alarm", "pass_id": str(uuid.UUID(int=n)), "items": [item] * 60}


def test_a_full_disk_is_503_naming_the_cause_and_nothing_committed_is_lost(tmp_path: Path) -> None:
    """SQLITE_FULL makes appends 503 'database or disk is full'; earlier events stay intact."""
    api = build(tmp_path, max_db_bytes=512 * 1024)
    try:
        accepted: list[int] = []
        for n in range(200):
            response = api.client.post("/events", json={"payload": big_alarm(n)}, headers=AUTH)
            if response.status_code != 201:
                break
            accepted.append(response.json()["seq"])
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "storage_error"
        assert "database or disk is full" in response.json()["message"]
        assert accepted == list(range(1, len(accepted) + 1))
        assert len(accepted) >= 3
        stats = api.outbox.stats()
        assert stats.counts[EventState.PENDING] == len(accepted)
        for seq in accepted:
            stored = api.outbox.get(DEV, seq)
            assert stored is not None
            assert json.loads(stored.payload)["type"] == "gate_alarm"
    finally:
        close(api)
    # Once there is room again (here: the cap lifted, as when the disk was cleaned), the
    # agent appends again after the last committed seq and everything before is intact.
    again = build(tmp_path)
    try:
        small = again.client.post("/events", json={"payload": CHECKOUT}, headers=AUTH)
        assert small.status_code == 201
        assert small.json()["seq"] == len(accepted) + 1
        assert again.outbox.stats().counts[EventState.PENDING] == len(accepted) + 1
    finally:
        close(again)


def test_ask_without_a_link_answers_offline_not_an_error(api: Api) -> None:
    """POST /ask while central is unreachable answers outcome 'offline' with the reason."""
    response = api.client.post(
        "/ask", json={"op": "checkout", "patron_id": "P1", "item_id": "I1"}, headers=AUTH
    )
    assert response.status_code == 200
    answer = response.json()
    assert answer["outcome"] == "offline"
    assert answer["kind"] == "link_down"
    bad = api.client.post("/ask", json={"op": "checkout", "patron_id": "P1"}, headers=AUTH)
    assert bad.status_code == 422
    assert "checkout.item_id" in bad.json()["message"]
    slow = api.client.post(
        "/ask?timeout=-1", json={"op": "account", "patron_id": "P"}, headers=AUTH
    )
    assert slow.status_code == 422
    assert "timeout" in slow.json()["message"]
