"""The staff side of the local API: health, outbox depth, dead letters, caches, metrics."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge_agent.client import AgentClient
from edge_agent.contract import CacheUpdate, ItemStates, LoanPolicy, PatronBlocks
from edge_agent.outbox import EventState
from tests.support.broker import MosquittoBroker
from tests.support.mqtt import MqttProbe
from tests.test_api_events import AUTH, CHECKOUT, DEV, Api, build, close

NOW = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    built = build(tmp_path)
    yield built
    close(built)


def append(api: Api, n: int) -> None:
    for _ in range(n):
        assert (
            api.client.post("/events", json={"payload": CHECKOUT}, headers=AUTH).status_code == 201
        )


def test_health_is_degraded_without_a_link_and_says_why(api: Api) -> None:
    """No broker: health is 'degraded' (events are still kept) with the link's problem."""
    assert api.service.link is not None
    assert api.service.link.wait_for(lambda: api.service.link.status().problem is not None, 10)  # type: ignore[union-attr]
    response = api.client.get("/health")  # open: no token needed
    assert response.status_code == 200
    health = response.json()
    assert health["status"] == "degraded"
    assert health["outbox_ok"] is True
    assert health["link"]["connected"] is False
    assert "refused the TCP connection" in health["link"]["problem"]
    assert health["device_id"] == DEV


def test_health_is_failing_with_503_when_the_outbox_cannot_be_read(api: Api) -> None:
    """A closed (broken) outbox makes health 'failing' and 503, the error named."""
    api.outbox.close()
    response = api.client.get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == "failing"
    assert "closed" in response.json()["outbox_error"]
    refused = api.client.post("/events", json={"payload": CHECKOUT}, headers=AUTH)
    assert refused.status_code == 503
    assert refused.json()["error"] == "stopping"


def test_outbox_view_counts_states_and_the_oldest_unconfirmed_age(api: Api) -> None:
    """GET /outbox shows depth by state, the cap, ages and the link for staff."""
    append(api, 5)
    api.outbox.mark_sent(DEV, [1, 2])
    api.outbox.mark_confirmed(DEV, [1])
    api.outbox.dead_letter(DEV, 3, "refused by the broker: Not authorized")
    view = api.client.get("/outbox").json()
    assert view["counts"] == {"pending": 2, "sent": 1, "confirmed": 1, "dead": 1, "discarded": 0}
    assert view["unconfirmed"] == 3
    assert view["held"] == 4
    assert view["oldest_unconfirmed_age_s"] >= 0
    assert view["oldest_dead_age_s"] >= 0
    assert view["last_seq"] == {DEV: 5}
    assert view["link"]["connected"] is False
    assert view["link"]["phase"] in {"waiting", "connecting"}


def test_dead_letters_can_be_listed_retried_and_discarded_by_staff(api: Api) -> None:
    """Staff see the reason and payload, retry one (PENDING again) and discard one (kept)."""
    append(api, 3)
    api.outbox.dead_letter(DEV, 1, "rejected by central: unknown item")
    api.outbox.dead_letter(DEV, 2, "rejected by central: unknown patron")
    dead = api.client.get("/dead-letters", headers=AUTH).json()
    assert [(d["seq"], d["dead_reason"]) for d in dead] == [
        (1, "rejected by central: unknown item"),
        (2, "rejected by central: unknown patron"),
    ]
    assert dead[0]["payload"]["item_id"] == CHECKOUT["item_id"]
    retried = api.client.post(f"/dead-letters/{DEV}/1/retry", headers=AUTH)
    assert retried.status_code == 200
    assert retried.json()["done"] is True
    discarded = api.client.post(f"/dead-letters/{DEV}/2/discard", headers=AUTH)
    assert discarded.status_code == 200
    assert api.outbox.get(DEV, 1).state == EventState.PENDING  # type: ignore[union-attr]
    assert api.outbox.get(DEV, 2).state == EventState.DISCARDED  # type: ignore[union-attr]
    again = api.client.post(f"/dead-letters/{DEV}/2/retry", headers=AUTH)
    assert again.status_code == 404
    assert again.json()["error"] == "not_dead"
    wrong = api.client.post(f"/dead-letters/{DEV}/abc/retry", headers=AUTH)
    assert wrong.status_code == 422
    assert "seq" in wrong.json()["message"]
    bogus = api.client.post(f"/dead-letters/{DEV}/1/explode", headers=AUTH)
    assert bogus.status_code == 422
    assert "action" in bogus.json()["message"]
    assert api.ctx.counters["dead_letter_retry"] == 1


def test_metrics_are_prometheus_text_with_outbox_link_and_api_figures(api: Api) -> None:
    """GET /metrics parses as Prometheus text and carries the outbox depth and counters."""
    append(api, 4)
    api.outbox.dead_letter(DEV, 4, "x")
    response = api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    assert samples[("libedge_agent_outbox_events", (("state", "pending"),))] == 3
    assert samples[("libedge_agent_outbox_events", (("state", "dead"),))] == 1
    assert samples[("libedge_agent_outbox_up", ())] == 1
    assert samples[("libedge_agent_link_connected", ())] == 0
    assert samples[("libedge_agent_api_requests_total", (("outcome", "append_ok"),))] == 4
    assert samples[("libedge_agent_events_published_total", ())] == 0
    assert ("process_resident_memory_bytes", ()) in samples


def test_unknown_routes_and_methods_answer_json_errors(api: Api) -> None:
    """A wrong path or method is a JSON error with a code, like every other error."""
    missing = api.client.get("/nope", headers=AUTH)
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    method = api.client.delete("/health")
    assert method.status_code in (401, 405)
    assert method.json()["error"] in ("unauthorized", "method_not_allowed")


@pytest.mark.broker
def test_caches_from_central_are_served_to_the_kiosk(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    """Caches pushed by central appear under /caches; unknown items are 404, blocks are looked up."""
    api = build(tmp_path, broker.url)
    central = MqttProbe(broker.url)
    central.connect()
    base = f"libedge/v1/lib/{DEV}/down/cache"
    try:
        for name, body in (
            (
                "patron_blocks",
                PatronBlocks(blocked=[{"patron_id": "P9", "reason": "patron_blocked"}]),
            ),
            (
                "item_states",
                ItemStates(items=[{"item_id": "I1", "state": "on_hold", "title": "Số đỏ"}]),
            ),
            ("loan_policy", LoanPolicy(loan_days=10)),
        ):
            update = CacheUpdate(library_id="lib", version=7, time=NOW, body=body)  # type: ignore[arg-type]
            central.publish(f"{base}/{name}", update.model_dump_json())
        link = api.service.link
        assert link is not None
        assert link.wait_for(lambda: len(api.service.caches.versions()) == 3, 10)  # type: ignore[union-attr]
        caches = api.client.get("/caches", headers=AUTH).json()
        assert {n: c["version"] for n, c in caches.items()} == {
            "patron_blocks": 7,
            "item_states": 7,
            "loan_policy": 7,
        }
        assert api.client.get("/caches/patron_blocks/P9", headers=AUTH).json() == {
            "patron_id": "P9",
            "blocked": True,
            "reason": "patron_blocked",
        }
        assert api.client.get("/caches/patron_blocks/P1", headers=AUTH).json()["blocked"] is False
        item = api.client.get("/caches/item_states/I1", headers=AUTH).json()
        assert (item["state"], item["title"]) == ("on_hold", "Số đỏ")
        unknown = api.client.get("/caches/item_states/I2", headers=AUTH)
        assert unknown.status_code == 404
        assert unknown.json()["error"] == "not_cached"
        assert api.client.get("/caches/loan_policy", headers=AUTH).json()["loan_days"] == 10
        assert len(api.client.get("/caches/item_states", headers=AUTH).json()) == 1
        with AgentClient(api.service.api_url, token=AUTH["Authorization"].split()[1]) as client:
            assert [i.item_id for i in client.item_states()] == ["I1"]
            assert [b.patron_id for b in client.patron_blocks()] == ["P9"]
            assert client.item_states(offset=1) == []
            assert client.caches()["loan_policy"].version == 7
        health = api.client.get("/health").json()
        assert health["status"] == "ok"
        assert health["link"]["connected"] is True
        metrics = api.client.get("/metrics").text
        assert 'libedge_agent_cache_version{cache="loan_policy"} 7.0' in metrics
    finally:
        central.close()
        close(api)


def test_dead_letter_payloads_are_shown_as_json(api: Api) -> None:
    """The payload of a dead letter is returned as the JSON object that was stored."""
    append(api, 1)
    api.outbox.dead_letter(DEV, 1, "x")
    (item,) = api.client.get("/dead-letters?limit=5", headers=AUTH).json()
    assert item["payload"] == json.loads(api.outbox.get(DEV, 1).payload)  # type: ignore[union-attr]
    assert item["kind"] == "checkout"
    assert item["attempts"] == 0
